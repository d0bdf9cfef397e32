//! Cases at the end of the ledger: rows appended past the head, a truncated tail, and a head
//! whose size or last chain hash was changed.

use super::fixture::{Fixture, SIZE, flip_bit, put, tamper_entry};
use super::{Env, R, TamperOp};
use crate::error::ErrorKind;
use crate::ledger::hash::Hash;
use crate::ledger::store::Head;
use crate::ledger::verify::ViolationKind;

pub(super) fn appended_past_head(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let forged = fx.forged_row(SIZE, fx.chain_hash(SIZE - 1));
    put(&fx, forged)?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn appended_past_head_moved(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let forged = fx.forged_row(SIZE, fx.chain_hash(SIZE - 1));
    let last = Hash::from_slice(&forged.hash).unwrap();
    fx.apply(vec![
        TamperOp::PutEntry(forged),
        TamperOp::SetHead(Head {
            size: SIZE + 1,
            last_hash: last,
        }),
    ])?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn truncated_tail(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let k = 90; // below the last checkpoints (97, 100)
    fx.apply(vec![TamperOp::DeleteEntries(k..SIZE)])?;
    let r = fx.expect_first(ViolationKind::Truncated, k);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(SIZE));
    // The head still says 100, and the checkpoint of 100 exists: nothing new may be signed.
    match fx.ledger.checkpoint() {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "{e}"),
        Ok(o) => assert!(
            !o.created,
            "a checkpoint was signed over a truncated ledger"
        ),
    }
    Ok(())
}

pub(super) fn truncated_tail_head_moved(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let k = 90u64;
    let last = fx.chain_hash(k - 1);
    fx.apply(vec![
        TamperOp::DeleteEntries(k..SIZE),
        TamperOp::SetHead(Head {
            size: k,
            last_hash: last,
        }),
    ])?;
    let r = fx.expect_first(ViolationKind::Truncated, k);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(SIZE));
    fx.expect_checkpoint_refused();
    // Appending over the truncated tail is refused too: the stored tiles still hold the
    // leaves of entries 90..95, so the edge tile does not fit the head.
    let e = fx.ledger.append(&[tamper_entry(1000)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    fx.expect_first(ViolationKind::Truncated, k);
    Ok(())
}

pub(super) fn altered_head_hash(env: &Env<'_>) -> R {
    // Only the head's copy of the last chain hash is changed: every row, tile and checkpoint is
    // intact, but the next append would link to a hash no entry has.
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::SetHead(Head {
        size: SIZE,
        last_hash: Hash(flip_bit(&fx.chain_hash(SIZE - 1).0, 3).try_into().unwrap()),
    })])?;
    let r = fx.expect_first(ViolationKind::BrokenChain, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn head_past_last_row(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::SetHead(Head {
        size: SIZE + 5,
        last_hash: fx.chain_hash(SIZE - 1),
    })])?;
    let r = fx.expect_first(ViolationKind::Truncated, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

pub(super) fn head_moved_back(env: &Env<'_>) -> R {
    // The head is rolled back to 90 with a matching last hash; rows 90..99, their tiles and the
    // checkpoints of 97 and 100 are intact: the appended rows must not pass for inserted ones.
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::SetHead(Head {
        size: 90,
        last_hash: fx.chain_hash(89),
    })])?;
    let r = fx.expect_first(ViolationKind::Truncated, 90);
    assert!(
        r.violations[0].message.contains("head was moved back"),
        "{:#?}",
        r.violations[0]
    );
    Ok(())
}
