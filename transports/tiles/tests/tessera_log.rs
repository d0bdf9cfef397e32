//! The paths, hash tiles and entry bundles of the publication code are byte-equal to those of a
//! real tlog-tiles log written by Tessera (`vectors/tessera-testdata-log`, 15 entries, one
//! checkpoint per size; its entries are ASCII strings, not CORTEX entries, so the tiles are built
//! here from its leaves with core's own tile code).

use cortex_core::ledger::publication::{
    PublicTile, TileKind, hash_tile_bytes, push_bundle_entry, split_entry_bundle,
};
use cortex_core::ledger::tiles::{TileSet, append_tiles};
use cortex_core::{Checkpoint, Hash, Hasher, Sha256Hasher, SignedNote};
use std::path::{Path, PathBuf};

const ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/tessera-testdata-log/testdata/log");
    assert!(
        dir.is_dir(),
        "the Tessera test log is missing at {}",
        dir.display()
    );
    dir
}

fn read(rel: &str) -> Vec<u8> {
    let path = log_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every tile file of the log, as paths relative to the log root.
fn tile_files() -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["0", "entries"] {
        let dir = log_dir().join(format!("tile/{kind}/000.p"));
        for f in std::fs::read_dir(&dir).unwrap() {
            let name = f.unwrap().file_name().into_string().unwrap();
            out.push(format!("tile/{kind}/000.p/{name}"));
        }
    }
    out.sort();
    assert_eq!(out.len(), 30);
    out
}

#[test]
fn paths_parse_and_format_exactly_as_tessera_names_its_files() {
    for rel in tile_files() {
        let tile = PublicTile::parse(&rel).unwrap();
        assert_eq!(tile.path(), rel);
        assert_eq!(tile.index, 0);
        let width: u16 = rel.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(tile.width, width);
    }
}

#[test]
fn entry_bundles_are_byte_equal() {
    for w in 1..=15usize {
        let mut bundle = Vec::new();
        for e in &ENTRIES[..w] {
            push_bundle_entry(&mut bundle, e.as_bytes()).unwrap();
        }
        let theirs = read(&format!("tile/entries/000.p/{w}"));
        assert_eq!(bundle, theirs, "bundle of width {w}");
        let split: Vec<&[u8]> = split_entry_bundle(&theirs).unwrap();
        assert_eq!(split.len(), w);
    }
}

#[test]
fn hash_tiles_are_byte_equal_and_give_each_checkpoint_root() {
    let h = Sha256Hasher;
    let leaves: Vec<Hash> = ENTRIES.iter().map(|e| h.leaf(e.as_bytes())).collect();
    let mut stored = TileSet::default();
    for t in append_tiles(&h, 0, &mut |_, _| Ok(None), &leaves).unwrap() {
        stored.insert(t);
    }
    for w in 1..=15u16 {
        let rel = format!("tile/0/000.p/{w}");
        let tile = PublicTile::parse(&rel).unwrap();
        assert_eq!(tile.kind, TileKind::Hashes { level: 0 });
        // The stored tiles are those of all 15 entries; the tile for size w is what Tessera
        // wrote when its tree had w entries.
        let ours = hash_tile_bytes(&stored, u64::from(w), &tile).unwrap();
        assert_eq!(ours, read(&rel), "{rel}");
        // Tessera's checkpoint of that size signs the root of exactly these hashes.
        let note = SignedNote::parse(&read(&format!("checkpoint.{w}"))).unwrap();
        let cp = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(cp.size, u64::from(w));
        let hashes: Vec<Hash> = ours
            .chunks(32)
            .map(|c| Hash::from_slice(c).unwrap())
            .collect();
        assert_eq!(
            cortex_core::ledger::merkle::root_from_leaves(&h, &hashes),
            cp.root,
            "checkpoint.{w}"
        );
    }
}
