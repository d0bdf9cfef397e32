//! Verifying a time-stamp token (RFC 3161 §2.4.2): a CMS `SignedData` whose content is a
//! `TSTInfo`, checked offline against a message and a [`TrustStore`].

use crate::asn1::{
    ID_AA_SIGNING_CERTIFICATE, ID_AA_SIGNING_CERTIFICATE_V2, ID_CONTENT_TYPE, ID_CT_TST_INFO,
    ID_MESSAGE_DIGEST, ID_SIGNED_DATA, IssuerSerial, PkiStatusInfo, SigningCertificate,
    SigningCertificateV2, TimeStampResp, TstInfo,
};
use crate::chain::{check_chain, check_tsa_certificate};
use crate::crypto::{DigestAlg, verify_signature};
use crate::time::parse_gen_time;
use crate::trust::TrustStore;
use chrono::{DateTime, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use cortex_core::{Error, Result};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, EncodingRules, Tag, Tagged};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::ext::pkix::name::GeneralName;

/// What a verified token asserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// When the TSA says it saw the message (`genTime`).
    pub gen_time: DateTime<Utc>,
    /// The hash function of the message imprint (`SHA-256`, `SHA-384` or `SHA-512`).
    pub hash_algorithm: &'static str,
    /// The TSA's serial number of this token, lowercase hex.
    pub serial_number: String,
    /// The TSA policy the token was issued under (dotted OID).
    pub policy: String,
    /// Subject of the certificate that signed the token.
    pub signer: String,
    /// The nonce echoed from the request, as the DER content octets of the INTEGER.
    pub nonce: Option<Vec<u8>>,
}

/// Verifies a DER time-stamp token (`ContentInfo` of `SignedData`) over `message`: the
/// message imprint, the signed attributes (content type, message digest, ESS signing
/// certificate), the signature, the TSA certificate's key usage and its chain to a trust
/// anchor at `genTime`. Every failure is an integrity error naming what failed.
pub fn verify_token(token: &[u8], message: &[u8], trust: &TrustStore) -> Result<Timestamp> {
    let parsed = ParsedToken::decode(token)?;
    let hash_algorithm = check_imprint(&parsed.tst, message)?;
    let gen_time = parse_gen_time(&parsed.tst.gen_time)?;
    let signer_info = single_signer(&parsed.signed_data)?;
    let embedded = embedded_certificates(&parsed.signed_data);
    let signer = find_signer(signer_info, &embedded, trust)?;
    check_signed_attributes(signer_info, &parsed.tst_der, signer)?;
    check_signer_signature(signer_info, signer)?;
    check_tsa_certificate(signer)?;
    let intermediates: Vec<&Certificate> = embedded
        .iter()
        .chain(&trust.pinned)
        .chain(&trust.intermediates)
        .collect();
    check_chain(signer, &intermediates, &trust.roots, gen_time)?;
    Ok(Timestamp {
        gen_time,
        hash_algorithm,
        serial_number: hex_lower(parsed.tst.serial_number.as_bytes()),
        policy: parsed.tst.policy.to_string(),
        signer: signer.tbs_certificate().subject().to_string(),
        nonce: parsed.tst.nonce.map(|n| n.as_bytes().to_vec()),
    })
}

/// Verifies a DER `TimeStampResp` as a TSA returns it: its status must be granted (0) or
/// granted with modifications (1), then its token is checked by [`verify_token`]. Returns the
/// token's DER bytes with what it asserts.
pub fn verify_response(
    response: &[u8],
    message: &[u8],
    trust: &TrustStore,
) -> Result<(Vec<u8>, Timestamp)> {
    let token = token_of_response(response)?;
    let timestamp = verify_token(&token, message, trust)?;
    Ok((token, timestamp))
}

/// The token of a granted `TimeStampResp`, or an error carrying the TSA's status text.
pub(crate) fn token_of_response(response: &[u8]) -> Result<Vec<u8>> {
    let resp = TimeStampResp::from_der(response)
        .map_err(|e| Error::integrity(format!("malformed TimeStampResp from the TSA: {e}")))?;
    if resp.status.status > 1 {
        return Err(Error::integrity(format!(
            "TSA refused the request: {}",
            describe_status(&resp.status)
        )));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| Error::integrity("TSA granted the request but sent no token"))?;
    token
        .to_der()
        .map_err(|e| Error::integrity(format!("cannot re-encode the token: {e}")))
}

