//! Stored Merkle nodes, grouped in tiles.
//!
//! Proofs must not rebuild the tree, so the ledger stores interior hashes as it appends. It keeps
//! the hashes of every fourth tree level (0, 4, 8, …) in *tiles* of up to 16 consecutive hashes:
//! tile `(L, N)` holds the hashes at tree level `4L` with indices `16N … 16N+15`. Any perfect
//! subtree hash is then at most 15 hash operations away from one stored tile, so an inclusion or
//! consistency proof in a 10M-entry tree reads about six small tiles and hashes about 70 times.
//! A tile at the right edge is partial until it holds 16 hashes; it only ever grows, so the first
//! `w` hashes of a tile never change. (The public tlog-tiles view, height 8, is derived from these.)

use crate::error::{Error, Result};
use crate::ledger::hash::{HASH_LEN, Hash, Hasher};
use crate::ledger::merkle::{NodeSource, perfect_root};
use std::cell::RefCell;
use std::collections::HashMap;

/// Tree levels spanned by one tile.
pub const TILE_HEIGHT: u8 = 4;
/// Hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// A run of up to 16 consecutive hashes at tree level `4·level`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    /// Tile level `L`: its hashes are at tree level `4L`.
    pub level: u8,
    /// Tile index `N`: its first hash has index `16N` at that tree level.
    pub index: u64,
    /// 1 to 16 hashes.
    pub hashes: Vec<Hash>,
}

