//! Full verification of a stored ledger: every row, the hash chain, the stored Merkle tiles,
//! every checkpoint's signature and root, and anchor receipts.
//!
//! Integrity findings are values ([`Violation`]) with a kind and the exact index, never errors.
//! Rows are checked in parallel chunks (each worker reads its own range), so verification scales
//! with cores; everything a chunk needs from its neighbours (the chain link across the border,
//! gaps) is stitched together afterwards.
//!
//! This module holds the report types and [`verify_store`], which runs the steps in order; the
//! steps live in `scan` (the parallel chunk scan), `upper_tiles` (tiles above level 0),
//! `classify` (what happened to flagged rows) and `checkpoints` (signed checkpoints and
//! receipts).

mod checkpoints;
mod classify;
mod scan;
mod upper_tiles;

use crate::error::{Error, Result};
use crate::ledger::anchor::Anchor;
use crate::ledger::entry::{EntryRef, now_timestamp};
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::signer::Verifier;
use crate::ledger::store::{IntegrityCheck, LedgerStore};
use checkpoints::check_checkpoints;
use classify::{RowContext, classify_rows};
use scan::{ChunkResult, scan_chunk};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use upper_tiles::check_upper_tiles;

/// The kinds of tampering `verify` reports.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A row's fields or hashes were changed: it no longer hashes to its chain link.
    AlteredEntry,
    /// A row's `prev_hash` does not equal the previous row's `hash`.
    BrokenChain,
    /// Rows are missing inside the ledger (deleted).
    MissingEntry,
    /// A row holds the entry that belongs at another index (rows swapped or shifted).
    ReorderedEntry,
    /// A row that the ledger never appended (inserted between or after real rows).
    InsertedEntry,
    /// The ledger ends before its head or a signed checkpoint says it should.
    Truncated,
    /// A stored Merkle tile disagrees with the entries or with the tile below it.
    BadTile,
    /// A checkpoint's root does not match the stored entries.
    BadRoot,
    /// A checkpoint's signature is missing, malformed or invalid.
    BadSignature,
    /// An anchor receipt does not verify against its checkpoint.
    BadReceipt,
    /// Two checkpoints cannot both describe one append-only history.
    InconsistentCheckpoints,
    /// A ledger entry in the agent memory's namespace (`fact.*`) that the memory's rules could
    /// never have written (bad detail, a vote on a missing fact, …). Reported by
    /// [`crate::memory::audit`], like the kinds below.
    InvalidMemoryEntry,
    /// A stored memory value differs from the replay of the ledger.
    MemoryMismatch,
    /// A memory row the ledger defines is not stored (deleted).
    MemoryMissing,
    /// A stored memory row that no ledger entry accounts for (inserted).
    MemoryUnrecorded,
    /// A fact's stored content and salt do not open the commitment in its `fact.store` entry.
    CommitmentMismatch,
}

impl ViolationKind {
    /// The snake_case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::AlteredEntry => "altered_entry",
            ViolationKind::BrokenChain => "broken_chain",
            ViolationKind::MissingEntry => "missing_entry",
            ViolationKind::ReorderedEntry => "reordered_entry",
            ViolationKind::InsertedEntry => "inserted_entry",
            ViolationKind::Truncated => "truncated",
            ViolationKind::BadTile => "bad_tile",
            ViolationKind::BadRoot => "bad_root",
            ViolationKind::BadSignature => "bad_signature",
            ViolationKind::BadReceipt => "bad_receipt",
            ViolationKind::InconsistentCheckpoints => "inconsistent_checkpoints",
            ViolationKind::InvalidMemoryEntry => "invalid_memory_entry",
            ViolationKind::MemoryMismatch => "memory_mismatch",
            ViolationKind::MemoryMissing => "memory_missing",
            ViolationKind::MemoryUnrecorded => "memory_unrecorded",
            ViolationKind::CommitmentMismatch => "commitment_mismatch",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// What is wrong.
    pub kind: ViolationKind,
    /// The entry index it concerns (for checkpoint findings, the checkpoint's first index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The size of the checkpoint it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    /// For agent-memory findings, the row and column concerned (`index` is then the ledger
    /// entry that defines the true value).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryRef>,
    /// A sentence for humans.
    pub message: String,
}

/// The stored memory row and column a finding concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryRef {
    /// The table (`facts`, `fact_votes`, `agents`, `fact_events`, `fact_openings`,
    /// `search_index`).
    pub table: &'static str,
    /// The fact, if the row is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fact_id: Option<u64>,
    /// The agent, if the row is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The column, if one value differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'static str>,
}

