//! A client that knows only tlog-tiles (Cloudflare's `tlog_tiles` and `signed_note` crates, not
//! CORTEX code) walks a served 70,000-entry ledger: it verifies the checkpoint's signature,
//! recomputes its root from the served tiles, proves and checks inclusions, and recomputes every
//! leaf from the entry bundles.

mod common;

use common::{Served, TestLedger};
use reqwest::StatusCode;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{
    Checkpoint, Hash, Tile, TileHashReader, TileReader, check_record, prove_record, record_hash,
    tree_hash,
};

/// Reads tiles over HTTP, mapping `tlog_tiles`' Go-style paths (`tile/8/L/N`, `tile/8/data/N`)
/// to tlog-tiles paths (`tile/L/N`, `tile/entries/N`).
struct HttpTiles<'a>(&'a Served);

fn c2sp_path(t: &Tile) -> String {
    let go = t.path();
    let rest = go.strip_prefix("tile/8/").expect("height-8 tile");
    match rest.strip_prefix("data/") {
        Some(n) => format!("/tile/entries/{n}"),
        None => format!("/tile/{rest}"),
    }
}

impl TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let r = self.0.get(&c2sp_path(t));
                if r.status != StatusCode::OK {
                    return Err(tlog_tiles::Error::InvalidInput(format!(
                        "{} answered {}",
                        c2sp_path(t),
                        r.status
                    )));
                }
                Ok(r.body)
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// The checkpoint as an independent client accepts it: signature by `vkey`, then parsed.
fn verified_checkpoint(served: &Served, vkey: &str) -> (Checkpoint, String) {
    let r = served.get("/checkpoint");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("cache-control"), "no-cache");
    let note = Note::from_bytes(&r.body).unwrap();
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let (verified, _) = note
        .verify(&verifiers)
        .expect("the checkpoint signature verifies");
    assert_eq!(verified.len(), 1);
    let text = String::from_utf8(r.body).unwrap();
    (Checkpoint::from_bytes(note.text()).unwrap(), text)
}

/// Splits an entry bundle with nothing but the spec: big-endian u16 length, then the bytes.
fn bundle_entries(bundle: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        out.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    out
}

fn tile_path(level: u8, index: u64, width: u64, entries: bool) -> String {
    let tile = Tile::new(8, level, index, width as u32, entries);
    c2sp_path(&tile)
}

/// Fetches every entry bundle and level-0 tile of a tree of `size` and checks each leaf hash
/// recomputed from the bundle against the tile; returns the leaf hashes.
fn recompute_every_leaf(served: &Served, size: u64) -> Vec<Hash> {
    let mut leaves = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let bundle = served.get(&tile_path(0, n, width, true));
        let tile = served.get(&tile_path(0, n, width, false));
        assert_eq!(
            bundle.status,
            StatusCode::OK,
            "bundle {n}: {}",
            bundle.text()
        );
        assert_eq!(tile.status, StatusCode::OK, "tile {n}: {}", tile.text());
        assert_eq!(bundle.header("content-type"), "application/octet-stream");
        assert_eq!(tile.header("content-type"), "application/octet-stream");
        let entries = bundle_entries(&bundle.body);
        assert_eq!(entries.len() as u64, width, "bundle {n}");
        assert_eq!(tile.body.len() as u64, width * 32, "tile {n}");
        for (k, (entry, hash)) in entries.iter().zip(tile.body.chunks(32)).enumerate() {
            let leaf = record_hash(entry);
            assert_eq!(&leaf.0[..], hash, "leaf {}", n * 256 + k as u64);
            leaves.push(leaf);
        }
    }
    leaves
}

