//! The fixture every case starts from: the ledger (its entries, batches and checkpoints), the
//! `Fixture` wrapper that verifies it, reads raw rows and tiles and composes tampering from
//! [`TamperOp`]s, and small helpers that alter text and bytes while keeping their shape.

use super::{Env, Outcome, R, RawRow, Skip, Tamper, TamperOp};
use crate::error::ErrorKind;
use crate::ledger::checkpoint::CheckpointRecord;
use crate::ledger::entry::NewEntry;
use crate::ledger::hash::Hash;
use crate::ledger::signer::Signer;
use crate::ledger::store::DynLedgerStore;
use crate::ledger::verify::{VerifyOptions, VerifyReport, ViolationKind, verify_store};
use crate::ledger::{Ledger, LedgerOptions};
use std::ops::Range;
use std::sync::Arc;

/// The fixture ledger's origin (its signer's key name).
pub const ORIGIN: &str = "example.com/tamper";
const CHECKPOINT_EVERY: u64 = 16;
/// Batch sizes: automatic checkpoints at 27, 60, 85 and 97; the last batch crosses no multiple
/// of 16, so the final checkpoint (100) is made on demand.
const BATCHES: [usize; 6] = [7, 20, 33, 25, 12, 3];
/// Entries in the fixture ledger.
pub const SIZE: u64 = 100;
/// The fixture ledger's checkpoint sizes.
pub const CHECKPOINTS: [u64; 5] = [27, 60, 85, 97, 100];
/// The row most single-row cases tamper with.
pub const ROW: u64 = 42;

/// The fixture ledger every tamper case starts from, in `store`: [`SIZE`] varied entries
/// ([`tamper_entry`]) appended in batches, checkpoints at [`CHECKPOINTS`] signed by `signer`
/// (whose key name should be [`ORIGIN`]). Backend crates use it for their own extra cases.
pub fn fixture_ledger(store: DynLedgerStore, signer: Arc<dyn Signer>) -> Ledger {
    let batches: Vec<Vec<NewEntry>> = BATCHES
        .iter()
        .scan(0, |next, &n| {
            let batch = (*next..*next + n).map(tamper_entry).collect();
            *next += n;
            Some(batch)
        })
        .collect();
    build_ledger(store, signer, &batches)
}

/// A ledger of `batches` in `store` (checkpoint every 16, and one at the end).
fn build_ledger(
    store: DynLedgerStore,
    signer: Arc<dyn Signer>,
    batches: &[Vec<NewEntry>],
) -> Ledger {
    store.migrate().expect("migrate");
    let mut ledger = Ledger::open(
        store,
        LedgerOptions {
            checkpoint_every: CHECKPOINT_EVERY,
            ..Default::default()
        },
    )
    .unwrap();
    ledger.add_signer(signer).unwrap();
    for batch in batches {
        ledger.append(batch).unwrap();
    }
    let out = ledger.checkpoint().unwrap();
    let size = batches.iter().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(out.record.size, size);
    ledger
}

/// Varied entries: several projects and actions, details with quotes, commas, newlines and
/// non-ASCII text.
pub fn tamper_entry(i: usize) -> NewEntry {
    const PROJECTS: [&str; 4] = ["billing", "auth", "search-index", "ü-projekt"];
    const ACTIONS: [&str; 5] = [
        "fact.store",
        "user.login",
        "doc.delete",
        "note:with:colons",
        "a,b \"quoted\"",
    ];
    let detail = match i % 4 {
        0 => format!("{{\"i\":{i}}}"),
        1 => format!("{{\"i\":{i},\"msg\":\"a, \\\"quoted\\\" value\",\"tags\":[\"x\",\"y\"]}}"),
        2 => format!("{{\n  \"i\": {i},\n  \"nested\": {{\"ok\": true, \"n\": null}}\n}}"),
        _ => format!("[{i}, \"ünïcødé ✓\", 1.5e3]"),
    };
    NewEntry::new(PROJECTS[i % 4], ACTIONS[i % 5], detail)
}

pub(super) struct Fixture {
    store: DynLedgerStore,
    tamper: Box<dyn Tamper>,
    pub(super) ledger: Ledger,
    signer: Arc<dyn Signer>,
}

