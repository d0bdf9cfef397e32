//! Witness keys and `cosignature/v1` lines (c2sp.org/tlog-cosignature, Ed25519 type).
//!
//! A cosignature is a signed-note signature line `— <witness name> base64(key ID ‖ u64be
//! timestamp ‖ Ed25519 signature)` over `cosignature/v1\ntime <timestamp>\n<checkpoint text>`.
//! The key ID is `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[0..4]`.
//!
//! Key text forms (as other witnesses write them):
//! - verifier key `<name>+<hex key ID>+base64(0x04 ‖ 32-byte public key)`; a plain Ed25519 note
//!   vkey (algorithm 0x01, as transparency-dev's omniwitness publishes) is accepted too, its
//!   cosignature key ID then derived with 0x04;
//! - signer key `PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 ‖ 32-byte seed)`; an algorithm 0x01
//!   signer key is accepted the same way.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ledger::note::{
    ALG_COSIGNATURE_V1, ALG_ED25519, NoteSignature, SignedNote, VerifierKey,
    cosignature_v1_message, key_id, validate_key_name,
};
use cortex_core::{Error, Result, keyfile};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// Prefix of a signer (private) key.
pub const SKEY_PREFIX: &str = "PRIVATE+KEY+";
/// Bytes after the key ID in a cosignature: the u64 timestamp and the Ed25519 signature.
pub const COSIGNATURE_LEN: usize = 8 + 64;

/// One `cosignature/v1` signature: who, when, and the Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's key name.
    pub name: String,
    /// The witness's cosignature key ID (algorithm 0x04).
    pub key_id: [u8; 4],
    /// POSIX seconds when the witness signed.
    pub timestamp: u64,
    /// The Ed25519 signature over [`cosignature_v1_message`].
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Reads a note signature line's fields as a cosignature (length and timestamp checked,
    /// signature not verified).
    pub fn from_note_signature(sig: &NoteSignature) -> Result<Cosignature> {
        if sig.signature.len() != COSIGNATURE_LEN {
            return Err(Error::integrity(format!(
                "the cosignature by {} is {} bytes after its key ID, not {COSIGNATURE_LEN} \
                 (8-byte timestamp and 64-byte Ed25519 signature)",
                sig.name,
                sig.signature.len()
            )));
        }
        let timestamp = u64::from_be_bytes(sig.signature[..8].try_into().expect("8 bytes"));
        if timestamp > i64::MAX as u64 {
            return Err(Error::integrity(format!(
                "the cosignature by {} has timestamp {timestamp}, above 2^63-1",
                sig.name
            )));
        }
        Ok(Cosignature {
            name: sig.name.clone(),
            key_id: sig.key_id,
            timestamp,
            signature: sig.signature[8..].try_into().expect("64 bytes"),
        })
    }

    /// As a note signature line's fields.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut signature = self.timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&self.signature);
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature,
        }
    }

    /// The signature line, with its trailing newline.
    pub fn to_line(&self) -> String {
        self.to_note_signature().to_line()
    }
}

/// A witness's signing key.
pub struct WitnessSigner {
    name: String,
    key_id: [u8; 4],
    key: SigningKey,
}

impl std::fmt::Debug for WitnessSigner {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WitnessSigner({}+{})",
            self.name,
            hex::encode(self.key_id)
        )
    }
}

