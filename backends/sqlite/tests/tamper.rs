//! Tamper-detection tests for the SQLite backend and for exports (PRODUCT.md §3, "Verify").
//!
//! The store cases are core's shared suite (`cortex_core::testkit::tamper::tamper_conformance`),
//! which every backend runs: here each case tampers with the database file through a *separate*
//! SQLite connection, as someone with write access to the file would. What only SQLite can do
//! (store a column with another type) is tested here too.
//!
//! The export cases write each format from a fresh ledger of 100 entries with checkpoints at 27,
//! 60, 85, 97 and 100, check that it verifies, then alter every field of the JSON form (and a
//! selection of the JSON Lines and CSV forms) one at a time: each copy must be rejected, either
//! with an error or with a report that is not valid.

use cortex_core::ledger::export::{ExportFormat, ExternalReport, verify_export, write_export};
use cortex_core::testkit::tamper::{
    ORIGIN, Outcome, ROW, SIZE, Tamper, TamperOp, alter_char, alter_mid, fixture_ledger,
    memory_tamper_case_names, memory_tamper_conformance, tamper_case_names, tamper_conformance,
};
use cortex_core::{
    DynStore, Ledger, Signer, Verifier, VerifyOptions, VerifyReport, ViolationKind, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn open_store(path: &Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(
            path,
            SqliteOptions {
                synchronous: Synchronous::Normal,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Raw writes to the database file through a separate connection (one transaction per call).
struct SqliteTamper {
    path: PathBuf,
}

impl Tamper for SqliteTamper {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
        let mut c = Connection::open(&self.path).unwrap();
        // Whoever writes to the file behind the store's back is bound by none of its rules.
        c.execute_batch("PRAGMA foreign_keys=OFF").unwrap();
        let tx = c.transaction().unwrap();
        for op in ops {
            let changed = match op {
                TamperOp::PutEntry(r) => tx.execute(
                    "INSERT OR REPLACE INTO entries \
                     (idx, timestamp, project, action, detail, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        i64_of(r.index),
                        r.timestamp,
                        r.project,
                        r.action,
                        r.detail,
                        r.prev_hash,
                        r.hash
                    ],
                ),
                TamperOp::DeleteEntries(range) => tx
                    .execute(
                        "DELETE FROM entries WHERE idx >= ?1 AND idx < ?2",
                        params![i64_of(range.start), i64_of(range.end)],
                    )
                    .map(|_| 1),
                TamperOp::SetHead(h) => tx.execute(
                    "INSERT OR REPLACE INTO ledger_head (id, size, last_hash) VALUES (1, ?1, ?2)",
                    params![i64_of(h.size), &h.last_hash.0[..]],
                ),
                TamperOp::PutTile {
                    level,
                    index,
                    bytes,
                } => tx.execute(
                    "INSERT OR REPLACE INTO merkle_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)",
                    params![level, i64_of(*index), bytes],
                ),
                TamperOp::DeleteTile { level, index } => tx.execute(
                    "DELETE FROM merkle_tiles WHERE level = ?1 AND idx = ?2",
                    params![level, i64_of(*index)],
                ),
                TamperOp::PutCheckpoint(cp) => tx.execute(
                    "INSERT INTO checkpoints (tree_size, root_hash, range_start, range_end, \
                     range_count, signed_note, extra_signatures, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]', ?7) \
                     ON CONFLICT (tree_size) DO UPDATE SET root_hash = excluded.root_hash, \
                     range_start = excluded.range_start, range_count = excluded.range_count, \
                     signed_note = excluded.signed_note",
                    params![
                        i64_of(cp.size),
                        cp.root.to_hex(),
                        i64_of(cp.range_start),
                        cp.range_end().map(i64_of),
                        i64_of(cp.range_count),
                        cp.note,
                        cp.created_at
                    ],
                ),
                TamperOp::MalformCheckpointRoot(size) => tx.execute(
                    "UPDATE checkpoints SET root_hash = 'not hex' WHERE tree_size = ?1",
                    [i64_of(*size)],
                ),
                TamperOp::DeleteCheckpoint(size) => tx.execute(
                    "DELETE FROM checkpoints WHERE tree_size = ?1",
                    [i64_of(*size)],
                ),
                TamperOp::PutFact(f) => tx.execute(
                    "INSERT OR REPLACE INTO facts (id, project, content, fact_type, tags, \
                     confidence, source, valid_from, valid_until, created_at, deprecated_at, \
                     deprecation_reason, consensus, author, surface, erased_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    params![
                        i64_of(f.id),
                        f.project,
                        f.content,
                        f.fact_type,
                        serde_json::to_string(&f.tags).unwrap(),
                        f.confidence,
                        f.source,
                        f.valid_from,
                        f.valid_until,
                        f.created_at,
                        f.deprecated_at,
                        f.deprecation_reason,
                        f.consensus,
                        f.author,
                        f.surface,
                        f.erased_at
                    ],
                ),
                TamperOp::DeleteFact(id) => {
                    tx.execute("DELETE FROM facts WHERE id = ?1", [i64_of(*id)])
                }
                TamperOp::PutOpening(o) => tx.execute(
                    "INSERT OR REPLACE INTO fact_openings (fact_id, salt, content, tags, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        i64_of(o.fact_id),
                        o.salt,
                        o.fields.content,
                        serde_json::to_string(&o.fields.tags).unwrap(),
                        o.fields.source
                    ],
                ),
                TamperOp::DeleteOpening(id) => tx.execute(
                    "DELETE FROM fact_openings WHERE fact_id = ?1",
                    [i64_of(*id)],
                ),
                TamperOp::PutVote(v) => tx.execute(
                    "INSERT OR REPLACE INTO fact_votes \
                     (fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        i64_of(v.fact_id),
                        v.agent,
                        v.vote,
                        v.reason,
                        v.weight,
                        v.agreed,
                        i64_of(v.entry_index),
                        v.voted_at
                    ],
                ),
                TamperOp::DeleteVote(fact_id, agent) => tx.execute(
                    "DELETE FROM fact_votes WHERE fact_id = ?1 AND agent = ?2",
                    params![i64_of(*fact_id), agent],
                ),
                TamperOp::PutAgent(a) => tx.execute(
                    "INSERT OR REPLACE INTO agents (agent, reputation, votes, judged, agreed) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        a.agent,
                        a.reputation,
                        i64_of(a.votes),
                        i64_of(a.judged),
                        i64_of(a.agreed)
                    ],
                ),
                TamperOp::PutEvent(fact_id, entry) => tx
                    .execute(
                        "INSERT OR IGNORE INTO fact_events (fact_id, entry_index) VALUES (?1, ?2)",
                        params![i64_of(*fact_id), i64_of(*entry)],
                    )
                    .map(|_| 1),
                TamperOp::DeleteEvent(fact_id, entry) => tx.execute(
                    "DELETE FROM fact_events WHERE fact_id = ?1 AND entry_index = ?2",
                    params![i64_of(*fact_id), i64_of(*entry)],
                ),
                // As someone who wants search to find other text would: the index's text and
                // its postings changed together (so FTS5's own check of one against the other
                // would pass).
                TamperOp::SetIndexText(fact_id, text) => {
                    let id = i64_of(*fact_id);
                    tx.execute(
                        "INSERT INTO facts_fts (facts_fts, rowid, body) \
                         SELECT 'delete', fact_id, body FROM fact_index WHERE fact_id = ?1",
                        [id],
                    )
                    .unwrap();
                    tx.execute("DELETE FROM fact_index WHERE fact_id = ?1", [id])
                        .unwrap();
                    if let Some(t) = text {
                        tx.execute(
                            "INSERT INTO fact_index (fact_id, body) VALUES (?1, ?2)",
                            params![id, t],
                        )
                        .unwrap();
                        tx.execute(
                            "INSERT INTO facts_fts (rowid, body) VALUES (?1, ?2)",
                            params![id, t],
                        )
                        .unwrap();
                    }
                    Ok(1)
                }
            };
            assert_eq!(changed.unwrap(), 1, "{op:?} must change one row");
        }
        tx.commit().unwrap();
        Outcome::Done
    }
}

