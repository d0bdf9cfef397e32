//! The key that signs the `hashedrekord` entries CORTEX submits: ECDSA P-256 (the default, and
//! what [`EntrySigningKey::generate`] makes) or Ed25519, used as Ed25519ph because a hashedrekord
//! carries only the artifact's digest. Both are read from PKCS#8 PEM files.

use crate::body::{ECDSA_P256_SHA_256, ED25519_PH};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::{Error, Result};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::path::Path;

/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410): the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

enum KeyPair {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A hashedrekord signing key.
pub struct EntrySigningKey {
    key: KeyPair,
}

impl std::fmt::Debug for EntrySigningKey {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntrySigningKey({})", self.key_details())
    }
}

impl EntrySigningKey {
    /// A new random ECDSA P-256 key.
    pub fn generate() -> Result<EntrySigningKey> {
        loop {
            let mut scalar = [0u8; 32];
            getrandom::fill(&mut scalar)
                .map_err(|e| Error::backend(format!("the system random source failed: {e}")))?;
            // A 32-byte string is a valid scalar unless it is 0 or ≥ n (probability ~2^-32).
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&scalar) {
                return Ok(EntrySigningKey {
                    key: KeyPair::P256(key),
                });
            }
        }
    }

    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`): ECDSA P-256 or Ed25519.
    pub fn from_pkcs8_pem(pem: &str) -> Result<EntrySigningKey> {
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(EntrySigningKey {
                key: KeyPair::P256(key),
            });
        }
        let der = pem_body(pem)?;
        let seed = der
            .strip_prefix(&ED25519_PKCS8_PREFIX[..])
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| {
                Error::invalid(
                    "the private key is neither an ECDSA P-256 nor an Ed25519 PKCS#8 key",
                )
            })?;
        Ok(EntrySigningKey {
            key: KeyPair::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
        })
    }

    /// Reads a PKCS#8 PEM key file; errors name the file.
    pub fn read_file(path: &Path) -> Result<EntrySigningKey> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read Rekor signing key {}", path.display()))
                .with_source(e)
        })?;
        Self::from_pkcs8_pem(&pem).map_err(|e| e.with_context("file", path.display()))
    }

    /// The key as PKCS#8 PEM (keep it secret).
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        match &self.key {
            KeyPair::P256(k) => k
                .to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.as_str().to_owned())
                .map_err(|e| Error::backend(format!("cannot encode the P-256 key: {e}"))),
            KeyPair::Ed25519(k) => {
                let mut der = ED25519_PKCS8_PREFIX.to_vec();
                der.extend_from_slice(k.as_bytes());
                Ok(format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    B64.encode(der)
                ))
            }
        }
    }

    /// Writes the key as PKCS#8 PEM to a new file (mode 0600 on Unix); an existing file is an
    /// error, never overwritten.
    pub fn write_new_file(&self, path: &Path) -> Result<()> {
        if cortex_core::keyfile::create_secret(path, self.to_pkcs8_pem()?.as_bytes())? {
            Ok(())
        } else {
            Err(Error::config(format!(
                "cannot create Rekor signing key {}: it already exists",
                path.display()
            )))
        }
    }

    /// The public key as DER SubjectPublicKeyInfo (what the entry records as `publicKey.rawBytes`).
    pub fn public_key_der(&self) -> Vec<u8> {
        match &self.key {
            KeyPair::P256(k) => k
                .verifying_key()
                .to_public_key_der()
                .expect("a P-256 point always encodes")
                .into_vec(),
            KeyPair::Ed25519(k) => {
                let mut der = crate::checkpoint::ED25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(k.verifying_key().as_bytes());
                der
            }
        }
    }

    /// The `keyDetails` of its signatures: `PKIX_ECDSA_P256_SHA_256` or `PKIX_ED25519_PH`.
    pub fn key_details(&self) -> &'static str {
        match self.key {
            KeyPair::P256(_) => ECDSA_P256_SHA_256,
            KeyPair::Ed25519(_) => ED25519_PH,
        }
    }

    /// The body of `POST /api/v2/log/entries` logging `artifact` as a hashedrekord 0.0.2 entry:
    /// `{"hashedRekordRequestV002": {"digest", "signature": {"content", "verifier":
    /// {"publicKey": {"rawBytes"}, "keyDetails"}}}}`, all bytes base64.
    pub fn hashedrekord_request(&self, artifact: &[u8]) -> Result<Value> {
        let (digest, signature) = self.sign(artifact)?;
        Ok(json!({
            "hashedRekordRequestV002": {
                "digest": B64.encode(digest),
                "signature": {
                    "content": B64.encode(signature),
                    "verifier": {
                        "publicKey": { "rawBytes": B64.encode(self.public_key_der()) },
                        "keyDetails": self.key_details(),
                    }
                }
            }
        }))
    }

    /// The artifact's digest (SHA-256 for P-256, SHA-512 for Ed25519ph) and its signature.
    fn sign(&self, artifact: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        match &self.key {
            KeyPair::P256(k) => {
                let digest = sha2::Sha256::digest(artifact);
                let sig: p256::ecdsa::DerSignature = k
                    .sign_prehash(&digest)
                    .map_err(|e| Error::backend(format!("ECDSA signing failed: {e}")))?;
                Ok((digest.to_vec(), sig.as_bytes().to_vec()))
            }
            KeyPair::Ed25519(k) => {
                let digest = sha2::Sha512::digest(artifact);
                let sig = k
                    .sign_prehashed(sha2::Sha512::new().chain_update(artifact), None)
                    .map_err(|e| Error::backend(format!("Ed25519ph signing failed: {e}")))?;
                Ok((digest.to_vec(), sig.to_bytes().to_vec()))
            }
        }
    }
}

/// The DER bytes of a single-block PEM file.
fn pem_body(pem: &str) -> Result<Vec<u8>> {
    let b64: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(Error::invalid(
            "the Rekor signing key is not a PKCS#8 PEM file (-----BEGIN PRIVATE KEY-----); \
             convert an EC PRIVATE KEY with `openssl pkcs8 -topk8 -nocrypt`",
        ));
    }
    B64.decode(b64)
        .map_err(|_| Error::invalid("the PEM private key is not valid base64"))
}
