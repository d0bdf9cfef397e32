//! SSH checkpoint signer for CORTEX: signs checkpoint bodies (`origin\nsize\nroot\n`) with an
//! OpenSSH key as an SSHSIG signature, the format of `ssh-keygen -Y sign`, so anyone holding the
//! public key can check a checkpoint with the stock OpenSSH tools:
//!
//! ```text
//! ssh-keygen -Y verify -f allowed_signers -I <identity> -n cortex-checkpoint -s checkpoint.sig < body
//! ```
//!
//! Keys are OpenSSH private key files (`-----BEGIN OPENSSH PRIVATE KEY-----`) of type Ed25519,
//! ECDSA nistp256 or ECDSA nistp384, without a passphrase (a signer runs unattended). Signatures
//! hash the message with SHA-512, as `ssh-keygen` does, and are returned armored
//! (`-----BEGIN SSH SIGNATURE-----`). A signer's key name is its public key's SHA-256
//! fingerprint (`SHA256:…`), the form `ssh-keygen -l` prints.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod key_file;
mod signer;
mod verifier;

pub use key_file::public_key_path;
pub use signer::SshSigner;
pub use verifier::SshVerifier;

use cortex_core::{Error, Result};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg};
use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::str::FromStr;

/// The SSHSIG namespace CORTEX signs checkpoints in, unless a signer or verifier is given
/// another with `with_namespace`. A signature made in one namespace never verifies in
/// another, so a checkpoint signature cannot be passed off as, say, a signed git commit.
pub const NAMESPACE: &str = "cortex-checkpoint";

/// The hash SSHSIG applies to the message before signing: SHA-512, `ssh-keygen`'s default.
const MESSAGE_HASH: HashAlg = HashAlg::Sha512;

/// The largest key file read; real OpenSSH key files are a few kilobytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The key types CORTEX signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SshKeyType {
    /// `ssh-ed25519` (`ssh-keygen -t ed25519`).
    Ed25519,
    /// `ecdsa-sha2-nistp256` (`ssh-keygen -t ecdsa -b 256`).
    EcdsaP256,
    /// `ecdsa-sha2-nistp384` (`ssh-keygen -t ecdsa -b 384`).
    EcdsaP384,
}

impl SshKeyType {
    /// Every supported type, in the order error messages list them.
    pub const ALL: [SshKeyType; 3] = [
        SshKeyType::Ed25519,
        SshKeyType::EcdsaP256,
        SshKeyType::EcdsaP384,
    ];

    /// The short name used in configuration: `ed25519`, `ecdsa-p256`, `ecdsa-p384`.
    pub fn name(self) -> &'static str {
        match self {
            SshKeyType::Ed25519 => "ed25519",
            SshKeyType::EcdsaP256 => "ecdsa-p256",
            SshKeyType::EcdsaP384 => "ecdsa-p384",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            SshKeyType::Ed25519 => Algorithm::Ed25519,
            SshKeyType::EcdsaP256 => Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            SshKeyType::EcdsaP384 => Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
        }
    }

    /// The type of a key of `algorithm`, or an error naming the algorithm and the ones CORTEX
    /// takes.
    fn of(algorithm: &Algorithm) -> Result<SshKeyType> {
        match algorithm {
            Algorithm::Ed25519 => Ok(SshKeyType::Ed25519),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            } => Ok(SshKeyType::EcdsaP256),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            } => Ok(SshKeyType::EcdsaP384),
            Algorithm::Rsa { .. } => Err(unsupported_key("RSA (ssh-rsa)")),
            other => Err(unsupported_key(other.as_str())),
        }
    }
}

fn unsupported_key(what: &str) -> Error {
    Error::invalid(format!(
        "{what} keys are not supported for checkpoint signatures; use an Ed25519 or ECDSA \
         nistp256/nistp384 key (ssh-keygen -t ed25519)"
    ))
}

impl fmt::Display for SshKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SshKeyType {
    type Err = Error;
    /// Parses a [`name`](SshKeyType::name); an unknown name lists the supported ones.
    fn from_str(s: &str) -> Result<Self> {
        SshKeyType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = SshKeyType::ALL.iter().map(|t| t.name()).collect();
                Error::invalid(format!(
                    "unknown SSH key type {s:?}; supported: {}",
                    names.join(", ")
                ))
            })
    }
}

/// Checks that `namespace` can be used with `ssh-keygen -n` and in an `allowed_signers`
/// `namespaces="…"` option.
fn validate_namespace(namespace: &str) -> Result<()> {
    validate_token("SSHSIG namespace", namespace)
}