fn describe_status(status: &PkiStatusInfo) -> String {
    let name = match status.status {
        0 => "granted",
        1 => "grantedWithMods",
        2 => "rejection",
        3 => "waiting",
        4 => "revocationWarning",
        5 => "revocationNotification",
        _ => "unknown status",
    };
    let mut text = format!("status {} ({name})", status.status);
    for line in status.status_string.iter().flatten() {
        text.push_str(": ");
        text.push_str(line);
    }
    if let Some(bits) = &status.fail_info {
        let set: Vec<String> = (0..bits.bit_len())
            .filter(|&i| bits.get(i) == Some(true))
            .map(fail_info_name)
            .collect();
        text.push_str(&format!(", failInfo {}", set.join(" ")));
    }
    text
}

fn fail_info_name(bit: usize) -> String {
    match bit {
        0 => "badAlg".into(),
        2 => "badRequest".into(),
        5 => "badDataFormat".into(),
        14 => "timeNotAvailable".into(),
        15 => "unacceptedPolicy".into(),
        16 => "unacceptedExtension".into(),
        17 => "addInfoNotAvailable".into(),
        25 => "systemFailure".into(),
        other => format!("bit{other}"),
    }
}

/// The token's layers, decoded. BER rules are used so that SET OF elements keep the order in
/// which they were signed (DER decoding would re-sort them and break the signature check of a
/// signer that did not sort its attributes).
struct ParsedToken {
    signed_data: SignedData,
    tst_der: Vec<u8>,
    tst: TstInfo,
}

impl ParsedToken {
    fn decode(token: &[u8]) -> Result<Self> {
        let bad = |what: &str, e: der::Error| {
            Error::integrity(format!("malformed timestamp token: {what}: {e}"))
        };
        let content_info = ContentInfo::from_ber(token).map_err(|e| bad("ContentInfo", e))?;
        if content_info.content_type != ID_SIGNED_DATA {
            return Err(Error::integrity(format!(
                "timestamp token is a {} instead of CMS SignedData",
                content_info.content_type
            )));
        }
        let signed_data: SignedData = content_info
            .content
            .decode_as_encoding(EncodingRules::Ber)
            .map_err(|e| bad("SignedData", e))?;
        let encap = &signed_data.encap_content_info;
        if encap.econtent_type != ID_CT_TST_INFO {
            return Err(Error::integrity(format!(
                "timestamp token encapsulates {} instead of id-ct-TSTInfo",
                encap.econtent_type
            )));
        }
        let econtent = encap
            .econtent
            .as_ref()
            .ok_or_else(|| Error::integrity("timestamp token has no TSTInfo content"))?;
        if econtent.tag() != Tag::OctetString {
            return Err(Error::integrity("TSTInfo content is not an OCTET STRING"));
        }
        let tst_der = econtent.value().to_vec();
        let tst = TstInfo::from_der(&tst_der).map_err(|e| bad("TSTInfo", e))?;
        if tst.version != 1 {
            return Err(Error::integrity(format!(
                "TSTInfo version {} is not 1",
                tst.version
            )));
        }
        Ok(ParsedToken {
            signed_data,
            tst_der,
            tst,
        })
    }
}

/// The imprint must be SHA-256, SHA-384 or SHA-512 of `message`.
fn check_imprint(tst: &TstInfo, message: &[u8]) -> Result<&'static str> {
    let imprint = &tst.message_imprint;
    let alg = DigestAlg::sha2_from_identifier(&imprint.hash_algorithm)?;
    if alg.digest(message).as_slice() != imprint.hashed_message.as_bytes() {
        return Err(Error::integrity(format!(
            "timestamp token covers other data: its message imprint is not the {} of the \
             checkpoint note",
            alg.name()
        )));
    }
    Ok(alg.name())
}

