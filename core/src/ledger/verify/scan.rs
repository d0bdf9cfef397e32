//! The parallel part of [`verify_store`](super::verify_store): one chunk of rows read and
//! checked on its own (each row against its chain hash, the row before it and its stored Merkle
//! leaf), with what the stitching needs from its borders (first and last chain hashes, gaps) and
//! the roots of its full leaf tiles for the check of the level above.

use super::{
    BEYOND_HEAD, CHAIN_BAD, GENESIS_BAD, LINK_BAD, MALFORMED, NO_TILE, TILE_BAD, Violation,
    ViolationKind,
};
use crate::error::Result;
use crate::ledger::hash::{HASH_LEN, Hash, Hasher};
use crate::ledger::merkle::perfect_root;
use crate::ledger::store::LedgerStore;
use crate::ledger::tiles::{TILE_WIDTH, Tile};

#[derive(Default)]
pub(super) struct ChunkResult {
    pub(super) rows: u64,
    pub(super) first: Option<(u64, Hash)>,
    pub(super) last: Option<(u64, Hash)>,
    pub(super) flagged: Vec<(u64, u8)>,
    pub(super) gaps: Vec<(u64, u64)>,
    pub(super) full_tile_roots: Vec<(u64, Hash)>,
    pub(super) bad_tiles: Vec<Violation>,
    /// Chain hash of the row the head names as the last (index `size - 1`), if in this chunk.
    pub(super) head_row_hash: Option<Hash>,
}

pub(super) fn to_hash(b: &[u8]) -> Option<Hash> {
    (b.len() == HASH_LEN).then(|| Hash(b.try_into().expect("32")))
}

/// Reads and checks rows `a..b`, returning what the stitching needs and what `take` took of
/// them (in index order).
pub(super) fn scan_chunk<T: super::Take>(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    size: u64,
    a: u64,
    b: u64,
    take: &T,
    progress: &dyn Fn(u64),
) -> Result<(ChunkResult, Vec<T::Item>)> {
    let mut res = ChunkResult::default();
    let mut taken = Vec::new();
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
                    memory: None,
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
        if let Some(item) = take.take(row.entry) {
            taken.push(item);
        }
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
    Ok((res, taken))
}
