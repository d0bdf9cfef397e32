//! [`SshSigner`]: SSHSIG signatures over checkpoint bodies with an OpenSSH private key.

use crate::key_file::write_key_pair;
use crate::{
    MESSAGE_HASH, NAMESPACE, SshKeyType, SshVerifier, fingerprint, read_key_text,
    validate_namespace,
};
use cortex_core::{Error, Result, SignatureScheme, Signer, Verifier};
use ssh_key::{LineEnding, PrivateKey};
use std::path::Path;

/// The label that starts an OpenSSH private key file.
const OPENSSH_PRIVATE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

/// Signs checkpoint bodies with an OpenSSH Ed25519 or ECDSA (nistp256, nistp384) key, as
/// armored SSHSIG signatures that `ssh-keygen -Y verify` accepts.
pub struct SshSigner {
    key: PrivateKey,
    key_type: SshKeyType,
    fingerprint: String,
    public_line: String,
    namespace: String,
}

impl std::fmt::Debug for SshSigner {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SshSigner({} {}, namespace {})",
            self.key_type, self.fingerprint, self.namespace
        )
    }
}

impl SshSigner {
    /// Reads an OpenSSH private key file (as `ssh-keygen` writes it); errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_text(path, "SSH private key")?;
        Self::from_openssh(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Parses an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`). A key with a
    /// passphrase, a key of another type (RSA, DSA, security keys) or text in another format
    /// is refused with an error naming what it is.
    pub fn from_openssh(text: &str) -> Result<Self> {
        if !text.trim_start().starts_with(OPENSSH_PRIVATE_KEY) {
            return Err(not_an_openssh_private_key(text));
        }
        let key = PrivateKey::from_openssh(text.trim())
            .map_err(|e| Error::invalid("malformed OpenSSH private key").with_source(e))?;
        let key_type = SshKeyType::of(&key.algorithm())?;
        if key.is_encrypted() {
            return Err(Error::invalid(
                "the SSH private key is protected by a passphrase, which CORTEX cannot ask for \
                 while signing unattended; use a key without a passphrase (ssh-keygen -N '')",
            ));
        }
        Self::new(key, key_type)
    }

    /// Makes a new key of `key_type`, writes it to `path` in OpenSSH format and its public key
    /// to `<path>.pub` ([`public_key_path`](crate::public_key_path)), both readable by
    /// `ssh-keygen`. The private key file is created exclusively with mode 0600 (its missing
    /// directories with 0700); an existing file is replaced only with `force`, through a
    /// temporary file renamed into place.
    pub fn generate(path: &Path, key_type: SshKeyType, comment: &str, force: bool) -> Result<Self> {
        if comment.contains(['\n', '\r']) {
            return Err(Error::invalid(
                "an SSH key comment must be one line (it ends the .pub line)",
            ));
        }
        let mut key = random_key(key_type)?;
        key.set_comment(comment);
        let text = key.to_openssh(LineEnding::LF).map_err(|e| {
            Error::backend(format!("cannot encode the new {key_type} key")).with_source(e)
        })?;
        let signer = Self::new(key, key_type)?;
        write_key_pair(path, &text, &signer.public_line, force)?;
        Ok(signer)
    }

    fn new(key: PrivateKey, key_type: SshKeyType) -> Result<Self> {
        let public_line = key.public_key().to_openssh().map_err(|e| {
            Error::invalid("cannot encode the key's public key as an OpenSSH line").with_source(e)
        })?;
        Ok(SshSigner {
            fingerprint: fingerprint(key.public_key()),
            public_line,
            key,
            key_type,
            namespace: NAMESPACE.to_owned(),
        })
    }

    /// The same signer signing in `namespace` instead of [`NAMESPACE`]; it must be non-empty
    /// printable ASCII without spaces, commas or quotes (so it fits `ssh-keygen -n` and an
    /// `allowed_signers` line).
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        self.namespace = namespace.to_owned();
        Ok(self)
    }

    /// The SSHSIG namespace it signs in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key's type.
    pub fn key_type(&self) -> SshKeyType {
        self.key_type
    }

    /// The public key as an OpenSSH line (`ssh-ed25519 AAAA… comment`), the `.pub` file's
    /// content.
    pub fn public_key_line(&self) -> &str {
        &self.public_line
    }
}

/// A fresh key from the operating system's random source.
fn random_key(key_type: SshKeyType) -> Result<PrivateKey> {
    use ssh_key::getrandom::SysRng;
    use ssh_key::rand_core::{TryRng as _, UnwrapErr};
    // Probe the source first, so that a broken one is an error here and not a panic inside
    // `UnwrapErr` (the OS source does not fail once it has answered).
    SysRng
        .try_next_u32()
        .map_err(|e| Error::backend(format!("the system random source failed: {e}")))?;
    PrivateKey::random(&mut UnwrapErr(SysRng), key_type.algorithm()).map_err(|e| {
        Error::backend(format!("cannot generate an SSH {key_type} key")).with_source(e)
    })
}

/// The error for text that is not an OpenSSH private key, saying what it looks like instead.
fn not_an_openssh_private_key(text: &str) -> Error {
    let text = text.trim_start();
    let pem_label = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label);
    let why = match pem_label {
        Some(label) if label.contains("ENCRYPTED") => format!(
            "it is an encrypted PEM {label:?} key; CORTEX reads unencrypted OpenSSH private keys \
             (ssh-keygen -t ed25519 -N '')"
        ),
        Some(label) if label.starts_with("RSA") => {
            return crate::unsupported_key("RSA (PEM \"RSA PRIVATE KEY\")");
        }
        Some(label) => format!(
            "it is a PEM {label:?} block, not the OpenSSH format; `ssh-keygen -p -f <file>` \
             rewrites a key in the OpenSSH format"
        ),
        None if looks_like_public_key(text) => {
            "it is a public key; give the private key file (without .pub)".to_owned()
        }
        None => format!("it does not start with {OPENSSH_PRIVATE_KEY}"),
    };
    Error::invalid(format!("not an OpenSSH private key: {why}"))
}

fn looks_like_public_key(text: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-"]
        .iter()
        .any(|p| text.starts_with(p))
}

impl Signer for SshSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::SshSig
    }
    /// The public key's `SHA256:…` fingerprint.
    fn key_name(&self) -> &str {
        &self.fingerprint
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        None
    }
    /// The armored SSHSIG (`-----BEGIN SSH SIGNATURE-----`, LF line ends) over `message`,
    /// hashed with SHA-512, in this signer's namespace.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let sig = self
            .key
            .sign(&self.namespace, MESSAGE_HASH, message)
            .map_err(|e| Error::backend("SSHSIG signing failed").with_source(e))?;
        let pem = sig
            .to_pem(LineEnding::LF)
            .map_err(|e| Error::backend("cannot armor the SSHSIG signature").with_source(e))?;
        Ok(pem.into_bytes())
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(SshVerifier::for_key(
            self.key.public_key().clone(),
            self.key_type,
            &self.namespace,
        ))
    }
}
