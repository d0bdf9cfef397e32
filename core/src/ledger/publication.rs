//! The public `c2sp.org/tlog-tiles` view of a ledger: resource paths, height-8 hash tiles and
//! entry bundles, derived from the stored height-4 [`tiles`](crate::ledger::tiles) and rows.
//!
//! A public tile `(L, N)` holds the hashes at tree level `8L` with indices `256N … 256N+255`:
//! the 16 stored tiles `(2L, 16N … 16N+15)` concatenated. A tile that is partial in a tree of
//! `size` leaves holds `floor(size / 256^L) mod 256` hashes and is named `….p/<W>`. Since a stored
//! tile only ever grows at its end, the first `W` hashes of a tile never change: a partial tile
//! of width `W` is the same bytes in every tree that contains it, and a full tile is immutable.
//!
//! An entry bundle `N` holds entries `256N …` as `u16be(len) ‖ canonical bytes` each, so a client
//! that knows only tlog-tiles recomputes every leaf as `SHA-256(0x00 ‖ bytes)`.
//!
//! Everything is computed for a given tree size (the caller passes its latest checkpoint's), so a
//! client never sees a hash or an entry the checkpoint does not cover. tlog-tiles assumes SHA-256:
//! a BLAKE3 ledger has no such view ([`require_sha256`]).

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::hash::{HASH_LEN, HashAlgorithm};
use crate::ledger::store::LedgerStore;
use crate::ledger::tiles::{TILE_HEIGHT, TILE_WIDTH, TileReader};
use std::fmt;

/// Tree levels spanned by one public tile.
pub const PUBLIC_TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full public tile (or entry bundle).
pub const PUBLIC_TILE_WIDTH: u16 = 1 << PUBLIC_TILE_HEIGHT;
/// The largest tile level a path may name (the spec's bound).
pub const MAX_PUBLIC_LEVEL: u8 = 63;
/// Stored tiles that make one public tile.
const STORED_PER_PUBLIC: u64 = (PUBLIC_TILE_WIDTH as u64) / TILE_WIDTH as u64;
/// Stored levels per public level.
const STORED_LEVELS_PER_PUBLIC: u8 = PUBLIC_TILE_HEIGHT / TILE_HEIGHT;

/// What a public resource holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// Merkle tree hashes at tree level `8 · level`.
    Hashes {
        /// The tile level `L` (0 to 63).
        level: u8,
    },
    /// An entry bundle: the entries whose leaf hashes make the level-0 tile of the same index.
    Entries,
}

/// A public tile or entry bundle: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicTile {
    /// Hashes or entries.
    pub kind: TileKind,
    /// The tile index `N`: its first hash (or entry) has index `256N` at its level.
    pub index: u64,
    /// 1 to 256 hashes (or entries); 256 is a full tile.
    pub width: u16,
}

impl PublicTile {
    /// The hash tile `(level, index)` of `width` hashes.
    pub fn hashes(level: u8, index: u64, width: u16) -> PublicTile {
        PublicTile {
            kind: TileKind::Hashes { level },
            index,
            width,
        }
    }

    /// The entry bundle `index` of `width` entries.
    pub fn entries(index: u64, width: u16) -> PublicTile {
        PublicTile {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// True for a full tile (256 hashes or entries), which never changes.
    pub fn is_full(&self) -> bool {
        self.width == PUBLIC_TILE_WIDTH
    }

    /// The tree level of the hashes this resource holds or hashes to (0 for entry bundles).
    pub fn tree_level(&self) -> u32 {
        match self.kind {
            TileKind::Hashes { level } => u32::from(level) * u32::from(PUBLIC_TILE_HEIGHT),
            TileKind::Entries => 0,
        }
    }

    /// The canonical path, relative to the log prefix (`tile/0/x001/234.p/5`).
    pub fn path(&self) -> String {
        self.to_string()
    }

    /// Parses a path relative to the log prefix, accepting only the canonical form (the one
    /// [`PublicTile::path`] writes): anything else is an invalid-input error naming the problem.
    pub fn parse(path: &str) -> Result<PublicTile> {
        let shown: String = path.chars().take(80).collect();
        let ellipsis = if shown.len() < path.len() { "…" } else { "" };
        let bad = |why: String| Error::invalid(format!("bad tile path {shown:?}{ellipsis}: {why}"));
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("it does not start with \"tile/\"".into()))?;
        let (head, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("it has no tile index".into()))?;
        let kind = match head {
            "entries" => TileKind::Entries,
            l => TileKind::Hashes {
                level: parse_level(l).map_err(bad)?,
            },
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((n, w)) => (n, Some(w)),
            None => (rest, None),
        };
        let index = parse_index(index).map_err(bad)?;
        let width = match width {
            Some(w) => parse_width(w).map_err(bad)?,
            None => PUBLIC_TILE_WIDTH,
        };
        Ok(PublicTile { kind, index, width })
    }
}

impl fmt::Display for PublicTile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hashes { level } => write!(f, "tile/{level}/")?,
            TileKind::Entries => f.write_str("tile/entries/")?,
        }
        f.write_str(&format_index(self.index))?;
        if !self.is_full() {
            write!(f, ".p/{}", self.width)?;
        }
        Ok(())
    }
}

