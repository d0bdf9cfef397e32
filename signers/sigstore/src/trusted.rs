//! Verification of Sigstore bundles against a trusted root (keyless bundles with a Fulcio
//! certificate, and key-based bundles with a log entry), done by `sigstore-verify`.

use crate::key;
use crate::signer::parse_bundle;
use cortex_core::{Error, Result};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::DerPublicKey;
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult};
use std::path::Path;

/// Who must have signed a keyless bundle: the signing certificate's subject alternative name
/// (an email address or a URI, e.g. a CI workflow) and the OIDC issuer Fulcio recorded in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedIdentity {
    /// The exact SAN value.
    pub san: String,
    /// The exact OIDC issuer URL (certificate extension 1.3.6.1.4.1.57264.1.8 or .1.1).
    pub issuer: String,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The certificate's SAN, for keyless bundles.
    pub identity: Option<String>,
    /// The certificate's OIDC issuer, for keyless bundles.
    pub issuer: Option<String>,
    /// The Rekor v1 integrated time (Unix seconds), when a signed entry timestamp vouched for it.
    pub integrated_time: Option<i64>,
    /// Every verified signing time (Unix seconds): RFC 3161 timestamps and Rekor v1 times.
    pub verified_times: Vec<i64>,
    /// The certificate chained to a Fulcio CA of the root and its SCT verified.
    pub certificate_verified: bool,
    /// The transparency-log entries verified (inclusion proof, signed checkpoint, and SET).
    pub tlog_verified: bool,
}

impl VerifiedBundle {
    fn from_result(r: &VerificationResult) -> Self {
        VerifiedBundle {
            identity: r.identity().map(ToString::to_string),
            issuer: r.issuer().map(str::to_owned),
            integrated_time: r.integrated_time().map(|t| t.as_second()),
            verified_times: r
                .verified_timestamps()
                .iter()
                .map(|t| t.as_second())
                .collect(),
            certificate_verified: r.certificate_verified() && r.sct_verified(),
            tlog_verified: r.tlog_verified(),
        }
    }
}

/// Verifies Sigstore bundles (media types v0.1, v0.2, v0.3) against one trusted root
/// (`application/vnd.dev.sigstore.trustedroot+json`), fully offline.
///
/// A keyless bundle passes [`verify_keyless`](Self::verify_keyless) only if every check runs
/// and passes: the bundle's shape for its media type; every RFC 3161 timestamp (TSA chain to a
/// timestamp authority of the root, valid at its time, over the bundle's signature) and, for
/// Rekor v1 entries, the signed entry timestamp (SET) over the integrated time, which must not
/// lie in the future; the certificate chains to a Fulcio CA of the root valid at every verified
/// time, has the code-signing EKU, and its SCT verifies with a CT log key of the root; SAN and
/// issuer equal the expected ones; each log entry's RFC 6962 inclusion proof leads to the root
/// hash of its checkpoint, whose signed-note signature verifies with the log key the root names
/// for that log ID and time (Rekor v1 and v2); the entry was integrated while the certificate
/// was valid; the signature verifies over the message (or, for an in-toto DSSE envelope, over
/// its PAE, with the message's digest among the statement's subjects); the log entry's body
/// describes this very signature, key and digest.
pub struct BundleVerifier {
    verifier: sigstore_verify::Verifier,
}

impl std::fmt::Debug for BundleVerifier {
    // The trusted root is long; its keys are public anyway.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BundleVerifier")
    }
}

impl BundleVerifier {
    /// Builds a verifier from trusted root JSON; malformed, duplicate or unsupported trust
    /// material is an error naming it.
    pub fn from_trusted_root_json(json: &str) -> Result<Self> {
        let root = TrustedRoot::from_json(json).map_err(|e| {
            Error::invalid(format!("the Sigstore trusted root does not parse: {e}"))
        })?;
        let verifier = sigstore_verify::Verifier::new(&root)
            .map_err(|e| Error::invalid(format!("the Sigstore trusted root is unusable: {e}")))?;
        Ok(BundleVerifier { verifier })
    }

    /// Reads a trusted root JSON file; errors name the file.
    pub fn from_trusted_root_file(path: &Path) -> Result<Self> {
        let json = key::read_text(path, "Sigstore trusted root")?;
        Self::from_trusted_root_json(&json).map_err(|e| e.with_context("file", path.display()))
    }

    /// Verifies a keyless bundle over `message` signed by `expected` (see the type's doc for
    /// every check). Errors are integrity errors that say which check failed.
    pub fn verify_keyless(
        &self,
        message: &[u8],
        bundle_json: &[u8],
        expected: &ExpectedIdentity,
    ) -> Result<VerifiedBundle> {
        let bundle = parse_bundle(bundle_json)?;
        let policy = VerificationPolicy::new(expected.san.as_str(), expected.issuer.as_str());
        self.verifier
            .verify(message, &bundle, &policy)
            .map(|r| VerifiedBundle::from_result(&r))
            .map_err(rejected)
    }

    /// Verifies a key-based bundle over `message` with `public_key_pem` (SPKI PEM), including
    /// its transparency-log entries against the root (inclusion proof, checkpoint, SET) and any
    /// RFC 3161 timestamps. A bundle without a log entry is rejected here; for CORTEX's own
    /// offline bundles use [`SigstoreVerifier`](crate::SigstoreVerifier).
    pub fn verify_with_key(
        &self,
        message: &[u8],
        bundle_json: &[u8],
        public_key_pem: &str,
    ) -> Result<VerifiedBundle> {
        let key = DerPublicKey::new(key::pem_block(public_key_pem, "PUBLIC KEY")?);
        let bundle = parse_bundle(bundle_json)?;
        let policy = PublicKeyVerificationPolicy::new(key);
        self.verifier
            .verify(message, &bundle, &policy)
            .map(|r| VerifiedBundle::from_result(&r))
            .map_err(rejected)
    }
}

fn rejected(e: sigstore_verify::Error) -> Error {
    Error::integrity(format!("Sigstore bundle rejected: {e}"))
}