impl WitnessSigner {
    /// A new random key named `name` (a schema-less URL such as `example.com/witness`).
    pub fn generate(name: &str) -> Result<WitnessSigner> {
        validate_key_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::backend(format!("the system random source failed: {e}")))?;
        Ok(Self::from_seed(name, seed))
    }

    /// The key with this 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> WitnessSigner {
        let key = SigningKey::from_bytes(&seed);
        WitnessSigner {
            key_id: key_id(name, ALG_COSIGNATURE_V1, key.verifying_key().as_bytes()),
            name: name.to_owned(),
            key,
        }
    }

    /// Parses a signer key (algorithm 0x04, or a plain Ed25519 0x01 note key), checking its ID.
    pub fn from_skey(text: &str) -> Result<WitnessSigner> {
        let bad = |why: &str| Error::invalid(format!("witness signer key is malformed: {why}"));
        let rest = text
            .trim()
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
        if alg != ALG_COSIGNATURE_V1 && alg != ALG_ED25519 {
            return Err(bad(&format!(
                "algorithm 0x{alg:02x} is neither cosignature/v1 (0x04) nor Ed25519 (0x01)"
            )));
        }
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("the Ed25519 seed is not 32 bytes"))?;
        let signer = Self::from_seed(name, seed);
        let public = signer.key.verifying_key();
        if hex::encode(key_id(name, alg, public.as_bytes())) != id_hex.to_ascii_lowercase() {
            return Err(bad(&format!("key ID {id_hex} does not match the key")));
        }
        Ok(signer)
    }

    /// The signer key text form, algorithm 0x04 (keep it secret).
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_COSIGNATURE_V1];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{SKEY_PREFIX}{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
    }

    /// The verifier key text form, algorithm 0x04 (give it to the logs it witnesses).
    pub fn to_vkey(&self) -> String {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            algorithm: ALG_COSIGNATURE_V1,
            key: self.key.verifying_key().as_bytes().to_vec(),
        }
        .to_text()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Cosigns a note's text (a checkpoint body with its final newline) at `timestamp`.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<Cosignature> {
        if timestamp > i64::MAX as u64 {
            return Err(Error::invalid(format!(
                "cosignature timestamp {timestamp} is above 2^63-1"
            )));
        }
        let message = cosignature_v1_message(timestamp, text);
        Ok(Cosignature {
            name: self.name.clone(),
            key_id: self.key_id,
            timestamp,
            signature: self.key.sign(&message).to_bytes(),
        })
    }
}

/// The verifier key file written beside a signer key file: the same path, extension `vkey`.
pub fn vkey_path(skey: &Path) -> PathBuf {
    skey.with_extension("vkey")
}

impl WitnessSigner {
    /// Reads a signer key file; errors name the file.
    pub fn read_file(path: &Path) -> Result<WitnessSigner> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read witness key {}", path.display())).with_source(e)
        })?;
        Self::from_skey(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Creates `skey` (mode 0600 on Unix, its directory created with mode 0700) and the
    /// verifier key beside it, and returns the verifier key's path; `None` (nothing written)
    /// when `skey` already exists. The key is written to a private temporary file that is then
    /// hard-linked to `skey`, which fails if `skey` exists: of several processes doing this at
    /// once exactly one creates it, and no reader sees half a key.
    pub fn create_files(&self, skey: &Path) -> Result<Option<PathBuf>> {
        if !keyfile::create_secret(skey, format!("{}\n", self.to_skey()).as_bytes())? {
            return Ok(None);
        }
        let vkey = vkey_path(skey);
        keyfile::replace(&vkey, format!("{}\n", self.to_vkey()).as_bytes(), false)?;
        Ok(Some(vkey))
    }
}

