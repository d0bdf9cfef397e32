//! [`SshVerifier`]: checks armored SSHSIG signatures against one OpenSSH public key.

use crate::{
    NAMESPACE, SshKeyType, fingerprint, read_key_text, validate_namespace, validate_token,
};
use cortex_core::{Error, Result, SignatureScheme, Verifier};
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::path::Path;

/// Verifies SSHSIG signatures (as `ssh-keygen -Y sign` and [`SshSigner`](crate::SshSigner)
/// make them) by one Ed25519 or ECDSA (nistp256, nistp384) public key, in one namespace.
#[derive(Debug, Clone)]
pub struct SshVerifier {
    key: PublicKey,
    key_type: SshKeyType,
    fingerprint: String,
    namespace: String,
}

impl SshVerifier {
    /// Parses an OpenSSH public key line (`ssh-ed25519 AAAA… comment`), the content of a `.pub`
    /// file; blank lines and `#` comment lines around it are ignored.
    pub fn from_public_key(text: &str) -> Result<Self> {
        let line = single_key_line(text)?;
        let key = PublicKey::from_openssh(line).map_err(|e| {
            Error::invalid("not an OpenSSH public key line (expected `ssh-ed25519 AAAA… comment`)")
                .with_source(e)
        })?;
        let key_type = SshKeyType::of(&key.algorithm())?;
        Ok(Self::for_key(key, key_type, NAMESPACE))
    }

    /// Reads a public key file (`id_ed25519.pub`); errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_text(path, "SSH public key")?;
        Self::from_public_key(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// A verifier of `key` (already checked to be of `key_type`) in `namespace`.
    pub(crate) fn for_key(key: PublicKey, key_type: SshKeyType, namespace: &str) -> Self {
        SshVerifier {
            fingerprint: fingerprint(&key),
            key,
            key_type,
            namespace: namespace.to_owned(),
        }
    }

    /// The same verifier checking signatures made in `namespace` instead of [`NAMESPACE`].
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        self.namespace = namespace.to_owned();
        Ok(self)
    }

    /// The SSHSIG namespace signatures must be made in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key's type.
    pub fn key_type(&self) -> SshKeyType {
        self.key_type
    }

    /// A line of an OpenSSH `allowed_signers` file that lets `ssh-keygen -Y verify -I
    /// <principal> -n <namespace>` accept this key's signatures, in this namespace only:
    /// `<principal> namespaces="<namespace>" <key type> <base64 key>`. The principal must be
    /// non-empty printable ASCII without spaces, commas or quotes.
    pub fn allowed_signers_line(&self, principal: &str) -> Result<String> {
        validate_token("allowed_signers principal", principal)?;
        let mut key = self.key.clone();
        key.set_comment("");
        let key = key.to_openssh().map_err(|e| {
            Error::invalid("cannot encode the public key as an OpenSSH line").with_source(e)
        })?;
        Ok(format!(
            "{principal} namespaces=\"{}\" {}",
            self.namespace,
            key.trim_end()
        ))
    }

    /// Decodes the armored signature, or says it is not an SSHSIG.
    fn parse(signature: &[u8]) -> Result<SshSig> {
        let text = std::str::from_utf8(signature)
            .map_err(|_| Error::integrity("not an SSHSIG signature: it is not text"))?;
        SshSig::from_pem(text.trim()).map_err(|e| {
            Error::integrity(format!(
                "not an SSHSIG signature (expected an armored -----BEGIN SSH SIGNATURE----- \
                 block): {e}"
            ))
        })
    }
}

impl Verifier for SshVerifier {
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
    /// Checks, in order, that `signature` is an armored SSHSIG, made in this verifier's
    /// namespace, by this verifier's key, and valid over `message`; each failure is an
    /// integrity error naming which check failed.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let sig = Self::parse(signature)?;
        if sig.namespace() != self.namespace {
            return Err(Error::integrity(format!(
                "the SSHSIG signature is for namespace {:?}, not {:?}",
                sig.namespace(),
                self.namespace
            )));
        }
        if sig.public_key() != self.key.key_data() {
            return Err(Error::integrity(format!(
                "the SSHSIG signature is by another key ({}), not {}",
                sig.public_key().fingerprint(HashAlg::Sha256),
                self.fingerprint
            )));
        }
        self.key
            .verify(&self.namespace, message, &sig)
            .map_err(|_| {
                Error::integrity(format!(
                    "the SSHSIG signature by {} does not match the signed text (the text or the \
                     signature was altered)",
                    self.fingerprint
                ))
            })
    }
}

/// The one public key line of `text`, skipping blank and `#` lines; an error says what the text
/// is instead.
fn single_key_line(text: &str) -> Result<&str> {
    if text.trim_start().starts_with("-----BEGIN") {
        return Err(Error::invalid(
            "not an OpenSSH public key: this is a PEM block (a private key?); give the .pub file",
        ));
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    match (lines.next(), lines.next()) {
        (Some(line), None) => Ok(line),
        (None, _) => Err(Error::invalid(
            "not an OpenSSH public key: the text is empty",
        )),
        (Some(_), Some(_)) => Err(Error::invalid(
            "expected one OpenSSH public key line, found several",
        )),
    }
}