/// Most violations listed in a report; the counts cover all of them.
pub const MAX_LISTED_VIOLATIONS: usize = 1000;

/// The outcome of a verification run.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// True if no violation was found.
    pub valid: bool,
    /// The ledger head's size.
    pub tree_size: u64,
    /// Rows read.
    pub entries_checked: u64,
    /// Checkpoints checked.
    pub checkpoints_checked: u64,
    /// Receipts verified by a configured anchor.
    pub receipts_checked: u64,
    /// Receipts of anchors not configured for this run (not checked).
    pub receipts_unchecked: u64,
    /// Where each anchor the policy lists stands: anchored up to which checkpoint, pending or
    /// failing (not violations: an anchor that is down never makes the ledger invalid).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<crate::ledger::anchoring::AnchorStatus>,
    /// Violations by index order (at most [`MAX_LISTED_VIOLATIONS`]).
    pub violations: Vec<Violation>,
    /// Total violations per kind.
    pub violation_counts: std::collections::BTreeMap<ViolationKind, u64>,
    /// What was checked of the agent memory, when it was ([`crate::memory::audit`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryChecked>,
    /// Hash algorithm.
    pub hasher: &'static str,
    /// Origin recorded for the ledger.
    pub origin: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

impl VerifyReport {
    /// Adds findings: counts them, and keeps the listed ones in index order (at most
    /// [`MAX_LISTED_VIOLATIONS`]).
    pub fn add(&mut self, found: Vec<Violation>) {
        for x in &found {
            *self.violation_counts.entry(x.kind).or_insert(0u64) += 1;
        }
        self.violations.extend(found);
        self.violations.sort_by(|x, y| {
            (x.index.unwrap_or(u64::MAX), x.kind).cmp(&(y.index.unwrap_or(u64::MAX), y.kind))
        });
        self.violations.truncate(MAX_LISTED_VIOLATIONS);
        self.valid = self.violation_counts.is_empty();
    }

    /// The first violation by index, if any.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }
}

/// What the agent-memory part of a verification checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryChecked {
    /// Memory entries replayed.
    pub entries_replayed: u64,
    /// Facts the ledger defines.
    pub facts: u64,
    /// Of those, facts erased by a `fact.erase` entry (their content is gone by design).
    pub facts_erased: u64,
    /// Stored openings checked against their commitments.
    pub commitments_checked: u64,
    /// Current votes.
    pub votes: u64,
    /// Agents with a reputation record.
    pub agents: u64,
}

/// Progress callback: called with the number of rows checked so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What to verify with.
#[derive(Default)]
pub struct VerifyOptions {
    /// Keys trusted to sign checkpoints (at least one is needed to check signatures).
    pub verifiers: Vec<Box<dyn Verifier>>,
    /// Anchors whose receipts to check (matched to receipts by kind and target).
    pub anchors: Vec<Arc<dyn Anchor>>,
    /// The ledger's policy: when set, every checkpoint's signatures (note lines and detached
    /// ones) are checked against it instead of against `verifiers`, and the anchors it lists
    /// are reported with their status.
    pub policy: Option<Arc<crate::ledger::policy::Policy>>,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Progress reporting.
    pub progress: Option<Progress>,
    /// Record the run in `integrity_checks` (default on in the CLI).
    pub record: bool,
}

/// Rows per parallel chunk (a multiple of the tile width, and a perfect subtree).
const CHUNK: u64 = 1 << 14;

const CHAIN_BAD: u8 = 1;
const LINK_BAD: u8 = 2;
const TILE_BAD: u8 = 4;
const BEYOND_HEAD: u8 = 8;
const MALFORMED: u8 = 16;
const GENESIS_BAD: u8 = 32;
const NO_TILE: u8 = 64;

fn v(
    kind: ViolationKind,
    index: Option<u64>,
    checkpoint: Option<u64>,
    message: String,
) -> Violation {
    Violation {
        kind,
        index,
        checkpoint,
        memory: None,
        message,
    }
}

