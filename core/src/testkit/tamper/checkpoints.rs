//! Cases that tamper with stored checkpoints: root columns, signatures and note bodies, range
//! columns, and checkpoints deleted or moved to another size.

use super::fixture::{Fixture, ORIGIN, SIZE, alter_char, tamper_entry};
use super::{Env, R, TamperOp};
use crate::ledger::note::{NoteSignature, SignedNote};
use crate::ledger::verify::ViolationKind;

pub(super) fn altered_root(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(60);
    cp.root.0[0] ^= 0x10;
    fx.apply(vec![TamperOp::PutCheckpoint(cp)])?;
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    Ok(())
}

pub(super) fn malformed_root(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::MalformCheckpointRoot(SIZE)])?;
    let r = fx.expect_first(ViolationKind::BadRoot, 97);
    assert_eq!(r.violations[0].checkpoint, Some(SIZE));
    // The latest checkpoint no longer matches the tree: no new checkpoint is signed on top.
    fx.ledger.append(&[tamper_entry(1000)]).unwrap();
    fx.expect_checkpoint_refused();
    Ok(())
}

pub(super) fn altered_signature(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let note = fx.checkpoint(60).note;
    // The signature line is the last line: `— <name> <base64(key ID ‖ signature)>`. Change a
    // base64 character in the middle of the signature, well past the key ID, so the key still
    // matches but the signature fails.
    let line_start = note.trim_end().rfind('\n').unwrap() + 1;
    let b64_start = line_start + note[line_start..].rfind(' ').unwrap() + 1;
    let b64_len = note.trim_end().len() - b64_start;
    assert!(b64_len > 16, "signature too short: {note:?}");
    let at = note[..b64_start].chars().count() + 8 + (b64_len - 8) / 2;
    let altered = alter_char(&note, at);
    assert!(altered.contains(&format!("\u{2014} {ORIGIN} ")));
    fx.set_note(60, &altered)?;
    let r = fx.expect_first(ViolationKind::BadSignature, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    assert!(
        r.violations[0].message.contains("invalid signature"),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn altered_note_body(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let note = fx.checkpoint(85).note;
    // The origin line: the signature no longer verifies and the origin is not the ledger's.
    fx.set_note(85, &alter_char(&note, 3))?;
    let r = fx.expect_first(ViolationKind::BadSignature, 60);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind == ViolationKind::BadSignature && v.checkpoint == Some(85)),
        "{:#?}",
        r.violations
    );
    // The root line: also a bad root, as the note no longer matches the stored root column
    // (bad_root sorts before bad_signature at the same index).
    fx.set_note(85, &note)?;
    assert!(fx.verify().valid);
    let root_at = note.match_indices('\n').nth(1).unwrap().0 + 5;
    fx.set_note(85, &alter_char(&note, note[..root_at].chars().count()))?;
    let r = fx.expect_first(ViolationKind::BadRoot, 60);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadSignature && v.index == Some(60)),
        "{:#?}",
        r.violations
    );
    Ok(())
}

pub(super) fn impostor_signature(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let note = fx.checkpoint(60).note;
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let impostor = (env.new_signer)(ORIGIN);
    let mut forged = SignedNote::new(body).unwrap();
    forged.signatures.push(NoteSignature {
        name: ORIGIN.to_owned(),
        key_id: impostor.note_key_id().unwrap(),
        signature: impostor.sign(body.as_bytes()).unwrap(),
    });
    fx.set_note(60, &forged.to_text())?;
    let r = fx.expect_first(ViolationKind::BadSignature, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    Ok(())
}

pub(super) fn altered_range_start(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(60);
    cp.range_start = 30;
    fx.apply(vec![TamperOp::PutCheckpoint(cp)])?;
    // The index is where checkpoint 60 really starts (where checkpoint 27 ended), not the
    // altered column.
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    Ok(())
}

pub(super) fn altered_range_count(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(85);
    cp.range_count += 1;
    fx.apply(vec![TamperOp::PutCheckpoint(cp)])?;
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 60);
    assert_eq!(r.violations[0].checkpoint, Some(85));
    Ok(())
}

pub(super) fn deleted_checkpoint(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteCheckpoint(60)])?;
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(85));
    Ok(())
}

pub(super) fn checkpoint_moved(env: &Env<'_>) -> R {
    // Checkpoint 60 re-filed under size 61 (its note and root unchanged).
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(60);
    cp.size = 61;
    cp.range_count = 34;
    fx.apply(vec![
        TamperOp::DeleteCheckpoint(60),
        TamperOp::PutCheckpoint(cp),
    ])?;
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations[0].checkpoint, Some(61));
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::InconsistentCheckpoints && v.checkpoint == Some(85)),
        "{:#?}",
        r.violations
    );
    Ok(())
}
