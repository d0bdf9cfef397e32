//! The TSA certificate's own rules (RFC 3161 §2.3) and its path to a configured trust anchor
//! (RFC 5280 §6, reduced to what a timestamp needs: names, signatures, CA flags and validity
//! at `genTime`; no revocation, no name or policy constraints).

use crate::asn1::ID_KP_TIME_STAMPING;
use crate::crypto::verify_signature;
use crate::time::check_valid_at;
use chrono::{DateTime, Utc};
use cortex_core::{Error, Result};
use der::Encode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

/// Longest chain followed from the TSA certificate to a trust anchor.
const MAX_CHAIN: usize = 8;

/// RFC 3161 §2.3: the TSA certificate has exactly one extended key usage, `timeStamping`,
/// marked critical; it is an end entity (not a CA); a key usage, if present, allows signing.
pub(crate) fn check_tsa_certificate(cert: &Certificate) -> Result<()> {
    let tbs = cert.tbs_certificate();
    let subject = tbs.subject();
    let (critical, eku) = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| malformed(cert, "extended key usage", e))?
        .ok_or_else(|| {
            Error::integrity(format!(
                "TSA certificate {subject} has no extended key usage (timeStamping required)"
            ))
        })?;
    if !critical {
        return Err(Error::integrity(format!(
            "TSA certificate {subject}: extended key usage timeStamping is not marked critical"
        )));
    }
    if eku.0.as_slice() != [ID_KP_TIME_STAMPING] {
        return Err(Error::integrity(format!(
            "TSA certificate {subject}: extended key usage must be timeStamping only"
        )));
    }
    if is_ca(cert)? {
        return Err(Error::integrity(format!(
            "TSA certificate {subject} is a CA certificate, not an end entity"
        )));
    }
    let signs = KeyUsages::DigitalSignature | KeyUsages::NonRepudiation;
    if let Some((_, usage)) = key_usage(cert)?
        && !usage.0.contains(KeyUsages::DigitalSignature)
        && !usage.0.contains(KeyUsages::NonRepudiation)
    {
        return Err(Error::integrity(format!(
            "TSA certificate {subject}: key usage allows neither {signs:?}"
        )));
    }
    Ok(())
}

/// Follows issuers from `leaf` through `intermediates` to one of `roots`, checking each
/// signature, each issuer's CA flag and every certificate's validity at `at`.
pub(crate) fn check_chain(
    leaf: &Certificate,
    intermediates: &[&Certificate],
    roots: &[Certificate],
    at: DateTime<Utc>,
) -> Result<()> {
    check_valid_at(leaf, at)?;
    let mut current = leaf;
    for _ in 0..MAX_CHAIN {
        if roots.contains(current) {
            return Ok(());
        }
        if let Some(root) = roots.iter().find(|r| issued_by(current, r)) {
            return check_valid_at(root, at);
        }
        let next = intermediates
            .iter()
            .copied()
            .find(|c| *c != current && issued_by(current, c))
            .ok_or_else(|| no_issuer(current, intermediates, roots))?;
        if !is_ca(next)? {
            return Err(Error::integrity(format!(
                "certificate {} issued {} but is not a CA",
                next.tbs_certificate().subject(),
                current.tbs_certificate().subject()
            )));
        }
        check_valid_at(next, at)?;
        current = next;
    }
    Err(Error::integrity(format!(
        "TSA certificate chain is longer than {MAX_CHAIN} certificates"
    )))
}

/// Whether `issuer` names and signed `child`.
fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    child.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && signature_verifies(child, issuer).is_ok()
}

fn signature_verifies(child: &Certificate, issuer: &Certificate) -> Result<()> {
    let tbs = child
        .tbs_certificate()
        .to_der()
        .map_err(|e| malformed(child, "to-be-signed part", e))?;
    let signature = child
        .signature()
        .as_bytes()
        .ok_or_else(|| Error::integrity("certificate signature has unused bits"))?;
    verify_signature(
        issuer.tbs_certificate().subject_public_key_info(),
        child.signature_algorithm(),
        None,
        &tbs,
        signature,
    )
}

/// The most precise reason why `cert` has no issuer among the candidates.
fn no_issuer(cert: &Certificate, intermediates: &[&Certificate], roots: &[Certificate]) -> Error {
    let tbs = cert.tbs_certificate();
    let named = roots
        .iter()
        .chain(intermediates.iter().copied())
        .find(|c| tbs.issuer() == c.tbs_certificate().subject());
    match named.map(|issuer| signature_verifies(cert, issuer)) {
        Some(Err(e)) => Error::integrity(format!(
            "certificate {} names issuer {} but its signature does not verify: {}",
            tbs.subject(),
            tbs.issuer(),
            e.message()
        )),
        _ => Error::integrity(format!(
            "TSA certificate does not chain to a configured trust anchor: no issuer {} for {}",
            tbs.issuer(),
            tbs.subject()
        )),
    }
}

fn is_ca(cert: &Certificate) -> Result<bool> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .map_err(|e| malformed(cert, "basic constraints", e))?
        .is_some_and(|(_, bc)| bc.ca))
}

fn key_usage(cert: &Certificate) -> Result<Option<(bool, KeyUsage)>> {
    cert.tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| malformed(cert, "key usage", e))
}

fn malformed(cert: &Certificate, what: &str, e: der::Error) -> Error {
    Error::integrity(format!(
        "certificate {} has a malformed {what}: {e}",
        cert.tbs_certificate().subject()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The Sigstore test TSA's chain (leaf, intermediate, root), recorded in the shared vectors.
    fn test_tsa_chain() -> Vec<Certificate> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/rfc3161/rfc3161-client/test_tsa/ts_chain.pem");
        Certificate::load_pem_chain(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn only_an_end_entity_with_the_critical_time_stamping_usage_may_sign_tokens() {
        let chain = test_tsa_chain();
        check_tsa_certificate(&chain[0]).unwrap();
        for ca in &chain[1..] {
            let err = check_tsa_certificate(ca).unwrap_err();
            assert!(
                err.to_string().contains("extended key usage") || err.to_string().contains("CA"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_time_stamping_usage_not_marked_critical_is_refused() {
        use der::{Decode, Encode};
        let leaf = test_tsa_chain()[0].to_der().unwrap();
        // extnID 2.5.29.37 (extKeyUsage) followed by critical BOOLEAN TRUE: make it FALSE.
        let marker = [0x06, 0x03, 0x55, 0x1d, 0x25, 0x01, 0x01, 0xff];
        let at = leaf.windows(8).position(|w| w == marker).unwrap();
        let mut edited = leaf.clone();
        edited[at + 7] = 0x00;
        let cert = Certificate::from_ber(&edited).unwrap();
        let err = check_tsa_certificate(&cert).unwrap_err();
        assert!(err.to_string().contains("not marked critical"), "{err}");
    }

    #[test]
    fn the_chain_is_checked_at_the_given_time() {
        let chain = test_tsa_chain();
        let inside = DateTime::parse_from_rfc3339("2024-10-08T15:40:32Z")
            .unwrap()
            .to_utc();
        check_chain(&chain[0], &[&chain[1]], &chain[2..], inside).unwrap();
        let before = DateTime::parse_from_rfc3339("2001-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let err = check_chain(&chain[0], &[&chain[1]], &chain[2..], before).unwrap_err();
        assert!(
            err.to_string()
                .contains("is not valid at the token's genTime"),
            "{err}"
        );
    }
}
