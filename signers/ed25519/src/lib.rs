//! Ed25519 checkpoint signer for CORTEX: signs C2SP signed notes (algorithm 0x01) and reads and
//! writes the note key text forms, so keys interoperate with golang.org/x/mod/sumdb/note,
//! Tessera and every other C2SP tool:
//!
//! - verifier key: `<name>+<hex key ID>+<base64(0x01 ‖ 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ 32-byte seed)>`

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ledger::note::{ALG_ED25519, VerifierKey, key_id, validate_key_name};
use cortex_core::{Error, Result, SignatureScheme, Signer, Verifier};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Prefix of a signer (private) key.
pub const SKEY_PREFIX: &str = "PRIVATE+KEY+";

/// An Ed25519 note signer.
pub struct Ed25519Signer {
    name: String,
    key_id: [u8; 4],
    key: SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signer({}+{})", self.name, hex_id(self.key_id))
    }
}

fn hex_id(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

impl Ed25519Signer {
    /// A new random key named `name` (for a ledger key, the checkpoint origin).
    pub fn generate(name: &str) -> Result<Self> {
        validate_key_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::backend(format!("the system random source failed: {e}")))?;
        Ok(Self::from_seed(name, seed))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, ALG_ED25519, key.verifying_key().as_bytes());
        Ed25519Signer {
            name: name.to_owned(),
            key_id: id,
            key,
        }
    }

    /// Parses the signer key text form, checking the key ID.
    pub fn from_skey(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |why: &str| Error::invalid(format!("signer key is malformed: {why}"));
        let rest = text
            .strip_prefix(SKEY_PREFIX)
            .ok_or_else(|| bad("it must start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected PRIVATE+KEY+<name>+<key id>+<base64 key>"));
        };
        validate_key_name(name)?;
        let raw = B64.decode(b64).map_err(|_| bad("the key is not base64"))?;
        let (&alg, seed) = raw.split_first().ok_or_else(|| bad("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(bad(&format!("algorithm 0x{alg:02x} is not Ed25519 (0x01)")));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("the Ed25519 seed is not 32 bytes"))?;
        let signer = Self::from_seed(name, seed);
        if hex_id(signer.key_id) != id_hex.to_ascii_lowercase() {
            return Err(bad(&format!("key ID {id_hex} does not match the key")));
        }
        Ok(signer)
    }

    /// The signer key text form (keep it secret).
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{SKEY_PREFIX}{}+{}+{}",
            self.name,
            hex_id(self.key_id),
            B64.encode(raw)
        )
    }

    /// The verifier key text form (publish it).
    pub fn to_vkey(&self) -> String {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            algorithm: ALG_ED25519,
            key: self.key.verifying_key().as_bytes().to_vec(),
        }
        .to_text()
    }
}

/// The verifier key file written beside a signer key file: the same path, extension `vkey`.
pub fn vkey_path(skey: &Path) -> PathBuf {
    skey.with_extension("vkey")
}

impl Ed25519Signer {
    /// Reads a signer key file (`PRIVATE+KEY+…`); errors name the file.
    pub fn read_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read signing key {}", path.display())).with_source(e)
        })?;
        Self::from_skey(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Writes the key to `skey` (mode 0600 on Unix, its directory created) and the verifier
    /// key beside it ([`vkey_path`]); returns the verifier key's path. An existing `skey` is
    /// replaced only with `force`, since checkpoints signed by the old key then need its
    /// verifier key.
    pub fn write_files(&self, skey: &Path, force: bool) -> Result<PathBuf> {
        if skey.exists() && !force {
            return Err(Error::invalid(format!(
                "{} already exists; pass --force to replace it (checkpoints signed by the old \
                 key will then need its verifier key)",
                skey.display()
            )));
        }
        if let Some(dir) = skey.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::config(format!("cannot create {}", dir.display())).with_source(e)
            })?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let write = |mut f: std::fs::File| writeln!(f, "{}", self.to_skey());
        opts.open(skey).and_then(write).map_err(|e| {
            Error::config(format!("cannot write {}", skey.display())).with_source(e)
        })?;
        let vkey = vkey_path(skey);
        std::fs::write(&vkey, format!("{}\n", self.to_vkey())).map_err(|e| {
            Error::config(format!("cannot write {}", vkey.display())).with_source(e)
        })?;
        Ok(vkey)
    }
}

impl Signer for Ed25519Signer {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(Ed25519Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        })
    }
}

/// An Ed25519 note verifier.
#[derive(Debug, Clone)]
pub struct Ed25519Verifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl Ed25519Verifier {
    /// Parses a verifier key; it must be an Ed25519 (0x01) key.
    pub fn from_vkey(text: &str) -> Result<Self> {
        let k = VerifierKey::parse(text)?;
        if k.algorithm != ALG_ED25519 {
            return Err(Error::invalid(format!(
                "verifier key {} is algorithm 0x{:02x}, not an Ed25519 note key (0x01)",
                k.name, k.algorithm
            )));
        }
        let bytes: [u8; 32] = k.key.as_slice().try_into().expect("checked by parse");
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::invalid(format!(
                "verifier key {}: not a valid Ed25519 point",
                k.name
            ))
        })?;
        Ok(Ed25519Verifier {
            name: k.name,
            key_id: k.key_id,
            key,
        })
    }
}

impl Verifier for Ed25519Verifier {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_slice(signature)
            .map_err(|_| Error::integrity("signature is not 64 bytes"))?;
        // RFC 8032 verification, as Go's crypto/ed25519 (which C2SP tools use) does it.
        ed25519_dalek::Verifier::verify(&self.key, message, &sig)
            .map_err(|_| Error::integrity(format!("invalid Ed25519 signature by {}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_forms_round_trip() {
        let s = Ed25519Signer::generate("example.com/log").unwrap();
        let back = Ed25519Signer::from_skey(&s.to_skey()).unwrap();
        assert_eq!(back.to_vkey(), s.to_vkey());
        let v = Ed25519Verifier::from_vkey(&s.to_vkey()).unwrap();
        let sig = s.sign(b"hello\n").unwrap();
        v.verify(b"hello\n", &sig).unwrap();
        assert!(v.verify(b"hellp\n", &sig).is_err());
        assert!(!format!("{s:?}").contains(&s.to_skey()[20..]));
    }

    #[test]
    fn conformance() {
        cortex_core::testkit::signer_conformance(
            &Ed25519Signer::generate("example.com/conf").unwrap(),
        );
    }
}