#[test]
fn an_independent_tlog_tiles_client_audits_a_served_ledger() {
    let t = TestLedger::new();
    t.append(70_000);
    let made = t.ledger.checkpoint().unwrap().record;
    let served = Served::start(t.ledger.clone());

    // The checkpoint: signature, origin, size, root (as signed).
    let (cp, note) = verified_checkpoint(&served, &t.vkey);
    assert_eq!(note, made.note);
    assert_eq!(cp.origin(), common::ORIGIN);
    assert_eq!(cp.size(), 70_000);
    assert_eq!(cp.hash().0, made.root.0);

    // The root, recomputed by tlog_tiles from the served tiles (its reader authenticates every
    // tile it reads against the checkpoint's root; the spec's 70,000-leaf example has full and
    // partial tiles at level 0 and 1, and a partial one at level 2).
    let http = HttpTiles(&served);
    let reader = TileHashReader::new(cp.size(), *cp.hash(), &http);
    assert_eq!(tree_hash(cp.size(), &reader).unwrap(), *cp.hash());

    // Every leaf, recomputed from the entry bundles, equals the level-0 tiles; the entries are
    // the ledger's canonical bytes.
    let leaves = recompute_every_leaf(&served, cp.size());
    assert_eq!(leaves.len(), 70_000);
    let stored = t.ledger.entry(12_345).unwrap();
    let bundle = served.get("/tile/entries/048");
    assert_eq!(
        bundle_entries(&bundle.body)[12_345 - 48 * 256],
        &stored.entry.as_ref().canonical_bytes()[..]
    );

    // Inclusion proofs computed by tlog_tiles from the served tiles check against the root, and
    // equal the ledger's own RFC 9162 proofs.
    for index in [0u64, 255, 256, 12_345, 65_535, 65_536, 69_999] {
        let proof = prove_record(cp.size(), index, &reader).unwrap();
        let leaf = leaves[index as usize];
        check_record(&proof, cp.size(), *cp.hash(), index, leaf).unwrap();
        let ours = t.ledger.inclusion_proof(index, cp.size()).unwrap();
        let ours: Vec<[u8; 32]> = ours.iter().map(|h| h.0).collect();
        let theirs: Vec<[u8; 32]> = proof.iter().map(|h| h.0).collect();
        assert_eq!(ours, theirs, "proof of {index}");
        // A wrong leaf does not check.
        let mut wrong = leaf;
        wrong.0[0] ^= 1;
        assert!(check_record(&proof, cp.size(), *cp.hash(), index, wrong).is_err());
    }
}

#[test]
fn the_view_follows_the_latest_checkpoint_not_the_head() {
    let t = TestLedger::new();
    t.append(70_000);
    t.ledger.checkpoint().unwrap();
    let served = Served::start(t.ledger.clone());
    let (cp, note) = verified_checkpoint(&served, &t.vkey);
    let edge = served.get("/tile/0/273.p/112");
    let edge_bundle = served.get("/tile/entries/273.p/112");
    let level1 = served.get("/tile/1/001.p/17");
    assert_eq!(edge.status, StatusCode::OK);
    assert_eq!(level1.status, StatusCode::OK);

    // Grow the ledger past the checkpoint (the edge tile fills, new tiles appear) without a new
    // checkpoint: nothing served changes, and what the head has beyond the checkpoint is 404.
    t.append(1_000);
    assert_eq!(t.ledger.head().unwrap().size, 71_000);
    let (same_cp, same_note) = verified_checkpoint(&served, &t.vkey);
    assert_eq!((same_cp.size(), &same_note), (cp.size(), &note));
    assert_eq!(served.get("/tile/0/273.p/112").body, edge.body);
    assert_eq!(served.get("/tile/entries/273.p/112").body, edge_bundle.body);
    assert_eq!(served.get("/tile/1/001.p/17").body, level1.body);
    for beyond in [
        "/tile/0/273",
        "/tile/0/273.p/113",
        "/tile/0/274.p/1",
        "/tile/entries/273",
        "/tile/entries/274.p/1",
        "/tile/1/001.p/18",
    ] {
        let r = served.get(beyond);
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{beyond}: {}", r.text());
        assert!(r.text().contains("70000 entries"), "{beyond}: {}", r.text());
        assert_eq!(r.header("cache-control"), "no-cache", "{beyond}");
    }
    let http = HttpTiles(&served);
    let reader = TileHashReader::new(cp.size(), *cp.hash(), &http);
    assert_eq!(tree_hash(cp.size(), &reader).unwrap(), *cp.hash());

    // The next checkpoint moves the view: the full tile starts with the old partial one, and the
    // independent client recomputes the new root.
    t.ledger.checkpoint().unwrap();
    let (new_cp, _) = verified_checkpoint(&served, &t.vkey);
    assert_eq!(new_cp.size(), 71_000);
    let full = served.get("/tile/0/273");
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.body.len(), 8192);
    assert_eq!(&full.body[..112 * 32], &edge.body[..]);
    assert_eq!(full.header("cache-control"), cortex_tiles::IMMUTABLE);
    let reader = TileHashReader::new(new_cp.size(), *new_cp.hash(), &http);
    assert_eq!(tree_hash(new_cp.size(), &reader).unwrap(), *new_cp.hash());
    assert_eq!(recompute_every_leaf(&served, new_cp.size()).len(), 71_000);
    // A client still on the old checkpoint gets the same partial tile as before.
    assert_eq!(served.get("/tile/0/273.p/112").body, edge.body);
}
