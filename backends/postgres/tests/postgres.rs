//! Runs the core conformance suite and the many-writers checks against a real PostgreSQL
//! server: the one named by `CORTEX_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), else the tests' own throwaway cluster
//! (`cortex_core::testkit::peers`). Every store gets a fresh schema, dropped at the end. When
//! there is no server the tests are skipped with the cause, except under `CI=true`, where they
//! fail.

use cortex_core::testkit::{sample_entries, store_conformance};
use cortex_core::{DynStore, Ledger, LedgerOptions, LedgerStore, VerifyOptions, verify_store};
use cortex_postgres::PostgresStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server URL, or `None` (with a message, once per test binary) when the tests should be
/// skipped. Asked anew by every test: the throwaway cluster may have been stopped meanwhile.
fn server_url() -> Option<String> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let what = "the cortex-postgres tests";
    match cortex_core::testkit::peers::postgres_url() {
        Ok(url) => Some(url),
        // Panics under CI=true; otherwise says so once per test binary.
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            cortex_core::testkit::skip(what, &why);
            None
        }
        Err(why) => {
            ONCE.call_once(|| cortex_core::testkit::skip(what, &why));
            None
        }
    }
}

/// The URL of a fresh schema holding an empty, migrated ledger (processes then share it).
fn created(schemas: &Schemas, url: &str, tag: &str) -> String {
    let u = with_schema(url, &schemas.fresh(tag));
    let store = Arc::new(PostgresStore::open_url(&u).unwrap());
    drop(Ledger::open(store, LedgerOptions::default()).unwrap());
    u
}

/// A unique schema name for this process.
fn fresh_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "cortex_{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Drops the schemas it was given when dropped (also when a test panics).
struct Schemas {
    url: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Self {
        Schemas {
            url: url.to_owned(),
            names: Default::default(),
        }
    }
    fn fresh(&self, tag: &str) -> String {
        let s = fresh_schema(tag);
        self.names.lock().unwrap().push(s.clone());
        s
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        if std::env::var("CORTEX_TEST_KEEP_SCHEMAS").is_ok() {
            return;
        }
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            for s in self.names.lock().unwrap().iter() {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
            }
        }
    }
}

#[test]
fn postgres_store_conformance() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    store_conformance(&|| {
        let s = schemas.fresh("conf");
        Arc::new(PostgresStore::open_url(&with_schema(&url, &s)).unwrap()) as DynStore
    });
}

#[test]
fn migrate_is_idempotent_and_reports_versions() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let u = with_schema(&url, &schemas.fresh("mig"));
    let a = PostgresStore::open_url(&u).unwrap();
    let b = PostgresStore::open_url(&u).unwrap();
    let latest = cortex_postgres::latest_schema_version();
    let r = b.migrate().unwrap();
    assert_eq!((r.from_version, r.to_version), (latest, latest));
    assert_eq!(a.head().unwrap(), b.head().unwrap());
    assert!(!format!("{a:?}").contains("password"));
}

