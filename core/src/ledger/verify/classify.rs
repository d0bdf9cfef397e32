//! Row classification: the flags the chunk scan raised on rows, turned into violations, working
//! out whether a row was altered, moved, inserted or deleted, or whether its Merkle leaf is what
//! is wrong.

use super::scan::to_hash;
use super::{
    BEYOND_HEAD, CHAIN_BAD, GENESIS_BAD, LINK_BAD, MALFORMED, NO_TILE, TILE_BAD, Violation,
    ViolationKind, v,
};
use crate::error::Result;
use crate::ledger::entry::EntryRef;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::store::LedgerStore;
use crate::ledger::tiles::{TILE_WIDTH, Tile};
use std::collections::{HashMap, HashSet};

/// What [`classify_rows`] needs to know about the rest of the ledger.
pub(super) struct RowContext<'a> {
    /// The head's size.
    pub(super) size: u64,
    /// The largest signed checkpoint size.
    pub(super) signed_max: u64,
    /// Leaf tiles (by index) whose root equals the stored hash in the tile above them.
    pub(super) confirmed: &'a HashSet<u64>,
}

/// Turns row flags into violations, working out what happened to rows that disagree with the
/// Merkle tree or the chain: a row that holds another index's entry (found by its chain hash, or
/// by its fields one place off) is reordered, unless it starts a run shifted down over a deleted
/// entry; an unknown row followed by a row holding its entry was inserted; a row that differs from
/// a leaf tile the tree above confirms was altered (even if its chain hashes were recomputed);
/// anything else was altered, or is a bad tile.
pub(super) fn classify_rows(
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