/// What a [`verify_ledger`] caller takes from the rows as the scan reads them: the scan reads
/// every row anyway, so a caller that checks something derived from some entries (the agent
/// memory) gets them without a second pass, and does its per-entry work in the scan's
/// parallel workers.
pub trait Take: Sync {
    /// What is taken from a row.
    type Item: Send;
    /// The item made of `row` (as stored, whatever its violations), or `None` to skip it.
    /// Called in the scan's worker threads.
    fn take(&self, row: EntryRef<'_>) -> Option<Self::Item>;
    /// One chunk's items, in index order, as soon as the chunk is read. Chunks are numbered
    /// from 0 in index order and come in any order, each once, with or without items; a chunk
    /// that could not be read is not handed on (the verification then fails).
    fn chunk(&self, chunk: u64, items: Vec<Self::Item>);
}

/// Takes nothing.
struct TakeNothing;

impl Take for TakeNothing {
    type Item = ();
    fn take(&self, _: EntryRef<'_>) -> Option<()> {
        None
    }
    fn chunk(&self, _: u64, _: Vec<()>) {}
}

/// Verifies the whole ledger in `store` and, if asked, records the run.
pub fn verify_store(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let started_at = now_timestamp();
    let result = verify_ledger(store, hasher, origin, options, &TakeNothing);
    record_run(store, options, started_at, &result)?;
    result
}

/// Verifies the whole ledger in `store` without recording the run, handing what `take` takes
/// of each row to it as the scan goes.
pub fn verify_ledger<T: Take>(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    take: &T,
) -> Result<VerifyReport> {
    verify_inner(store, hasher, origin, options, take, Instant::now())
}

/// Records a verification run that started at `started_at` in `integrity_checks`, if
/// `options.record` asks for it.
pub fn record_run(
    store: &dyn LedgerStore,
    options: &VerifyOptions,
    started_at: String,
    result: &Result<VerifyReport>,
) -> Result<()> {
    if options.record {
        let (status, details) = match &result {
            Ok(r) => (
                if r.valid { "ok" } else { "violation" },
                serde_json::json!({
                    "tree_size": r.tree_size,
                    "entries_checked": r.entries_checked,
                    "checkpoints_checked": r.checkpoints_checked,
                    "violation_counts": r.violation_counts,
                    "violations": r.violations.iter().take(100).collect::<Vec<_>>(),
                }),
            ),
            Err(e) => ("error", serde_json::json!({ "error": e.to_string() })),
        };
        store.record_integrity_check(&IntegrityCheck {
            check_type: "full".into(),
            status: status.into(),
            details: details.to_string(),
            started_at,
            completed_at: now_timestamp(),
        })?;
    }
    Ok(())
}

fn verify_inner<T: Take>(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    take: &T,
    started: Instant,
) -> Result<VerifyReport> {
    let head = store.head()?;
    let size = head.size;
    let max_idx = store.last_entry_index()?;
    let scan_end = size.max(max_idx.map_or(0, |m| m.saturating_add(1)));
    let checkpoints = store.checkpoints()?;
    let mut out: Vec<Violation> = Vec::new();

    // 1. Rows, in parallel chunks.
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        options.threads
    };
    let n_chunks = scan_end.div_ceil(CHUNK);
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let progress = |k: u64| {
        let d = done.fetch_add(k, Ordering::Relaxed) + k;
        if let Some(p) = &options.progress {
            p(d);
        }
    };
    let mut results: Vec<(u64, Result<ChunkResult>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(n_chunks.max(1) as usize))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= n_chunks {
                            return mine;
                        }
                        let a = c * CHUNK;
                        let b = (a + CHUNK).min(scan_end);
                        let r = scan_chunk(store, hasher, size, a, b, take, &progress);
                        mine.push((
                            c,
                            r.map(|(r, items)| {
                                take.chunk(c, items);
                                r
                            }),
                        ));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("verify worker panicked"))
            .collect()
    });
    results.sort_by_key(|(c, _)| *c);
    let chunks: Vec<ChunkResult> = results.into_iter().map(|(_, r)| r).collect::<Result<_>>()?;

    // 2. Stitch chunks: gaps and links across borders, then classify flagged rows.
    let mut entries_checked = 0;
    let mut flagged: Vec<(u64, u8)> = Vec::new();
    let mut gaps: Vec<(u64, u64)> = Vec::new();
    let mut last: Option<(u64, Hash)> = None;
    let mut level_roots: Vec<(u64, Hash)> = Vec::new();
    let mut head_row_hash = None;
    for (c, r) in chunks.into_iter().enumerate() {
        entries_checked += r.rows;
        head_row_hash = head_row_hash.or(r.head_row_hash);
        let a = c as u64 * CHUNK;
        let mut chunk_gaps = r.gaps;
        if let Some((first_idx, first_prev)) = r.first {
            let border_link_bad =
                matches!(last, Some((li, lh)) if li + 1 == first_idx && lh != first_prev);
            if border_link_bad {
                flagged.push((first_idx, LINK_BAD));
            }
            if first_idx == 0 && first_prev != Hash::ZERO {
                flagged.push((0, GENESIS_BAD));
            }
        }
        // A chunk's internal gap list starts at `a`; merge with a gap continuing from before.
        if r.rows == 0 {
            chunk_gaps = vec![(a, (a + CHUNK).min(scan_end))];
        }
        for g in chunk_gaps {
            match gaps.last_mut() {
                Some(prev) if prev.1 == g.0 => prev.1 = g.1,
                _ => gaps.push(g),
            }
        }
        if let Some(l) = r.last {
            last = Some(l);
            // Rows after the last one of this chunk, up to its end, are missing.
            let end = (a + CHUNK).min(scan_end);
            if l.0 + 1 < end {
                match gaps.last_mut() {
                    Some(prev) if prev.1 == l.0 + 1 => prev.1 = end,
                    _ => gaps.push((l.0 + 1, end)),
                }
            }
        }
        flagged.extend(r.flagged);
        out.extend(r.bad_tiles);
        level_roots.extend(r.full_tile_roots);
    }
    flagged.sort_by_key(|f| f.0);
    // Merge duplicate flags for one index.
    let mut merged: Vec<(u64, u8)> = Vec::with_capacity(flagged.len());
    for (i, f) in flagged {
        match merged.last_mut() {
            Some((j, g)) if *j == i => *g |= f,
            _ => merged.push((i, f)),
        }
    }
    // The head's copy of the last chain hash is what the next append links to: it must be the
    // hash of the entry before it (unless that row itself was altered, which is reported there).
    let last_altered = merged
        .iter()
        .any(|&(i, f)| i.checked_add(1) == Some(size) && f & CHAIN_BAD != 0);
    let head_link = match head_row_hash {
        Some(h) if h != head.last_hash && !last_altered => Some(format!(
            "the ledger head records {} as the last chain hash, but entry {} has {}: the next \
             entry would not link to the ledger",
            head.last_hash.to_hex(),
            size - 1,
            h.to_hex()
        )),
        None if size == 0 && head.last_hash != Hash::ZERO => Some(format!(
            "the ledger head records no entries but chain hash {} instead of zeros",
            head.last_hash.to_hex()
        )),
        _ => None,
    };
    if let Some(msg) = head_link {
        out.push(v(ViolationKind::BrokenChain, Some(size), None, msg));
    }
    let last_row = last.map(|l| l.0);
    let rows_end = last_row.map_or(0, |l| l + 1);
    for (s, e) in &gaps {
        if *e >= scan_end && *s >= rows_end {
            continue; // the tail, reported as truncation below
        }
        out.push(v(
            ViolationKind::MissingEntry,
            Some(*s),
            None,
            if e - s == 1 {
                format!("entry {s} is missing (deleted)")
            } else {
                format!("entries {s} to {} are missing (deleted)", e - 1)
            },
        ));
    }
    let signed_max = checkpoints.iter().map(|c| c.size).max().unwrap_or(0);
    let expected_len = size.max(signed_max);
    if rows_end < expected_len {
        let why = if signed_max > rows_end {
            format!("a checkpoint signed {signed_max} entries")
        } else {
            format!("the ledger head records {size} entries")
        };
        out.push(v(
            ViolationKind::Truncated,
            Some(rows_end),
            (signed_max > rows_end).then_some(signed_max),
            format!("the ledger ends at entry {rows_end}, but {why}: entries from {rows_end} on are missing"),
        ));
    }
    // 3. Tiles above level 0: each stored hash must be the root of the full tile below it. The
    // leaf tiles the level above confirms tell an altered row from an altered tile.
    let confirmed = check_upper_tiles(store, hasher, size, level_roots, &mut out)?;
    classify_rows(
        store,
        hasher,
        RowContext {
            size,
            signed_max,
            confirmed: &confirmed,
        },
        &merged,
        &mut out,
    )?;

    // 4. Checkpoints.
    let (receipts_checked, receipts_unchecked) = check_checkpoints(
        store,
        hasher,
        origin,
        options,
        &checkpoints,
        rows_end,
        &mut out,
    );

    let anchors = match &options.policy {
        Some(p) => crate::ledger::anchoring::statuses(store, &checkpoints, &p.anchor_ids())?,
        None => Vec::new(),
    };
    let mut report = VerifyReport {
        valid: true,
        anchors,
        tree_size: size,
        entries_checked,
        checkpoints_checked: checkpoints.len() as u64,
        receipts_checked,
        receipts_unchecked,
        violations: Vec::new(),
        violation_counts: Default::default(),
        memory: None,
        hasher: hasher.algorithm().name(),
        origin: origin.map(str::to_owned),
        elapsed_ms: 0.0,
    };
    report.add(out);
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

impl From<&Violation> for Error {
    fn from(v: &Violation) -> Error {
        Error::integrity(v.message.clone())
    }
}
