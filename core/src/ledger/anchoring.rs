//! Anchoring in the background: which checkpoint each anchor still owes a receipt for, when to
//! try again after a failure, and what `verify` and the metrics report about it.
//!
//! The queue is persisted by what the store already holds: a checkpoint is *pending* for an
//! anchor until a receipt from that anchor (its kind and target) is stored beside it. Only the
//! newest checkpoint is submitted: an anchored checkpoint vouches for every smaller one, since
//! `verify` checks that they all describe one append-only history (and a witness refuses to go
//! back anyway). The retry state of each anchor (failures, last error, when to try next) is kept
//! in the store's meta under `anchor.<kind>.<target>`, so every process sharing the ledger, and
//! `verify`, see it.
//!
//! Submitting is async (anchors do network I/O) but core brings no runtime: the caller drives
//! [`anchor_pending`] on its own (the binary runs it on a background thread), so appends never
//! wait for an anchor.

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::ledger::anchor::{Anchor, ConsistencyProver, Submission};
use crate::ledger::checkpoint::{Checkpoint, CheckpointRecord};
use crate::ledger::entry::now_timestamp;
use crate::ledger::hash::Hash;
use crate::ledger::note::SignedNote;
use crate::ledger::store::LedgerStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First wait after a failure; it doubles with each further failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest wait between tries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The retry state of one anchor, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorState {
    /// Failed tries since the last success.
    pub failures: u32,
    /// The last failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The checkpoint size the last failure was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_size: Option<u64>,
    /// When the last try was made (canonical timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// Unix seconds before which no automatic try is made.
    #[serde(default)]
    pub retry_after_unix: u64,
}

/// The meta key of an anchor's state.
pub fn state_key(kind: &str, target: &str) -> String {
    format!("anchor.{kind}.{target}")
}

