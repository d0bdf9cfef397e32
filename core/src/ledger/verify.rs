//! Full verification of a stored ledger: every row, the hash chain, the stored Merkle tiles,
//! every checkpoint's signature and root, and anchor receipts.
//!
//! Integrity findings are values ([`Violation`]) with a kind and the exact index, never errors.
//! Rows are checked in parallel chunks (each worker reads its own range), so verification scales
//! with cores; everything a chunk needs from its neighbours (the chain link across the border,
//! gaps) is stitched together afterwards.

use crate::error::{Error, Result};
use crate::ledger::anchor::Anchor;
use crate::ledger::checkpoint::{Checkpoint, CheckpointRecord};
use crate::ledger::entry::{EntryRef, now_timestamp};
use crate::ledger::hash::{HASH_LEN, Hash, Hasher};
use crate::ledger::merkle::{self, perfect_root};
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use crate::ledger::store::{IntegrityCheck, LedgerStore};
use crate::ledger::tiles::{TILE_HEIGHT, TILE_WIDTH, Tile, TileNodes};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    /// A sentence for humans.
    pub message: String,
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
    /// Receipts of anchor kinds not configured for this run (not checked).
    pub receipts_unchecked: u64,
    /// Violations by index order (at most [`MAX_LISTED_VIOLATIONS`]).
    pub violations: Vec<Violation>,
    /// Total violations per kind.
    pub violation_counts: std::collections::BTreeMap<ViolationKind, u64>,
    /// Hash algorithm.
    pub hasher: &'static str,
    /// Origin recorded for the ledger.
    pub origin: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

impl VerifyReport {
    /// The first violation by index, if any.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }
}

/// Progress callback: called with the number of rows checked so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What to verify with.
#[derive(Default)]
pub struct VerifyOptions {
    /// Keys trusted to sign checkpoints (at least one is needed to check signatures).
    pub verifiers: Vec<Box<dyn Verifier>>,
    /// Anchors whose receipts to check.
    pub anchors: Vec<Arc<dyn Anchor>>,
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

#[derive(Default)]
struct ChunkResult {
    rows: u64,
    first: Option<(u64, Hash)>,
    last: Option<(u64, Hash)>,
    flagged: Vec<(u64, u8)>,
    gaps: Vec<(u64, u64)>,
    full_tile_roots: Vec<(u64, Hash)>,
    bad_tiles: Vec<Violation>,
    /// Chain hash of the row the head names as the last (index `size - 1`), if in this chunk.
    head_row_hash: Option<Hash>,
}

fn to_hash(b: &[u8]) -> Option<Hash> {
    (b.len() == HASH_LEN).then(|| Hash(b.try_into().expect("32")))
}

fn scan_chunk(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    size: u64,
    a: u64,
    b: u64,
    progress: &dyn Fn(u64),
) -> Result<ChunkResult> {
    let mut res = ChunkResult::default();
    // Level-0 tiles for the part of this chunk inside the tree.
    let tile_lo = a / TILE_WIDTH as u64;
    let tile_hi = b.min(size).div_ceil(TILE_WIDTH as u64);
    let mut tiles: Vec<Option<Vec<Hash>>> = vec![None; (tile_hi.saturating_sub(tile_lo)) as usize];
    if tile_hi > tile_lo {
        store.scan_tiles(0, tile_lo..tile_hi, &mut |i, bytes| {
            match Tile::decode(bytes) {
                Ok(t) => tiles[(i - tile_lo) as usize] = Some(t),
                Err(e) => res.bad_tiles.push(Violation {
                    kind: ViolationKind::BadTile,
                    index: Some(i * TILE_WIDTH as u64),
                    checkpoint: None,
                    message: format!("tile (0, {i}): {e}"),
                }),
            }
            Ok(())
        })?;
    }
    for (k, t) in tiles.iter().enumerate() {
        if let Some(t) = t
            && t.len() == TILE_WIDTH
        {
            res.full_tile_roots
                .push((tile_lo + k as u64, perfect_root(hasher, t)));
        }
    }
    let mut buf = Vec::with_capacity(1024);
    let mut prev_row: Option<(u64, Hash)> = None;
    let mut expect = a;
    let mut since_progress = 0u64;
    store.scan_entries(a..b, &mut |row| {
        let idx = row.entry.index;
        res.rows += 1;
        if idx > expect {
            res.gaps.push((expect, idx));
        }
        expect = idx + 1;
        let mut flags = 0u8;
        let (Some(prev), Some(hash)) = (to_hash(row.prev_hash), to_hash(row.hash)) else {
            res.flagged.push((idx, MALFORMED));
            prev_row = None;
            return Ok(());
        };
        if idx.checked_add(1) == Some(size) {
            res.head_row_hash = Some(hash);
        }
        let leaf = row.entry.leaf_hash(hasher, &mut buf);
        if hasher.chain(&prev, &leaf) != hash {
            flags |= CHAIN_BAD;
        }
        match prev_row {
            Some((p, h)) if p + 1 == idx && h != prev => flags |= LINK_BAD,
            None if idx == 0 && prev != Hash::ZERO => flags |= GENESIS_BAD,
            _ => {}
        }
        if idx >= size {
            flags |= BEYOND_HEAD;
        } else {
            let t = &tiles[(idx / TILE_WIDTH as u64 - tile_lo) as usize];
            match t
                .as_ref()
                .and_then(|t| t.get((idx % TILE_WIDTH as u64) as usize))
            {
                Some(l) if *l == leaf => {}
                Some(_) => flags |= TILE_BAD,
                None => flags |= NO_TILE,
            }
        }
        if res.first.is_none() {
            res.first = Some((idx, prev));
        }
        res.last = Some((idx, hash));
        prev_row = Some((idx, hash));
        if flags != 0 {
            res.flagged.push((idx, flags));
        }
        since_progress += 1;
        if since_progress == 8192 {
            progress(since_progress);
            since_progress = 0;
        }
        Ok(())
    })?;
    progress(since_progress);
    if res.first.is_none() && res.rows > 0 {
        // Every row was malformed; keep the border logic quiet.
        res.first = None;
    }
    Ok(res)
}

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
        message,
    }
}

