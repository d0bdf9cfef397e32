//! Tamper-detection tests for the SQLite backend and for exports (PRODUCT.md §3, "Verify").
//!
//! Every store case builds a fresh ledger of 100 entries appended in batches (automatic
//! checkpoints every 16 entries give checkpoints of sizes 27, 60, 85, 97, and a final one of
//! 100), checks that `verify` finds it valid, then tampers with the database file through a
//! *separate* SQLite connection, as someone with write access to the file would, and checks that
//! `verify` reports the first violation with the expected kind and exact index, and records the
//! run in `integrity_checks`.
//!
//! The export cases write each format, check that it verifies, then alter every field of the
//! JSON form (and a selection of the JSON Lines and CSV forms) one at a time: each copy must be
//! rejected, either with an error or with a report that is not valid.

use cortex_core::entry::EntryRef;
use cortex_core::export::{ExportFormat, ExternalReport, verify_export, write_export};
use cortex_core::{
    DynStore, ErrorKind, Hash, Ledger, LedgerOptions, NewEntry, Signer, Verifier, VerifyOptions,
    VerifyReport, ViolationKind, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

const ORIGIN: &str = "example.com/tamper";
const CHECKPOINT_EVERY: u64 = 16;
/// Batch sizes: automatic checkpoints at 27, 60, 85 and 97; the last batch crosses no multiple
/// of 16, so the final checkpoint (100) is made on demand.
const BATCHES: [usize; 6] = [7, 20, 33, 25, 12, 3];
const SIZE: u64 = 100;
const CHECKPOINTS: [u64; 5] = [27, 60, 85, 97, 100];

/// Varied entries: several projects and actions, details with quotes, commas, newlines and
/// non-ASCII text (so CSV quoting and JSON escaping are exercised too).
fn new_entry(i: usize) -> NewEntry {
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
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<SqliteStore>,
    ledger: Ledger,
    signer: Arc<Ed25519Signer>,
}

impl Fixture {
    /// A fresh ledger of [`SIZE`] entries with [`CHECKPOINTS`], verified valid.
    fn new() -> Fixture {
        let batches: Vec<Vec<NewEntry>> = BATCHES
            .iter()
            .scan(0, |next, &n| {
                let batch = (*next..*next + n).map(new_entry).collect();
                *next += n;
                Some(batch)
            })
            .collect();
        let fx = Fixture::with(&batches);
        // The last batch crosses no multiple of 16: the final checkpoint was made on demand.
        assert_eq!(fx.checkpoint_sizes(), CHECKPOINTS);
        assert_eq!(fx.verify().checkpoints_checked, CHECKPOINTS.len() as u64);
        assert_eq!(fx.checks_recorded(), (2, "ok".to_owned()));
        fx
    }

    /// A fresh ledger of `batches`, checkpointed at the end, verified valid.
    fn with(batches: &[Vec<NewEntry>]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let store = Arc::new(
            SqliteStore::open(
                &path,
                SqliteOptions {
                    synchronous: Synchronous::Normal,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let dyn_store: DynStore = store.clone();
        let mut ledger = Ledger::open(
            dyn_store,
            LedgerOptions {
                checkpoint_every: CHECKPOINT_EVERY,
                ..Default::default()
            },
        )
        .unwrap();
        let signer = Arc::new(Ed25519Signer::generate(ORIGIN).unwrap());
        ledger.add_signer(signer.clone()).unwrap();
        for batch in batches {
            ledger.append(batch).unwrap();
        }
        let out = ledger.checkpoint().unwrap();
        let size = batches.iter().map(Vec::len).sum::<usize>() as u64;
        assert_eq!(out.record.size, size);
        let fx = Fixture {
            _dir: dir,
            path,
            store,
            ledger,
            signer,
        };
        // Baseline: the untouched ledger verifies and the run is recorded as ok.
        let report = fx.verify();
        assert!(report.valid, "baseline: {:#?}", report.violations);
        assert_eq!(report.entries_checked, size);
        assert_eq!(fx.checks_recorded(), (1, "ok".to_owned()));
        fx
    }

    fn checkpoint_sizes(&self) -> Vec<u64> {
        use cortex_core::Store;
        self.store
            .checkpoints()
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect()
    }

    /// A separate connection on the same database file: the tampering channel.
    fn db(&self) -> Connection {
        Connection::open(&self.path).unwrap()
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

    /// Number of `integrity_checks` rows and the status of the newest, read from the file.
    fn checks_recorded(&self) -> (i64, String) {
        self.db()
            .query_row(
                "SELECT (SELECT COUNT(*) FROM integrity_checks), \
                        (SELECT status FROM integrity_checks ORDER BY id DESC LIMIT 1)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// Verifies and asserts: invalid, first violation `kind` at `index`, run recorded as a
    /// violation.
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

    fn row_blob(&self, column: &str, idx: u64) -> Vec<u8> {
        self.db()
            .query_row(
                &format!("SELECT {column} FROM entries WHERE idx = ?1"),
                [idx as i64],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn row_text(&self, column: &str, idx: u64) -> String {
        self.db()
            .query_row(
                &format!("SELECT {column} FROM entries WHERE idx = ?1"),
                [idx as i64],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn set_text(&self, column: &str, idx: u64, value: &str) {
        let n = self
            .db()
            .execute(
                &format!("UPDATE entries SET {column} = ?1 WHERE idx = ?2"),
                params![value, idx as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn set_blob(&self, column: &str, idx: u64, value: &[u8]) {
        let n = self
            .db()
            .execute(
                &format!("UPDATE entries SET {column} = ?1 WHERE idx = ?2"),
                params![value, idx as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn chain_hash(&self, idx: u64) -> Hash {
        Hash::from_slice(&self.row_blob("hash", idx)).unwrap()
    }

    /// A forged row for `idx` whose chain link is correct: it follows `prev` and its hash is the
    /// chain hash of its own fields.
    fn forged_row(&self, idx: u64, prev: Hash) -> (String, Hash) {
        let timestamp = self.row_text("timestamp", idx.saturating_sub(1));
        let h = self.ledger.hasher();
        let leaf = EntryRef {
            index: idx,
            timestamp: &timestamp,
            project: "billing",
            action: "fact.store",
            detail: "{\"forged\":true}",
        }
        .leaf_hash(h, &mut Vec::new());
        (timestamp, h.chain(&prev, &leaf))
    }

    fn insert_row(&self, c: &Connection, idx: u64, timestamp: &str, prev: &Hash, hash: &[u8]) {
        c.execute(
            "INSERT INTO entries (idx, timestamp, project, action, detail, prev_hash, hash) \
             VALUES (?1, ?2, 'billing', 'fact.store', '{\"forged\":true}', ?3, ?4)",
            params![idx as i64, timestamp, &prev.0[..], hash],
        )
        .unwrap();
    }

    /// Asks for a checkpoint, which must be refused as an integrity error.
    fn expect_checkpoint_refused(&self) {
        let e = self.ledger.checkpoint().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    }

    fn tile(&self, level: u8, idx: u64) -> Vec<u8> {
        self.db()
            .query_row(
                "SELECT hashes FROM merkle_tiles WHERE level = ?1 AND idx = ?2",
                params![level, idx as i64],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn set_tile(&self, level: u8, idx: u64, bytes: &[u8]) {
        let n = self
            .db()
            .execute(
                "UPDATE merkle_tiles SET hashes = ?1 WHERE level = ?2 AND idx = ?3",
                params![bytes, level, idx as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    fn note(&self, size: u64) -> String {
        self.db()
            .query_row(
                "SELECT signed_note FROM checkpoints WHERE tree_size = ?1",
                [size as i64],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn set_note(&self, size: u64, note: &str) {
        let n = self
            .db()
            .execute(
                "UPDATE checkpoints SET signed_note = ?1 WHERE tree_size = ?2",
                params![note, size as i64],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
}

/// Changes one character of `s` at char position `at`, keeping its class where possible (a digit
/// stays a digit, a hex letter a hex letter, a letter a letter of the same case), so that
/// numbers, hex hashes and timestamps keep their shape.
fn alter_char(s: &str, at: usize) -> String {
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
fn alter_mid(s: &str) -> String {
    alter_char(s, s.chars().count() / 2)
}

fn flip_bit(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

const ROW: u64 = 42;

// ---------------------------------------------------------------------------------------------
// One column of one row altered: `altered_entry` at that row.
// ---------------------------------------------------------------------------------------------

#[test]
fn altered_timestamp_is_an_altered_entry() {
    let fx = Fixture::new();
    let ts = fx.row_text("timestamp", ROW);
    // A microsecond digit: still a well-formed timestamp.
    fx.set_text("timestamp", ROW, &alter_char(&ts, ts.len() - 2));
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
}

#[test]
fn altered_project_is_an_altered_entry() {
    let fx = Fixture::new();
    fx.set_text("project", ROW, &alter_mid(&fx.row_text("project", ROW)));
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
}

#[test]
fn altered_action_is_an_altered_entry() {
    let fx = Fixture::new();
    fx.set_text("action", ROW, &alter_mid(&fx.row_text("action", ROW)));
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
}

#[test]
fn altered_detail_is_an_altered_entry() {
    let fx = Fixture::new();
    let detail = fx.row_text("detail", ROW);
    let changed = detail.replacen(&ROW.to_string(), &(ROW + 1).to_string(), 1);
    assert_ne!(changed, detail);
    fx.set_text("detail", ROW, &changed);
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
}

#[test]
fn altered_prev_hash_is_an_altered_entry() {
    let fx = Fixture::new();
    fx.set_blob(
        "prev_hash",
        ROW,
        &flip_bit(&fx.row_blob("prev_hash", ROW), 0),
    );
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

#[test]
fn altered_hash_is_an_altered_entry_not_a_broken_chain_at_the_next_row() {
    let fx = Fixture::new();
    fx.set_blob("hash", ROW, &flip_bit(&fx.row_blob("hash", ROW), 31));
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    // The next row's link breaks only as a consequence; it is not reported separately.
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

#[test]
fn malformed_hash_and_retyped_columns_are_altered_entries() {
    let fx = Fixture::new();
    let hash = fx.row_blob("hash", ROW);
    fx.set_blob("hash", ROW, &hash[..31]);
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
    fx.set_blob("hash", ROW, &hash);
    assert!(fx.verify().valid);
    // A column stored with another SQLite type (an integer timestamp) is read back as text.
    fx.db()
        .execute(
            "UPDATE entries SET timestamp = 20260101 WHERE idx = ?1",
            [ROW as i64 + 1],
        )
        .unwrap();
    fx.expect_first(ViolationKind::AlteredEntry, ROW + 1);
}

#[test]
fn an_altered_row_rechained_to_the_end_is_still_found() {
    // The attacker alters row 42 and recomputes every chain hash after it, and the head, so the
    // chain is self-consistent; only the Merkle leaves (and the signed roots) disagree.
    let fx = Fixture::new();
    fx.set_text("project", ROW, "rewritten");
    let h = fx.ledger.hasher();
    let c = fx.db();
    let mut prev = fx.chain_hash(ROW - 1);
    for i in ROW..SIZE {
        let (ts, p, a, d): (String, String, String, String) = c
            .query_row(
                "SELECT timestamp, project, action, detail FROM entries WHERE idx = ?1",
                [i as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let leaf = EntryRef {
            index: i,
            timestamp: &ts,
            project: &p,
            action: &a,
            detail: &d,
        }
        .leaf_hash(h, &mut Vec::new());
        let hash = h.chain(&prev, &leaf);
        c.execute(
            "UPDATE entries SET prev_hash = ?1, hash = ?2 WHERE idx = ?3",
            params![&prev.0[..], &hash.0[..], i as i64],
        )
        .unwrap();
        prev = hash;
    }
    c.execute(
        "UPDATE ledger_head SET last_hash = ?1 WHERE id = 1",
        [&prev.0[..]],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::AlteredEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

// ---------------------------------------------------------------------------------------------
// Rows deleted, swapped, inserted; the tail truncated.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_deleted_row_is_a_missing_entry() {
    let fx = Fixture::new();
    fx.db()
        .execute("DELETE FROM entries WHERE idx = ?1", [ROW as i64])
        .unwrap();
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

#[test]
fn deleted_rows_are_one_missing_range() {
    let fx = Fixture::new();
    fx.db()
        .execute(
            "DELETE FROM entries WHERE idx >= ?1 AND idx < ?2",
            [ROW as i64, ROW as i64 + 3],
        )
        .unwrap();
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert!(
        r.violations[0].message.contains("44"),
        "{:#?}",
        r.violations
    );
}

#[test]
fn the_first_row_deleted_is_a_missing_entry() {
    let fx = Fixture::new();
    fx.db()
        .execute("DELETE FROM entries WHERE idx = 0", [])
        .unwrap();
    fx.expect_first(ViolationKind::MissingEntry, 0);
}

#[test]
fn a_deleted_row_with_the_rest_shifted_down_is_a_missing_entry() {
    // The gap is closed by moving every later row down by one (and the head with it).
    let fx = Fixture::new();
    let c = fx.db();
    c.execute("DELETE FROM entries WHERE idx = ?1", [ROW as i64])
        .unwrap();
    c.execute(
        "UPDATE entries SET idx = idx - 1 WHERE idx > ?1",
        [ROW as i64],
    )
    .unwrap();
    let last = fx.chain_hash(SIZE - 2);
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_hash = ?2 WHERE id = 1",
        params![SIZE as i64 - 1, &last.0[..]],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::MissingEntry, ROW);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::Truncated && v.index == Some(SIZE - 1)),
        "the last signed entry is gone too: {:#?}",
        r.violations
    );
}

fn swap_rows(c: &Connection, i: u64, j: u64) {
    // Moving whole rows swaps every content column, the hashes included.
    c.execute_batch(&format!(
        "BEGIN; UPDATE entries SET idx = -1 WHERE idx = {i}; \
         UPDATE entries SET idx = {i} WHERE idx = {j}; \
         UPDATE entries SET idx = {j} WHERE idx = -1; COMMIT;"
    ))
    .unwrap();
}

#[test]
fn swapped_rows_are_reordered_entries_at_both_indices() {
    let fx = Fixture::new();
    swap_rows(&fx.db(), 40, 45);
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
}

#[test]
fn adjacent_swapped_rows_are_reordered_entries() {
    let fx = Fixture::new();
    swap_rows(&fx.db(), ROW, ROW + 1);
    let r = fx.expect_first(ViolationKind::ReorderedEntry, ROW);
    assert_eq!(r.violations.len(), 2, "{:#?}", r.violations);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
}

#[test]
fn swapped_content_columns_are_reordered_entries() {
    // Swapping the column values (not the rows) is the same tampering seen from SQL.
    let fx = Fixture::new();
    let (i, j) = (10u64, 70u64);
    let c = fx.db();
    c.execute_batch(&format!(
        "BEGIN;
         CREATE TEMP TABLE t AS SELECT * FROM entries WHERE idx IN ({i}, {j});
         UPDATE entries SET (timestamp, project, action, detail, prev_hash, hash) =
           (SELECT timestamp, project, action, detail, prev_hash, hash FROM t
            WHERE t.idx = {i} + {j} - entries.idx)
         WHERE idx IN ({i}, {j});
         COMMIT;"
    ))
    .unwrap();
    let r = fx.expect_first(ViolationKind::ReorderedEntry, i);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::ReorderedEntry && v.index == Some(j)),
        "{:#?}",
        r.violations
    );
}

/// Shifts rows `>= k` up by one (through negative indices, as SQLite checks the primary key row
/// by row).
fn shift_up(c: &Connection, k: u64) {
    c.execute_batch(&format!(
        "BEGIN; UPDATE entries SET idx = -(idx + 1) WHERE idx >= {k}; \
         UPDATE entries SET idx = -idx WHERE idx < 0; COMMIT;"
    ))
    .unwrap();
}

#[test]
fn an_inserted_row_with_a_bogus_hash_is_an_inserted_entry() {
    let fx = Fixture::new();
    let prev = fx.chain_hash(ROW - 1);
    let c = fx.db();
    shift_up(&c, ROW);
    let ts = fx.row_text("timestamp", ROW - 1);
    fx.insert_row(&c, ROW, &ts, &prev, &[0x5a; 32]);
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
}

#[test]
fn an_inserted_row_with_a_correct_chain_link_is_an_inserted_entry() {
    let fx = Fixture::new();
    let prev = fx.chain_hash(ROW - 1);
    let (ts, hash) = fx.forged_row(ROW, prev);
    let c = fx.db();
    shift_up(&c, ROW);
    fx.insert_row(&c, ROW, &ts, &prev, &hash.0);
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
}

#[test]
fn an_inserted_row_with_everything_after_it_rechained_is_an_inserted_entry() {
    // The most careful insertion: the forged row links correctly, every later row is moved up
    // and re-chained with its new index, and the head follows. Only the Merkle tree remembers.
    let fx = Fixture::new();
    let prev = fx.chain_hash(ROW - 1);
    let (ts, hash) = fx.forged_row(ROW, prev);
    let c = fx.db();
    shift_up(&c, ROW);
    fx.insert_row(&c, ROW, &ts, &prev, &hash.0);
    let h = fx.ledger.hasher();
    let mut prev = hash;
    for i in ROW + 1..=SIZE {
        let (ts, p, a, d): (String, String, String, String) = c
            .query_row(
                "SELECT timestamp, project, action, detail FROM entries WHERE idx = ?1",
                [i as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        let leaf = EntryRef {
            index: i,
            timestamp: &ts,
            project: &p,
            action: &a,
            detail: &d,
        }
        .leaf_hash(h, &mut Vec::new());
        let hash = h.chain(&prev, &leaf);
        c.execute(
            "UPDATE entries SET prev_hash = ?1, hash = ?2 WHERE idx = ?3",
            params![&prev.0[..], &hash.0[..], i as i64],
        )
        .unwrap();
        prev = hash;
    }
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_hash = ?2 WHERE id = 1",
        params![SIZE as i64 + 1, &prev.0[..]],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::InsertedEntry, ROW);
    assert_eq!(r.violations[1].kind, ViolationKind::ReorderedEntry);
    assert_eq!(r.violations[1].index, Some(ROW + 1));
}

#[test]
fn a_row_appended_past_the_head_is_an_inserted_entry() {
    let fx = Fixture::new();
    let prev = fx.chain_hash(SIZE - 1);
    let (ts, hash) = fx.forged_row(SIZE, prev);
    fx.insert_row(&fx.db(), SIZE, &ts, &prev, &hash.0);
    let r = fx.expect_first(ViolationKind::InsertedEntry, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

#[test]
fn a_row_appended_past_the_head_with_the_head_moved_is_an_inserted_entry() {
    let fx = Fixture::new();
    let prev = fx.chain_hash(SIZE - 1);
    let (ts, hash) = fx.forged_row(SIZE, prev);
    let c = fx.db();
    fx.insert_row(&c, SIZE, &ts, &prev, &hash.0);
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_hash = ?2 WHERE id = 1",
        params![SIZE as i64 + 1, &hash.0[..]],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::InsertedEntry, SIZE);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

#[test]
fn a_truncated_tail_is_truncation_at_the_first_missing_index() {
    let fx = Fixture::new();
    let k = 90; // below the last checkpoints (97, 100)
    fx.db()
        .execute("DELETE FROM entries WHERE idx >= ?1", [k])
        .unwrap();
    let r = fx.expect_first(ViolationKind::Truncated, k as u64);
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
}

#[test]
fn a_truncated_tail_with_the_head_moved_is_truncation_and_blocks_checkpoints() {
    let fx = Fixture::new();
    let k = 90u64;
    let last = fx.chain_hash(k - 1);
    let c = fx.db();
    c.execute("DELETE FROM entries WHERE idx >= ?1", [k as i64])
        .unwrap();
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_hash = ?2 WHERE id = 1",
        params![k as i64, &last.0[..]],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::Truncated, k);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(SIZE));
    fx.expect_checkpoint_refused();
    // Appending over the truncated tail is refused too: the stored tiles still hold the
    // leaves of entries 90..95, so the edge tile does not fit the head.
    let e = fx.ledger.append(&[new_entry(1000)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    fx.expect_first(ViolationKind::Truncated, k);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints and tiles.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_altered_root_column_is_a_bad_root() {
    let fx = Fixture::new();
    let c = fx.db();
    let root: String = c
        .query_row(
            "SELECT root_hash FROM checkpoints WHERE tree_size = 60",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "UPDATE checkpoints SET root_hash = ?1 WHERE tree_size = 60",
        [alter_char(&root, 0)],
    )
    .unwrap();
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
}

#[test]
fn a_non_hex_root_column_is_a_bad_root() {
    let fx = Fixture::new();
    fx.db()
        .execute(
            "UPDATE checkpoints SET root_hash = 'not hex' WHERE tree_size = 100",
            [],
        )
        .unwrap();
    let r = fx.expect_first(ViolationKind::BadRoot, 97);
    assert_eq!(r.violations[0].checkpoint, Some(100));
    // The latest checkpoint no longer matches the tree: no new checkpoint is signed on top.
    fx.ledger.append(&[new_entry(1000)]).unwrap();
    fx.expect_checkpoint_refused();
}

#[test]
fn an_altered_signature_is_a_bad_signature() {
    let fx = Fixture::new();
    let note = fx.note(60);
    // The signature line is the last line: `— <name> <base64(key ID ‖ signature)>`. Change a
    // base64 character well past the key ID, so the key still matches but the signature fails.
    let line_start = note.trim_end().rfind('\n').unwrap() + 1;
    let b64_start = line_start + note[line_start..].rfind(' ').unwrap() + 1;
    let at = note[..b64_start].chars().count() + 40;
    let altered = alter_char(&note, at);
    assert!(altered.contains(&format!("\u{2014} {ORIGIN} ")));
    fx.set_note(60, &altered);
    let r = fx.expect_first(ViolationKind::BadSignature, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    assert!(
        r.violations[0].message.contains("invalid signature"),
        "{:#?}",
        r.violations
    );
}

#[test]
fn an_altered_note_body_is_a_bad_signature() {
    let fx = Fixture::new();
    let note = fx.note(85);
    // The origin line: the signature no longer verifies and the origin is not the ledger's.
    fx.set_note(85, &alter_char(&note, 3));
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
    fx.set_note(85, &note);
    assert!(fx.verify().valid);
    let root_at = note.match_indices('\n').nth(1).unwrap().0 + 5;
    fx.set_note(85, &alter_char(&note, note[..root_at].chars().count()));
    let r = fx.expect_first(ViolationKind::BadRoot, 60);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadSignature && v.index == Some(60)),
        "{:#?}",
        r.violations
    );
}

#[test]
fn a_note_signed_by_another_key_of_the_same_name_is_a_bad_signature() {
    let fx = Fixture::new();
    let note = fx.note(60);
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let impostor = Ed25519Signer::generate(ORIGIN).unwrap();
    let mut forged = cortex_core::SignedNote::new(body).unwrap();
    forged.signatures.push(cortex_core::note::NoteSignature {
        name: ORIGIN.to_owned(),
        key_id: impostor.note_key_id().unwrap(),
        signature: impostor.sign(body.as_bytes()).unwrap(),
    });
    fx.set_note(60, &forged.to_text());
    let r = fx.expect_first(ViolationKind::BadSignature, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
}

#[test]
fn an_altered_leaf_tile_is_a_bad_tile_and_blocks_checkpoints() {
    let fx = Fixture::new();
    // Tile (0, 6) holds the leaves of entries 96..99; change the leaf of entry 97.
    let tile = fx.tile(0, 6);
    assert_eq!(tile.len(), 4 * 32);
    fx.set_tile(0, 6, &flip_bit(&tile, 32));
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
        .append(&[new_entry(1000), new_entry(1001)])
        .unwrap();
    fx.expect_checkpoint_refused();
}

#[test]
fn an_altered_inner_leaf_tile_is_a_bad_tile() {
    let fx = Fixture::new();
    // Tile (0, 2) holds the leaves of entries 32..47; the tile above it catches the change.
    let tile = fx.tile(0, 2);
    fx.set_tile(0, 2, &flip_bit(&tile, 10 * 32));
    let r = fx.expect_first(ViolationKind::BadTile, 32);
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadTile && v.index == Some(42)),
        "{:#?}",
        r.violations
    );
}

#[test]
fn an_altered_upper_tile_is_a_bad_tile() {
    let fx = Fixture::new();
    // Tile (1, 0) holds the roots of the first six 16-leaf subtrees; change the one of 80..95.
    let tile = fx.tile(1, 0);
    assert_eq!(tile.len(), 6 * 32);
    fx.set_tile(1, 0, &flip_bit(&tile, 5 * 32 + 7));
    let r = fx.expect_first(ViolationKind::BadTile, 80);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind != ViolationKind::BadTile || v.index == Some(80)),
        "{:#?}",
        r.violations
    );
}

#[test]
fn a_bad_tile_between_identical_entries_is_not_taken_for_shifted_rows() {
    // Entries 0..31 have identical fields (one batch: one timestamp), so entry 5's fields with
    // index 6 hash to leaf 6. A changed leaf 5 must still be a bad tile, not a deletion.
    let same = vec![NewEntry::new("heartbeat", "ping", "{}"); 32];
    let fx = Fixture::with(&[same]);
    let tile = fx.tile(0, 0);
    fx.set_tile(0, 0, &flip_bit(&tile, 5 * 32));
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
}

#[test]
fn a_malformed_tile_is_a_bad_tile() {
    let fx = Fixture::new();
    // Tile (0, 2) (entries 32..47) is read by no checkpoint root, only checked against the
    // entries and the tile above it.
    let tile = fx.tile(0, 2);
    fx.set_tile(0, 2, &tile[..tile.len() - 1]);
    let r = fx.expect_first(ViolationKind::BadTile, 32);
    assert!(
        r.violations
            .iter()
            .all(|v| v.kind == ViolationKind::BadTile),
        "{:#?}",
        r.violations
    );
    // A tile that a checkpoint root needs is a bad tile and makes that root uncomputable.
    fx.set_tile(0, 2, &tile);
    assert!(fx.verify().valid);
    let tile = fx.tile(0, 3);
    fx.set_tile(0, 3, &tile[..tile.len() - 1]);
    let r = fx.expect_first(ViolationKind::BadRoot, 27);
    assert_eq!(r.violations[0].checkpoint, Some(60));
    assert!(
        r.violations
            .iter()
            .any(|v| v.kind == ViolationKind::BadTile && v.index == Some(48)),
        "{:#?}",
        r.violations
    );
}

#[test]
fn an_altered_range_start_is_inconsistent_checkpoints() {
    let fx = Fixture::new();
    fx.db()
        .execute(
            "UPDATE checkpoints SET range_start = 30 WHERE tree_size = 60",
            [],
        )
        .unwrap();
    // The index is where checkpoint 60 really starts (where checkpoint 27 ended), not the
    // altered column.
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(60));
}

#[test]
fn an_altered_range_count_is_inconsistent_checkpoints() {
    let fx = Fixture::new();
    fx.db()
        .execute(
            "UPDATE checkpoints SET range_count = range_count + 1 WHERE tree_size = 85",
            [],
        )
        .unwrap();
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 60);
    assert_eq!(r.violations[0].checkpoint, Some(85));
}

#[test]
fn a_deleted_checkpoint_is_inconsistent_checkpoints() {
    let fx = Fixture::new();
    fx.db()
        .execute("DELETE FROM checkpoints WHERE tree_size = 60", [])
        .unwrap();
    let r = fx.expect_first(ViolationKind::InconsistentCheckpoints, 27);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert_eq!(r.violations[0].checkpoint, Some(85));
}

// ---------------------------------------------------------------------------------------------
// Exports.
// ---------------------------------------------------------------------------------------------

const FORMATS: [ExportFormat; 3] = [ExportFormat::Json, ExportFormat::Jsonl, ExportFormat::Csv];

fn export(fx: &Fixture, format: ExportFormat, from: Option<u64>, to: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    write_export(&fx.ledger, format, from, to, &mut out, &|_| {}).unwrap();
    out
}

fn check_export(fx: &Fixture, bytes: &[u8]) -> cortex_core::Result<ExternalReport> {
    let v: Box<dyn Verifier> = fx.signer.verifier();
    let verifiers: [&dyn Verifier; 1] = [&*v];
    verify_export(&mut &bytes[..], &verifiers, &|_| {})
}

/// Asserts that a tampered export is rejected: an error, or a report that is not valid.
fn assert_rejected(fx: &Fixture, bytes: &[u8], what: &str) {
    match check_export(fx, bytes) {
        Err(_) => {}
        Ok(r) => assert!(
            !r.valid && r.violation_count > 0 && !r.violations.is_empty(),
            "{what}: the tampered export verified: {r:#?}"
        ),
    }
}

fn assert_valid(fx: &Fixture, bytes: &[u8], count: u64, what: &str) {
    let r = check_export(fx, bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(r.valid, "{what}: {:#?}", r.violations);
    assert_eq!(r.entries_checked, count, "{what}");
}

/// Type-preserving alterations of one JSON scalar: numbers ±1, strings with one character
/// changed (at the start, the middle and the end).
fn alterations(v: &Value) -> Vec<Value> {
    match v {
        Value::Number(n) => {
            let u = n.as_u64().expect("export numbers are unsigned");
            let mut out = vec![Value::from(u + 1)];
            if u > 0 {
                out.push(Value::from(u - 1));
            }
            out
        }
        Value::String(s) => {
            let n = s.chars().count();
            let mut out: Vec<Value> = [0, n / 2, n - 1]
                .into_iter()
                .map(|at| Value::String(alter_char(s, at)))
                .collect();
            out.dedup();
            out
        }
        other => panic!("unexpected JSON value {other}"),
    }
}

/// Every alteration of every scalar field of a header object (including each subtree's
/// level, index and hash), applied to `doc` through `at` (a JSON pointer to the header).
fn header_mutations(doc: &Value, at: &str) -> Vec<(String, Value)> {
    let header = doc.pointer(at).unwrap();
    let mut out = Vec::new();
    for field in [
        "format",
        "hasher",
        "origin",
        "from",
        "to",
        "tree_size",
        "checkpoint",
    ] {
        let ptr = format!("{at}/{field}");
        let mut vals = alterations(&header[field]);
        match field {
            "hasher" => vals.push(Value::from("blake3")),
            "origin" => vals.push(Value::from(format!("{ORIGIN}/blake3"))),
            "checkpoint" => {
                // Also at every line of the note (origin, size, root, blank line, signature).
                let s = header[field].as_str().unwrap();
                let mut pos = 0;
                for line in s.split_inclusive('\n') {
                    let at = s[..pos].chars().count() + line.chars().count() / 2;
                    vals.push(Value::String(alter_char(s, at)));
                    pos += line.len();
                }
            }
            _ => {}
        }
        for v in vals {
            let mut copy = doc.clone();
            *copy.pointer_mut(&ptr).unwrap() = v.clone();
            out.push((format!("{ptr} = {v}"), copy));
        }
    }
    let n = header["subtrees"].as_array().unwrap().len();
    for k in 0..n {
        for field in ["level", "index", "hash"] {
            let ptr = format!("{at}/subtrees/{k}/{field}");
            for v in alterations(doc.pointer(&ptr).unwrap()) {
                let mut copy = doc.clone();
                *copy.pointer_mut(&ptr).unwrap() = v.clone();
                out.push((format!("{ptr} = {v}"), copy));
            }
        }
    }
    out
}

const ENTRY_FIELDS: [&str; 7] = [
    "index",
    "timestamp",
    "project",
    "action",
    "detail",
    "prev_hash",
    "hash",
];

/// Every alteration of every field of the entry object at `at`.
fn entry_mutations(doc: &Value, at: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for field in ENTRY_FIELDS {
        let ptr = format!("{at}/{field}");
        for v in alterations(doc.pointer(&ptr).unwrap()) {
            let mut copy = doc.clone();
            *copy.pointer_mut(&ptr).unwrap() = v.clone();
            out.push((format!("{ptr} = {v}"), copy));
        }
    }
    out
}

/// The export ranges checked: everything, a middle sub-range, one entry, a prefix and a suffix.
const RANGES: [(Option<u64>, Option<u64>); 5] = [
    (None, None),
    (Some(30), Some(70)),
    (Some(ROW), Some(ROW)),
    (Some(0), Some(26)),
    (Some(61), Some(99)),
];

#[test]
fn exports_of_every_format_and_range_verify() {
    let fx = Fixture::new();
    for format in FORMATS {
        for (from, to) in RANGES {
            let bytes = export(&fx, format, from, to);
            let count = to.unwrap_or(SIZE - 1) - from.unwrap_or(0) + 1;
            assert_valid(&fx, &bytes, count, &format!("{format:?} {from:?}..={to:?}"));
        }
    }
    // Another key with the log's name does not vouch for the export.
    let bytes = export(&fx, ExportFormat::Json, None, None);
    let other = Ed25519Signer::generate(ORIGIN).unwrap().verifier();
    let r = verify_export(&mut &bytes[..], &[&*other], &|_| {}).unwrap();
    assert!(!r.valid);
}

#[test]
fn every_field_of_a_json_export_is_covered() {
    let fx = Fixture::new();
    let mut tried = 0;
    for (from, to) in RANGES {
        let bytes = export(&fx, ExportFormat::Json, from, to);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        // Control: the re-serialized, unaltered document still verifies.
        let count = doc["entries"].as_array().unwrap().len();
        assert_valid(
            &fx,
            &serde_json::to_vec(&doc).unwrap(),
            count as u64,
            "re-serialized",
        );
        let mut cases = header_mutations(&doc, "");
        for k in [0, count / 2, count - 1] {
            cases.extend(entry_mutations(&doc, &format!("/entries/{k}")));
        }
        for (what, copy) in cases {
            let what = format!("json {from:?}..={to:?}: {what}");
            assert_rejected(&fx, &serde_json::to_vec(&copy).unwrap(), &what);
            tried += 1;
        }
    }
    assert!(tried > 300, "{tried}");
}

#[test]
fn every_entry_of_a_sub_range_json_export_is_covered() {
    // Every field of every entry, for a sub-range export (subtrees on both sides).
    let fx = Fixture::new();
    let bytes = export(&fx, ExportFormat::Json, Some(30), Some(70));
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    for k in 0..doc["entries"].as_array().unwrap().len() {
        for field in ENTRY_FIELDS {
            let ptr = format!("/entries/{k}/{field}");
            let mut copy = doc.clone();
            let v = doc.pointer(&ptr).unwrap();
            *copy.pointer_mut(&ptr).unwrap() = alterations(v).swap_remove(0);
            assert_rejected(&fx, &serde_json::to_vec(&copy).unwrap(), &ptr);
        }
    }
}

#[test]
fn structural_tampering_of_a_json_export_is_rejected() {
    let fx = Fixture::new();
    let bytes = export(&fx, ExportFormat::Json, Some(30), Some(70));
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let with_entries = |f: &dyn Fn(&mut Vec<Value>)| {
        let mut copy = doc.clone();
        f(copy["entries"].as_array_mut().unwrap());
        serde_json::to_vec(&copy).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("first removed", with_entries(&|e| drop(e.remove(0)))),
        ("middle removed", with_entries(&|e| drop(e.remove(20)))),
        ("last removed", with_entries(&|e| drop(e.pop()))),
        ("swapped", with_entries(&|e| e.swap(3, 4))),
        (
            "duplicated",
            with_entries(&|e| {
                let x = e[5].clone();
                e.insert(6, x)
            }),
        ),
        ("all removed", with_entries(&|e| e.clear())),
        ("a subtree removed", {
            let mut copy = doc.clone();
            copy["subtrees"].as_array_mut().unwrap().pop();
            serde_json::to_vec(&copy).unwrap()
        }),
        ("subtrees swapped", {
            let mut copy = doc.clone();
            copy["subtrees"].as_array_mut().unwrap().swap(0, 1);
            serde_json::to_vec(&copy).unwrap()
        }),
    ];
    for (what, b) in cases {
        assert_rejected(&fx, &b, what);
    }
}

#[test]
fn fields_of_a_jsonl_export_are_covered() {
    let fx = Fixture::new();
    for (from, to) in [(None, None), (Some(30), Some(70))] {
        let bytes = export(&fx, ExportFormat::Jsonl, from, to);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let render = |lines: &[Value]| {
            let mut s = String::new();
            for l in lines {
                s.push_str(&serde_json::to_string(l).unwrap());
                s.push('\n');
            }
            s.into_bytes()
        };
        assert_valid(
            &fx,
            &render(&lines),
            lines.len() as u64 - 1,
            "re-serialized",
        );
        let doc = Value::Array(lines);
        let n = doc.as_array().unwrap().len();
        let mut cases = header_mutations(&doc, "/0");
        for k in [1, n / 2, n - 1] {
            cases.extend(entry_mutations(&doc, &format!("/{k}")));
        }
        for (what, copy) in cases {
            let b = render(copy.as_array().unwrap());
            assert_rejected(&fx, &b, &format!("jsonl {from:?}..={to:?}: {what}"));
        }
        // Lines removed, swapped or repeated.
        let l: Vec<&str> = text.lines().collect();
        let join = |v: Vec<&str>| (v.join("\n") + "\n").into_bytes();
        let mut removed = l.clone();
        removed.remove(n / 2);
        assert_rejected(&fx, &join(removed), "jsonl line removed");
        let mut swapped = l.clone();
        swapped.swap(2, 3);
        assert_rejected(&fx, &join(swapped), "jsonl lines swapped");
        let mut repeated = l.clone();
        repeated.push(l[n - 1]);
        assert_rejected(&fx, &join(repeated), "jsonl line repeated");
        assert_rejected(&fx, &join(l[..n - 1].to_vec()), "jsonl last line cut");
    }
}

fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn write_csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.into_inner().unwrap()
}

#[test]
fn fields_of_a_csv_export_are_covered() {
    let fx = Fixture::new();
    for (from, to) in [(None, None), (Some(30), Some(70))] {
        let bytes = export(&fx, ExportFormat::Csv, from, to);
        let rows = read_csv(&bytes);
        let n = rows.len();
        assert_eq!(rows[0][0], "type");
        assert_eq!(rows[1][0], "header");
        assert_valid(&fx, &write_csv(&rows), n as u64 - 2, "re-written");
        // The header row carries the header as JSON in the `detail` column.
        let header: Value = serde_json::from_str(&rows[1][5]).unwrap();
        let doc = serde_json::json!({ "h": header });
        for (what, copy) in header_mutations(&doc, "/h") {
            let mut r = rows.clone();
            r[1][5] = serde_json::to_string(&copy["h"]).unwrap();
            assert_rejected(&fx, &write_csv(&r), &format!("csv header {what}"));
        }
        // Every column of a few entry rows.
        for k in [2, n / 2, n - 1] {
            for col in 0..8 {
                let mut r = rows.clone();
                r[k][col] = alter_mid(&rows[k][col]);
                assert_rejected(&fx, &write_csv(&r), &format!("csv row {k} column {col}"));
            }
        }
        let mut removed = rows.clone();
        removed.remove(n / 2);
        assert_rejected(&fx, &write_csv(&removed), "csv row removed");
        let mut swapped = rows.clone();
        swapped.swap(3, 4);
        assert_rejected(&fx, &write_csv(&swapped), "csv rows swapped");
    }
}

#[test]
fn an_export_of_a_tampered_store_does_not_verify() {
    // Exporting after the store was tampered with yields a file that fails offline.
    let fx = Fixture::new();
    fx.set_text("project", ROW, "rewritten");
    for format in FORMATS {
        let bytes = export(&fx, format, Some(30), Some(70));
        let r = check_export(&fx, &bytes).unwrap();
        assert!(!r.valid, "{format:?}");
        assert_eq!(r.violations[0].kind, ViolationKind::AlteredEntry);
        assert_eq!(r.violations[0].index, Some(ROW));
    }
}