/// `init_meta` is a compare-and-set across processes (here: eight stores, each with its own
/// connections, as separate processes would have), also when the server's default isolation
/// is stricter than READ COMMITTED: every racer gets the one value stored.
#[test]
fn racing_init_meta_agrees_on_one_value_under_any_default_isolation() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    // Migrated with the server's default isolation, so only init_meta races below.
    let migrated = created(&schemas, &url, "meta");
    // (`options` is libpq's: a backslash keeps the space inside one setting.)
    for isolation in ["", "repeatable%5C%20read", "serializable"] {
        let u = match isolation {
            "" => format!("{migrated}&pool_size=2"),
            _ => format!(
                "{migrated}&pool_size=2&options=-c%20default_transaction_isolation%3D{isolation}"
            ),
        };
        let stores: Vec<PostgresStore> = (0..8)
            .map(|_| PostgresStore::open_url(&u).unwrap())
            .collect();
        for round in 0..10 {
            let key = format!("race.{isolation}.{round}");
            let barrier = std::sync::Barrier::new(stores.len());
            let got: Vec<String> = std::thread::scope(|scope| {
                let racers: Vec<_> = stores
                    .iter()
                    .enumerate()
                    .map(|(i, store)| {
                        let (key, barrier) = (&key, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            store.init_meta(key, &format!("value {i}")).unwrap()
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert!(got.iter().all(|v| *v == got[0]), "{isolation}: {got:?}");
            assert_eq!(stores[0].meta(&key).unwrap().as_ref(), Some(&got[0]));
        }
    }
}

const THREADS: usize = 4;
const PROCESSES: usize = 3;
const APPENDS: usize = 1000;

fn assert_one_dense_chain(url: &str, want: u64) {
    let store: DynStore = Arc::new(PostgresStore::open_url(url).unwrap());
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    assert_eq!(store.head().unwrap().size, want);
    assert_eq!(store.last_entry_index().unwrap(), Some(want - 1));
    let report = verify_store(&*store, ledger.hasher(), None, &VerifyOptions::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(report.entries_checked, want);
}

/// Four threads, each with its own store (its own pool, as separate processes would have),
/// append 1,000 single entries each to one database: one dense chain that verifies.
#[test]
fn four_writers_one_chain() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let u = with_schema(&url, &schemas.fresh("mw"));
    // Create the ledger settings once, so the writers agree on them.
    drop(
        Ledger::open(
            Arc::new(PostgresStore::open_url(&u).unwrap()),
            LedgerOptions::default(),
        )
        .unwrap(),
    );
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let u = u.clone();
            s.spawn(move || {
                let store: DynStore = Arc::new(PostgresStore::open_url(&u).unwrap());
                let ledger = Ledger::open(store, LedgerOptions::default()).unwrap();
                for _ in 0..APPENDS {
                    ledger.append(&sample_entries(1)).unwrap();
                }
            });
        }
    });
    assert_one_dense_chain(&u, (THREADS * APPENDS) as u64);
}

const CHILD_VAR: &str = "CORTEX_TEST_POSTGRES_WRITER_URL";

/// The body of each writer process of `three_processes_one_chain` (does nothing otherwise).
#[test]
fn writer_process() {
    let Ok(u) = std::env::var(CHILD_VAR) else {
        return;
    };
    let store: DynStore = Arc::new(PostgresStore::open_url(&u).unwrap());
    let ledger = Ledger::open(store, LedgerOptions::default()).unwrap();
    for _ in 0..APPENDS {
        ledger.append(&sample_entries(1)).unwrap();
    }
}

/// Three processes append 1,000 single entries each to one database at the same time.
#[test]
fn three_processes_one_chain() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let u = created(&schemas, &url, "mp");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "writer_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_VAR, &u)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    assert_one_dense_chain(&u, (PROCESSES * APPENDS) as u64);
}

/// Tokens Postgres treats specially (non-ASCII, combining marks, longer than a `tsvector`
/// lexeme may be) are found and scored exactly as core's in-memory BM25 index does.
#[test]
fn unusual_tokens_search_like_core() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let store: DynStore =
        Arc::new(PostgresStore::open_url(&with_schema(&url, &schemas.fresh("tok"))).unwrap());
    let memory = cortex_core::AgentMemory::open(store, LedgerOptions::default()).unwrap();
    let long = "x".repeat(3000);
    let contents = [
        format!("{long} tail"),
        format!("{long}y other"),
        "İx ünïcode straße".to_owned(),
        "plain words here".to_owned(),
    ];
    let mut ix = cortex_core::memory::bm25::Bm25Index::new();
    for c in &contents {
        let id = memory
            .store_fact(&cortex_core::NewFact::new("p", c.as_str()))
            .unwrap()
            .facts[0]
            .id;
        ix.add(id, &cortex_core::memory::bm25::index_text(c, &[]));
    }
    for q in [long.as_str(), "İX", "STRASSE straße", "words tail"] {
        let mut want = ix.score(&cortex_core::memory::bm25::query_terms(q));
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        let got = memory.search(&cortex_core::SearchQuery::new(q)).unwrap();
        let got: Vec<(u64, f64)> = got.iter().map(|h| (h.fact.id, h.score)).collect();
        assert_eq!(got, want, "query {:?}", &q[..q.len().min(20)]);
    }
}

const KILL_VAR: &str = "CORTEX_TEST_POSTGRES_KILLED_URL";

/// The body of the writer that `kill_9_loses_no_acknowledged_entry` kills (does nothing
/// otherwise): eight group-commit writer threads and one batch writer, until killed, printing
/// each acknowledged entry.
#[test]
fn killed_writer_process() {
    let Ok(u) = std::env::var(KILL_VAR) else {
        return;
    };
    let store: DynStore = Arc::new(PostgresStore::open_url(&u).unwrap());
    let skey = std::env::var(cortex_core::testkit::crash::SKEY_VAR).unwrap();
    let signer = Arc::new(cortex_ed25519::Ed25519Signer::from_skey(&skey).unwrap());
    cortex_core::testkit::crash::run_writer(
        cortex_core::testkit::crash::writer_ledger(store, signer),
        cortex_core::testkit::crash::Load::default(),
    );
}

