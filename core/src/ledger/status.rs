//! A ledger's state at a glance: its size and head, its latest checkpoint, its last
//! verification and its anchors. One reading serves `cortex ledger status`, the REST
//! `GET /v1/ledger/status` and the dashboard.

use crate::error::Result;
use crate::ledger::Ledger;
use crate::ledger::anchoring::{AnchorStatus, statuses};
use crate::ledger::store::IntegrityCheck;
use serde::Serialize;

/// The latest checkpoint, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSummary {
    /// Entries it covers.
    pub size: u64,
    /// Its root hash, base64.
    pub root: String,
    /// When it was signed.
    pub created_at: String,
    /// Its signed note (origin, size, root, signature lines).
    pub note: String,
    /// How many detached signatures (SSH, Sigstore) are stored beside it.
    pub extra_signatures: usize,
    /// How many anchor receipts are stored beside it.
    pub receipts: usize,
}

/// What `ledger status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerStatus {
    /// Leaf hasher (`sha256`, `blake3`).
    pub hasher: &'static str,
    /// The checkpoint origin, once set.
    pub origin: Option<String>,
    /// Number of entries.
    pub size: u64,
    /// Chain hash of the last entry, hex.
    pub last_hash: String,
    /// The latest checkpoint.
    pub latest_checkpoint: Option<CheckpointSummary>,
    /// The last verification run recorded in the ledger's integrity checks.
    pub last_verify: Option<IntegrityCheck>,
    /// Each anchor `anchors` names (kind, target) with its status.
    pub anchors: Vec<AnchorStatus>,
}

/// Reads `ledger`'s status, with the status of each anchor in `anchors` (the policy's).
pub fn read_status(ledger: &Ledger, anchors: &[(String, String)]) -> Result<LedgerStatus> {
    let head = ledger.head()?;
    let store = ledger.store();
    let latest = store.latest_checkpoint()?;
    let anchors = if anchors.is_empty() {
        Vec::new()
    } else {
        statuses(&**store, &store.checkpoints()?, anchors)?
    };
    Ok(LedgerStatus {
        hasher: ledger.hasher().algorithm().name(),
        origin: ledger.origin().map(str::to_owned),
        size: head.size,
        last_hash: head.last_hash.to_hex(),
        latest_checkpoint: latest.map(|c| CheckpointSummary {
            size: c.size,
            root: c.root.to_base64(),
            created_at: c.created_at,
            extra_signatures: c.extra_signatures.len(),
            receipts: c.receipts.len(),
            note: c.note,
        }),
        last_verify: store.integrity_checks(1)?.pop(),
        anchors,
    })
}