/// Verifies one witness's cosignatures.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a witness verifier key: algorithm 0x04, or a plain Ed25519 (0x01) note key whose
    /// cosignature key ID is then derived with 0x04.
    pub fn from_vkey(text: &str) -> Result<CosignatureVerifier> {
        let k = VerifierKey::parse(text)?;
        if k.algorithm != ALG_COSIGNATURE_V1 && k.algorithm != ALG_ED25519 {
            return Err(Error::invalid(format!(
                "witness key {} is algorithm 0x{:02x}, not cosignature/v1 (0x04) or Ed25519 (0x01)",
                k.name, k.algorithm
            )));
        }
        let bytes: [u8; 32] = k.key.as_slice().try_into().expect("checked by parse");
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::invalid(format!("witness key {}: not a valid Ed25519 point", k.name))
        })?;
        Ok(CosignatureVerifier {
            key_id: key_id(&k.name, ALG_COSIGNATURE_V1, &bytes),
            name: k.name,
            key,
        })
    }

    /// The witness's key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature key ID (algorithm 0x04).
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The verifier key text form, algorithm 0x04.
    pub fn to_vkey(&self) -> String {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            algorithm: ALG_COSIGNATURE_V1,
            key: self.key.as_bytes().to_vec(),
        }
        .to_text()
    }

    /// True if `sig` claims to be by this witness (same name and key ID).
    pub fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
    }

    /// Verifies one cosignature over `text` (the cosigned note's text, with its final newline).
    pub fn verify(&self, text: &str, sig: &NoteSignature) -> Result<Cosignature> {
        if !self.matches(sig) {
            return Err(Error::integrity(format!(
                "the signature is by {}+{}, not by witness {}+{}",
                sig.name,
                hex::encode(sig.key_id),
                self.name,
                hex::encode(self.key_id)
            )));
        }
        let cosig = Cosignature::from_note_signature(sig)?;
        let message = cosignature_v1_message(cosig.timestamp, text);
        let signature = ed25519_dalek::Signature::from_bytes(&cosig.signature);
        ed25519_dalek::Verifier::verify(&self.key, &message, &signature).map_err(|_| {
            Error::integrity(format!(
                "invalid cosignature by witness {} (time {})",
                self.name, cosig.timestamp
            ))
        })?;
        Ok(cosig)
    }

    /// Finds and verifies this witness's cosignature among signature `lines` (each
    /// `— name base64\n`, as a witness returns them) for the note text `text`. Lines by other
    /// keys are ignored; a line by this key that does not verify is an error, as is none.
    pub fn verify_lines(&self, text: &str, lines: &str) -> Result<Cosignature> {
        let joined = SignedNote::parse(format!("{text}\n{lines}").as_bytes())
            .map_err(|e| Error::integrity(format!("the cosignature lines are malformed: {e}")))?;
        if joined.text != text {
            return Err(Error::integrity(
                "the cosignature lines are malformed: they contain a blank line",
            ));
        }
        let mut found = None;
        for sig in joined.signatures.iter().filter(|s| self.matches(s)) {
            found = Some(self.verify(text, sig)?);
        }
        found.ok_or_else(|| {
            Error::integrity(format!(
                "no cosignature by witness {}+{} among the lines",
                self.name,
                hex::encode(self.key_id)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "example.com/log\n3\nRcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=\n";

    #[test]
    fn cosignatures_verify_and_bind_text_time_and_key() {
        let w = WitnessSigner::generate("example.com/witness").unwrap();
        let v = CosignatureVerifier::from_vkey(&w.to_vkey()).unwrap();
        let line = w.cosign(TEXT, 1_700_000_000).unwrap().to_line();
        let got = v.verify_lines(TEXT, &line).unwrap();
        assert_eq!(got.timestamp, 1_700_000_000);
        // Another text, another witness, a changed timestamp: refused.
        assert!(v.verify_lines("example.com/log\n4\nx\n", &line).is_err());
        let other = WitnessSigner::generate("example.com/witness").unwrap();
        let e = other.verifier().verify_lines(TEXT, &line).unwrap_err();
        assert!(e.to_string().contains("no cosignature by witness"), "{e}");
        let mut moved = got.clone();
        moved.timestamp += 1;
        assert!(v.verify(TEXT, &moved.to_note_signature()).is_err());
    }

    #[test]
    fn key_forms_round_trip_and_accept_the_ed25519_form() {
        let w = WitnessSigner::generate("example.com/witness").unwrap();
        let back = WitnessSigner::from_skey(&w.to_skey()).unwrap();
        assert_eq!(back.to_vkey(), w.to_vkey());
        assert!(w.to_vkey().starts_with("example.com/witness+"));
        // The omniwitness test key from rekor-tiles: a 0x01 skey and vkey pair.
        let s = WitnessSigner::from_skey(
            "PRIVATE+KEY+rekor-witness-test+a478f5cd+AT5yCADn4hz2PNT790E8q7VkAXuBdy+HFv9tP0qvKyFV",
        )
        .unwrap();
        let v = CosignatureVerifier::from_vkey(
            "rekor-witness-test+a478f5cd+AUtKAvrTeY7srtAMfP5JCUOkZoU+A7F5VA094y5LGr89",
        )
        .unwrap();
        assert_eq!(s.verifier().to_vkey(), v.to_vkey());
        assert_eq!(hex::encode(v.key_id()), "288fb80f");
        let line = s.cosign(TEXT, 1).unwrap().to_line();
        v.verify_lines(TEXT, &line).unwrap();
    }
}