/// Encodes a tile index as 3-digit groups, all but the last prefixed with `x`
/// (1234067 → `x001/x234/067`).
pub fn format_index(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut n = index / 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Decimal without leading zeros, `0 ..= max`.
fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse::<u64>().ok())
        .flatten()
        .filter(|&n| n <= max)
}

fn parse_level(s: &str) -> std::result::Result<u8, String> {
    parse_decimal(s, u64::from(MAX_PUBLIC_LEVEL))
        .map(|l| l as u8)
        .ok_or_else(|| {
            format!(
                "the level {s:?} is not \"entries\" or a decimal 0 to {MAX_PUBLIC_LEVEL} without \
                 leading zeros"
            )
        })
}

fn parse_width(s: &str) -> std::result::Result<u16, String> {
    parse_decimal(s, u64::from(PUBLIC_TILE_WIDTH) - 1)
        .filter(|&w| w >= 1)
        .map(|w| w as u16)
        .ok_or_else(|| {
            format!(
                "the partial width {s:?} is not a decimal 1 to 255 without leading zeros (a full \
                 tile has no .p/ suffix)"
            )
        })
}

fn parse_index(s: &str) -> std::result::Result<u64, String> {
    let groups: Vec<&str> = s.split('/').collect();
    let three_digits = |g: &str| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit());
    let (last, leading) = groups.split_last().expect("split yields one item");
    if !three_digits(last) {
        return Err(format!("the index's last element {last:?} is not 3 digits"));
    }
    let mut index: u64 = 0;
    for g in leading {
        let digits = g
            .strip_prefix('x')
            .filter(|d| three_digits(d))
            .ok_or_else(|| format!("the index element {g:?} is not x followed by 3 digits"))?;
        index = push_group(index, digits).ok_or("the index overflows 64 bits")?;
    }
    if leading.first().is_some_and(|g| *g == "x000") {
        return Err(format!(
            "the index {s:?} is not canonical: it starts with x000"
        ));
    }
    push_group(index, last).ok_or_else(|| "the index overflows 64 bits".into())
}

fn push_group(index: u64, digits: &str) -> Option<u64> {
    let group: u64 = digits.parse().ok()?;
    index.checked_mul(1000)?.checked_add(group)
}

/// The number of hashes tile `(level, index)` holds in a tree of `size` leaves (entries for an
/// entry bundle: pass level 0): 256 for a full tile, 1 to 255 for the partial one at the right
/// edge, 0 if the tree has none of its hashes.
pub fn width_in_tree(size: u64, level: u8, index: u64) -> u16 {
    let shift = u32::from(level) * u32::from(PUBLIC_TILE_HEIGHT);
    let count = size.checked_shr(shift).unwrap_or(0);
    let Some(start) = index.checked_mul(u64::from(PUBLIC_TILE_WIDTH)) else {
        return 0;
    };
    count
        .saturating_sub(start)
        .min(u64::from(PUBLIC_TILE_WIDTH)) as u16
}

/// Refuses a view of a ledger that does not hash with SHA-256, which tlog-tiles assumes.
pub fn require_sha256(algorithm: HashAlgorithm) -> Result<()> {
    if algorithm == HashAlgorithm::Sha256 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "this ledger hashes with {}, but tlog-tiles is defined for SHA-256 only: it has no \
             tlog-tiles view",
            algorithm.name()
        ),
    ))
}

