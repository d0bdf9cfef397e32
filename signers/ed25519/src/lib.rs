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
use cortex_core::{Error, Result, SignatureScheme, Signer, Verifier, keyfile};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    ///
    /// A key file that does not parse and does not end its line yet may still be being
    /// written by another process (only on a file system without hard links, see
    /// [`create_files`](Self::create_files)): it is read again for up to a second before the
    /// error is returned.
    pub fn read_file(path: &Path) -> Result<Self> {
        let deadline = Instant::now() + INCOMPLETE_KEY_WAIT;
        loop {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::config(format!("cannot read signing key {}", path.display())).with_source(e)
            })?;
            match Self::from_skey(&text) {
                Ok(signer) => return Ok(signer),
                Err(_) if !text.ends_with('\n') && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.with_context("file", path.display())),
            }
        }
    }

    /// Writes the key to `skey` (mode 0600 on Unix, its directory created with mode 0700) and
    /// the verifier key beside it ([`vkey_path`]); returns the verifier key's path. An existing
    /// `skey` is replaced only with `force`, since checkpoints signed by the old key then need
    /// its verifier key. Without `force` this is [`create_files`](Self::create_files).
    pub fn write_files(&self, skey: &Path, force: bool) -> Result<PathBuf> {
        let exists = || {
            Error::invalid(format!(
                "{} already exists; pass --force to replace it (checkpoints signed by the old \
                 key will then need its verifier key)",
                skey.display()
            ))
        };
        if !force {
            return self.create_files(skey)?.ok_or_else(exists);
        }
        keyfile::replace(skey, self.skey_line().as_bytes(), true)?;
        self.write_vkey(skey)
    }

    /// Creates the key files if `skey` does not exist yet, and returns the verifier key's path;
    /// `None` (and nothing written) when `skey` already exists, as when another process made
    /// the key first: that key then stands, and the caller reads it.
    ///
    /// Safe against any number of processes doing the same at once: exactly one of them
    /// creates `skey`, and no reader ever sees a half-written key. The key is written and
    /// synced to a private temporary file in the same directory (created exclusively, mode
    /// 0600 on Unix), which is then hard-linked to `skey`, an operation that fails when `skey`
    /// exists. Only that winner then writes the verifier key (also through a temporary file,
    /// renamed into place). On a file system without hard links, `skey` is created with
    /// `create_new` and written in place instead; [`read_file`](Self::read_file) waits for
    /// such a file to be complete.
    pub fn create_files(&self, skey: &Path) -> Result<Option<PathBuf>> {
        if !keyfile::create_secret(skey, self.skey_line().as_bytes())? {
            return Ok(None);
        }
        self.write_vkey(skey).map(Some)
    }

    fn skey_line(&self) -> String {
        format!("{}\n", self.to_skey())
    }

    /// Writes the verifier key beside `skey` through a temporary file renamed into place, so a
    /// reader sees the old file or the whole new one.
    fn write_vkey(&self, skey: &Path) -> Result<PathBuf> {
        let vkey = vkey_path(skey);
        keyfile::replace(&vkey, format!("{}\n", self.to_vkey()).as_bytes(), false)?;
        Ok(vkey)
    }
}

