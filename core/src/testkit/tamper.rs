//! Tamper-detection conformance (feature `testkit`): every backend crate runs
//! [`tamper_conformance`] against itself, so `verify` is shown to catch the same tampering on
//! every engine.
//!
//! Each case builds a fresh ledger of 100 varied entries appended in batches (automatic
//! checkpoints every 16 entries give checkpoints of sizes 27, 60, 85 and 97, and a final one of
//! 100 is made on demand), checks that `verify` finds it valid, then tampers with the
//! storage *around* the ledger, as someone with write access to the database would, through the
//! backend's [`Tamper`] implementation, and checks that `verify` reports the first violation with
//! the expected kind and exact index, and records the run in `integrity_checks`.
//!
//! [`Tamper`] is a test-only trait, deliberately not part of [`crate::Store`]: a handful of raw
//! writes ([`TamperOp`]) that every engine can express on its own storage (a separate SQL
//! connection, a raw key-value transaction). Swaps, shifts and re-chained rows are composed from
//! them here, so every backend gets exactly the same tampering. An operation a backend cannot
//! represent (the memory store keeps hashes as 32-byte arrays, so it cannot hold a 31-byte hash)
//! is [`Outcome::NotApplicable`]; the case is then skipped and listed in the returned
//! [`TamperReport`], which each backend's test compares with the list it expects.

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::checkpoint::CheckpointRecord;
use crate::ledger::entry::{EntryRef, NewEntry};
use crate::ledger::hash::Hash;
use crate::ledger::note::{NoteSignature, SignedNote};
use crate::ledger::signer::{SignatureScheme, Signer, Verifier};
use crate::ledger::store::{DynLedgerStore, Head};
use crate::ledger::verify::{VerifyOptions, VerifyReport, ViolationKind, verify_store};
use crate::ledger::{Ledger, LedgerOptions};
use std::ops::Range;
use std::sync::Arc;

/// A ledger row exactly as stored: fields as text, chain hashes as raw bytes (of any length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// The row's index (its key).
    pub index: u64,
    /// Stored timestamp.
    pub timestamp: String,
    /// Stored project.
    pub project: String,
    /// Stored action.
    pub action: String,
    /// Stored detail.
    pub detail: String,
    /// Stored `prev_hash` bytes.
    pub prev_hash: Vec<u8>,
    /// Stored `hash` bytes.
    pub hash: Vec<u8>,
}

impl RawRow {
    /// The row's Merkle leaf hash under `hasher`.
    pub fn leaf(&self, hasher: &dyn crate::Hasher) -> Hash {
        EntryRef {
            index: self.index,
            timestamp: &self.timestamp,
            project: &self.project,
            action: &self.action,
            detail: &self.detail,
        }
        .leaf_hash(hasher, &mut Vec::new())
    }
}

/// One raw write to a store's storage, bypassing the ledger (and every check it makes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TamperOp {
    /// Writes the ledger row at `row.index`, replacing any row stored there.
    PutEntry(RawRow),
    /// Deletes the ledger rows whose index is in the range (absent rows are ignored).
    DeleteEntries(Range<u64>),
    /// Overwrites the stored head (size and last chain hash).
    SetHead(Head),
    /// Writes the raw bytes of tile (`level`, `index`), replacing any stored tile.
    PutTile {
        /// Tile level.
        level: u8,
        /// Tile index within the level.
        index: u64,
        /// The bytes (any length, not necessarily a multiple of 32).
        bytes: Vec<u8>,
    },
    /// Deletes tile (`level`, `index`).
    DeleteTile {
        /// Tile level.
        level: u8,
        /// Tile index within the level.
        index: u64,
    },
    /// Writes the checkpoint of `size`: its root, range start and count, and note, inserting it
    /// if there is none of that size (receipts and extra signatures are left as they are).
    PutCheckpoint(CheckpointRecord),
    /// Stores, as the root of the checkpoint of this size, a value that is not a hash in the
    /// backend's own representation (text that is not hex, bytes that are not 32 long).
    MalformCheckpointRoot(u64),
    /// Deletes the checkpoint of this size.
    DeleteCheckpoint(u64),
}

