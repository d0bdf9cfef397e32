//! Sigstore checkpoint signatures for CORTEX.
//!
//! - [`SigstoreSigner`] signs checkpoint bodies with a long-lived ECDSA P-256 or Ed25519 key
//!   (PKCS#8 PEM) into Sigstore bundles (v0.3, `messageSignature`, public-key hint), offline;
//!   [`SigstoreVerifier`] checks them with the public key. Both implement core's `Signer` and
//!   `Verifier` (scheme `sigstore-bundle`).
//! - [`BundleVerifier`] verifies any Sigstore bundle (keyless with a Fulcio certificate, or
//!   key-based with a log entry) against a trusted root JSON, offline: certificate chain, SCT,
//!   identity, transparency-log inclusion, checkpoint, SET and RFC 3161 timestamps. The checks
//!   are `sigstore-verify`'s (sigstore/sigstore-rust), which this crate does not re-implement.
//! - [`KeylessSigner`] / [`sign_keyless`] sign with an OIDC token through Fulcio and Rekor.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod key;
mod keyless;
mod signer;
mod trusted;

pub use key::{KeyAlgorithm, key_hint, public_key_path};
pub use keyless::{DEFAULT_TIMEOUT, KeylessSigner, sign_keyless};
pub use signer::{SigstoreSigner, SigstoreVerifier};
pub use trusted::{BundleVerifier, ExpectedIdentity, VerifiedBundle};