impl Fixture {
    /// A fresh ledger of [`SIZE`] entries with [`CHECKPOINTS`], verified valid.
    pub(super) fn new(env: &Env<'_>) -> Fixture {
        let (store, tamper) = (env.make)();
        let signer = (env.new_signer)(ORIGIN);
        let ledger = fixture_ledger(store.clone(), signer.clone());
        let fx = Fixture::checked(store, tamper, ledger, signer, SIZE);
        assert_eq!(fx.checkpoint_sizes(), CHECKPOINTS);
        assert_eq!(fx.verify().checkpoints_checked, CHECKPOINTS.len() as u64);
        assert_eq!(fx.checks_recorded(), (2, "ok".to_owned()));
        fx
    }

    /// A fresh ledger of `batches`, checkpointed at the end, verified valid.
    pub(super) fn with(env: &Env<'_>, batches: &[Vec<NewEntry>]) -> Fixture {
        let (store, tamper) = (env.make)();
        let signer = (env.new_signer)(ORIGIN);
        let ledger = build_ledger(store.clone(), signer.clone(), batches);
        let size = batches.iter().map(Vec::len).sum::<usize>() as u64;
        Fixture::checked(store, tamper, ledger, signer, size)
    }

    /// Wraps a freshly built ledger of `size` entries and checks it verifies.
    fn checked(
        store: DynLedgerStore,
        tamper: Box<dyn Tamper>,
        ledger: Ledger,
        signer: Arc<dyn Signer>,
        size: u64,
    ) -> Fixture {
        let fx = Fixture {
            store,
            tamper,
            ledger,
            signer,
        };
        let report = fx.verify();
        assert!(report.valid, "baseline: {:#?}", report.violations);
        assert_eq!(report.entries_checked, size);
        assert_eq!(fx.checks_recorded(), (1, "ok".to_owned()));
        fx
    }

    pub(super) fn apply(&self, ops: Vec<TamperOp>) -> std::result::Result<(), Skip> {
        match self.tamper.apply(&ops) {
            Outcome::Done => Ok(()),
            Outcome::NotApplicable(why) => Err(Skip(why)),
        }
    }

    fn checkpoint_sizes(&self) -> Vec<u64> {
        self.store
            .checkpoints()
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect()
    }

    pub(super) fn checkpoint(&self, size: u64) -> CheckpointRecord {
        self.store
            .checkpoints()
            .unwrap()
            .into_iter()
            .find(|c| c.size == size)
            .expect("checkpoint")
    }