/// RFC 3161 §2.4.2 allows exactly one signer. RFC 5652 §5.1 and §5.3 fix the versions
/// (SignedData 3, as the content is not id-data; SignerInfo 1 with issuerAndSerialNumber, 3
/// with subjectKeyIdentifier), and the SignedData lists the signer's digest algorithm.
fn single_signer(signed_data: &SignedData) -> Result<&SignerInfo> {
    let infos = signed_data.signer_infos.0.as_slice();
    let [si] = infos else {
        return Err(Error::integrity(format!(
            "timestamp token has {} SignerInfos instead of exactly one",
            infos.len()
        )));
    };
    if signed_data.version != CmsVersion::V3 {
        return Err(Error::integrity(format!(
            "timestamp SignedData version is {:?}, not 3",
            signed_data.version
        )));
    }
    let expected = match si.sid {
        SignerIdentifier::IssuerAndSerialNumber(_) => CmsVersion::V1,
        SignerIdentifier::SubjectKeyIdentifier(_) => CmsVersion::V3,
    };
    if si.version != expected {
        return Err(Error::integrity(format!(
            "timestamp SignerInfo version is {:?}, not {expected:?} for its signer identifier",
            si.version
        )));
    }
    if !signed_data
        .digest_algorithms
        .iter()
        .any(|a| a.oid == si.digest_alg.oid)
    {
        return Err(Error::integrity(
            "timestamp SignedData does not list its signer's digest algorithm",
        ));
    }
    Ok(si)
}

fn embedded_certificates(signed_data: &SignedData) -> Vec<Certificate> {
    signed_data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(cert) => Some(cert.clone()),
            CertificateChoices::Other(_) => None,
        })
        .collect()
}

/// The certificate named by the SignerInfo: among the pinned certificates when some are
/// configured (and then no other end-entity certificate may ride along in the token), else
/// among those the token embeds.
fn find_signer<'a>(
    signer_info: &SignerInfo,
    embedded: &'a [Certificate],
    trust: &'a TrustStore,
) -> Result<&'a Certificate> {
    if !trust.pinned.is_empty() {
        refuse_unpinned_end_entities(embedded, &trust.pinned)?;
    }
    let candidates: &[Certificate] = if trust.pinned.is_empty() {
        embedded
    } else {
        &trust.pinned
    };
    candidates
        .iter()
        .find(|c| identifies(&signer_info.sid, c))
        .ok_or_else(|| {
            let place = if trust.pinned.is_empty() {
                "the token embeds no certificate matching its SignerInfo (configure the TSA \
                 certificate for tokens without certificates)"
            } else {
                "it is not one of the pinned TSA certificates"
            };
            Error::integrity(format!("timestamp signer not found: {place}"))
        })
}

fn refuse_unpinned_end_entities(embedded: &[Certificate], pinned: &[Certificate]) -> Result<()> {
    for cert in embedded {
        let ca = cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::BasicConstraints>()
            .ok()
            .flatten()
            .is_some_and(|(_, bc)| bc.ca);
        if !ca && !pinned.contains(cert) {
            return Err(Error::integrity(format!(
                "timestamp token embeds certificate {} which is not a pinned TSA certificate",
                cert.tbs_certificate().subject()
            )));
        }
    }
    Ok(())
}

fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            tbs.issuer() == &isn.issuer && tbs.serial_number() == &isn.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .get_extension::<SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| &own == ski),
    }
}

/// RFC 5652 §5.3 / RFC 3161 §2.4.1: content type, message digest over the TSTInfo, and the
/// ESS signing-certificate attribute binding the signer certificate.
fn check_signed_attributes(si: &SignerInfo, tst_der: &[u8], signer: &Certificate) -> Result<()> {
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| Error::integrity("timestamp SignerInfo has no signed attributes"))?;
    let content_type: ObjectIdentifier =
        single_value(attrs.iter(), ID_CONTENT_TYPE, "content-type")?;
    if content_type != ID_CT_TST_INFO {
        return Err(Error::integrity(format!(
            "signed content-type attribute is {content_type}, not id-ct-TSTInfo"
        )));
    }
    let digest_alg = DigestAlg::sha2_from_identifier(&si.digest_alg)?;
    let digest: OctetString = single_value(attrs.iter(), ID_MESSAGE_DIGEST, "message-digest")?;
    if digest.as_bytes() != digest_alg.digest(tst_der).as_slice() {
        return Err(Error::integrity(
            "signed message-digest attribute does not match the TSTInfo",
        ));
    }
    check_signing_certificate(attrs.iter(), signer)
}