/// `kill -9` of a writer under load, 10 times: every acknowledged entry is stored exactly as
/// acknowledged, the chain verifies, and a checkpoint can be signed afterwards. (The server
/// outlives the writer, so this is the crash of a client process.)
#[test]
fn kill_9_loses_no_acknowledged_entry() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let u = created(&schemas, &url, "kill");
    let exe = std::env::current_exe().unwrap();
    let signer = cortex_ed25519::Ed25519Signer::generate("example.com/kill").unwrap();
    let summary =
        cortex_core::testkit::crash::kill_9_rounds(&cortex_core::testkit::crash::KillTest {
            rounds: 10,
            min_run: std::time::Duration::from_millis(150),
            max_run: std::time::Duration::from_millis(600),
            writer: &|| {
                let mut c = std::process::Command::new(&exe);
                c.args([
                    "--exact",
                    "killed_writer_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(KILL_VAR, &u)
                .env(cortex_core::testkit::crash::SKEY_VAR, signer.to_skey());
                c
            },
            open: &|| Arc::new(PostgresStore::open_url(&u).unwrap()) as DynStore,
            signer: Arc::new(cortex_ed25519::Ed25519Signer::from_skey(&signer.to_skey()).unwrap()),
        });
    eprintln!("postgres kill -9: {summary:?}");
}

/// A deleted head row reads as an empty ledger, as in SQLite: appending then reports a
/// conflict with the stored rows instead of forking the chain.
#[test]
fn a_missing_head_row_is_a_conflict_not_a_fork() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh("head");
    let store: DynStore = Arc::new(PostgresStore::open_url(&with_schema(&url, &schema)).unwrap());
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    ledger.append(&sample_entries(2)).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("DELETE FROM \"{schema}\".ledger_head"))
        .unwrap();
    assert_eq!(store.head().unwrap().size, 0);
    let e = ledger.append(&sample_entries(1)).unwrap_err();
    assert_eq!(e.kind(), cortex_core::ErrorKind::Conflict, "{e}");
    assert_eq!(store.last_entry_index().unwrap(), Some(1));
}

/// Raw writes to one store's schema through a separate connection (one transaction per call), as
/// someone with write access to the database would make them.
struct PgTamper(std::sync::Mutex<postgres::Client>);

impl PgTamper {
    fn connect(url: &str, schema: &str) -> PgTamper {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("SET search_path TO \"{schema}\""))
            .unwrap();
        PgTamper(std::sync::Mutex::new(c))
    }
}

impl cortex_core::testkit::tamper::Tamper for PgTamper {
    fn apply(
        &self,
        ops: &[cortex_core::testkit::tamper::TamperOp],
    ) -> cortex_core::testkit::tamper::Outcome {
        use cortex_core::testkit::tamper::{Outcome, TamperOp};
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut c = self.0.lock().unwrap();
        let mut tx = c.transaction().unwrap();
        for op in ops {
            let changed = match op {
                TamperOp::PutEntry(r) => tx.execute(
                    "INSERT INTO entries \
                     (idx, timestamp, project, action, detail, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idx) DO UPDATE SET \
                     timestamp = EXCLUDED.timestamp, project = EXCLUDED.project, \
                     action = EXCLUDED.action, detail = EXCLUDED.detail, \
                     prev_hash = EXCLUDED.prev_hash, hash = EXCLUDED.hash",
                    &[
                        &i(r.index),
                        &r.timestamp,
                        &r.project,
                        &r.action,
                        &r.detail,
                        &r.prev_hash,
                        &r.hash,
                    ],
                ),
                TamperOp::DeleteEntries(range) => tx
                    .execute(
                        "DELETE FROM entries WHERE idx >= $1 AND idx < $2",
                        &[&i(range.start), &i(range.end)],
                    )
                    .map(|_| 1),
                TamperOp::SetHead(h) => tx.execute(
                    "UPDATE ledger_head SET size = $1, last_hash = $2 WHERE id = 1",
                    &[&i(h.size), &&h.last_hash.0[..]],
                ),
                TamperOp::PutTile {
                    level,
                    index,
                    bytes,
                } => tx.execute(
                    "INSERT INTO merkle_tiles (level, idx, hashes) VALUES ($1, $2, $3) \
                     ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes",
                    &[&i16::from(*level), &i(*index), bytes],
                ),
                TamperOp::DeleteTile { level, index } => tx.execute(
                    "DELETE FROM merkle_tiles WHERE level = $1 AND idx = $2",
                    &[&i16::from(*level), &i(*index)],
                ),
                TamperOp::PutCheckpoint(cp) => tx.execute(
                    "INSERT INTO checkpoints (tree_size, root_hash, range_start, range_end, \
                     range_count, signed_note, extra_signatures, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, '[]', $7) \
                     ON CONFLICT (tree_size) DO UPDATE SET root_hash = EXCLUDED.root_hash, \
                     range_start = EXCLUDED.range_start, range_count = EXCLUDED.range_count, \
                     signed_note = EXCLUDED.signed_note",
                    &[
                        &i(cp.size),
                        &cp.root.to_hex(),
                        &i(cp.range_start),
                        &cp.range_end().map(i),
                        &i(cp.range_count),
                        &cp.note,
                        &cp.created_at,
                    ],
                ),
                TamperOp::MalformCheckpointRoot(size) => tx.execute(
                    "UPDATE checkpoints SET root_hash = 'not hex' WHERE tree_size = $1",
                    &[&i(*size)],
                ),
                TamperOp::DeleteCheckpoint(size) => {
                    tx.execute("DELETE FROM checkpoints WHERE tree_size = $1", &[&i(*size)])
                }
            };
            assert_eq!(changed.unwrap(), 1, "{op:?} must change one row");
        }
        tx.commit().unwrap();
        Outcome::Done
    }
}