    pub(super) fn verify(&self) -> VerifyReport {
        verify_store(
            &*self.store,
            self.ledger.hasher(),
            self.ledger.origin(),
            &VerifyOptions {
                verifiers: vec![self.signer.verifier()],
                record: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Number of recorded verification runs and the status of the newest.
    fn checks_recorded(&self) -> (usize, String) {
        let c = self.store.integrity_checks(1000).unwrap();
        (
            c.len(),
            c.first().map(|c| c.status.clone()).unwrap_or_default(),
        )
    }

    /// Verifies and asserts: invalid, first violation `kind` at `index`, violations sorted by
    /// index, run recorded as a violation.
    pub(super) fn expect_first(&self, kind: ViolationKind, index: u64) -> VerifyReport {
        let (before, _) = self.checks_recorded();
        let report = self.verify();
        assert!(!report.valid, "tampering went unnoticed");
        let first = report.first_violation().expect("a violation");
        assert_eq!(
            (first.kind, first.index),
            (kind, Some(index)),
            "first violation; all: {:#?}",
            report.violations
        );
        let sorted = report
            .violations
            .windows(2)
            .all(|w| w[0].index.unwrap_or(u64::MAX) <= w[1].index.unwrap_or(u64::MAX));
        assert!(sorted, "violations must be sorted by index");
        assert_eq!(
            self.checks_recorded(),
            (before + 1, "violation".to_owned()),
            "the run must be recorded in integrity_checks"
        );
        report
    }

    pub(super) fn rows(&self, range: Range<u64>) -> Vec<RawRow> {
        let mut out = Vec::new();
        self.store
            .scan_entries(range, &mut |r| {
                out.push(RawRow {
                    index: r.entry.index,
                    timestamp: r.entry.timestamp.to_owned(),
                    project: r.entry.project.to_owned(),
                    action: r.entry.action.to_owned(),
                    detail: r.entry.detail.to_owned(),
                    prev_hash: r.prev_hash.to_vec(),
                    hash: r.hash.to_vec(),
                });
                Ok(())
            })
            .unwrap();
        out
    }

    pub(super) fn row(&self, idx: u64) -> RawRow {
        self.rows(idx..idx + 1).pop().expect("row")
    }

    pub(super) fn chain_hash(&self, idx: u64) -> Hash {
        Hash::from_slice(&self.row(idx).hash).unwrap()
    }

    /// A forged row for `idx` whose chain link is correct: it follows `prev` and its hash is the
    /// chain hash of its own fields.
    pub(super) fn forged_row(&self, idx: u64, prev: Hash) -> RawRow {
        let mut row = RawRow {
            index: idx,
            timestamp: self.row(idx.saturating_sub(1)).timestamp,
            project: "billing".into(),
            action: "fact.store".into(),
            detail: "{\"forged\":true}".into(),
            prev_hash: prev.0.to_vec(),
            hash: Vec::new(),
        };
        row.hash = self
            .ledger
            .hasher()
            .chain(&prev, &row.leaf(self.ledger.hasher()))
            .0
            .to_vec();
        row
    }

    /// `rows` with their chain hashes recomputed, the first following `prev`; also returns the
    /// last chain hash.
    pub(super) fn rechain(&self, mut rows: Vec<RawRow>, mut prev: Hash) -> (Vec<RawRow>, Hash) {
        let h = self.ledger.hasher();
        for r in &mut rows {
            let hash = h.chain(&prev, &r.leaf(h));
            r.prev_hash = prev.0.to_vec();
            r.hash = hash.0.to_vec();
            prev = hash;
        }
        (rows, prev)
    }

    /// Rows `from..end` moved up by one index (whole rows, hashes included), highest first.
    pub(super) fn shifted_up(&self, from: u64, end: u64) -> Vec<TamperOp> {
        let mut rows = self.rows(from..end);
        rows.reverse();
        rows.into_iter()
            .map(|mut r| {
                r.index += 1;
                TamperOp::PutEntry(r)
            })
            .collect()
    }

    /// Swaps two whole rows.
    pub(super) fn swap(&self, i: u64, j: u64) -> std::result::Result<(), Skip> {
        let (mut a, mut b) = (self.row(i), self.row(j));
        std::mem::swap(&mut a.index, &mut b.index);
        self.apply(vec![TamperOp::PutEntry(a), TamperOp::PutEntry(b)])
    }

    pub(super) fn tile(&self, level: u8, idx: u64) -> Vec<u8> {
        let mut out = None;
        self.store
            .scan_tiles(level, idx..idx + 1, &mut |_, b| {
                out = Some(b.to_vec());
                Ok(())
            })
            .unwrap();
        out.expect("tile")
    }

    pub(super) fn set_tile(
        &self,
        level: u8,
        index: u64,
        bytes: Vec<u8>,
    ) -> std::result::Result<(), Skip> {
        self.apply(vec![TamperOp::PutTile {
            level,
            index,
            bytes,
        }])
    }

    pub(super) fn set_note(&self, size: u64, note: &str) -> std::result::Result<(), Skip> {
        let mut cp = self.checkpoint(size);
        cp.note = note.to_owned();
        self.apply(vec![TamperOp::PutCheckpoint(cp)])
    }

    /// Asks for a checkpoint, which must be refused as an integrity error.
    pub(super) fn expect_checkpoint_refused(&self) {
        let e = self.ledger.checkpoint().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    }
}

/// Changes one character of `s` at char position `at`, keeping its class where possible (a digit
/// stays a digit, a hex letter a hex letter, a letter a letter of the same case), so that
/// numbers, hex hashes and timestamps keep their shape.
pub fn alter_char(s: &str, at: usize) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let c = chars[at];
    chars[at] = match c {
        '0'..='8' => (c as u8 + 1) as char,
        '9' => '0',
        'a'..='e' | 'A'..='E' => (c as u8 + 1) as char,
        'f' => 'a',
        'F' => 'A',
        'g'..='y' | 'G'..='Y' => (c as u8 + 1) as char,
        'z' => 'g',
        'Z' => 'G',
        _ => 'x',
    };
    let out: String = chars.into_iter().collect();
    assert_ne!(out, s);
    out
}

/// Changes the middle character of `s`.
pub fn alter_mid(s: &str) -> String {
    alter_char(s, s.chars().count() / 2)
}

pub(super) fn flip_bit(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}
pub(super) fn put(fx: &Fixture, row: RawRow) -> R {
    fx.apply(vec![TamperOp::PutEntry(row)])
}
