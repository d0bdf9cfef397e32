//! Checkpoint checks: each checkpoint's range against the one before it, its signed note
//! (signature, origin, size and root against the stored columns and the entries) and its anchor
//! receipts.

use super::{VerifyOptions, Violation, ViolationKind, v};
use crate::ledger::checkpoint::{Checkpoint, CheckpointRecord};
use crate::ledger::hash::Hasher;
use crate::ledger::merkle;
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use crate::ledger::store::LedgerStore;
use crate::ledger::tiles::TileNodes;

pub(super) fn check_checkpoints(
    store: &dyn LedgerStore,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    checkpoints: &[CheckpointRecord],
    rows_end: u64,
    out: &mut Vec<Violation>,
) -> (u64, u64) {
    let verifiers: Vec<&dyn Verifier> = options.verifiers.iter().map(|b| &**b).collect();
    let nodes = TileNodes::new(store, hasher);
    let (mut checked, mut unchecked) = (0, 0);
    let mut prev: Option<&CheckpointRecord> = None;
    for cp in checkpoints {
        // A checkpoint's first index is where the previous one ended (not the stored
        // range_start column, which may itself be what was tampered with).
        let at = Some(prev.map_or(0, |p| p.size));
        let cps = Some(cp.size);
        let mut push = |kind, msg: String| out.push(v(kind, at, cps, msg));
        let label = format!(
            "checkpoint {} (entries {}..{})",
            cp.size, cp.range_start, cp.size
        );
        if let Some(p) = prev {
            if cp.size <= p.size {
                push(
                    ViolationKind::InconsistentCheckpoints,
                    format!("{label} does not grow past checkpoint {}", p.size),
                );
            } else if cp.range_start != p.size || cp.range_count != cp.size - cp.range_start {
                push(
                    ViolationKind::InconsistentCheckpoints,
                    format!(
                        "{label} records range start {} count {}, but the previous checkpoint ended at {}",
                        cp.range_start, cp.range_count, p.size
                    ),
                );
            }
        } else if cp.range_start != 0 || cp.range_count != cp.size {
            push(
                ViolationKind::InconsistentCheckpoints,
                format!(
                    "{label} is the first checkpoint but records range start {}",
                    cp.range_start
                ),
            );
        }
        prev = Some(cp);
        let note = match SignedNote::parse(cp.note.as_bytes()) {
            Ok(n) => n,
            Err(e) => {
                push(ViolationKind::BadSignature, format!("{label}: {e}"));
                continue;
            }
        };
        let policy_names = match &options.policy {
            Some(policy) => {
                let outcome = policy.check(cp.size, &note, &cp.extra_signatures);
                for p in outcome.problems {
                    push(ViolationKind::BadSignature, format!("{label}: {p}"));
                }
                Some(outcome.verified_note_names)
            }
            None if verifiers.is_empty() => {
                push(
                    ViolationKind::BadSignature,
                    format!(
                        "{label}: no verifier key was given, so its signature cannot be trusted"
                    ),
                );
                None
            }
            None => {
                if let Err(e) = note.verify(&verifiers) {
                    push(ViolationKind::BadSignature, format!("{label}: {e}"));
                }
                None
            }
        };
        let body = match Checkpoint::parse(&note.text) {
            Ok(b) => b,
            Err(e) => {
                push(ViolationKind::BadSignature, format!("{label}: {e}"));
                continue;
            }
        };
        if let Some(names) = policy_names
            && !names.contains(&body.origin)
        {
            push(
                ViolationKind::BadSignature,
                format!(
                    "{label}: no verified signature by the log's own key (named {:?}, the origin)",
                    body.origin
                ),
            );
        }
        if origin.is_some_and(|o| o != body.origin) || !body.extensions.is_empty() {
            push(
                ViolationKind::BadSignature,
                format!(
                    "{label}: signed origin {:?} is not this ledger's",
                    body.origin
                ),
            );
        }
        if body.size != cp.size || body.root != cp.root {
            push(
                ViolationKind::BadRoot,
                format!("{label}: the stored size/root columns differ from the signed note"),
            );
        }
        if body.size <= rows_end {
            match merkle::root(&nodes, hasher, body.size) {
                Ok(r) if r == body.root => {}
                Ok(r) => push(
                    ViolationKind::BadRoot,
                    format!(
                        "{label}: signed root {} but the entries give {}",
                        body.root.to_base64(),
                        r.to_base64()
                    ),
                ),
                Err(e) => push(
                    ViolationKind::BadRoot,
                    format!("{label}: root cannot be recomputed: {e}"),
                ),
            }
        }
        for rc in &cp.receipts {
            match options
                .anchors
                .iter()
                .find(|a| a.kind() == rc.anchor && a.target() == rc.target)
            {
                Some(a) => {
                    checked += 1;
                    if let Err(e) = a.verify_receipt(&cp.note, rc) {
                        push(
                            ViolationKind::BadReceipt,
                            format!("{label}: {} receipt from {}: {e}", rc.anchor, rc.target),
                        );
                    }
                }
                None => unchecked += 1,
            }
        }
    }
    (checked, unchecked)
}