/// Core's shared tamper-detection suite: each case on a fresh schema, tampered through a
/// separate connection.
#[test]
fn postgres_tamper_conformance() {
    use cortex_core::testkit::tamper::{
        Tamper, tamper_case_names, tamper_conformance, test_signer,
    };
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let report = tamper_conformance(
        &|| {
            let s = schemas.fresh("tamper");
            let store: DynStore =
                Arc::new(PostgresStore::open_url(&with_schema(&url, &s)).unwrap());
            (
                store,
                Box::new(PgTamper::connect(&url, &s)) as Box<dyn Tamper>,
            )
        },
        &test_signer,
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, tamper_case_names());
}

/// One batch of facts holding more text than one `COPY` carries (so it takes several), with
/// every character `COPY`'s text format escapes, NULLs, quotes, backslashes and awkward floats,
/// reads back exactly, has its history, bumps the version once, and searches like core's BM25.
#[test]
fn a_large_batch_of_awkward_facts_round_trips_exactly() {
    use cortex_core::memory::bm25::{Bm25Index, index_text, query_terms};
    use cortex_core::{AgentMemory, NewFact, SearchQuery};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let store: DynStore =
        Arc::new(PostgresStore::open_url(&with_schema(&url, &schemas.fresh("bulk"))).unwrap());
    let memory = AgentMemory::open(store.clone(), LedgerOptions::default()).unwrap();
    let before = memory
        .store_fact(&NewFact::new("p", "before the batch"))
        .unwrap();
    let version = store.memory_version().unwrap();
    let awkward = [
        "tab\there",
        "new\nline",
        "carriage\rreturn",
        "back\\slash \\N \\. \\\\ end",
        "\\.",
        "\\N",
        "quote ' and '' and \" done",
        "ünïcode straße 東京 🦀",
        "line\n\\.\nend\r\n",
        "\t\\t \\n lead",
    ];
    let confidences = [0.1, 1.0 / 3.0, 5e-324, 0.0, 1.0, 0.700_000_000_000_000_1];
    let batch: Vec<NewFact> = (0..240usize)
        .map(|i| {
            let odd = awkward[i % awkward.len()];
            let content = if i % 2 == 0 {
                // About 40 KB of distinct words: ~125 KB of COPY text with its tokens.
                let words: Vec<String> = (0..3500).map(|j| format!("big{i}w{j}")).collect();
                format!("{} {odd}", words.join(" "))
            } else {
                format!("{odd} small{i}")
            };
            let mut f = NewFact::new(format!("proj\\{}'", i % 3), content);
            f.tags = vec![
                format!("tag\\{i}"),
                "t'q".to_owned(),
                "ü\tx".replace('\t', " "),
            ];
            f.confidence = Some(confidences[i % confidences.len()]);
            f.source = (i % 3 == 0).then(|| format!("src\t{i}\\N\n{odd}"));
            f.fact_type = (i % 4 == 0).then(|| "ty'pe\\x".to_owned());
            f.valid_until = (i % 5 == 0).then(|| "2999-01-01".to_owned());
            f
        })
        .collect();
    let stored = memory.store_facts(&batch).unwrap().facts;
    // More than one COPY's 8 MiB, counting only the content and the indexed text.
    let text: usize = stored
        .iter()
        .map(|f| f.content.len() + index_text(&f.content, &f.tags).len())
        .sum();
    assert!(text > 8 << 20, "{text} bytes");
    assert_eq!(store.memory_version().unwrap(), version + 1);
    let mut ix = Bm25Index::new();
    for f in before.facts.iter().chain(&stored) {
        let back = store.fact(f.id).unwrap().expect("stored fact");
        assert_eq!(&back, f, "fact {}", f.id);
        assert_eq!(back.confidence.to_bits(), f.confidence.to_bits());
        let history: Vec<u64> = store
            .fact_history(f.id)
            .unwrap()
            .iter()
            .map(|e| e.index)
            .collect();
        assert_eq!(history, vec![f.id]);
        ix.add(f.id, &index_text(&f.content, &f.tags));
    }
    for q in [
        "big6w12 small9",
        "東京 straße n",
        "tag",
        "quote back slash",
        "big200w3499 big0w0 nothing",
        "t q ü x",
    ] {
        let mut want = ix.score(&query_terms(q));
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        want.truncate(1000);
        let mut sq = SearchQuery::new(q);
        sq.top_k = Some(1000);
        let got: Vec<(u64, f64)> = memory
            .search(&sq)
            .unwrap()
            .iter()
            .map(|h| (h.fact.id, h.score))
            .collect();
        assert!(!got.is_empty(), "query {q:?} found nothing");
        assert_eq!(got, want, "query {q:?}");
    }
}