#[test]
fn sqlite_tamper_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let report = tamper_conformance(
        &|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("t{i}.db"));
            let store = open_store(&path);
            (store as DynStore, Box::new(SqliteTamper { path }) as _)
        },
        &|name| Arc::new(Ed25519Signer::generate(name).unwrap()),
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, tamper_case_names());
}

#[test]
fn sqlite_memory_tamper_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    let report = memory_tamper_conformance(&|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("m{i}.db"));
        let store = open_store(&path);
        (store as DynStore, Box::new(SqliteTamper { path }) as _)
    });
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, memory_tamper_case_names());
}

#[test]
fn memory_values_stored_with_another_type_are_findings_not_errors() {
    // SQLite's dynamic typing lets a value of any type into any column: each such row is
    // streamed as undecodable and reported against its table, and nothing fails or panics.
    use cortex_core::memory::store::MemoryRow;
    use cortex_core::testkit::tamper::memory_fixture;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let store: DynStore = open_store(&path);
    let m = memory_fixture(&store);
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "UPDATE facts SET tags = 'not json' WHERE id = 0; \
         UPDATE fact_openings SET content = CAST(X'80' AS TEXT) WHERE fact_id = 1; \
         UPDATE fact_votes SET agreed = 7 WHERE fact_id = 0 AND agent = 'bob'; \
         UPDATE agents SET votes = -1 WHERE agent = 'carol'; \
         UPDATE fact_index SET body = X'00ff' WHERE fact_id = 3; \
         INSERT INTO fact_events (fact_id, entry_index) VALUES ('x', 1);",
    )
    .unwrap();
    let mut undecodable = Vec::new();
    store
        .scan_memory(&mut |row| {
            if let MemoryRow::Undecodable { table, key, .. } = row {
                undecodable.push((table, key));
            }
            Ok(())
        })
        .unwrap();
    let want = [
        ("facts", "0"),
        ("fact_openings", "1"),
        ("fact_votes", "0/bob"),
        ("agents", "carol"),
        ("fact_events", "x/1"),
        ("search_index", "3"),
    ];
    assert_eq!(
        undecodable,
        want.map(|(t, k)| (t, k.to_string())),
        "one finding per bad row"
    );
    let r = m.verify(&VerifyOptions::default()).unwrap();
    assert!(!r.valid);
    for (table, _) in want {
        assert!(
            r.violations
                .iter()
                .any(|v| v.kind == ViolationKind::MemoryMismatch
                    && v.index.is_none()
                    && v.memory.as_ref().is_some_and(|at| at.table == table)),
            "{table}: {:#?}",
            r.violations
        );
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<SqliteStore>,
    ledger: Ledger,
    signer: Arc<Ed25519Signer>,
}

