//! The log entry itself (`canonicalizedBody`): a `hashedrekord` or `dsse` 0.0.2 body, and the
//! check that it records the expected artifact signed by its recorded key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::{Error, ErrorKind, Result};
use p256::ecdsa::signature::{Verifier as _, hazmat::PrehashVerifier as _};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;
use sha2::Digest as _;

/// `keyDetails` of an ECDSA P-256 key signing SHA-256 digests.
pub const ECDSA_P256_SHA_256: &str = "PKIX_ECDSA_P256_SHA_256";
/// `keyDetails` of an Ed25519ph key (RFC 8032 HashEdDSA over SHA-512), the form Rekor v2's
/// hashedrekord accepts for Ed25519 keys (it sees only the digest, so pure Ed25519 cannot work).
pub const ED25519_PH: &str = "PKIX_ED25519_PH";
/// `keyDetails` of a pure Ed25519 key (usable for DSSE entries, which sign the whole PAE).
pub const ED25519: &str = "PKIX_ED25519";

/// What the entry is expected to record.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// A blob signed as a `hashedrekord`: CORTEX submits the complete signed checkpoint note.
    Blob(&'a [u8]),
    /// Only the SHA-256 digest of a blob logged as a `hashedrekord` by an ECDSA P-256 key, when
    /// the blob itself is not at hand (an Ed25519ph signature needs the blob).
    BlobDigest(&'a [u8]),
    /// A DSSE envelope's payload and payload type, logged as a `dsse` entry.
    Dsse {
        /// The envelope's `payloadType`.
        payload_type: &'a str,
        /// The decoded payload.
        payload: &'a [u8],
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(alias = "api_version")]
    api_version: String,
    kind: String,
    spec: Spec,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(
        rename = "hashedRekordV002",
        alias = "hashedRekordV0_0_2",
        alias = "hashed_rekord_v002",
        alias = "hashed_rekord_v0_0_2"
    )]
    hashed_rekord: Option<HashedRekord>,
    #[serde(
        rename = "dsseV002",
        alias = "dsseV0_0_2",
        alias = "dsse_v002",
        alias = "dsse_v0_0_2"
    )]
    dsse: Option<Dsse>,
}

#[derive(Deserialize)]
struct HashedRekord {
    data: HashOutput,
    signature: Signature,
}

#[derive(Deserialize)]
struct Dsse {
    #[serde(rename = "payloadHash", alias = "payload_hash", alias = "data")]
    payload_hash: HashOutput,
    signatures: Vec<Signature>,
}

#[derive(Deserialize)]
struct HashOutput {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct Signature {
    content: String,
    verifier: SignatureVerifier,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureVerifier {
    #[serde(alias = "key_details")]
    key_details: String,
    #[serde(alias = "public_key")]
    public_key: Option<RawBytes>,
    #[serde(alias = "x509_certificate")]
    x509_certificate: Option<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    #[serde(alias = "raw_bytes")]
    raw_bytes: String,
}

/// What a verified body says: its kind and the key that signed the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBody {
    /// `hashedrekord` or `dsse`.
    pub kind: String,
    /// The signer's `keyDetails`, e.g. `PKIX_ECDSA_P256_SHA_256`.
    pub key_details: String,
    /// The signer's DER SubjectPublicKeyInfo (taken from the certificate for certificate verifiers).
    pub signer_spki: Vec<u8>,
}

fn mismatch(msg: impl Into<String>) -> Error {
    Error::integrity(format!("Rekor entry body: {}", msg.into()))
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    B64.decode(s)
        .map_err(|_| mismatch(format!("{field} is not base64")))
}

/// Checks a decoded `canonicalizedBody`: a 0.0.2 entry of the kind `artifact` needs, whose digest
/// is the artifact's and whose signature verifies with its recorded key.
pub fn verify_body(body: &[u8], artifact: Artifact<'_>) -> Result<VerifiedBody> {
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| mismatch(format!("not a Rekor entry body: {e}")))?;
    if parsed.api_version != "0.0.2" {
        return Err(unsupported(&parsed.kind, &parsed.api_version));
    }
    let (signature, key_details) = match (parsed.kind.as_str(), artifact) {
        ("hashedrekord", Artifact::Blob(_) | Artifact::BlobDigest(_)) => {
            let hr = parsed
                .spec
                .hashed_rekord
                .ok_or_else(|| mismatch("kind hashedrekord without spec.hashedRekordV002"))?;
            let spki = signer_spki(&hr.signature.verifier)?;
            let sig = b64("signature.content", &hr.signature.content)?;
            let details = hr.signature.verifier.key_details;
            verify_hashedrekord(&details, &hr.data, &spki, &sig, artifact)?;
            (spki, details)
        }
        (
            "dsse",
            Artifact::Dsse {
                payload_type,
                payload,
            },
        ) => {
            let dsse = parsed
                .spec
                .dsse
                .ok_or_else(|| mismatch("kind dsse without spec.dsseV002"))?;
            verify_dsse(&dsse, payload_type, payload)?
        }
        ("hashedrekord" | "dsse", _) => {
            return Err(mismatch(format!(
                "the entry is a {} entry, not the kind the artifact was logged as",
                parsed.kind
            )));
        }
        _ => return Err(unsupported(&parsed.kind, &parsed.api_version)),
    };
    Ok(VerifiedBody {
        kind: parsed.kind,
        key_details,
        signer_spki: signature,
    })
}

