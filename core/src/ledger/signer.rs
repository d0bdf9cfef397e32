//! Checkpoint signers and verifiers.
//!
//! Every signer signs the same bytes: the checkpoint body. Note signers (Ed25519) produce the
//! signature lines of the C2SP signed note; detached signers (SSH SSHSIG, Sigstore bundles) produce
//! blobs stored beside the checkpoint. Like rustls' primitives these traits are small, sync and
//! object-safe, and report their scheme.

use crate::error::Result;
use std::fmt;

/// How a signature is carried.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// An Ed25519 signed-note signature line (algorithm 0x01).
    Ed25519Note,
    /// An OpenSSH SSHSIG blob (`ssh-keygen -Y verify`).
    SshSig,
    /// A Sigstore bundle (JSON).
    SigstoreBundle,
}

impl SignatureScheme {
    /// Stable name, as stored in the database and exports.
    pub fn name(self) -> &'static str {
        match self {
            SignatureScheme::Ed25519Note => "ed25519-note",
            SignatureScheme::SshSig => "sshsig",
            SignatureScheme::SigstoreBundle => "sigstore-bundle",
        }
    }
    /// True if signatures of this scheme are lines of the signed note itself.
    pub fn is_note(self) -> bool {
        matches!(self, SignatureScheme::Ed25519Note)
    }
}

/// Signs checkpoint bodies.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The scheme of the signatures it makes.
    fn scheme(&self) -> SignatureScheme;
    /// Key name; for the note signer of a ledger it equals the checkpoint origin.
    fn key_name(&self) -> &str;
    /// For note signers, the 4-byte key ID written before the signature.
    fn note_key_id(&self) -> Option<[u8; 4]>;
    /// Signs `message` (the checkpoint body).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// The matching verifier.
    fn verifier(&self) -> Box<dyn Verifier>;
}

/// Verifies signatures of one key.
pub trait Verifier: Send + Sync + fmt::Debug {
    /// The scheme it verifies.
    fn scheme(&self) -> SignatureScheme;
    /// Key name.
    fn key_name(&self) -> &str;
    /// For note keys, the 4-byte key ID.
    fn note_key_id(&self) -> Option<[u8; 4]>;
    /// `Ok` if `signature` is valid for `message`; an integrity error otherwise.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()>;
}
