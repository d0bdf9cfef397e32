//! The stored Merkle tiles above level 0: every stored hash must be the root of the full tile
//! below it; the leaf tiles the level above confirms are returned for row classification.

use super::{Violation, ViolationKind, v};
use crate::error::Result;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::merkle::perfect_root;
use crate::ledger::store::LedgerStore;
use crate::ledger::tiles::{TILE_HEIGHT, TILE_WIDTH, Tile};
use std::collections::{HashMap, HashSet};

pub(super) fn check_upper_tiles(
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
