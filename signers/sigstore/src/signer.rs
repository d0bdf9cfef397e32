//! Key-based Sigstore bundles: [`SigstoreSigner`] writes them over checkpoint bodies, and
//! [`SigstoreVerifier`] checks them offline with the signer's public key.

use crate::key::{self, KeyAlgorithm, SigningKey};
use cortex_core::{Error, Result, SignatureScheme, Signer, Verifier};
use sha2::{Digest as _, Sha256};
use sigstore_verify::bundle::{BundleV03, VerificationMaterialV03};
use sigstore_verify::crypto::{self as sigcrypto, SigningScheme};
use sigstore_verify::types::bundle::{
    MessageDigest, MessageSignature, SignatureContent, VerificationMaterialContent,
};
use sigstore_verify::types::{Bundle, DerPublicKey, HashAlgorithm, MediaType, SignatureBytes};
use std::path::Path;

/// Signs checkpoint bodies into Sigstore bundles (v0.3) with a long-lived key.
///
/// The bundle's `messageSignature` is over the exact checkpoint body bytes, its
/// `messageDigest` is their SHA-256, and its verification material is the public-key hint
/// ([`key_hint`](crate::key_hint)). It carries no transparency-log entry and no timestamp: such
/// a bundle proves who signed (whoever holds the key), not when, and no log saw it. Verify it
/// with [`SigstoreVerifier`] and the public key.
pub struct SigstoreSigner {
    key: SigningKey,
    public_key: DerPublicKey,
    hint: String,
}

impl std::fmt::Debug for SigstoreSigner {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigstoreSigner({} {})",
            self.key.algorithm().name(),
            self.hint
        )
    }
}

impl SigstoreSigner {
    /// A new random key of `algorithm`, held in memory only.
    pub fn random(algorithm: KeyAlgorithm) -> Result<Self> {
        SigningKey::generate(algorithm).and_then(|(key, _)| Self::from_key(key))
    }