impl Fixture {
    /// A fresh ledger of [`SIZE`] entries with checkpoints at 27, 60, 85, 97 and 100, verified
    /// valid.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let store = open_store(&path);
        let signer = Arc::new(Ed25519Signer::generate(ORIGIN).unwrap());
        let ledger = fixture_ledger(store.clone(), signer.clone());
        let fx = Fixture {
            _dir: dir,
            path,
            store,
            ledger,
            signer,
        };
        let report = fx.verify();
        assert!(report.valid, "baseline: {:#?}", report.violations);
        assert_eq!(report.checkpoints_checked, 5);
        fx
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

    /// Verifies and asserts: first violation `kind` at `index`, run recorded as a violation.
    fn expect_first(&self, kind: ViolationKind, index: u64) -> VerifyReport {
        let report = self.verify();
        assert!(!report.valid, "tampering went unnoticed");
        let first = report.first_violation().expect("a violation");
        assert_eq!(
            (first.kind, first.index),
            (kind, Some(index)),
            "first violation; all: {:#?}",
            report.violations
        );
        let status: String = self
            .db()
            .query_row(
                "SELECT status FROM integrity_checks ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, "violation", "the run must be recorded");
        report
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
}

#[test]
fn a_column_stored_with_another_type_is_an_altered_entry() {
    // SQLite's dynamic typing: an integer timestamp is read back as text, and its row no longer
    // hashes to its chain link.
    let fx = Fixture::new();
    fx.db()
        .execute(
            "UPDATE entries SET timestamp = 20260101 WHERE idx = ?1",
            [ROW as i64],
        )
        .unwrap();
    fx.expect_first(ViolationKind::AlteredEntry, ROW);
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
