//! Anchors publish checkpoints to remote logs for redundancy (C2SP tlog-witness, RFC 3161
//! timestamp authorities, Sigstore Rekor) and return receipts the ledger stores beside the
//! checkpoint. They do network I/O, so submission is async; receipt checking is offline and sync,
//! because `verify` must work with no network at all.

use crate::error::{Error, Result};
use crate::ledger::checkpoint::{Checkpoint, Receipt};
use crate::ledger::hash::Hash;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// A boxed, `Send` future: keeps the async traits object-safe without a macro.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Proves that the ledger at `new_size` extends the ledger at `old_size` (RFC 9162 §2.1.4).
/// [`crate::Ledger`] implements it; a witness client asks it for the proof from the size the
/// witness last saw.
pub trait ConsistencyProver: Send + Sync {
    /// The consistency proof from `old_size` to `new_size` (empty when `old_size` is 0 or equal).
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>>;
}

/// What an anchor is asked to publish: one signed checkpoint.
#[derive(Clone, Copy)]
pub struct Submission<'a> {
    /// The complete signed note, exactly as stored (receipts are checked against it).
    pub note: &'a str,
    /// Its parsed body (origin, size, root).
    pub checkpoint: &'a Checkpoint,
    /// Consistency proofs between this ledger's sizes.
    pub proofs: &'a dyn ConsistencyProver,
}

impl fmt::Debug for Submission<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submission")
            .field("origin", &self.checkpoint.origin)
            .field("size", &self.checkpoint.size)
            .finish_non_exhaustive()
    }
}

/// A remote log that can countersign or timestamp a checkpoint.
pub trait Anchor: Send + Sync + fmt::Debug {
    /// Kind, stored in receipts: `witness`, `rfc3161`, `rekor`, …
    fn kind(&self) -> &'static str;
    /// Where it submits (URL or name), stored in receipts. Together with the kind it names
    /// the anchor: two witnesses are two anchors.
    fn target(&self) -> &str;
    /// Submits a signed checkpoint. An unreachable anchor returns
    /// [`crate::error::ErrorKind::Unavailable`]; the caller retries later and never blocks
    /// appends on it. Other errors (refused, malformed reply) are reported as they are.
    fn submit<'a>(&'a self, submission: Submission<'a>) -> BoxFuture<'a, Result<Receipt>>;
    /// Checks a stored receipt against the checkpoint note, offline.
    fn verify_receipt(&self, note: &str, receipt: &Receipt) -> Result<()>;
}

/// An in-memory anchor for tests: it remembers what it was sent, and its receipt is the
/// SHA-256 of the note, so a receipt for a different note fails to verify.
#[derive(Debug, Default)]
pub struct InMemoryAnchor {
    seen: Mutex<Vec<String>>,
}

impl InMemoryAnchor {
    /// Notes submitted so far.
    pub fn submitted(&self) -> Vec<String> {
        self.seen.lock().expect("poisoned").clone()
    }
    fn digest(note: &str) -> String {
        use crate::ledger::hash::Hasher;
        crate::ledger::hash::Sha256Hasher
            .digest(&[note.as_bytes()])
            .to_hex()
    }
}

impl Anchor for InMemoryAnchor {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn target(&self) -> &str {
        "memory:"
    }
    fn submit<'a>(&'a self, submission: Submission<'a>) -> BoxFuture<'a, Result<Receipt>> {
        Box::pin(async move {
            let note = submission.note;
            self.seen.lock().expect("poisoned").push(note.to_owned());
            Ok(Receipt {
                anchor: self.kind().into(),
                target: self.target().into(),
                body: Self::digest(note),
                created_at: crate::ledger::entry::now_timestamp(),
            })
        })
    }
    fn verify_receipt(&self, note: &str, receipt: &Receipt) -> Result<()> {
        if receipt.body == Self::digest(note) {
            Ok(())
        } else {
            Err(Error::integrity(
                "memory receipt does not match the checkpoint",
            ))
        }
    }
}
