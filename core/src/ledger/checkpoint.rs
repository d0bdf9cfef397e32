//! C2SP `tlog-checkpoint` bodies and the records the ledger keeps of them.

use crate::error::{Error, Result};
use crate::ledger::hash::{Hash, HashAlgorithm};
use serde::{Deserialize, Serialize};

/// Origin suffix that marks a BLAKE3 ledger. SHA-256 ledgers must not use it.
pub const BLAKE3_ORIGIN_SUFFIX: &str = "/blake3";

/// The hash algorithm an origin commits to: BLAKE3 if it ends in `/blake3`, else SHA-256.
pub fn algorithm_of_origin(origin: &str) -> HashAlgorithm {
    if origin.ends_with(BLAKE3_ORIGIN_SUFFIX) {
        HashAlgorithm::Blake3
    } else {
        HashAlgorithm::Sha256
    }
}

/// Checks that `origin` is usable for a ledger hashed with `algorithm`.
pub fn validate_origin(origin: &str, algorithm: HashAlgorithm) -> Result<()> {
    crate::ledger::note::validate_key_name(origin)
        .map_err(|e| Error::config(format!("origin {origin:?} is not a valid key name: {e}")))?;
    if algorithm_of_origin(origin) != algorithm {
        return Err(Error::config(match algorithm {
            HashAlgorithm::Blake3 => format!(
                "origin {origin:?} must end in {BLAKE3_ORIGIN_SUFFIX:?} for a BLAKE3 ledger, so \
                 its roots cannot be mistaken for SHA-256 roots"
            ),
            _ => format!(
                "origin {origin:?} ends in {BLAKE3_ORIGIN_SUFFIX:?}, which is reserved for BLAKE3 ledgers"
            ),
        }));
    }
    Ok(())
}

/// Checks what a CORTEX checkpoint must be beyond a valid signature: signed by the log's own key
/// (whose name is the origin, among the `verified` key names) and free of extension lines.
pub fn check_cortex_checkpoint(cp: &Checkpoint, verified: &[String]) -> Result<()> {
    if !verified.iter().any(|n| n == &cp.origin) {
        return Err(Error::integrity(format!(
            "the checkpoint is not signed by the log's key: no verified signature is by a key named {:?}",
            cp.origin
        )));
    }
    if !cp.extensions.is_empty() {
        return Err(Error::integrity(
            "the checkpoint has extension lines, which CORTEX checkpoints never carry",
        ));
    }
    Ok(())
}

/// A checkpoint body: origin, tree size, root hash (and, for foreign logs, extension lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log identity; equals the log's key name.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root hash.
    pub root: Hash,
    /// Extension lines (CORTEX never writes any; other logs may).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The body text: `origin\nsize\nbase64(root)\n` plus any extension lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a body; decimal size without leading zeros, base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Checkpoint> {
        let bad = |why: String| Error::invalid(format!("malformed checkpoint: {why}"));
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline".into()))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("empty origin".into()))?;
        let size_s = lines
            .next()
            .ok_or_else(|| bad("missing tree size".into()))?;
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(bad(format!("tree size {size_s:?} is not a decimal number")));
        }
        let size: u64 = size_s
            .parse()
            .map_err(|_| bad(format!("tree size {size_s:?} overflows")))?;
        let root_s = lines
            .next()
            .ok_or_else(|| bad("missing root hash".into()))?;
        let root = Hash::from_base64(root_s).map_err(|e| bad(e.to_string()))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line".into()));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// A detached signature over a checkpoint body (SSH, Sigstore, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraSignature {
    /// Scheme name (see [`crate::ledger::signer::SignatureScheme::name`]).
    pub scheme: String,
    /// Key name or identity.
    pub key_name: String,
    /// The signature as text (armored SSHSIG, bundle JSON, …).
    pub signature: String,
}

/// An anchor's receipt for a checkpoint (a witness cosignature, an RFC 3161 token, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Anchor kind, e.g. `witness`, `rfc3161`, `rekor`.
    pub anchor: String,
    /// Where it was obtained (URL or name).
    pub target: String,
    /// The receipt body as text (base64 for binary tokens).
    pub body: String,
    /// When it was obtained (canonical timestamp).
    pub created_at: String,
}

/// The rule every store applies in `add_checkpoint`, inside its write transaction: a new
/// checkpoint must be larger than the largest stored one and start where it ended
/// (`range_start`); otherwise a [`crate::error::ErrorKind::Conflict`] (another writer checkpointed
/// first, and the new record's range was computed from an older latest checkpoint).
pub fn check_checkpoint_follows(largest_stored: Option<u64>, new: &CheckpointRecord) -> Result<()> {
    match largest_stored {
        Some(m) if m >= new.size => Err(Error::new(
            crate::error::ErrorKind::Conflict,
            format!(
                "a checkpoint of size {m} already exists (new one: {})",
                new.size
            ),
        )),
        m if m.unwrap_or(0) != new.range_start => Err(Error::new(
            crate::error::ErrorKind::Conflict,
            format!(
                "the newest stored checkpoint has size {}, but the new one's range starts at {}",
                m.unwrap_or(0),
                new.range_start
            ),
        )),
        _ => Ok(()),
    }
}

/// A checkpoint as the ledger stores it: the seed's `merkle_roots` row, plus the signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Tree size (entries `0 … size-1` are covered).
    pub size: u64,
    /// First index this checkpoint adds (the previous checkpoint's size).
    pub range_start: u64,
    /// Entries added since the previous checkpoint (`size - range_start`).
    pub range_count: u64,
    /// Root hash.
    pub root: Hash,
    /// The complete signed note.
    pub note: String,
    /// When it was made.
    pub created_at: String,
    /// Detached signatures.
    pub extra_signatures: Vec<ExtraSignature>,
    /// Anchor receipts.
    pub receipts: Vec<Receipt>,
}

impl CheckpointRecord {
    /// Last index covered, if any.
    pub fn range_end(&self) -> Option<u64> {
        self.size.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_c2sp_example_body() {
        let c = Checkpoint::parse(
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        )
        .unwrap();
        assert_eq!(c.size, 20852163);
        assert_eq!(
            c.to_text(),
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        assert!(
            Checkpoint::parse("o\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n").is_err()
        );
        assert!(Checkpoint::parse("o\n12\nCsUYap\n").is_err());
    }

    #[test]
    fn the_origin_binds_the_hasher() {
        assert!(validate_origin("example.com/log", HashAlgorithm::Sha256).is_ok());
        assert!(validate_origin("example.com/log", HashAlgorithm::Blake3).is_err());
        assert!(validate_origin("example.com/log/blake3", HashAlgorithm::Blake3).is_ok());
        assert!(validate_origin("example.com/log/blake3", HashAlgorithm::Sha256).is_err());
    }
}