impl Tile {
    /// The stored form: the hashes concatenated (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.hashes.len() * HASH_LEN);
        for h in &self.hashes {
            v.extend_from_slice(&h.0);
        }
        v
    }
    /// Parses the stored form, rejecting lengths that are not 1–16 whole hashes.
    pub fn decode(bytes: &[u8]) -> Result<Vec<Hash>> {
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(HASH_LEN)
            || bytes.len() > TILE_WIDTH * HASH_LEN
        {
            return Err(Error::integrity(format!(
                "stored tile is {} bytes, not 1 to 16 hashes",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(HASH_LEN)
            .map(|c| Hash(c.try_into().expect("32")))
            .collect())
    }
}

/// Reads stored tiles. Implemented by every [`LedgerStore`](crate::ledger::store::LedgerStore)
/// and by in-memory tile sets.
pub trait TileReader {
    /// The tile's hashes, or `None` if no such tile is stored.
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>>;

    /// Several tiles, in the order asked. Stores with a round trip or a transaction per read
    /// override this to read them all at once (a proof needs about six tiles).
    fn read_tiles(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<Vec<Hash>>>> {
        keys.iter().map(|&(l, i)| self.read_tile(l, i)).collect()
    }
}

/// Tiles held in memory (used by `verify` for recomputed tiles, and by tests).
#[derive(Debug, Clone, Default)]
pub struct TileSet {
    /// Tiles by `(level, index)`.
    pub tiles: HashMap<(u8, u64), Vec<Hash>>,
}

impl TileSet {
    /// Inserts or replaces tiles, keeping the longer of two versions of one tile.
    pub fn insert(&mut self, tile: Tile) {
        let slot = self.tiles.entry((tile.level, tile.index)).or_default();
        if tile.hashes.len() >= slot.len() {
            *slot = tile.hashes;
        }
    }
}

impl TileReader for TileSet {
    fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
        Ok(self.tiles.get(&(level, index)).cloned())
    }
}

/// The partial tiles at the right edge of a tree of `size` leaves: `(level, index, width)` for
/// each level whose last tile holds fewer than 16 hashes (and at least one).
pub fn edge_tiles(size: u64) -> Vec<(u8, u64, usize)> {
    let mut out = Vec::new();
    let mut level = 0u8;
    loop {
        let count = size
            .checked_shr(TILE_HEIGHT as u32 * level as u32)
            .unwrap_or(0);
        if count == 0 {
            return out;
        }
        let width = (count % TILE_WIDTH as u64) as usize;
        if width != 0 {
            out.push((level, count / TILE_WIDTH as u64, width));
        }
        level += 1;
    }
}

/// Computes the tiles that change when `leaves` are appended to a tree of `size_before` leaves.
///
/// `edge` must return the stored hashes of each partial tile named by [`edge_tiles`]; it is an
/// integrity error if a stored edge tile is missing or has the wrong width.
pub fn append_tiles(
    hasher: &dyn Hasher,
    size_before: u64,
    edge: &mut dyn FnMut(u8, u64) -> Result<Option<Vec<Hash>>>,
    leaves: &[Hash],
) -> Result<Vec<Tile>> {
    let mut out = Vec::with_capacity(leaves.len() / TILE_WIDTH + 8);
    let mut incoming: Vec<Hash> = leaves.to_vec();
    let mut level = 0u8;
    while !incoming.is_empty() {
        let count = size_before
            .checked_shr(TILE_HEIGHT as u32 * level as u32)
            .unwrap_or(0);
        let mut index = count / TILE_WIDTH as u64;
        let width = (count % TILE_WIDTH as u64) as usize;
        let mut buf = if width == 0 {
            Vec::with_capacity(TILE_WIDTH)
        } else {
            let t = edge(level, index)?.ok_or_else(|| {
                Error::integrity(format!("edge tile ({level}, {index}) is missing"))
            })?;
            if t.len() != width {
                return Err(Error::integrity(format!(
                    "edge tile ({level}, {index}) holds {} hashes, expected {width}",
                    t.len()
                )));
            }
            t
        };
        let mut next = Vec::with_capacity(incoming.len() / TILE_WIDTH + 1);
        for h in incoming {
            buf.push(h);
            if buf.len() == TILE_WIDTH {
                next.push(perfect_root(hasher, &buf));
                out.push(Tile {
                    level,
                    index,
                    hashes: std::mem::take(&mut buf),
                });
                buf.reserve(TILE_WIDTH);
                index += 1;
            }
        }
        if !buf.is_empty() {
            out.push(Tile {
                level,
                index,
                hashes: buf,
            });
        }
        incoming = next;
        level += 1;
    }
    Ok(out)
}

/// A [`NodeSource`] over stored tiles, caching the tiles it has read.
pub struct TileNodes<'a> {
    reader: &'a dyn TileReader,
    hasher: &'a dyn Hasher,
    cache: RefCell<HashMap<(u8, u64), Vec<Hash>>>,
}

impl<'a> TileNodes<'a> {
    /// Reads nodes from `reader`, hashing with `hasher`.
    pub fn new(reader: &'a dyn TileReader, hasher: &'a dyn Hasher) -> Self {
        TileNodes {
            reader,
            hasher,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl TileNodes<'_> {
    /// Runs `f` against these tiles after reading, in one [`TileReader::read_tiles`] call, every
    /// tile it will ask for. Which nodes a root or a proof needs depends only on the sizes and
    /// indices, never on hash values, so a first run against a recorder (answering zeros)
    /// lists them; the second run is the real one.
    pub fn prefetched<T>(&self, f: impl Fn(&dyn NodeSource) -> Result<T>) -> Result<T> {
        let recorder = Recorder(RefCell::new(Vec::new()));
        f(&recorder)?;
        let mut keys = recorder.0.into_inner();
        keys.sort_unstable();
        keys.dedup();
        {
            let mut cache = self.cache.borrow_mut();
            keys.retain(|k| !cache.contains_key(k));
            for (k, t) in keys.iter().zip(self.reader.read_tiles(&keys)?) {
                if let Some(t) = t {
                    cache.insert(*k, t);
                }
            }
        }
        f(self)
    }
}

/// Where node `(level, index)` lives: its tile, its offset in the tile, and how many of the
/// tile's hashes it spans.
fn locate(level: u8, index: u64) -> Result<((u8, u64), usize, usize)> {
    let rel = level % TILE_HEIGHT;
    let start = index
        .checked_shl(rel as u32)
        .filter(|s| s >> rel == index)
        .ok_or_else(|| Error::invalid("node index overflows"))?;
    Ok((
        (level / TILE_HEIGHT, start / TILE_WIDTH as u64),
        (start % TILE_WIDTH as u64) as usize,
        1usize << rel,
    ))
}

/// Lists the tiles a computation would read.
struct Recorder(RefCell<Vec<(u8, u64)>>);

impl NodeSource for Recorder {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        self.0.borrow_mut().push(locate(level, index)?.0);
        Ok(Hash::default())
    }
}

impl NodeSource for TileNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        let ((tile_level, tile_index), offset, width) = locate(level, index)?;
        let mut cache = self.cache.borrow_mut();
        let t = match cache.entry((tile_level, tile_index)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(self.reader.read_tile(tile_level, tile_index)?.ok_or_else(|| {
                    Error::integrity(format!(
                        "stored tile ({tile_level}, {tile_index}) is missing for node ({level}, {index})"
                    ))
                })?)
            }
        };
        let slice = t.get(offset..offset + width).ok_or_else(|| {
            Error::integrity(format!(
                "stored tile ({tile_level}, {tile_index}) holds {} hashes; node ({level}, {index}) needs {}",
                t.len(),
                offset + width
            ))
        })?;
        Ok(perfect_root(self.hasher, slice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::hash::Sha256Hasher;
    use crate::ledger::merkle::{LeafSlice, inclusion_proof, root};

    #[test]
    fn incremental_tiles_serve_the_same_nodes_as_the_leaves() {
        let h = Sha256Hasher;
        let all: Vec<Hash> = (0..1000u64).map(|i| h.leaf(&i.to_le_bytes())).collect();
        let mut set = TileSet::default();
        let mut size = 0u64;
        // Odd batch sizes cross tile boundaries at every level.
        for batch in [1usize, 2, 13, 16, 17, 255, 256, 3, 437] {
            let chunk = &all[size as usize..size as usize + batch];
            let changed = append_tiles(&h, size, &mut |l, i| set.read_tile(l, i), chunk).unwrap();
            for t in changed {
                set.insert(t);
            }
            size += batch as u64;
            let nodes = TileNodes::new(&set, &h);
            let leaves = LeafSlice {
                hasher: &h,
                leaves: &all[..size as usize],
            };
            assert_eq!(
                root(&nodes, &h, size).unwrap(),
                root(&leaves, &h, size).unwrap()
            );
            for i in [0, size / 2, size - 1] {
                assert_eq!(
                    inclusion_proof(&nodes, &h, i, size).unwrap(),
                    inclusion_proof(&leaves, &h, i, size).unwrap()
                );
            }
        }
        assert_eq!(size, 1000);
        assert_eq!(edge_tiles(1000), vec![(0, 62, 8), (1, 3, 14), (2, 0, 3)]);
    }

    #[test]
    fn a_wrong_edge_tile_is_an_integrity_error() {
        let h = Sha256Hasher;
        let e = append_tiles(
            &h,
            5,
            &mut |_, _| Ok(Some(vec![Hash::ZERO; 3])),
            &[Hash::ZERO],
        )
        .unwrap_err();
        assert!(e.to_string().contains("expected 5"), "{e}");
    }

    /// Counts calls, so a test can see how many round trips a proof would take.
    struct Counting<'a>(&'a TileSet, std::cell::Cell<(u32, u32)>);

    impl TileReader for Counting<'_> {
        fn read_tile(&self, level: u8, index: u64) -> Result<Option<Vec<Hash>>> {
            let (one, many) = self.1.get();
            self.1.set((one + 1, many));
            self.0.read_tile(level, index)
        }
        fn read_tiles(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<Vec<Hash>>>> {
            let (one, many) = self.1.get();
            self.1.set((one, many + 1));
            keys.iter().map(|&(l, i)| self.0.read_tile(l, i)).collect()
        }
    }

    #[test]
    fn prefetched_proofs_read_their_tiles_in_one_call_and_match() {
        use crate::ledger::merkle::consistency_proof;
        let h = Sha256Hasher;
        let all: Vec<Hash> = (0..5000u64).map(|i| h.leaf(&i.to_le_bytes())).collect();
        let mut set = TileSet::default();
        for t in append_tiles(&h, 0, &mut |_, _| Ok(None), &all).unwrap() {
            set.insert(t);
        }
        let leaves = LeafSlice {
            hasher: &h,
            leaves: &all,
        };
        for (i, old, size) in [(0u64, 1u64, 1u64), (17, 300, 4097), (4999, 4095, 5000)] {
            let c = Counting(&set, std::cell::Cell::new((0, 0)));
            let nodes = TileNodes::new(&c, &h);
            let (p, q) = nodes
                .prefetched(|n| {
                    Ok((
                        inclusion_proof(n, &h, i, size)?,
                        consistency_proof(n, &h, old, size)?,
                    ))
                })
                .unwrap();
            assert_eq!(p, inclusion_proof(&leaves, &h, i, size).unwrap());
            assert_eq!(q, consistency_proof(&leaves, &h, old, size).unwrap());
            assert_eq!(c.1.get(), (0, 1), "one batched read, no single reads");
        }
        // A missing tile is still reported as missing, by the real run.
        let mut holed = set.clone();
        holed.tiles.remove(&(0, 1));
        let e = TileNodes::new(&holed, &h)
            .prefetched(|n| inclusion_proof(n, &h, 17, 5000))
            .unwrap_err();
        assert!(e.to_string().contains("tile (0, 1) is missing"), "{e}");
    }
}