/// What a backend did with a [`Tamper::apply`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Every operation was written.
    Done,
    /// The backend cannot represent one of the operations (the reason says which); nothing was
    /// written.
    NotApplicable(String),
}

/// Raw write access to a backend's storage, for tamper-detection tests only: what an attacker
/// with write access to the database (a separate connection, the file's tables) can do.
pub trait Tamper {
    /// Applies `ops` in order, in one transaction where the engine has them. Returns
    /// [`Outcome::NotApplicable`], having written nothing, if the backend cannot represent one of
    /// them; panics if the storage fails.
    fn apply(&self, ops: &[TamperOp]) -> Outcome;
}

impl<T: Tamper + ?Sized> Tamper for Arc<T> {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
        (**self).apply(ops)
    }
}

/// Which cases ran and which were skipped (with the reason) on a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TamperReport {
    /// Names of the cases that ran (and passed).
    pub ran: Vec<&'static str>,
    /// Names of the cases skipped because the backend cannot express their tampering, with the
    /// reason it gave.
    pub skipped: Vec<(&'static str, String)>,
}

impl TamperReport {
    /// The names of the skipped cases.
    pub fn skipped_names(&self) -> Vec<&'static str> {
        self.skipped.iter().map(|s| s.0).collect()
    }
}

/// A fresh store and raw write access to the same storage.
pub type MakeTamperable<'a> = &'a (dyn Fn() -> (DynLedgerStore, Box<dyn Tamper>) + Sync);
/// Makes a new note signer with the given key name (a different key on every call).
pub type NewSigner<'a> = &'a (dyn Fn(&str) -> Arc<dyn Signer> + Sync);

/// Cases run at once (each on its own store; most of a case's time is commits).
const PARALLEL_CASES: usize = 4;

/// Runs every tamper-detection case, each on a fresh store made by `make`, with note signers
/// made by `new_signer`, a few cases at a time. Panics naming every failed case; returns which
/// cases ran and which were skipped as not applicable (also written to stderr).
pub fn tamper_conformance(make: MakeTamperable<'_>, new_signer: NewSigner<'_>) -> TamperReport {
    let (report, failed) = run_cases(make, new_signer);
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "tamper conformance: {} cases ran, {} not applicable to this backend",
            report.ran.len(),
            report.skipped.len()
        );
        for (name, why) in &report.skipped {
            let _ = writeln!(err, "  not applicable: {name}: {why}");
        }
    }
    assert!(
        failed.is_empty(),
        "tamper-detection cases failed (see the panics above): {failed:?}"
    );
    report
}

/// Runs every case; returns what ran or was skipped, and the names of the cases that failed.
fn run_cases(
    make: MakeTamperable<'_>,
    new_signer: NewSigner<'_>,
) -> (TamperReport, Vec<&'static str>) {
    let env = Env { make, new_signer };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, std::thread::Result<std::result::Result<(), Skip>>)> =
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..PARALLEL_CASES)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((_, case)) = CASES.get(k) else {
                                return mine;
                            };
                            let env = &env;
                            mine.push((
                                k,
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    case(env)
                                })),
                            ));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("tamper worker"))
                .collect()
        });
    results.sort_by_key(|r| r.0);
    let mut report = TamperReport::default();
    let mut failed = Vec::new();
    for (k, result) in results {
        let name = CASES[k].0;
        match result {
            Ok(Ok(())) => report.ran.push(name),
            Ok(Err(Skip(why))) => report.skipped.push((name, why)),
            Err(_) => failed.push(name),
        }
    }
    (report, failed)
}

/// The names of every case of [`tamper_conformance`], in the order it lists them.
pub fn tamper_case_names() -> Vec<&'static str> {
    CASES.iter().map(|c| c.0).collect()
}