fn check_signing_certificate<'a>(
    attrs: impl Iterator<Item = &'a Attribute> + Clone,
    signer: &Certificate,
) -> Result<()> {
    let cert_der = signer
        .to_der()
        .map_err(|e| Error::integrity(format!("cannot encode the signer certificate: {e}")))?;
    if has_attribute(attrs.clone(), ID_AA_SIGNING_CERTIFICATE_V2) {
        let v2: SigningCertificateV2 =
            single_value(attrs, ID_AA_SIGNING_CERTIFICATE_V2, "signingCertificateV2")?;
        let id = v2
            .certs
            .first()
            .ok_or_else(|| Error::integrity("signingCertificateV2 lists no certificate"))?;
        let alg = match &id.hash_algorithm {
            Some(a) => DigestAlg::sha2_from_identifier(a)?,
            None => DigestAlg::Sha256,
        };
        return check_ess_cert_id(
            alg,
            &id.cert_hash,
            id.issuer_serial.as_ref(),
            signer,
            &cert_der,
        );
    }
    if has_attribute(attrs.clone(), ID_AA_SIGNING_CERTIFICATE) {
        let v1: SigningCertificate =
            single_value(attrs, ID_AA_SIGNING_CERTIFICATE, "signingCertificate")?;
        let id = v1
            .certs
            .first()
            .ok_or_else(|| Error::integrity("signingCertificate lists no certificate"))?;
        return check_ess_cert_id(
            DigestAlg::Sha1,
            &id.cert_hash,
            id.issuer_serial.as_ref(),
            signer,
            &cert_der,
        );
    }
    Err(Error::integrity(
        "timestamp SignerInfo has no signingCertificate (ESSCertID) or signingCertificateV2 \
         (ESSCertIDv2) attribute",
    ))
}

fn check_ess_cert_id(
    alg: DigestAlg,
    cert_hash: &OctetString,
    issuer_serial: Option<&IssuerSerial>,
    signer: &Certificate,
    cert_der: &[u8],
) -> Result<()> {
    if alg.digest(cert_der).as_slice() != cert_hash.as_bytes() {
        return Err(Error::integrity(format!(
            "ESS signing-certificate hash ({}) does not match the signer certificate {}",
            alg.name(),
            signer.tbs_certificate().subject()
        )));
    }
    let Some(issuer_serial) = issuer_serial else {
        return Ok(());
    };
    let tbs = signer.tbs_certificate();
    let issuer_matches = issuer_serial.issuer.iter().any(|name| match name {
        GeneralName::DirectoryName(n) => n == tbs.issuer(),
        _ => false,
    });
    if !issuer_matches || issuer_serial.serial_number.as_bytes() != tbs.serial_number().as_bytes() {
        return Err(Error::integrity(
            "ESS signing-certificate issuer and serial do not match the signer certificate",
        ));
    }
    Ok(())
}

fn check_signer_signature(si: &SignerInfo, signer: &Certificate) -> Result<()> {
    let attrs_der = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| Error::integrity("timestamp SignerInfo has no signed attributes"))?
        .to_der()
        .map_err(|e| Error::integrity(format!("cannot encode the signed attributes: {e}")))?;
    let digest_alg = DigestAlg::sha2_from_identifier(&si.digest_alg)?;
    verify_signature(
        signer.tbs_certificate().subject_public_key_info(),
        &si.signature_algorithm,
        Some(digest_alg),
        &attrs_der,
        si.signature.as_bytes(),
    )
    .map_err(|e| {
        Error::integrity(format!(
            "timestamp token signature by {} does not verify: {}",
            signer.tbs_certificate().subject(),
            e.message()
        ))
    })
}

fn has_attribute<'a>(
    mut attrs: impl Iterator<Item = &'a Attribute>,
    oid: ObjectIdentifier,
) -> bool {
    attrs.any(|a| a.oid == oid)
}

/// The one value of the one attribute `oid`, decoded as `T`.
fn single_value<'a, T: for<'b> Decode<'b, Error = der::Error>>(
    mut attrs: impl Iterator<Item = &'a Attribute>,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<T> {
    let attr = attrs
        .find(|a| a.oid == oid)
        .ok_or_else(|| Error::integrity(format!("signed attribute {name} is missing")))?;
    let [value] = attr.values.as_slice() else {
        return Err(Error::integrity(format!(
            "signed attribute {name} has {} values instead of one",
            attr.values.len()
        )));
    };
    let malformed = |e: &dyn std::fmt::Display| {
        Error::integrity(format!("signed attribute {name} is malformed: {e}"))
    };
    let bytes = value.to_der().map_err(|e| malformed(&e))?;
    T::from_ber(&bytes).map_err(|e| malformed(&e))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
