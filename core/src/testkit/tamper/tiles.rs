//! Cases that tamper with the stored Merkle tiles: leaf and upper tiles altered, malformed or
//! deleted.

use super::fixture::{Fixture, flip_bit, tamper_entry};
use super::{Env, R, TamperOp};
use crate::ledger::entry::NewEntry;
use crate::ledger::verify::ViolationKind;

pub(super) fn altered_leaf_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (0, 6) holds the leaves of entries 96..99; change the leaf of entry 97.
    let tile = fx.tile(0, 6);
    assert_eq!(tile.len(), 4 * 32);
    fx.set_tile(0, 6, flip_bit(&tile, 32))?;
    let r = fx.expect_first(ViolationKind::BadTile, 97);
    // The root of checkpoint 100 is recomputed from that tile, so it fails too.
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadRoot && v.checkpoint == Some(100)),
        "{:#?}",
        r.violations
    );
    // The stored tree no longer matches checkpoint 100: once there is something new to sign,
    // the ledger refuses to sign it.
    fx.ledger
        .append(&[tamper_entry(1000), tamper_entry(1001)])
        .unwrap();
    fx.expect_checkpoint_refused();
    Ok(())
}

pub(super) fn altered_inner_leaf_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (0, 2) holds the leaves of entries 32..47; the tile above it catches the change.
    let tile = fx.tile(0, 2);
    fx.set_tile(0, 2, flip_bit(&tile, 10 * 32))?;
    let r = fx.expect_first(ViolationKind::BadTile, 32);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadTile && v.index == Some(42)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn altered_upper_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (1, 0) holds the roots of the first six 16-leaf subtrees; change the one of 80..95.
    let tile = fx.tile(1, 0);
    assert_eq!(tile.len(), 6 * 32);
    fx.set_tile(1, 0, flip_bit(&tile, 5 * 32 + 7))?;
    let r = fx.expect_first(ViolationKind::BadTile, 80);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind != ViolationKind::BadTile || v.index == Some(80)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn bad_tile_between_identical_entries(env: &Env<'_>) -> R {
    // Entries 0..31 have identical fields (one batch: one timestamp), so entry 5's fields with
    // index 6 hash to leaf 6. A changed leaf 5 must still be a bad tile, not a deletion.
    let same = vec![NewEntry::new("heartbeat", "ping", "{}"); 32];
    let fx = Fixture::with(env, &[same]);
    let tile = fx.tile(0, 0);
    fx.set_tile(0, 0, flip_bit(&tile, 5 * 32))?;
    let r = fx.expect_first(ViolationKind::BadTile, 0);
    let kinds: Vec<(ViolationKind, Option<u64>)> =
        r.violations.iter().map(|v| (v.kind, v.index)).collect();
    assert!(
        kinds.contains(&(ViolationKind::BadTile, Some(5))),
        "{:#?}",
        r.violations
    );
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k.0, ViolationKind::BadTile | ViolationKind::BadRoot)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn malformed_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (0, 2) (entries 32..47) is read by no checkpoint root, only checked against the
    // entries and the tile above it.
    let tile = fx.tile(0, 2);
    fx.set_tile(0, 2, tile[..tile.len() - 1].to_vec())?;
    let r = fx.expect_first(ViolationKind::BadTile, 32);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind == ViolationKind::BadTile),
        "{:#?}",
        r.violations
    );
    // A tile that a checkpoint root needs is a bad tile and makes that root uncomputable.
    fx.set_tile(0, 2, tile)?;
    assert!(fx.verify().valid);
    let tile = fx.tile(0, 3);
    fx.set_tile(0, 3, tile[..tile.len() - 1].to_vec())?;
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadTile && v.index == Some(48)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn deleted_leaf_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (0, 2) (entries 32..47) removed: its rows have no leaf, and the tile above no longer
    // matches the tiles below it.
    fx.apply(vec![TamperOp::DeleteTile { level: 0, index: 2 }])?;
    let r = fx.expect_first(ViolationKind::BadTile, 32);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind == ViolationKind::BadTile),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn deleted_upper_tile(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    // Tile (1, 0) holds the roots of the 16-leaf subtrees 0..95.
    fx.apply(vec![TamperOp::DeleteTile { level: 1, index: 0 }])?;
    let r = fx.expect_first(ViolationKind::BadTile, 0);
    assert!(
        r.violations
            .iter()
            .all(|v| matches!(v.kind, ViolationKind::BadTile | ViolationKind::BadRoot)),
        "{:#?}",
        r.violations
    );
    Ok(())
}