struct Env<'a> {
    make: MakeTamperable<'a>,
    new_signer: NewSigner<'a>,
}

/// A case could not tamper as it needs: the backend cannot represent the change.
struct Skip(String);

type Case = fn(&Env<'_>) -> std::result::Result<(), Skip>;

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

struct Fixture {
    store: DynLedgerStore,
    tamper: Box<dyn Tamper>,
    ledger: Ledger,
    signer: Arc<dyn Signer>,
}

impl Fixture {
    /// A fresh ledger of [`SIZE`] entries with [`CHECKPOINTS`], verified valid.
    fn new(env: &Env<'_>) -> Fixture {
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
    fn with(env: &Env<'_>, batches: &[Vec<NewEntry>]) -> Fixture {
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

    fn apply(&self, ops: Vec<TamperOp>) -> std::result::Result<(), Skip> {
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

    fn checkpoint(&self, size: u64) -> CheckpointRecord {
        self.store
            .checkpoints()
            .unwrap()
            .into_iter()
            .find(|c| c.size == size)
            .expect("checkpoint")
    }

    fn verify(&self) -> VerifyReport {
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
    fn expect_first(&self, kind: ViolationKind, index: u64) -> VerifyReport {
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

    fn rows(&self, range: Range<u64>) -> Vec<RawRow> {
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

    fn row(&self, idx: u64) -> RawRow {
        self.rows(idx..idx + 1).pop().expect("row")
    }

    fn chain_hash(&self, idx: u64) -> Hash {
        Hash::from_slice(&self.row(idx).hash).unwrap()
    }

    /// A forged row for `idx` whose chain link is correct: it follows `prev` and its hash is the
    /// chain hash of its own fields.
    fn forged_row(&self, idx: u64, prev: Hash) -> RawRow {
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
    fn rechain(&self, mut rows: Vec<RawRow>, mut prev: Hash) -> (Vec<RawRow>, Hash) {
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
    fn shifted_up(&self, from: u64, end: u64) -> Vec<TamperOp> {
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
    fn swap(&self, i: u64, j: u64) -> std::result::Result<(), Skip> {
        let (mut a, mut b) = (self.row(i), self.row(j));
        std::mem::swap(&mut a.index, &mut b.index);
        self.apply(vec![TamperOp::PutEntry(a), TamperOp::PutEntry(b)])
    }

    fn tile(&self, level: u8, idx: u64) -> Vec<u8> {
        let mut out = None;
        self.store
            .scan_tiles(level, idx..idx + 1, &mut |_, b| {
                out = Some(b.to_vec());
                Ok(())
            })
            .unwrap();
        out.expect("tile")
    }

    fn set_tile(&self, level: u8, index: u64, bytes: Vec<u8>) -> std::result::Result<(), Skip> {
        self.apply(vec![TamperOp::PutTile {
            level,
            index,
            bytes,
        }])
    }

    fn set_note(&self, size: u64, note: &str) -> std::result::Result<(), Skip> {
        let mut cp = self.checkpoint(size);
        cp.note = note.to_owned();
        self.apply(vec![TamperOp::PutCheckpoint(cp)])
    }

    /// Asks for a checkpoint, which must be refused as an integrity error.
    fn expect_checkpoint_refused(&self) {
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

fn flip_bit(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

type R = std::result::Result<(), Skip>;

const CASES: &[(&str, Case)] = &[
    // One field of one row altered: `altered_entry` at that row.
    ("altered_timestamp_is_an_altered_entry", altered_timestamp),
    ("altered_project_is_an_altered_entry", altered_project),
    ("altered_action_is_an_altered_entry", altered_action),
    ("altered_detail_is_an_altered_entry", altered_detail),
    ("altered_prev_hash_is_an_altered_entry", altered_prev_hash),
    (
        "altered_hash_is_an_altered_entry_not_a_broken_chain_at_the_next_row",
        altered_hash,
    ),
    ("a_malformed_hash_is_an_altered_entry", malformed_hash),
    (
        "an_altered_row_rechained_to_the_end_is_still_found",
        altered_row_rechained,
    ),
    // Rows deleted, swapped, inserted; the tail truncated.
    ("a_deleted_row_is_a_missing_entry", deleted_row),
    ("deleted_rows_are_one_missing_range", deleted_rows),
    (
        "the_first_row_deleted_is_a_missing_entry",
        first_row_deleted,
    ),
    (
        "a_deleted_row_with_the_rest_shifted_down_is_a_missing_entry",
        deleted_row_shifted_down,
    ),
    (
        "swapped_rows_are_reordered_entries_at_both_indices",
        swapped_rows,
    ),
    (
        "adjacent_swapped_rows_are_reordered_entries",
        adjacent_swapped_rows,
    ),
    (
        "rows_swapped_across_tiles_are_reordered_entries",
        rows_swapped_across_tiles,
    ),
    (
        "an_inserted_row_with_a_bogus_hash_is_an_inserted_entry",
        inserted_row_bogus_hash,
    ),
    (
        "an_inserted_row_with_a_correct_chain_link_is_an_inserted_entry",
        inserted_row_linked,
    ),
    (
        "an_inserted_row_with_everything_after_it_rechained_is_an_inserted_entry",
        inserted_row_rechained,
    ),
    (
        "a_row_appended_past_the_head_is_an_inserted_entry",
        appended_past_head,
    ),
    (
        "a_row_appended_past_the_head_with_the_head_moved_is_an_inserted_entry",
        appended_past_head_moved,
    ),
    (
        "a_truncated_tail_is_truncation_at_the_first_missing_index",
        truncated_tail,
    ),
    (
        "a_truncated_tail_with_the_head_moved_is_truncation_and_blocks_checkpoints",
        truncated_tail_head_moved,
    ),
    ("an_altered_head_hash_is_a_broken_chain", altered_head_hash),
    ("a_head_past_the_last_row_is_truncation", head_past_last_row),
    (
        "a_head_moved_back_over_signed_rows_is_truncation",
        head_moved_back,
    ),
    // Checkpoints and tiles.
    ("an_altered_root_column_is_a_bad_root", altered_root),
    ("a_malformed_root_column_is_a_bad_root", malformed_root),
    ("an_altered_signature_is_a_bad_signature", altered_signature),
    ("an_altered_note_body_is_a_bad_signature", altered_note_body),
    (
        "a_note_signed_by_another_key_of_the_same_name_is_a_bad_signature",
        impostor_signature,
    ),
    (
        "an_altered_leaf_tile_is_a_bad_tile_and_blocks_checkpoints",
        altered_leaf_tile,
    ),
    (
        "an_altered_inner_leaf_tile_is_a_bad_tile",
        altered_inner_leaf_tile,
    ),
    ("an_altered_upper_tile_is_a_bad_tile", altered_upper_tile),
    (
        "a_bad_tile_between_identical_entries_is_not_taken_for_shifted_rows",
        bad_tile_between_identical_entries,
    ),
    ("a_malformed_tile_is_a_bad_tile", malformed_tile),
    ("a_deleted_leaf_tile_is_a_bad_tile", deleted_leaf_tile),
    ("a_deleted_upper_tile_is_a_bad_tile", deleted_upper_tile),
    (
        "an_altered_range_start_is_inconsistent_checkpoints",
        altered_range_start,
    ),
    (
        "an_altered_range_count_is_inconsistent_checkpoints",
        altered_range_count,
    ),
    (
        "a_deleted_checkpoint_is_inconsistent_checkpoints",
        deleted_checkpoint,
    ),
    (
        "a_checkpoint_moved_to_another_size_is_a_bad_root",
        checkpoint_moved,
    ),
];

fn put(fx: &Fixture, row: RawRow) -> R {
    fx.apply(vec![TamperOp::PutEntry(row)])
}

fn altered_timestamp(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    // A microsecond digit: still a well-formed timestamp.
    r.timestamp = alter_char(&r.timestamp, r.timestamp.len() - 2);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

fn altered_project(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.project = alter_mid(&r.project);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

fn altered_action(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.action = alter_mid(&r.action);
    put(&fx, r)?;
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    Ok(())
}

fn altered_detail(env: &Env<'_>) -> R {
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

fn altered_prev_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.prev_hash = flip_bit(&r.prev_hash, 0);
    put(&fx, r)?;
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

fn altered_hash(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut r = fx.row(ROW);
    r.hash = flip_bit(&r.hash, 31);
    put(&fx, r)?;
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    // The next row's link breaks only as a consequence; it is not reported separately.
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

fn malformed_hash(env: &Env<'_>) -> R {
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

fn altered_row_rechained(env: &Env<'_>) -> R {
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

fn deleted_row(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteEntries(ROW..ROW + 1)])?;
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

fn deleted_rows(env: &Env<'_>) -> R {
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

fn first_row_deleted(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteEntries(0..1)])?;
    fx.expect_first(ViolationKind::MissingEntry, 0);
    Ok(())
}

fn deleted_row_shifted_down(env: &Env<'_>) -> R {
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

fn swapped_rows(env: &Env<'_>) -> R {
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

fn adjacent_swapped_rows(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.swap(ROW, ROW + 1)?;
    let r = fx.expect_first(ViolationKind::ReorderedEntry, ROW);
    assert_eq!(r.violations.len(), 2, "{:#?}", r.violations);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
    Ok(())
}

fn rows_swapped_across_tiles(env: &Env<'_>) -> R {
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

fn inserted_row_bogus_hash(env: &Env<'_>) -> R {
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

fn inserted_row_linked(env: &Env<'_>) -> R {
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

fn inserted_row_rechained(env: &Env<'_>) -> R {
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

fn appended_past_head(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let forged = fx.forged_row(SIZE, fx.chain_hash(SIZE - 1));
    put(&fx, forged)?;
    let r = fx.expect_first(ViolationKind::InsertedEntry, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

fn appended_past_head_moved(env: &Env<'_>) -> R {
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

fn truncated_tail(env: &Env<'_>) -> R {
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

fn truncated_tail_head_moved(env: &Env<'_>) -> R {
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

fn altered_head_hash(env: &Env<'_>) -> R {
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

fn head_past_last_row(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::SetHead(Head {
        size: SIZE + 5,
        last_hash: fx.chain_hash(SIZE - 1),
    })])?;
    let r = fx.expect_first(ViolationKind::Truncated, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    Ok(())
}

fn head_moved_back(env: &Env<'_>) -> R {
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

fn altered_root(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(60);
    cp.root.0[0] ^= 0x10;
    fx.apply(vec![TamperOp::PutCheckpoint(cp)])?;
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    Ok(())
}

fn malformed_root(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::MalformCheckpointRoot(SIZE)])?;
    let r = fx.expect_first(ViolationKind::BadRoot, 97);
    assert_eq!(r.violations[0].checkpoint, Some(SIZE));
    // The latest checkpoint no longer matches the tree: no new checkpoint is signed on top.
    fx.ledger.append(&[tamper_entry(1000)]).unwrap();
    fx.expect_checkpoint_refused();
    Ok(())
}

fn altered_signature(env: &Env<'_>) -> R {
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

fn altered_note_body(env: &Env<'_>) -> R {
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

fn impostor_signature(env: &Env<'_>) -> R {
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

fn altered_leaf_tile(env: &Env<'_>) -> R {
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

fn altered_inner_leaf_tile(env: &Env<'_>) -> R {
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

fn altered_upper_tile(env: &Env<'_>) -> R {
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

fn bad_tile_between_identical_entries(env: &Env<'_>) -> R {
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

fn malformed_tile(env: &Env<'_>) -> R {
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

fn deleted_leaf_tile(env: &Env<'_>) -> R {
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

fn deleted_upper_tile(env: &Env<'_>) -> R {
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

fn altered_range_start(env: &Env<'_>) -> R {
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

fn altered_range_count(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    let mut cp = fx.checkpoint(85);
    cp.range_count += 1;
    fx.apply(vec![TamperOp::PutCheckpoint(cp)])?;
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 60);
    assert_eq!(r.violations[0].checkpoint, Some(85));
    Ok(())
}

fn deleted_checkpoint(env: &Env<'_>) -> R {
    let fx = Fixture::new(env);
    fx.apply(vec![TamperOp::DeleteCheckpoint(60)])?;
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(85));
    Ok(())
}

fn checkpoint_moved(env: &Env<'_>) -> R {
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

/// A keyed-hash stand-in for an Ed25519 note signer, for tests of code that only stores and
/// checks signatures (core cannot depend on the signer crates). Symmetric, so **not** a
/// signature scheme: anyone holding the verifier could sign. Every [`TestSigner::generate`]
/// makes a different key; the key ID is computed as for Ed25519 keys.
#[derive(Debug, Clone)]
pub struct TestSigner {
    name: String,
    secret: [u8; 32],
    key_id: [u8; 4],
}

impl TestSigner {
    /// A new key named `name` (a valid note key name).
    pub fn generate(name: &str) -> TestSigner {
        use sha2::Digest;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let secret: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"cortex test signer\n")
            .chain_update(std::process::id().to_be_bytes())
            .chain_update(n.to_be_bytes())
            .chain_update(nanos.to_be_bytes())
            .finalize()
            .into();
        TestSigner {
            name: name.to_owned(),
            key_id: crate::ledger::note::key_id(name, 0x01, &secret),
            secret,
        }
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let part = |i: u8| {
            sha2::Sha256::new()
                .chain_update(self.secret)
                .chain_update([i])
                .chain_update(message)
                .finalize()
        };
        // 64 bytes, as long as an Ed25519 signature.
        [part(0).as_slice(), part(1).as_slice()].concat()
    }
}

impl Signer for TestSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.mac(message))
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(self.clone())
    }
}

impl Verifier for TestSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature == self.mac(message) {
            Ok(())
        } else {
            Err(Error::integrity("invalid test signature"))
        }
    }
}

/// [`TestSigner::generate`] as a [`NewSigner`].
pub fn test_signer(name: &str) -> Arc<dyn Signer> {
    Arc::new(TestSigner::generate(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;

    /// Writes nothing and says it did.
    struct Forgetful;

    impl Tamper for Forgetful {
        fn apply(&self, _: &[TamperOp]) -> Outcome {
            Outcome::Done
        }
    }

    /// Every case can fail: when the tampering does not happen, each one notices.
    #[test]
    fn every_case_fails_when_nothing_is_tampered() {
        let (report, failed) = run_cases(
            &|| {
                (
                    Arc::new(InMemoryStore::new()) as DynLedgerStore,
                    Box::new(Forgetful) as Box<dyn Tamper>,
                )
            },
            &test_signer,
        );
        assert_eq!(report, TamperReport::default());
        assert_eq!(failed, tamper_case_names());
    }

    #[test]
    fn test_signer_conformance() {
        crate::testkit::signer_conformance(&TestSigner::generate(ORIGIN));
        let (a, b) = (TestSigner::generate(ORIGIN), TestSigner::generate(ORIGIN));
        assert_ne!(
            Signer::note_key_id(&a),
            Signer::note_key_id(&b),
            "every key is new"
        );
        let sig = a.sign(b"m").unwrap();
        assert!(b.verifier().verify(b"m", &sig).is_err());
    }
}
