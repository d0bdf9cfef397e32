//! The verifier over responses recorded from real authorities (trailofbits/rfc3161-client
//! fixtures: timestamp.sigstage.dev, IdenTrust, a local Sigstore timestamp-authority). The
//! message is always the five bytes `hello`.

mod support;

use cortex_core::ErrorKind;
use cortex_rfc3161::{TrustStore, verify_response};
use std::path::Path;

const MESSAGE: &[u8] = b"hello";

/// The PEM blocks of a chain file, leaf first, root last.
fn pem_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(|b| format!("{}\n", b.trim()))
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Trust = the chain's root; the other certificates are untrusted intermediates.
fn chain_trust(chain: &Path) -> TrustStore {
    let blocks = pem_blocks(chain);
    let (root, rest) = blocks.split_last().unwrap();
    TrustStore::new(root.as_bytes())
        .unwrap()
        .with_intermediates(rest.concat().as_bytes())
        .unwrap()
}

/// Trust = the chain's root, with its leaf (and intermediates) pinned.
fn pinned_trust(chain: &Path) -> TrustStore {
    let blocks = pem_blocks(chain);
    let (root, rest) = blocks.split_last().unwrap();
    TrustStore::new(root.as_bytes())
        .unwrap()
        .with_pinned(rest.concat().as_bytes())
        .unwrap()
}

#[test]
fn sigstage_responses_verify_with_their_chain_for_each_hash() {
    let dir = support::vectors().join("sigstage");
    for (file, hash) in [
        ("response-sha256.tsr", "SHA-256"),
        ("response-sha384.tsr", "SHA-384"),
        ("response-sha512.tsr", "SHA-512"),
    ] {
        let response = read(&dir.join(file));
        for trust in [
            chain_trust(&dir.join("ts_chain.pem")),
            pinned_trust(&dir.join("ts_chain.pem")),
        ] {
            let (_, ts) = verify_response(&response, MESSAGE, &trust)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(ts.hash_algorithm, hash, "{file}");
        }
        let err = verify_response(&response, b"hellO", &chain_trust(&dir.join("ts_chain.pem")))
            .unwrap_err();
        assert!(
            err.to_string().contains("covers other data"),
            "{file}: {err}"
        );
    }
}

#[test]
fn a_sigstage_response_without_certificates_needs_the_pinned_tsa_certificate() {
    let dir = support::vectors().join("sigstage");
    let response = read(&dir.join("response-no-embedded-cert.tsr"));
    let err =
        verify_response(&response, MESSAGE, &chain_trust(&dir.join("ts_chain.pem"))).unwrap_err();
    assert!(err.to_string().contains("signer not found"), "{err}");
    verify_response(&response, MESSAGE, &pinned_trust(&dir.join("ts_chain.pem"))).unwrap();
}

#[test]
fn the_sigstage_response_with_an_invalid_signature_fails() {
    let dir = support::vectors().join("sigstage");
    let response = read(&dir.join("response-invalid-signature.tsr"));
    let err =
        verify_response(&response, MESSAGE, &chain_trust(&dir.join("ts_chain.pem"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("signature"), "{err}");
}

#[test]
fn identrust_verifies_at_its_gen_time_after_its_leaf_expired() {
    let dir = support::vectors().join("identrust");
    // ts_chain.pem is a single DER root despite its name.
    let trust = TrustStore::new(&read(&dir.join("ts_chain.pem"))).unwrap();
    let (_, ts) = verify_response(&read(&dir.join("issue-104.tsr")), MESSAGE, &trust).unwrap();
    assert_eq!(ts.hash_algorithm, "SHA-512");
    assert_eq!(ts.gen_time.format("%Y-%m-%d").to_string(), "2025-03-11");
}

#[test]
fn the_local_sigstore_tsa_response_verifies_through_its_intermediate() {
    let dir = support::vectors().join("test_tsa");
    let response = read(&dir.join("response.tsr"));
    let (_, ts) =
        verify_response(&response, MESSAGE, &chain_trust(&dir.join("ts_chain.pem"))).unwrap();
    assert!(ts.signer.contains("Test TSA Timestamping"), "{}", ts.signer);
    verify_response(&response, MESSAGE, &pinned_trust(&dir.join("ts_chain.pem"))).unwrap();
    // Without the intermediate there is no path to the root.
    let blocks = pem_blocks(&dir.join("ts_chain.pem"));
    let root_only = TrustStore::new(blocks.last().unwrap().as_bytes()).unwrap();
    let err = verify_response(&response, MESSAGE, &root_only).unwrap_err();
    assert!(err.to_string().contains("does not chain"), "{err}");
}

#[test]
fn injected_certificates_are_rejected_when_the_signer_is_pinned() {
    let dir = support::vectors().join("test_tsa");
    let response = read(&dir.join("response-injected-certs.tsr"));
    let err =
        verify_response(&response, MESSAGE, &pinned_trust(&dir.join("ts_chain.pem"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(
        err.to_string().contains("not a pinned TSA certificate"),
        "{err}"
    );
    // Unpinned, the spoofed certificates are never mistaken for the signer: the one the
    // SignerInfo names is found, and it is the genuine TSA.
    let (_, ts) =
        verify_response(&response, MESSAGE, &chain_trust(&dir.join("ts_chain.pem"))).unwrap();
    assert_eq!(ts.signer, "CN=Test TSA Timestamping,O=local");
}