fn unsupported(kind: &str, version: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "Rekor entry kind {kind:?} version {version:?} is not supported (hashedrekord or dsse 0.0.2 are)"
        ),
    )
}

fn verify_hashedrekord(
    details: &str,
    data: &HashOutput,
    spki: &[u8],
    sig: &[u8],
    artifact: Artifact<'_>,
) -> Result<()> {
    let digest = b64("data.digest", &data.digest)?;
    match (details, artifact) {
        (ECDSA_P256_SHA_256, _) => {
            let expected = match artifact {
                Artifact::BlobDigest(d) => d.to_vec(),
                Artifact::Blob(blob) | Artifact::Dsse { payload: blob, .. } => {
                    sha2::Sha256::digest(blob).to_vec()
                }
            };
            expect_digest(data, &digest, "SHA2_256", &expected)?;
            let key = p256_key(spki)?;
            let sig = p256::ecdsa::DerSignature::from_bytes(sig)
                .map_err(|_| mismatch("the ECDSA signature is not DER"))?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| mismatch("the ECDSA P-256 signature does not verify"))
        }
        (ED25519_PH, Artifact::Blob(blob)) => {
            expect_digest(data, &digest, "SHA2_512", &sha2::Sha512::digest(blob))?;
            let key = ed25519_key(spki)?;
            let sig = ed25519_dalek::Signature::from_slice(sig)
                .map_err(|_| mismatch("the Ed25519ph signature is not 64 bytes"))?;
            key.verify_prehashed(sha2::Sha512::new().chain_update(blob), None, &sig)
                .map_err(|_| mismatch("the Ed25519ph signature does not verify"))
        }
        (ED25519_PH, _) => Err(Error::new(
            ErrorKind::Unsupported,
            "an Ed25519ph hashedrekord signature is checked against the artifact, not its digest",
        )),
        (other, _) => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "hashedrekord signature keyDetails {other:?} is not supported ({ECDSA_P256_SHA_256} or {ED25519_PH} are)"
            ),
        )),
    }
}

fn expect_digest(data: &HashOutput, digest: &[u8], algorithm: &str, actual: &[u8]) -> Result<()> {
    if data.algorithm != algorithm {
        return Err(mismatch(format!(
            "data.algorithm is {:?}, not {algorithm:?} as the key details require",
            data.algorithm
        )));
    }
    if digest != actual {
        return Err(mismatch(
            "the recorded digest is not the digest of the artifact (another artifact was logged)",
        ));
    }
    Ok(())
}