/// How long [`Ed25519Signer::read_file`] waits for a key file another process is writing.
const INCOMPLETE_KEY_WAIT: Duration = Duration::from_secs(1);

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

    /// The files in `dir`, sorted.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn key_files_are_created_once_and_never_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let skey = dir.path().join("keys").join("ledger.skey");
        let first = Ed25519Signer::generate("example.com/first").unwrap();
        let vkey = first.create_files(&skey).unwrap().expect("created");
        assert_eq!(vkey, vkey_path(&skey));
        assert_eq!(
            std::fs::read_to_string(&vkey).unwrap(),
            format!("{}\n", first.to_vkey())
        );

        // A second key leaves the first in place, whichever way it is written.
        let second = Ed25519Signer::generate("example.com/second").unwrap();
        assert_eq!(second.create_files(&skey).unwrap(), None);
        let e = second.write_files(&skey, false).unwrap_err();
        assert!(
            e.to_string().contains("already exists; pass --force"),
            "{e}"
        );
        assert_eq!(
            Ed25519Signer::read_file(&skey).unwrap().to_vkey(),
            first.to_vkey()
        );
        assert_eq!(
            std::fs::read_to_string(&vkey).unwrap(),
            format!("{}\n", first.to_vkey())
        );
        assert_eq!(
            files_in(&dir.path().join("keys")),
            ["ledger.skey", "ledger.vkey"]
        );

        // With force, both files are replaced.
        second.write_files(&skey, true).unwrap();
        assert_eq!(
            Ed25519Signer::read_file(&skey).unwrap().to_vkey(),
            second.to_vkey()
        );
        assert_eq!(
            std::fs::read_to_string(&vkey).unwrap(),
            format!("{}\n", second.to_vkey())
        );
        assert_eq!(
            files_in(&dir.path().join("keys")),
            ["ledger.skey", "ledger.vkey"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_secret_key_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let skey = keys.join("ledger.skey");
        let signer = Ed25519Signer::generate("example.com/private").unwrap();
        signer.create_files(&skey).unwrap().expect("created");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&skey), 0o600);
        assert_eq!(mode(&keys), 0o700, "the key directory it made");
        // Replacing keeps it private too.
        signer.write_files(&skey, true).unwrap();
        assert_eq!(mode(&skey), 0o600);
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let skey = dir.path().join("keys").join("ledger.skey");
            let barrier = std::sync::Barrier::new(8);
            let outcomes: Vec<(bool, String)> = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..8)
                    .map(|i| {
                        let (skey, barrier) = (&skey, &barrier);
                        scope.spawn(move || {
                            let mine =
                                Ed25519Signer::generate(&format!("example.com/racer{i}")).unwrap();
                            barrier.wait();
                            match mine.create_files(skey).unwrap() {
                                Some(_) => (true, mine.to_vkey()),
                                None => (false, Ed25519Signer::read_file(skey).unwrap().to_vkey()),
                            }
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert_eq!(outcomes.iter().filter(|(made, _)| *made).count(), 1);
            let winner = &outcomes.iter().find(|(made, _)| *made).unwrap().1;
            assert!(outcomes.iter().all(|(_, key)| key == winner));
            assert_eq!(
                std::fs::read_to_string(vkey_path(&skey)).unwrap(),
                format!("{winner}\n")
            );
            assert_eq!(
                files_in(&dir.path().join("keys")),
                ["ledger.skey", "ledger.vkey"]
            );
        }
    }

    #[test]
    fn a_key_file_being_written_is_read_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let skey = dir.path().join("ledger.skey");
        let signer = Ed25519Signer::generate("example.com/slow").unwrap();
        let text = format!("{}\n", signer.to_skey());
        std::fs::write(&skey, &text[..20]).unwrap();
        let writer = {
            let (skey, text) = (skey.clone(), text.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(skey, text).unwrap();
            })
        };
        assert_eq!(
            Ed25519Signer::read_file(&skey).unwrap().to_vkey(),
            signer.to_vkey()
        );
        writer.join().unwrap();

        // A malformed file that ends its line is refused at once, naming the file.
        std::fs::write(&skey, "PRIVATE+KEY+nonsense\n").unwrap();
        let started = Instant::now();
        let e = Ed25519Signer::read_file(&skey).unwrap_err();
        assert!(started.elapsed() < INCOMPLETE_KEY_WAIT, "no wait");
        assert!(e.to_string().contains("malformed"), "{e}");
        assert!(format!("{e:?}").contains("ledger.skey"), "{e:?}");
    }

    #[test]
    fn conformance() {
        cortex_core::testkit::signer_conformance(
            &Ed25519Signer::generate("example.com/conf").unwrap(),
        );
    }
}