/// Reads an anchor's state (the default when none is stored, or the stored one is unreadable).
pub fn read_state(store: &dyn LedgerStore, kind: &str, target: &str) -> Result<AnchorState> {
    Ok(store
        .meta(&state_key(kind, target))?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn write_state(store: &dyn LedgerStore, kind: &str, target: &str, s: &AnchorState) -> Result<()> {
    let text = serde_json::to_string(s).map_err(|e| Error::backend(e.to_string()))?;
    store.set_meta(&state_key(kind, target), &text)
}

/// How long to wait after `failures` failures in a row: 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where one anchor stands against the ledger's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorStatus {
    /// Anchor kind.
    pub kind: String,
    /// Anchor target.
    pub target: String,
    /// `anchored` (the newest checkpoint has its receipt), `pending` (not yet tried, or
    /// waiting), `failing` (the last try failed) or `missing` (no checkpoint has a receipt
    /// from it and nothing was tried).
    pub status: &'static str,
    /// The largest checkpoint size with a receipt from this anchor.
    pub anchored_size: Option<u64>,
    /// The newest checkpoint's size.
    pub latest_checkpoint: Option<u64>,
    /// Entries signed but not yet anchored here (newest checkpoint − anchored size).
    pub lag_entries: u64,
    /// Checkpoints newer than the anchored one.
    pub lag_checkpoints: u64,
    /// Failed tries since the last success.
    pub failures: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The status of each anchor `(kind, target)` against `checkpoints` (by increasing size).
pub fn statuses(
    store: &dyn LedgerStore,
    checkpoints: &[CheckpointRecord],
    anchors: &[(String, String)],
) -> Result<Vec<AnchorStatus>> {
    let latest = checkpoints.last().map(|c| c.size);
    anchors
        .iter()
        .map(|(kind, target)| {
            let state = read_state(store, kind, target)?;
            let anchored = checkpoints
                .iter()
                .rev()
                .find(|c| has_receipt(c, kind, target))
                .map(|c| c.size);
            let lag_checkpoints = checkpoints
                .iter()
                .filter(|c| anchored.is_none_or(|a| c.size > a))
                .count() as u64;
            let status = if latest.is_some() && anchored == latest {
                "anchored"
            } else if state.failures > 0 {
                "failing"
            } else if anchored.is_none() && latest.is_some() && state.last_attempt_at.is_none() {
                "missing"
            } else if latest.is_none() {
                "anchored"
            } else {
                "pending"
            };
            Ok(AnchorStatus {
                kind: kind.clone(),
                target: target.clone(),
                status,
                anchored_size: anchored,
                latest_checkpoint: latest,
                lag_entries: latest.unwrap_or(0) - anchored.unwrap_or(0).min(latest.unwrap_or(0)),
                lag_checkpoints,
                failures: state.failures,
                last_error: state.last_error,
            })
        })
        .collect()
}

/// True if `cp` holds a receipt from the anchor `(kind, target)`.
pub fn has_receipt(cp: &CheckpointRecord, kind: &str, target: &str) -> bool {
    cp.receipts
        .iter()
        .any(|r| r.anchor == kind && r.target == target)
}

/// What one submission did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorOutcome {
    /// Anchor kind.
    pub kind: String,
    /// Anchor target.
    pub target: String,
    /// The checkpoint size concerned.
    pub size: u64,
    /// `anchored`, `already` (it had its receipt), `waiting` (backing off), `failed`.
    pub result: &'static str,
    /// The failure, for `failed`; the time of the next try, for `waiting`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Submits the newest checkpoint to every anchor that holds no receipt for it, stores each
/// receipt beside it, and records failures with their backoff. Anchors still backing off are
/// skipped unless `now` is true (`cortex ledger anchor` tries them at once). Returns what
/// happened per anchor; an error only if the store fails.
pub async fn anchor_pending(
    ledger: &Ledger,
    anchors: &[Arc<dyn Anchor>],
    now: bool,
) -> Result<Vec<AnchorOutcome>> {
    let store = &**ledger.store();
    let Some(cp) = off_runtime(|| store.latest_checkpoint())? else {
        return Ok(Vec::new());
    };
    let note = SignedNote::parse(cp.note.as_bytes())?;
    let body = Checkpoint::parse(&note.text)?;
    let mut out = Vec::new();
    for a in anchors {
        let (kind, target) = (a.kind(), a.target());
        let outcome = |result, detail| AnchorOutcome {
            kind: kind.to_owned(),
            target: target.to_owned(),
            size: cp.size,
            result,
            detail,
        };
        if has_receipt(&cp, kind, target) {
            out.push(outcome("already", None));
            continue;
        }
        let mut state = off_runtime(|| read_state(store, kind, target))?;
        if !now && state.retry_after_unix > unix_now() {
            out.push(outcome(
                "waiting",
                Some(format!(
                    "next try in {} s after {} failure(s)",
                    state.retry_after_unix - unix_now(),
                    state.failures
                )),
            ));
            continue;
        }
        let submission = Submission {
            note: &cp.note,
            checkpoint: &body,
            proofs: &OffRuntime(ledger),
        };
        state.last_attempt_at = Some(now_timestamp());
        let receipt = match a.submit(submission).await {
            Ok(r) if r.anchor != kind || r.target != target => Err(Error::backend(format!(
                "the {kind} anchor returned a receipt labelled {} {}",
                r.anchor, r.target
            ))),
            Ok(r) => a.verify_receipt(&cp.note, &r).map(|()| r).map_err(|e| {
                Error::integrity(format!(
                    "the receipt it returned does not verify: {}",
                    e.message()
                ))
            }),
            Err(e) => Err(e),
        };
        match receipt {
            Ok(r) => {
                // A store failure ends the round; the next one tries again.
                let done = AnchorState {
                    last_attempt_at: state.last_attempt_at,
                    ..AnchorState::default()
                };
                off_runtime(|| {
                    store.add_receipt(cp.size, &r)?;
                    write_state(store, kind, target, &done)
                })?;
                out.push(outcome("anchored", None));
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(e.to_string());
                state.last_error_size = Some(cp.size);
                state.retry_after_unix = unix_now() + backoff(state.failures).as_secs();
                off_runtime(|| write_state(store, kind, target, &state))?;
                out.push(outcome("failed", Some(e.to_string())));
            }
        }
    }
    Ok(out)
}

/// Runs `f` (a store call) on a thread of its own and waits for it. [`anchor_pending`] runs on
/// its caller's async runtime, and a store may be a blocking client that must not run on a
/// runtime's thread: the sync `postgres` client drives a runtime of its own and panics
/// ("Cannot start a runtime from within a runtime") inside another. A fresh thread carries no
/// runtime context. The wait blocks the runtime's thread as the call itself would have.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The ledger's consistency proofs, each computed off the runtime's thread (see
/// [`off_runtime`]): an anchor asks for them from inside its async `submit`.
struct OffRuntime<'a>(&'a Ledger);

impl ConsistencyProver for OffRuntime<'_> {
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        off_runtime(|| ConsistencyProver::consistency_proof(self.0, old_size, new_size))
    }
}