    /// Makes a new key of `algorithm` and writes it to `path` as a PKCS#8 PEM file
    /// (`-----BEGIN PRIVATE KEY-----`, mode 0600, never replacing an existing file) and its
    /// public key beside it ([`public_key_path`](crate::public_key_path), SPKI PEM).
    pub fn generate(path: &Path, algorithm: KeyAlgorithm) -> Result<Self> {
        let (key, pkcs8) = SigningKey::generate(algorithm)?;
        let signer = Self::from_key(key)?;
        let private_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8));
        key::write_key_files(path, &private_pem, &signer.public_key_pem())?;
        Ok(signer)
    }

    /// Reads an unencrypted PKCS#8 PEM private key file (ECDSA P-256 or Ed25519, e.g. from
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`); errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = key::read_text(path, "Sigstore signing key")?;
        Self::from_pem(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Parses an unencrypted PKCS#8 PEM private key (ECDSA P-256 or Ed25519).
    pub fn from_pem(text: &str) -> Result<Self> {
        let der = key::pem_block(text, "PRIVATE KEY")?;
        Self::from_key(SigningKey::from_pkcs8(&der)?)
    }

    fn from_key(key: SigningKey) -> Result<Self> {
        let spki = key.spki_der()?;
        let hint = key::key_hint(&spki);
        Ok(SigstoreSigner {
            key,
            public_key: DerPublicKey::new(spki),
            hint,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> String {
        self.public_key.to_pem()
    }

    /// The verifier for this signer's bundles (same as [`Signer::verifier`], concretely typed).
    pub fn sigstore_verifier(&self) -> SigstoreVerifier {
        SigstoreVerifier {
            public_key: self.public_key.clone(),
            scheme: match self.key.algorithm() {
                KeyAlgorithm::EcdsaP256Sha256 => SigningScheme::EcdsaP256Sha256,
                KeyAlgorithm::Ed25519 => SigningScheme::Ed25519,
            },
            hint: self.hint.clone(),
        }
    }

    /// The bundle for `message`, as a typed value.
    fn bundle(&self, message: &[u8]) -> Result<Bundle> {
        let signature = SignatureBytes::new(self.key.sign(message)?);
        let digest = MessageDigest::new(
            HashAlgorithm::Sha2256,
            Sha256::digest(message).to_vec().into(),
        );
        let content = SignatureContent::MessageSignature(
            MessageSignature::new(signature).with_message_digest(digest),
        );
        let material = VerificationMaterialV03::PublicKey {
            hint: self.hint.clone(),
        };
        Ok(BundleV03::new(material, content).into_bundle())
    }
}

impl Signer for SigstoreSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::SigstoreBundle
    }
    /// The public-key hint: base64 SHA-256 of the SPKI DER.
    fn key_name(&self) -> &str {
        &self.hint
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        None
    }
    /// A Sigstore bundle v0.3 JSON document (compact, UTF-8) over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let json = self
            .bundle(message)?
            .to_json()
            .map_err(|e| Error::backend(format!("cannot encode the Sigstore bundle: {e}")))?;
        Ok(json.into_bytes())
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(self.sigstore_verifier())
    }
}

/// Verifies key-based Sigstore bundles over checkpoint bodies offline, with one public key.
///
/// Checks, in order: the bytes are a Sigstore bundle JSON of media type v0.3; its verification
/// material is a public-key hint equal to this key's; it holds a `messageSignature` (not a DSSE
/// envelope) whose `messageDigest` is SHA-256 and equals SHA-256 of the message; the signature
/// verifies over the message with this key. Transparency-log entries and RFC 3161 timestamps a
/// bundle may also carry are not checked here, since that needs a trusted root: use
/// [`BundleVerifier::verify_with_key`](crate::BundleVerifier::verify_with_key) for those.
#[derive(Debug, Clone)]
pub struct SigstoreVerifier {
    public_key: DerPublicKey,
    scheme: SigningScheme,
    hint: String,
}

impl SigstoreVerifier {
    /// Reads an SPKI PEM public key file (`-----BEGIN PUBLIC KEY-----`); errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = key::read_text(path, "Sigstore public key")?;
        Self::from_pem(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Parses an SPKI PEM public key of ECDSA P-256 or Ed25519.
    pub fn from_pem(text: &str) -> Result<Self> {
        Self::from_spki(DerPublicKey::new(key::pem_block(text, "PUBLIC KEY")?))
    }

    fn from_spki(public_key: DerPublicKey) -> Result<Self> {
        let scheme = match sigcrypto::KeyAlgorithm::from_spki(&public_key) {
            Ok(sigcrypto::KeyAlgorithm::EcdsaP256) => SigningScheme::EcdsaP256Sha256,
            Ok(sigcrypto::KeyAlgorithm::Ed25519) => SigningScheme::Ed25519,
            Ok(other) => {
                return Err(Error::invalid(format!(
                    "public key type {other:?} is not supported: CORTEX Sigstore keys are ECDSA \
                     P-256 or Ed25519"
                )));
            }
            Err(e) => return Err(Error::invalid(format!("not a public key ({e})"))),
        };
        let hint = key::key_hint(public_key.as_bytes());
        Ok(SigstoreVerifier {
            public_key,
            scheme,
            hint,
        })
    }

    fn check_bundle(&self, message: &[u8], bundle: &Bundle) -> Result<()> {
        if bundle.media_type() != MediaType::Bundle0_3 {
            return Err(bad(format!(
                "its media type is {}, CORTEX key bundles are {}",
                bundle.media_type().as_str(),
                MediaType::Bundle0_3.as_str()
            )));
        }
        match &bundle.verification_material.content {
            VerificationMaterialContent::PublicKey(id) if id.hint == self.hint => {}
            VerificationMaterialContent::PublicKey(id) => {
                return Err(bad(format!(
                    "it names key {:?}, this verifier's key is {:?}",
                    id.hint, self.hint
                )));
            }
            _ => {
                return Err(bad(
                    "it carries a certificate, not a public-key hint: verify keyless bundles \
                     with BundleVerifier::verify_keyless"
                        .into(),
                ));
            }
        }
        let SignatureContent::MessageSignature(signed) = &bundle.content else {
            return Err(bad(
                "it holds a DSSE envelope, not a messageSignature".into()
            ));
        };
        let digest = signed
            .message_digest
            .as_ref()
            .ok_or_else(|| bad("its messageSignature has no messageDigest".into()))?;
        if digest.algorithm != HashAlgorithm::Sha2256 {
            return Err(bad(format!(
                "its messageDigest is {:?}, not SHA2_256",
                digest.algorithm
            )));
        }
        if digest.digest.as_bytes() != Sha256::digest(message).as_slice() {
            return Err(bad(
                "its messageDigest is not the SHA-256 of the checkpoint body".into(),
            ));
        }
        sigcrypto::verify_signature(&self.public_key, message, &signed.signature, self.scheme)
            .map_err(|e| {
                bad(format!(
                    "its signature does not verify over the checkpoint body with key {} ({e})",
                    self.hint
                ))
            })
    }
}

/// An integrity error about a Sigstore bundle.
fn bad(why: String) -> Error {
    Error::integrity(format!("Sigstore bundle rejected: {why}"))
}

/// Parses bundle JSON bytes; errors are integrity errors naming the problem.
pub(crate) fn parse_bundle(bytes: &[u8]) -> Result<Bundle> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".into()))?;
    Bundle::from_json(text).map_err(|e| bad(format!("it is not a Sigstore bundle JSON ({e})")))
}

impl Verifier for SigstoreVerifier {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::SigstoreBundle
    }
    fn key_name(&self) -> &str {
        &self.hint
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        None
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        self.check_bundle(message, &parse_bundle(signature)?)
    }
}