/// Checks that `value` (named `what` in the error) is non-empty printable ASCII without spaces,
/// commas or quotes, so it fits one field of an `allowed_signers` line.
fn validate_token(what: &str, value: &str) -> Result<()> {
    let printable = |b: u8| b.is_ascii_graphic() && b != b',' && b != b'"';
    if value.is_empty() || !value.bytes().all(printable) {
        return Err(Error::invalid(format!(
            "{what} {value:?} must be non-empty printable ASCII without spaces, commas or quotes"
        )));
    }
    Ok(())
}

/// Reads a key file as text, at most [`MAX_KEY_FILE`] bytes; `what` names the file's role in
/// errors (`SSH private key`, `SSH public key`).
fn read_key_text(path: &Path, what: &str) -> Result<String> {
    let cannot = |e: std::io::Error| {
        Error::config(format!("cannot read {what} {}", path.display())).with_source(e)
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(Error::invalid(format!(
            "{} is not an {what}: it is larger than {MAX_KEY_FILE} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        Error::invalid(format!(
            "{} is not an {what}: it is not text",
            path.display()
        ))
    })
}

/// The `SHA256:…` fingerprint of a public key, as `ssh-keygen -l` prints it.
fn fingerprint(key: &ssh_key::PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::{ErrorKind, Signer, Verifier};

    fn signer(key_type: SshKeyType) -> (tempfile::TempDir, SshSigner) {
        let dir = tempfile::tempdir().unwrap();
        let signer = SshSigner::generate(&dir.path().join("id"), key_type, "test", false).unwrap();
        (dir, signer)
    }

    #[test]
    fn conformance() {
        for key_type in SshKeyType::ALL {
            let (_dir, signer) = signer(key_type);
            assert_eq!(signer.scheme(), cortex_core::SignatureScheme::SshSig);
            assert_eq!(signer.note_key_id(), None);
            assert!(signer.key_name().starts_with("SHA256:"));
            cortex_core::testkit::signer_conformance(&signer);
        }
    }

    #[test]
    fn a_signature_verifies_only_in_its_namespace() {
        let (_dir, signer) = signer(SshKeyType::Ed25519);
        assert_eq!(signer.namespace(), NAMESPACE);
        let signer = signer.with_namespace("example-audit").unwrap();
        let msg = b"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let sig = signer.sign(msg).unwrap();
        signer.verifier().verify(msg, &sig).unwrap();
        let default =
            SshVerifier::from_public_key(&format!("{}\n", signer.public_key_line())).unwrap();
        let e = default.verify(msg, &sig).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("namespace \"example-audit\""), "{e}");
    }

    #[test]
    fn namespaces_must_fit_an_allowed_signers_line() {
        let (_dir, signer) = signer(SshKeyType::Ed25519);
        for bad in ["", "two words", "a,b", "q\"uote", "tab\t", "é"] {
            let e = SshVerifier::from_public_key(signer.public_key_line())
                .unwrap()
                .with_namespace(bad)
                .unwrap_err();
            assert!(e.to_string().contains("SSHSIG namespace"), "{e}");
        }
        let verifier = SshVerifier::from_public_key(signer.public_key_line()).unwrap();
        let e = verifier.allowed_signers_line("a b").unwrap_err();
        assert!(e.to_string().contains("principal"), "{e}");
        let line = verifier.allowed_signers_line("me@example.com").unwrap();
        let key = signer.public_key_line().rsplit_once(' ').unwrap().0;
        assert_eq!(
            line,
            format!("me@example.com namespaces=\"cortex-checkpoint\" {key}")
        );
    }

    #[test]
    fn key_types_parse_from_their_names() {
        for t in SshKeyType::ALL {
            assert_eq!(t.name().parse::<SshKeyType>().unwrap(), t);
        }
        let e = "rsa".parse::<SshKeyType>().unwrap_err();
        assert!(
            e.to_string().contains("ed25519, ecdsa-p256, ecdsa-p384"),
            "{e}"
        );
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let (dir, signer) = signer(SshKeyType::Ed25519);
        let text = std::fs::read_to_string(dir.path().join("id")).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains(signer.key_name()), "{debug}");
        let secret_line = text.lines().nth(2).unwrap();
        assert!(!debug.contains(secret_line), "{debug}");
    }

    #[test]
    fn comments_must_be_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let e = SshSigner::generate(&path, SshKeyType::Ed25519, "a\nb", false).unwrap_err();
        assert!(e.to_string().contains("one line"), "{e}");
        assert!(!path.exists());
    }
}