/// DSSE pre-authentication encoding (DSSE v1 protocol): what each signature signs.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn verify_dsse(dsse: &Dsse, payload_type: &str, payload: &[u8]) -> Result<(Vec<u8>, String)> {
    let digest = b64("payloadHash.digest", &dsse.payload_hash.digest)?;
    expect_digest(
        &dsse.payload_hash,
        &digest,
        "SHA2_256",
        &sha2::Sha256::digest(payload),
    )?;
    let [signature] = dsse.signatures.as_slice() else {
        return Err(mismatch(format!(
            "a DSSE entry with {} signatures (one is supported)",
            dsse.signatures.len()
        )));
    };
    let spki = signer_spki(&signature.verifier)?;
    let sig = b64("signatures[0].content", &signature.content)?;
    let message = pae(payload_type, payload);
    match signature.verifier.key_details.as_str() {
        ECDSA_P256_SHA_256 => {
            let sig = p256::ecdsa::DerSignature::from_bytes(&sig)
                .map_err(|_| mismatch("the ECDSA signature is not DER"))?;
            p256_key(&spki)?
                .verify(&message, &sig)
                .map_err(|_| mismatch("the DSSE ECDSA P-256 signature does not verify"))?;
        }
        ED25519 => {
            let sig = ed25519_dalek::Signature::from_slice(&sig)
                .map_err(|_| mismatch("the Ed25519 signature is not 64 bytes"))?;
            ed25519_key(&spki)?
                .verify(&message, &sig)
                .map_err(|_| mismatch("the DSSE Ed25519 signature does not verify"))?;
        }
        other => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("DSSE signature keyDetails {other:?} is not supported"),
            ));
        }
    }
    Ok((spki, signature.verifier.key_details.clone()))
}

fn p256_key(spki: &[u8]) -> Result<p256::ecdsa::VerifyingKey> {
    p256::ecdsa::VerifyingKey::from_public_key_der(spki)
        .map_err(|_| mismatch("the recorded public key is not an ECDSA P-256 key"))
}

fn ed25519_key(spki: &[u8]) -> Result<ed25519_dalek::VerifyingKey> {
    let raw = crate::checkpoint::ed25519_key_of_spki(spki).map_err(|e| mismatch(e.message()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw)
        .map_err(|_| mismatch("the recorded Ed25519 key is not a valid point"))
}

fn signer_spki(v: &SignatureVerifier) -> Result<Vec<u8>> {
    match (&v.public_key, &v.x509_certificate) {
        (Some(k), None) => b64("verifier.publicKey.rawBytes", &k.raw_bytes),
        (None, Some(c)) => {
            certificate_public_key(&b64("verifier.x509Certificate.rawBytes", &c.raw_bytes)?)
        }
        _ => Err(mismatch(
            "the verifier must have exactly one of publicKey and x509Certificate",
        )),
    }
}

/// The DER SubjectPublicKeyInfo of a DER X.509 certificate (RFC 5280 §4.1). Only the structure is
/// read; the certificate's own signature and validity are not checked (a receipt check asks which
/// key signed the entry, not who the key belongs to).
pub fn certificate_public_key(cert_der: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::invalid("the X.509 certificate is not DER (RFC 5280) as expected");
    let (cert, _) = der_element(cert_der, 0x30).ok_or_else(bad)?;
    let (tbs, _) = der_element(cert.content, 0x30).ok_or_else(bad)?;
    let mut rest = tbs.content;
    if rest.first() == Some(&0xa0) {
        rest = der_element(rest, 0xa0).ok_or_else(bad)?.1; // [0] EXPLICIT version
    }
    // serialNumber, signature, issuer, validity, subject; then subjectPublicKeyInfo.
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        rest = der_element(rest, tag).ok_or_else(bad)?.1;
    }
    let (spki, _) = der_element(rest, 0x30).ok_or_else(bad)?;
    Ok(spki.whole.to_vec())
}

struct DerElement<'a> {
    whole: &'a [u8],
    content: &'a [u8],
}

/// One DER element with tag `tag` at the start of `input`, and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(DerElement<'_>, &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81..=0x84 => {
            let n = (first & 0x7f) as usize;
            let (len_bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
            let len = len_bytes.iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, rest)
        }
        _ => return None,
    };
    let content = rest.get(..len)?;
    let header = input.len() - rest.len();
    Some((
        DerElement {
            whole: &input[..header + len],
            content,
        },
        &rest[len..],
    ))
}