/// Checks that a tree of `size` leaves holds all of `tile`: a full tile once complete, a partial
/// tile of width `W` once its first `W` hashes exist (the tile of every tree size that has it
/// partial with width `W`). A not-found error otherwise, naming the tree size.
pub fn check_in_tree(tile: &PublicTile, size: u64) -> Result<()> {
    let level = match tile.kind {
        TileKind::Hashes { level } => level,
        TileKind::Entries => 0,
    };
    if width_in_tree(size, level, tile.index) >= tile.width {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "{tile} is not in the tree of the latest checkpoint ({size} entries)"
    )))
}

/// The bytes of hash tile `tile` (its hashes concatenated, 32 bytes each) as the tree of `size`
/// leaves has them, from the stored height-4 tiles.
///
/// A not-found error if the tree does not hold the tile; an integrity error if a stored tile it
/// needs is missing or too short (the store no longer matches its own head).
pub fn hash_tile_bytes(reader: &dyn TileReader, size: u64, tile: &PublicTile) -> Result<Vec<u8>> {
    let TileKind::Hashes { level } = tile.kind else {
        return Err(Error::invalid(format!(
            "{tile} is an entry bundle, not a hash tile"
        )));
    };
    check_in_tree(tile, size)?;
    let stored_level = level * STORED_LEVELS_PER_PUBLIC;
    let width = usize::from(tile.width);
    let first = tile.index * STORED_PER_PUBLIC;
    let keys: Vec<(u8, u64)> = (0..width.div_ceil(TILE_WIDTH) as u64)
        .map(|k| (stored_level, first + k))
        .collect();
    let mut out = Vec::with_capacity(width * HASH_LEN);
    for (&(l, i), stored) in keys.iter().zip(reader.read_tiles(&keys)?) {
        let need = (width - out.len() / HASH_LEN).min(TILE_WIDTH);
        let hashes = stored.unwrap_or_default();
        if hashes.len() < need {
            return Err(Error::integrity(format!(
                "stored tile ({l}, {i}) holds {} hashes, but {tile} needs {need} of them (run \
                 `cortex ledger verify`)",
                hashes.len()
            )));
        }
        for h in &hashes[..need] {
            out.extend_from_slice(&h.0);
        }
    }
    Ok(out)
}

/// Appends one entry to an entry bundle: `u16be(len(bytes)) ‖ bytes`. An entry longer than
/// 65,535 bytes cannot be in a bundle (CORTEX entries never are).
pub fn push_bundle_entry(bundle: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        Error::integrity(format!(
            "an entry of {} bytes does not fit an entry bundle (at most 65535)",
            bytes.len()
        ))
    })?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(bytes);
    Ok(())
}

/// Splits an entry bundle into its entries, rejecting a truncated one.
pub fn split_entry_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let (len, r) = rest.split_at_checked(2).ok_or_else(|| {
            Error::invalid(format!(
                "entry bundle is truncated: entry {} has a 1-byte length",
                out.len()
            ))
        })?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (entry, r) = r.split_at_checked(len).ok_or_else(|| {
            Error::invalid(format!(
                "entry bundle is truncated: entry {} says {len} bytes, {} remain",
                out.len(),
                r.len()
            ))
        })?;
        out.push(entry);
        rest = r;
    }
    Ok(out)
}

/// The entry bundle `tile` as the tree of `size` leaves has it: each entry's canonical bytes,
/// length-prefixed, read from the stored rows.
///
/// A not-found error if the tree does not hold the bundle; an integrity error if a stored row is
/// missing or out of place.
pub fn entry_bundle(store: &dyn LedgerStore, size: u64, tile: &PublicTile) -> Result<Vec<u8>> {
    if tile.kind != TileKind::Entries {
        return Err(Error::invalid(format!(
            "{tile} is a hash tile, not an entry bundle"
        )));
    }
    check_in_tree(tile, size)?;
    let start = tile.index * u64::from(PUBLIC_TILE_WIDTH);
    let end = start + u64::from(tile.width);
    let mut bundle = Vec::with_capacity(usize::from(tile.width) * 160);
    let mut next = start;
    store.scan_entries(start..end, &mut |row| {
        if row.entry.index != next {
            return Err(missing_row(next));
        }
        next += 1;
        bundle.extend_from_slice(&[0, 0]);
        let at = bundle.len();
        row.entry.encode_into(&mut bundle);
        let len = u16::try_from(bundle.len() - at).map_err(|_| {
            Error::integrity(format!(
                "entry {} is {} bytes, too long for an entry bundle",
                row.entry.index,
                bundle.len() - at
            ))
        })?;
        bundle[at - 2..at].copy_from_slice(&len.to_be_bytes());
        Ok(())
    })?;
    if next != end {
        return Err(missing_row(next));
    }
    Ok(bundle)
}