/// Verifies the whole ledger in `store` and, if asked, records the run.
pub fn verify_store(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let started_at = now_timestamp();
    let result = verify_inner(store, hasher, origin, options, started);
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
    result
}

fn verify_inner(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
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
                        mine.push((c, scan_chunk(store, hasher, size, a, b, &progress)));
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

    let mut counts = std::collections::BTreeMap::new();
    for x in &out {
        *counts.entry(x.kind).or_insert(0u64) += 1;
    }
    out.sort_by(|x, y| {
        (x.index.unwrap_or(u64::MAX), x.kind).cmp(&(y.index.unwrap_or(u64::MAX), y.kind))
    });
    out.truncate(MAX_LISTED_VIOLATIONS);
    Ok(VerifyReport {
        valid: counts.is_empty(),
        tree_size: size,
        entries_checked,
        checkpoints_checked: checkpoints.len() as u64,
        receipts_checked,
        receipts_unchecked,
        violations: out,
        violation_counts: counts,
        hasher: hasher.algorithm().name(),
        origin: origin.map(str::to_owned),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// What [`classify_rows`] needs to know about the rest of the ledger.
struct RowContext<'a> {
    /// The head's size.
    size: u64,
    /// The largest signed checkpoint size.
    signed_max: u64,
    /// Leaf tiles (by index) whose root equals the stored hash in the tile above them.
    confirmed: &'a HashSet<u64>,
}

/// Turns row flags into violations, working out what happened to rows that disagree with the
/// Merkle tree or the chain: a row that holds another index's entry (found by its chain hash, or
/// by its fields one place off) is reordered, unless it starts a run shifted down over a deleted
/// entry; an unknown row followed by a row holding its entry was inserted; a row that differs from
/// a leaf tile the tree above confirms was altered (even if its chain hashes were recomputed);
/// anything else was altered, or is a bad tile.
fn classify_rows(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    ctx: RowContext<'_>,
    flagged: &[(u64, u8)],
    out: &mut Vec<Violation>,
) -> Result<()> {
    if flagged.is_empty() {
        return Ok(());
    }
    let size = ctx.size;
    let needs_diagnosis = flagged.iter().any(|(_, f)| f & CHAIN_BAD != 0);
    // Expected chain, recomputed from the stored Merkle leaves: chain hash -> index.
    let mut expected: HashMap<Hash, u64> = HashMap::new();
    let mut tile_leaf: HashMap<u64, Hash> = HashMap::new();
    if needs_diagnosis {
        let mut prev = Hash::ZERO;
        let mut i = 0u64;
        store.scan_tiles(0, 0..size.div_ceil(TILE_WIDTH as u64), &mut |ti, bytes| {
            let Ok(t) = Tile::decode(bytes) else {
                return Ok(());
            };
            if ti * TILE_WIDTH as u64 != i {
                return Ok(()); // a missing tile breaks the recomputed chain; stop mapping
            }
            for l in t {
                if i >= size {
                    break;
                }
                prev = hasher.chain(&prev, &l);
                expected.insert(prev, i);
                tile_leaf.insert(i, l);
                i += 1;
            }
            Ok(())
        })?;
    }
    // The stored Merkle leaf of index `j`, from the map above or read from its tile.
    let mut leaf_tiles: HashMap<u64, Option<Vec<Hash>>> = HashMap::new();
    let mut tree_leaf = |j: u64| -> Option<Hash> {
        if j >= size {
            return None;
        }
        if let Some(l) = tile_leaf.get(&j) {
            return Some(*l);
        }
        let ti = j / TILE_WIDTH as u64;
        leaf_tiles
            .entry(ti)
            .or_insert_with(|| store.read_tile(0, ti).ok().flatten())
            .as_ref()
            .and_then(|t| t.get((j % TILE_WIDTH as u64) as usize).copied())
    };
    let flag_of: HashMap<u64, u8> = flagged.iter().copied().collect();
    let mut holds: HashMap<u64, Option<u64>> = HashMap::new();
    let mut appended_past_head = std::collections::HashSet::new();
    let mut buf = Vec::new();
    for &(idx, f) in flagged {
        if f & MALFORMED != 0 || f & (CHAIN_BAD | TILE_BAD | NO_TILE | BEYOND_HEAD) == 0 {
            continue;
        }
        // Copy the row out, so no tile is read while the store streams it.
        let mut row: Option<([String; 4], Vec<u8>)> = None;
        store.scan_entries(idx..idx.saturating_add(1), &mut |r| {
            let e = r.entry;
            row = Some((
                [e.timestamp, e.project, e.action, e.detail].map(str::to_owned),
                r.hash.to_vec(),
            ));
            Ok(())
        })?;
        let Some(([timestamp, project, action, detail], hash)) = row else {
            continue;
        };
        // Where the entry in this row belongs: the index its chain hash names, or one place off
        // (rows shifted by an insertion or a deletion, with or without recomputed chain hashes).
        // The second needs the row's leaf tile to be undisputed: where the tile above rejects
        // it, a neighbour with identical fields would otherwise pass a bad tile off as a shift.
        let by_chain = to_hash(&hash)
            .and_then(|h| expected.get(&h).copied())
            .filter(|&j| j != idx);
        let ti = idx / TILE_WIDTH as u64;
        let disputed = ti < size / TILE_WIDTH as u64 && !ctx.confirmed.contains(&ti);
        let (below, above) = if disputed {
            (None, None)
        } else {
            (idx.checked_sub(1), idx.checked_add(1))
        };
        if f & BEYOND_HEAD != 0 {
            // A row past the head whose leaf is in the stored tree was appended: the head, not
            // the row, is what changed.
            let own = EntryRef {
                index: idx,
                timestamp: &timestamp,
                project: &project,
                action: &action,
                detail: &detail,
            }
            .leaf_hash(hasher, &mut buf);
            let stored = store
                .read_tile(0, idx / TILE_WIDTH as u64)
                .ok()
                .flatten()
                .and_then(|t| t.get((idx % TILE_WIDTH as u64) as usize).copied());
            if stored == Some(own) {
                appended_past_head.insert(idx);
            }
        }
        let candidates = [by_chain, below, above];
        let held = candidates.into_iter().flatten().find(|&j| {
            let moved = EntryRef {
                index: j,
                timestamp: &timestamp,
                project: &project,
                action: &action,
                detail: &detail,
            };
            tree_leaf(j) == Some(moved.leaf_hash(hasher, &mut buf))
        });
        holds.insert(idx, held);
    }
    let held_by = |i: u64| holds.get(&i).copied().flatten();
    for &(idx, f) in flagged {
        let prev_flag = idx
            .checked_sub(1)
            .and_then(|p| flag_of.get(&p))
            .copied()
            .unwrap_or(0);
        let off_tree = f & (CHAIN_BAD | TILE_BAD | NO_TILE | BEYOND_HEAD) != 0;
        let next = idx.saturating_add(1);
        let (kind, msg) = if f & MALFORMED != 0 {
            (
                ViolationKind::AlteredEntry,
                format!("entry {idx}: stored hash columns are not 32 bytes"),
            )
        } else if let Some(j) = held_by(idx) {
            let run_starts_here = idx.checked_sub(1).and_then(held_by) != Some(idx);
            if j == next && held_by(next) != Some(idx) && run_starts_here {
                (
                    ViolationKind::MissingEntry,
                    format!(
                        "entry {idx} is missing: row {idx} holds entry {j} (the rows after a \
                         deleted entry were moved down)"
                    ),
                )
            } else {
                (
                    ViolationKind::ReorderedEntry,
                    format!("row {idx} holds entry {j} (rows were swapped or shifted)"),
                )
            }
        } else if off_tree && held_by(next) == Some(idx) {
            (
                ViolationKind::InsertedEntry,
                format!("row {idx} was never appended; the rows after it are shifted by one"),
            )
        } else if f & BEYOND_HEAD != 0 && appended_past_head.contains(&idx) {
            (
                ViolationKind::Truncated,
                format!(
                    "the ledger head was moved back: it records {size} entries, but row {idx} \
                     holds an appended entry (its leaf is in the stored tree)"
                ),
            )
        } else if f & BEYOND_HEAD != 0 {
            (
                ViolationKind::InsertedEntry,
                format!("row {idx} is past the ledger head ({size} entries) and in no Merkle tree"),
            )
        } else if f & CHAIN_BAD != 0 {
            (
                ViolationKind::AlteredEntry,
                format!(
                    "entry {idx} was altered: its fields or hashes do not match its chain hash"
                ),
            )
        } else if f & (TILE_BAD | NO_TILE) != 0 && f & LINK_BAD != 0 {
            (
                ViolationKind::AlteredEntry,
                format!(
                    "entry {idx} was replaced: it differs from the Merkle tree and breaks the chain"
                ),
            )
        } else if f & TILE_BAD != 0 && ctx.confirmed.contains(&(idx / TILE_WIDTH as u64)) {
            // The leaf tile agrees with the tree above it; the row does not: the row was altered
            // and its chain hashes recomputed.
            (
                ViolationKind::AlteredEntry,
                format!(
                    "entry {idx} was altered: it differs from its Merkle leaf, which the tree \
                     above confirms (its chain hashes were recomputed)"
                ),
            )
        } else if f & TILE_BAD != 0 {
            (
                ViolationKind::BadTile,
                format!("the stored Merkle leaf of entry {idx} differs from the entry"),
            )
        } else if f & NO_TILE != 0 && idx >= ctx.signed_max {
            // The ledger stores a row and its leaf in one transaction; a row past every signed
            // checkpoint without a leaf was written around it.
            (
                ViolationKind::InsertedEntry,
                format!(
                    "row {idx} has no Merkle leaf and no checkpoint covers it: the ledger never \
                     appended it"
                ),
            )
        } else if f & NO_TILE != 0 {
            (
                ViolationKind::BadTile,
                format!("no stored Merkle leaf covers entry {idx}"),
            )
        } else if f & LINK_BAD != 0 {
            if prev_flag & (CHAIN_BAD | MALFORMED) != 0 {
                continue; // consequence of the altered row before it
            }
            (
                ViolationKind::BrokenChain,
                format!(
                    "entry {idx}: prev_hash does not equal the hash of entry {}",
                    idx - 1
                ),
            )
        } else if f & GENESIS_BAD != 0 {
            (
                ViolationKind::BrokenChain,
                "entry 0: prev_hash is not all zeros".to_owned(),
            )
        } else {
            continue;
        };
        out.push(v(kind, Some(idx), None, msg));
    }
    Ok(())
}

fn check_upper_tiles(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    size: u64,
    mut below: Vec<(u64, Hash)>,
    out: &mut Vec<Violation>,
) -> Result<HashSet<u64>> {
    // Leaf tiles whose root equals the stored hash in the level-1 tile.
    let mut confirmed = HashSet::new();
    let mut level = 1u8;
    loop {
        let count = size
            .checked_shr(TILE_HEIGHT as u32 * level as u32)
            .unwrap_or(0);
        if count == 0 {
            return Ok(confirmed);
        }
        let expected: HashMap<u64, Hash> = below.iter().copied().collect();
        let mut roots = Vec::new();
        let mut seen = Vec::new();
        let n_tiles = count.div_ceil(TILE_WIDTH as u64);
        store.scan_tiles(level, 0..n_tiles, &mut |ti, bytes| {
            seen.push(ti);
            let t = match Tile::decode(bytes) {
                Ok(t) => t,
                Err(e) => {
                    out.push(v(
                        ViolationKind::BadTile,
                        Some(ti << (TILE_HEIGHT * (level + 1))),
                        None,
                        format!("tile ({level}, {ti}): {e}"),
                    ));
                    return Ok(());
                }
            };
            let want = ((count - ti * TILE_WIDTH as u64).min(TILE_WIDTH as u64)) as usize;
            for (k, h) in t.iter().enumerate().take(want) {
                let j = ti * TILE_WIDTH as u64 + k as u64;
                if expected.get(&j) != Some(h) {
                    out.push(v(
                        ViolationKind::BadTile,
                        Some(j << (TILE_HEIGHT * level)),
                        None,
                        format!("tile ({level}, {ti}) hash {k} does not match the tile below it"),
                    ));
                } else if level == 1 {
                    confirmed.insert(j);
                }
            }
            if t.len() < want {
                out.push(v(
                    ViolationKind::BadTile,
                    Some(ti << (TILE_HEIGHT * (level + 1))),
                    None,
                    format!(
                        "tile ({level}, {ti}) is short: {} of {want} hashes",
                        t.len()
                    ),
                ));
            }
            if t.len() == TILE_WIDTH {
                roots.push((ti, perfect_root(hasher, &t)));
            }
            Ok(())
        })?;
        // Tiles come in index order; report each missing one where its entries start.
        let mut next = seen.into_iter().peekable();
        for ti in 0..n_tiles {
            if next.next_if_eq(&ti).is_none() {
                out.push(v(
                    ViolationKind::BadTile,
                    Some(ti << (TILE_HEIGHT * (level + 1))),
                    None,
                    format!("tile ({level}, {ti}) is missing"),
                ));
            }
        }
        below = roots;
        level += 1;
    }
}

fn check_checkpoints(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    checkpoints: &[CheckpointRecord],
    rows_end: u64,
    out: &mut Vec<Violation>,
) -> (u64, u64) {
    let verifiers: Vec<&dyn Verifier> = options.verifiers.iter().map(|b| &**b).collect();
    let nodes = TileNodes::new(store, hasher);
    let (mut checked, mut unchecked) = (0, 0);
    let mut prev: Option<&CheckpointRecord> = None;
    for cp in checkpoints {
        // A checkpoint's first index is where the previous one ended (not the stored
        // range_start column, which may itself be what was tampered with).
        let at = Some(prev.map_or(0, |p| p.size));
        let cps = Some(cp.size);
        let mut push = |kind, msg: String| out.push(v(kind, at, cps, msg));
        let label = format!(
            "checkpoint {} (entries {}..{})",
            cp.size, cp.range_start, cp.size
        );
        if let Some(p) = prev {
            if cp.size <= p.size {
                push(
                    ViolationKind::InconsistentCheckpoints,
                    format!("{label} does not grow past checkpoint {}", p.size),
                );
            } else if cp.range_start != p.size || cp.range_count != cp.size - cp.range_start {
                push(
                    ViolationKind::InconsistentCheckpoints,
                    format!(
                        "{label} records range start {} count {}, but the previous checkpoint ended at {}",
                        cp.range_start, cp.range_count, p.size
                    ),
                );
            }
        } else if cp.range_start != 0 || cp.range_count != cp.size {
            push(
                ViolationKind::InconsistentCheckpoints,
                format!(
                    "{label} is the first checkpoint but records range start {}",
                    cp.range_start
                ),
            );
        }
        prev = Some(cp);
        let note = match SignedNote::parse(cp.note.as_bytes()) {
            Ok(n) => n,
            Err(e) => {
                push(ViolationKind::BadSignature, format!("{label}: {e}"));
                continue;
            }
        };
        if verifiers.is_empty() {
            push(
                ViolationKind::BadSignature,
                format!("{label}: no verifier key was given, so its signature cannot be trusted"),
            );
        } else if let Err(e) = note.verify(&verifiers) {
            push(ViolationKind::BadSignature, format!("{label}: {e}"));
        }
        let body = match Checkpoint::parse(&note.text) {
            Ok(b) => b,
            Err(e) => {
                push(ViolationKind::BadSignature, format!("{label}: {e}"));
                continue;
            }
        };
        if origin.is_some_and(|o| o != body.origin) || !body.extensions.is_empty() {
            push(
                ViolationKind::BadSignature,
                format!(
                    "{label}: signed origin {:?} is not this ledger's",
                    body.origin
                ),
            );
        }
        if body.size != cp.size || body.root != cp.root {
            push(
                ViolationKind::BadRoot,
                format!("{label}: the stored size/root columns differ from the signed note"),
            );
        }
        if body.size <= rows_end {
            match merkle::root(&nodes, hasher, body.size) {
                Ok(r) if r == body.root => {}
                Ok(r) => push(
                    ViolationKind::BadRoot,
                    format!(
                        "{label}: signed root {} but the entries give {}",
                        body.root.to_base64(),
                        r.to_base64()
                    ),
                ),
                Err(e) => push(
                    ViolationKind::BadRoot,
                    format!("{label}: root cannot be recomputed: {e}"),
                ),
            }
        }
        for rc in &cp.receipts {
            match options.anchors.iter().find(|a| a.kind() == rc.anchor) {
                Some(a) => {
                    checked += 1;
                    if let Err(e) = a.verify_receipt(&cp.note, rc) {
                        push(
                            ViolationKind::BadReceipt,
                            format!("{label}: {} receipt from {}: {e}", rc.anchor, rc.target),
                        );
                    }
                }
                None => unchecked += 1,
            }
        }
    }
    (checked, unchecked)
}

impl From<&Violation> for Error {
    fn from(v: &Violation) -> Error {
        Error::integrity(v.message.clone())
    }
}
