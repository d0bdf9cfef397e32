//! Signing keys: PKCS#8 PEM files of ECDSA P-256 or Ed25519 keys, their SubjectPublicKeyInfo and
//! the Sigstore public-key hint that names them.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// The key types a [`SigstoreSigner`](crate::SigstoreSigner) signs with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 with SHA-256, ASN.1 DER signatures (Sigstore's default).
    EcdsaP256Sha256,
    /// Ed25519 (PureEdDSA over the whole message).
    Ed25519,
}

impl KeyAlgorithm {
    /// Stable name, as in the protobuf-specs `PublicKeyDetails` enum.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256Sha256 => "PKIX_ECDSA_P256_SHA_256",
            KeyAlgorithm::Ed25519 => "PKIX_ED25519",
        }
    }
}

/// A private key loaded from PKCS#8.
pub(crate) enum SigningKey {
    EcdsaP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// A fresh random key, and its PKCS#8 DER encoding.
    pub(crate) fn generate(algorithm: KeyAlgorithm) -> Result<(Self, Vec<u8>)> {
        let rng = SystemRandom::new();
        let failed = |_| Error::backend("the system random source failed to make a key");
        let pkcs8 = match algorithm {
            KeyAlgorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(failed)?
            }
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?,
        };
        let der = pkcs8.as_ref().to_vec();
        Ok((Self::from_pkcs8(&der)?, der))
    }

    /// Parses an unencrypted PKCS#8 private key of a supported type.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let p256 = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            Ok(key) => return Ok(SigningKey::EcdsaP256(key)),
            Err(e) => e,
        };
        let ed25519 = match Ed25519KeyPair::from_pkcs8(der) {
            Ok(key) => return Ok(SigningKey::Ed25519(key)),
            Err(e) => e,
        };
        Err(Error::invalid(format!(
            "the private key is neither an ECDSA P-256 nor an Ed25519 PKCS#8 key (as P-256: \
             {p256}; as Ed25519: {ed25519})"
        )))
    }

    pub(crate) fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SigningKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256Sha256,
            SigningKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    pub(crate) fn spki_der(&self) -> Result<Vec<u8>> {
        let der: std::result::Result<PublicKeyX509Der<'static>, _> = match self {
            SigningKey::EcdsaP256(key) => key.public_key().as_der(),
            SigningKey::Ed25519(key) => key.public_key().as_der(),
        };
        der.map(|d| d.as_ref().to_vec())
            .map_err(|_| Error::backend("cannot encode the public key as SubjectPublicKeyInfo"))
    }

    /// Signs `message`: ECDSA P-256 over SHA-256(message), DER encoded; Ed25519 over the message.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self {
            SigningKey::EcdsaP256(key) => key
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::backend("ECDSA P-256 signing failed")),
            SigningKey::Ed25519(key) => Ok(key.sign(message).as_ref().to_vec()),
        }
    }
}

/// The Sigstore public-key hint of a key: standard base64 of SHA-256 over its DER
/// SubjectPublicKeyInfo (what cosign and the conformance suite's managed-key bundles carry).
pub fn key_hint(spki_der: &[u8]) -> String {
    B64.encode(Sha256::digest(spki_der))
}

/// The one PEM block of `text`, which must be labelled `label`. Errors say what the text is
/// instead, and how to convert the common wrong forms.
pub(crate) fn pem_block(text: &str, label: &str) -> Result<Vec<u8>> {
    let pem = pem::parse(text).map_err(|e| Error::invalid(format!("not a PEM file ({e})")))?;
    let found = pem.tag();
    if found == label {
        return Ok(pem.into_contents());
    }
    let advice = match found {
        "EC PRIVATE KEY" => {
            ": it is a SEC1 EC key; convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY`"
        }
        "ENCRYPTED PRIVATE KEY" => {
            ": it is encrypted; decrypt it with `openssl pkcs8 -nocrypt -in KEY` or make a new key"
        }
        "PUBLIC KEY" if label == "PRIVATE KEY" => ": it is a public key, not a private key",
        "PRIVATE KEY" if label == "PUBLIC KEY" => ": it is a private key, not a public key",
        _ => "",
    };
    Err(Error::invalid(format!(
        "PEM block is `{found}`, expected `{label}`{advice}"
    )))
}

/// Reads a text file; the error names the file and what it was meant to hold.
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {what} {}", path.display())).with_source(e))
}

/// The public key file written beside a private key file: the same path with `.pub` appended
/// (`checkpoint.key` → `checkpoint.key.pub`).
pub fn public_key_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a new private key file (created exclusively, mode 0600 on Unix from the start) and
/// its public key beside it ([`public_key_path`]). Refuses to replace an existing key.
pub(crate) fn write_key_files(path: &Path, private_pem: &str, public_pem: &str) -> Result<()> {
    if !cortex_core::keyfile::create_secret(path, private_pem.as_bytes())? {
        return Err(Error::config(format!(
            "cannot create key file {}: it already exists (a key is never replaced: signatures \
             made with it need it)",
            path.display()
        )));
    }
    cortex_core::keyfile::replace(&public_key_path(path), public_pem.as_bytes(), false)
}
