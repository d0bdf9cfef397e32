//! Cases that tamper with ledger rows: one field altered (with or without the chain re-computed
//! after it), rows deleted, swapped and inserted.

use super::fixture::{Fixture, ROW, SIZE, alter_char, alter_mid, flip_bit, put};
use super::{Env, R, RawRow, TamperOp};
use crate::ledger::hash::Hash;
use crate::ledger::store::Head;
use crate::ledger::verify::ViolationKind;

pub(super) fn altered_timestamp(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    // A microsecond digit: still a well-formed timestamp.
    r.timestamp = alter_char(&r.timestamp, r.timestamp.len() - 2);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

pub(super) fn altered_project(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.project = alter_mid(&r.project);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

pub(super) fn altered_action(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.action = alter_mid(&r.action);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

pub(super) fn altered_detail(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    let changed = r
        .detail
        .replacen(&ROW.to_string(), &(ROW + 1).to_string(), 1);
    assert_ne!(changed, r.detail);
    r.detail = changed;
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

pub(super) fn altered_prev_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.prev_hash = flip_bit(&r.prev_hash, 0);
    put(&fx, r)?;
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn altered_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.hash = flip_bit(&r.hash, 31);
    put(&fx, r)?;
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    // The next row's link breaks only as a consequence; it is not reported separately.
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn malformed_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let good = fx.row(ROW);
    let mut r = good.clone();
    r.hash.truncate(31);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    put(&fx, good)?;
    assert!(fx.verify().valid);
    let mut r = fx.row(ROW + 1);
    r.prev_hash.push(0);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW + 1);
    Ok(())
}

pub(super) fn altered_row_rechained(env: &Env<'_>) -> R {
    // The attacker alters row 42 and recomputes every chain hash after it, and the head, so the
    // chain is self-consistent; only the Merkle leaves (and the signed roots) disagree.
    let fx = Fixture::new(env);
    let mut rows = fx.rows(ROW..SIZE);
    rows[0].project = "rewritten".into();
    let (rows, last) = fx.rechain(rows, fx.chain_hash(ROW - 1));
    let mut ops: Vec<TamperOp> = rows.into_iter().map(TamperOp::PutEntry).collect();
    ops.push(TamperOp::SetHead(Head {
        size: SIZE,
        last_hash: last,
    }));
    fx.apply(ops)?;
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn deleted_row(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteEntries(ROW..ROW + 1)])?;
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn deleted_rows(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteEntries(ROW..ROW + 3)])?;
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert!(
        r.violations[0].message.contains("44"),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn first_row_deleted(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteEntries(0..1)])?;
    fx.expect_first(ViolationKind::MissingEntry, 0);
    Ok(())
}

pub(super) fn deleted_row_shifted_down(env: &Env<'_>) -> R {
    // The gap is closed by moving every later row down by one (and the head with it).
    let fx = Fixture::new(env);
    let last = fx.chain_hash(SIZE - 1);
    let mut ops: Vec<TamperOp> = fx
        .rows(ROW + 1..SIZE)
        .into_iter()
        .map(|mut r| {
            r.index -= 1;
            TamperOp::PutEntry(r)
        })
        .collect();
    ops.push(TamperOp::DeleteEntries(SIZE - 1..SIZE));
    ops.push(TamperOp::SetHead(Head {
        size: SIZE - 1,
        last_hash: last,
    }));
    fx.apply(ops)?;
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::Truncated && v.index == Some(SIZE - 1)),
        "the last signed entry is gone too: {:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn swapped_rows(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.swap(40, 45)?;
    let r = fx.expect_first(ViolationKind::ReorderedEntry, 40);
    let at: Vec<(ViolationKind, Option<u64>)> =
        r.violations.iter().map(|v| (v.kind, v.index)).collect();
    assert_eq!(
        at,
        [
            (ViolationKind::ReorderedEntry, Some(40)),
            (ViolationKind::ReorderedEntry, Some(45))
        ],
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn adjacent_swapped_rows(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.swap(ROW, ROW + 1)?;
    let r = fx.expect_first(ViolationKind::ReorderedEntry, ROW);
    assert_eq!(r.violations.len(), 2, "{:#?}", r.violations);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
    Ok(())
}

pub(super) fn rows_swapped_across_tiles(env: &Env<'_>) -> R {
    // Rows in different leaf tiles and under different checkpoints.
    let fx = Fixture::new(env);
    let (i, j) = (10u64, 70u64);
    fx.swap(i, j)?;
    let r = fx.expect_first(ViolationKind::ReorderedEntry, i);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::ReorderedEntry && v.index == Some(j)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn inserted_row_bogus_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let prev = fx.chain_hash(ROW - 1);
    let mut forged = fx.forged_row(ROW, prev);
    forged.hash = vec![0x5a; 32];
    let mut ops = fx.shifted_up(ROW, SIZE);
    ops.push(TamperOp::PutEntry(forged));
    fx.apply(ops)?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
    Ok(())
}

pub(super) fn inserted_row_linked(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let prev = fx.chain_hash(ROW - 1);
    let mut ops = fx.shifted_up(ROW, SIZE);
    ops.push(TamperOp::PutEntry(fx.forged_row(ROW, prev)));
    fx.apply(ops)?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
    Ok(())
}

pub(super) fn inserted_row_rechained(env: &Env<'_>) -> R {
    // The most careful insertion: the forged row links correctly, every later row is moved up
    // and re-chained with its new index, and the head follows. Only the Merkle tree remembers.
    let fx = Fixture::new(env);
    let forged = fx.forged_row(ROW, fx.chain_hash(ROW - 1));
    let moved: Vec<RawRow> = fx
        .rows(ROW..SIZE)
        .into_iter()
        .map(|mut r| {
            r.index += 1;
            r
        })
        .collect();
    let (moved, last) = fx.rechain(moved, Hash::from_slice(&forged.hash).unwrap());
    let mut ops: Vec<TamperOp> = moved.into_iter().rev().map(TamperOp::PutEntry).collect();
    ops.push(TamperOp::PutEntry(forged));
    ops.push(TamperOp::SetHead(Head {
        size: SIZE + 1,
        last_hash: last,
    }));
    fx.apply(ops)?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
    Ok(())
}