/// Within one append, a change after a new fact sees it (deprecating a fact inserted just
/// before), and a fact id that is taken is a `Conflict` naming it that writes nothing.
#[test]
fn changes_apply_in_order_and_a_taken_fact_id_conflicts() {
    use cortex_core::memory::store::FactChange;
    use cortex_core::{AgentMemory, ErrorKind, NewFact, SearchQuery};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let store: DynStore =
        Arc::new(PostgresStore::open_url(&with_schema(&url, &schemas.fresh("order"))).unwrap());
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let memory = AgentMemory::new(store.clone(), ledger.clone()).unwrap();
    let first = memory
        .store_fact(&NewFact::new("p", "first words"))
        .unwrap()
        .facts[0]
        .clone();
    let new_fact = |content: &str, id: u64, at: &str| {
        NewFact::new("p", content)
            .to_detail(at)
            .map(|d| d.into_fact(id, "p", at))
    };
    let out = memory
        .append_with(&sample_entries(3), &mut |_, ctx| {
            let (i, at) = (ctx.first_index, ctx.timestamp);
            Ok(vec![
                FactChange::Insert(new_fact("alpha words", i, at)?),
                FactChange::Deprecate {
                    fact_id: i,
                    at: at.to_owned(),
                    reason: Some("superseded".to_owned()),
                    entry_index: i + 1,
                },
                FactChange::Insert(new_fact("beta words", i + 2, at)?),
            ])
        })
        .unwrap();
    let (a, b) = (out.first_index, out.first_index + 2);
    let alpha = store.fact(a).unwrap().unwrap();
    assert_eq!(alpha.deprecation_reason.as_deref(), Some("superseded"));
    assert!(alpha.deprecated_at.is_some());
    let history: Vec<u64> = store
        .fact_history(a)
        .unwrap()
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(history, vec![a, a + 1]);
    let ids = |include_deprecated: bool| -> Vec<u64> {
        let mut q = SearchQuery::new("alpha beta");
        q.include_deprecated = include_deprecated;
        memory
            .search(&q)
            .unwrap()
            .iter()
            .map(|h| h.fact.id)
            .collect()
    };
    assert_eq!(ids(false), vec![b]);
    let mut both = ids(true);
    both.sort();
    assert_eq!(both, vec![a, b]);

    let (head, version) = (store.head().unwrap(), store.memory_version().unwrap());
    let taken = first.clone();
    let e = memory
        .append_with(&sample_entries(2), &mut |_, ctx| {
            Ok(vec![
                FactChange::Insert(new_fact("gamma", ctx.first_index, ctx.timestamp)?),
                FactChange::Insert(taken.clone()),
            ])
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("fact {} already exists", first.id)),
        "{e}"
    );
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.memory_version().unwrap(), version);
    assert_eq!(store.fact(head.size).unwrap(), None);
}