fn missing_row(index: u64) -> Error {
    Error::integrity(format!(
        "stored entry {index} is missing below the checkpoint (run `cortex ledger verify`)"
    ))
}

/// The bytes of `tile` (hash tile or entry bundle) as the tree of `size` leaves has them.
pub fn read_public_tile(store: &dyn LedgerStore, size: u64, tile: &PublicTile) -> Result<Vec<u8>> {
    match tile.kind {
        TileKind::Hashes { .. } => hash_tile_bytes(store, size, tile),
        TileKind::Entries => entry_bundle(store, size, tile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;
    use crate::ledger::hash::{Hash, Hasher, Sha256Hasher};
    use crate::ledger::merkle::{LeafSlice, NodeSource};
    use crate::ledger::store::DynLedgerStore;
    use crate::ledger::tiles::{TileSet, append_tiles};
    use crate::ledger::{Ledger, LedgerOptions};
    use std::sync::Arc;

    #[test]
    fn paths_round_trip_and_match_the_spec_examples() {
        assert_eq!(format_index(1234067), "x001/x234/067");
        assert_eq!(format_index(0), "000");
        assert_eq!(format_index(1000), "x001/000");
        assert_eq!(format_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
        for (path, tile) in [
            ("tile/0/000", PublicTile::hashes(0, 0, 256)),
            (
                "tile/2/x001/x234/067.p/8",
                PublicTile::hashes(2, 1234067, 8),
            ),
            ("tile/63/999.p/255", PublicTile::hashes(63, 999, 255)),
            ("tile/entries/x001/000.p/1", PublicTile::entries(1000, 1)),
            (
                "tile/entries/x018/x446/x744/x073/x709/x551/615",
                PublicTile::entries(u64::MAX, 256),
            ),
        ] {
            assert_eq!(PublicTile::parse(path).unwrap(), tile, "{path}");
            assert_eq!(tile.path(), path);
        }
    }

    #[test]
    fn non_canonical_paths_are_refused_with_the_reason() {
        for (path, why) in [
            ("tile/0/1.p/0", "last element \"1\""),
            ("tile/0/001.p/0", "partial width \"0\""),
            ("tile/0/001.p/256", "partial width \"256\""),
            ("tile/0/001.p/08", "partial width \"08\""),
            ("tile/0/x1/000", "element \"x1\""),
            ("tile/0/x000/001", "starts with x000"),
            ("tile/0/001/002", "element \"001\""),
            ("tile/00/000", "level \"00\""),
            ("tile/64/000", "level \"64\""),
            ("tile/-1/000", "level \"-1\""),
            ("tile/data/000", "level \"data\""),
            ("tile/0", "no tile index"),
            ("tile/0/", "last element \"\""),
            ("tile/0/000/", "last element \"\""),
            ("tiles/0/000", "does not start"),
            ("tile/0/0001", "last element \"0001\""),
            ("tile/0/+01", "last element \"+01\""),
            ("tile/entries/000.p/", "partial width \"\""),
            ("tile/0/x018/x446/x744/x073/x709/x551/616", "overflows"),
            ("tile/0/x999/x999/x999/x999/x999/x999/x999/999", "overflows"),
        ] {
            let e = PublicTile::parse(path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{path}");
            assert!(e.to_string().contains(why), "{path}: {e}");
        }
    }

    #[test]
    fn widths_follow_the_spec_example_of_a_70000_leaf_tree() {
        // "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1
        // tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1".
        let s = 70_000;
        assert_eq!(width_in_tree(s, 0, 272), 256);
        assert_eq!(width_in_tree(s, 0, 273), 112);
        assert_eq!(width_in_tree(s, 0, 274), 0);
        assert_eq!(width_in_tree(s, 1, 0), 256);
        assert_eq!(width_in_tree(s, 1, 1), 17);
        assert_eq!(width_in_tree(s, 2, 0), 1);
        assert_eq!(width_in_tree(s, 3, 0), 0);
        assert_eq!(width_in_tree(256, 1, 0), 1);
        assert_eq!(width_in_tree(u64::MAX, 63, 0), 0);
        assert_eq!(width_in_tree(u64::MAX, 0, u64::MAX), 0);
    }

    /// Height-8 tiles built from the leaves directly, for comparison.
    fn tile_from_leaves(leaves: &[Hash], level: u32, index: u64, width: usize) -> Vec<u8> {
        let h = Sha256Hasher;
        let src = LeafSlice { hasher: &h, leaves };
        let mut out = Vec::new();
        for k in 0..width as u64 {
            let node = src.node(level as u8, index * 256 + k).unwrap();
            out.extend_from_slice(&node.0);
        }
        out
    }

    #[test]
    fn hash_tiles_equal_the_tree_nodes_for_every_size_that_holds_them() {
        let h = Sha256Hasher;
        let leaves: Vec<Hash> = (0..70_000u64).map(|i| h.leaf(&i.to_be_bytes())).collect();
        let mut set = TileSet::default();
        for t in append_tiles(&h, 0, &mut |_, _| Ok(None), &leaves).unwrap() {
            set.insert(t);
        }
        // The stored tiles are those of 70,000 leaves; a checkpoint of 66,000 sees less.
        for size in [70_000u64, 66_000] {
            let part = &leaves[..size as usize];
            for (level, index) in [
                (0u8, 0u64),
                (0, 257),
                (0, size / 256),
                (1, 0),
                (1, 1),
                (2, 0),
            ] {
                let width = width_in_tree(size, level, index);
                let tile = PublicTile::hashes(level, index, width);
                let got = hash_tile_bytes(&set, size, &tile).unwrap();
                let want = tile_from_leaves(part, tile.tree_level(), index, width.into());
                assert_eq!(got, want, "{tile} at size {size}");
            }
        }
        // A partial tile of an older size is a prefix of today's; one beyond the tree is not found.
        let old = hash_tile_bytes(&set, 70_000, &PublicTile::hashes(1, 1, 3)).unwrap();
        assert_eq!(old, tile_from_leaves(&leaves, 8, 1, 3));
        for tile in [
            PublicTile::hashes(0, 273, 113),
            PublicTile::hashes(0, 273, 256),
            PublicTile::hashes(1, 1, 18),
            PublicTile::hashes(3, 0, 1),
        ] {
            let e = hash_tile_bytes(&set, 70_000, &tile).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{tile}: {e}");
            assert!(e.to_string().contains("70000 entries"), "{e}");
        }
        // A store that lost a tile is an integrity error, not a short tile.
        let mut holed = set.clone();
        holed.tiles.remove(&(2, 3));
        let e = hash_tile_bytes(&holed, 70_000, &PublicTile::hashes(1, 0, 256)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(e.to_string().contains("stored tile (2, 3)"), "{e}");
    }

    #[test]
    fn entry_bundles_hold_the_canonical_bytes_and_hash_to_the_level_0_tile() {
        let store: DynLedgerStore = Arc::new(InMemoryStore::new());
        store.migrate().unwrap();
        let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
        ledger.append(&crate::testkit::sample_entries(300)).unwrap();
        let size = 290;
        let bundle = PublicTile::entries(1, 34);
        let bytes = read_public_tile(&*store, size, &bundle).unwrap();
        let entries = split_entry_bundle(&bytes).unwrap();
        assert_eq!(entries.len(), 34);
        assert_eq!(
            entries[0],
            ledger.entry(256).unwrap().entry.as_ref().canonical_bytes()
        );
        let tile = read_public_tile(&*store, size, &PublicTile::hashes(0, 1, 34)).unwrap();
        let h = Sha256Hasher;
        let leaves: Vec<u8> = entries.iter().flat_map(|e| h.leaf(e).0).collect();
        assert_eq!(leaves, tile);
        let e = read_public_tile(&*store, size, &PublicTile::entries(1, 35)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(split_entry_bundle(&bytes[..bytes.len() - 1]).is_err());
        assert!(split_entry_bundle(&[0]).is_err());
    }

    #[test]
    fn a_blake3_ledger_has_no_view() {
        assert!(require_sha256(HashAlgorithm::Sha256).is_ok());
        let e = require_sha256(HashAlgorithm::Blake3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("SHA-256"), "{e}");
    }
}
