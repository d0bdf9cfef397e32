//! Core's tamper-detection suites against PostgreSQL, tampered through a separate connection
//! (raw SQL, as someone with write access to the database), and the search-index tampering
//! only this engine can suffer: a `tsv`, `doc_len` or collection statistic that no longer
//! follows from the indexed text.

mod common;

use common::{Schemas, server_url, with_schema};
use cortex_core::memory::fact::Fact;
use cortex_core::testkit::tamper::{Outcome, Tamper, TamperOp};
use cortex_core::{AgentMemory, DynStore, LedgerOptions, NewFact, ViolationKind};
use cortex_postgres::PostgresStore;
use postgres::{Client, Transaction};
use std::sync::{Arc, Mutex};

/// Raw writes to one store's schema through a separate connection (one transaction per call), as
/// someone with write access to the database would make them.
///
/// This engine keeps a fact's search-index entry in its own row (`body`, `doc_len`, `tsv`) and
/// the collection statistics in `memory_state`, kept in step by the store as a full-text
/// engine keeps its own. So `SetIndexText` writes the text with the `tsv` and length PostgreSQL
/// itself derives from it (`array_to_tsvector`, independent of the crate's code) and moves the
/// statistics accordingly, and `DeleteFact` takes the row's index entry, and its share of the
/// statistics, with the row: each leaves an index that is consistent in itself and differs from
/// the ledger only as the operation says. Votes refer to facts (a foreign key) and are ±1 (a
/// check); an operation that breaks either first drops that constraint, as the tables' owner
/// can.
struct PgTamper(Mutex<Client>);

impl PgTamper {
    fn connect(url: &str, schema: &str) -> PgTamper {
        let mut c = Client::connect(url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("SET search_path TO \"{schema}\""))
            .unwrap();
        PgTamper(Mutex::new(c))
    }
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const PUT_FACT_SQL: &str = "INSERT INTO facts (id, project, content, fact_type, tags, \
     confidence, source, valid_from, valid_until, created_at, deprecated_at, deprecation_reason, \
     consensus, author, surface, erased_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO UPDATE SET project = EXCLUDED.project, content = EXCLUDED.content, \
     fact_type = EXCLUDED.fact_type, tags = EXCLUDED.tags, confidence = EXCLUDED.confidence, \
     source = EXCLUDED.source, valid_from = EXCLUDED.valid_from, \
     valid_until = EXCLUDED.valid_until, created_at = EXCLUDED.created_at, \
     deprecated_at = EXCLUDED.deprecated_at, deprecation_reason = EXCLUDED.deprecation_reason, \
     consensus = EXCLUDED.consensus, author = EXCLUDED.author, surface = EXCLUDED.surface, \
     erased_at = EXCLUDED.erased_at";

/// Takes fact `$1`'s index entry out of the statistics (if it has one); returns whether the
/// fact exists.
const UNCOUNT_SQL: &str = "WITH old AS (SELECT body IS NOT NULL AS indexed, doc_len FROM facts \
     WHERE id = $1 FOR UPDATE), \
     s AS (UPDATE memory_state SET \
     docs = docs - (SELECT count(*) FROM old WHERE indexed), \
     tokens = tokens - (SELECT COALESCE(sum(doc_len), 0) FROM old WHERE indexed) WHERE id = 1) \
     SELECT count(*) FROM old";

fn put_fact(tx: &mut Transaction<'_>, f: &Fact) -> u64 {
    let tags = serde_json::to_string(&f.tags).unwrap();
    tx.execute(
        PUT_FACT_SQL,
        &[
            &i(f.id),
            &f.project,
            &f.content,
            &f.fact_type,
            &tags,
            &f.confidence,
            &f.source,
            &f.valid_from,
            &f.valid_until,
            &f.created_at,
            &f.deprecated_at,
            &f.deprecation_reason,
            &f.consensus,
            &f.author,
            &f.surface,
            &f.erased_at,
        ],
    )
    .unwrap()
}

/// Sets (or, with `None`, removes) fact `id`'s index entry and moves the statistics; `None`
/// if there is no such fact row to hold it.
fn set_index_text(tx: &mut Transaction<'_>, id: i64, text: Option<&str>) -> Option<u64> {
    let exists: i64 = tx.query_one(UNCOUNT_SQL, &[&id]).unwrap().get(0);
    if exists == 0 {
        return None;
    }
    Some(match text {
        None => tx
            .execute(
                "UPDATE facts SET body = NULL, doc_len = NULL, tsv = NULL WHERE id = $1",
                &[&id],
            )
            .unwrap(),
        Some(t) => {
            let n = tx
                .execute(
                    "UPDATE facts SET body = $2, \
                     doc_len = cardinality(array_remove(string_to_array($2, ' '), '')), \
                     tsv = array_to_tsvector(array_remove(string_to_array($2, ' '), '')) \
                     WHERE id = $1",
                    &[&id, &t],
                )
                .unwrap();
            tx.execute(
                "UPDATE memory_state SET docs = docs + 1, tokens = tokens + \
                 (SELECT doc_len FROM facts WHERE id = $1) WHERE id = 1",
                &[&id],
            )
            .unwrap();
            n
        }
    })
}

impl Tamper for PgTamper {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
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
                TamperOp::PutFact(f) => Ok(put_fact(&mut tx, f)),
                TamperOp::DeleteFact(id) => {
                    tx.batch_execute(
                        "ALTER TABLE fact_votes DROP CONSTRAINT IF EXISTS fact_votes_fact_id_fkey",
                    )
                    .unwrap();
                    tx.query_one(UNCOUNT_SQL, &[&i(*id)]).unwrap();
                    tx.execute("DELETE FROM facts WHERE id = $1", &[&i(*id)])
                }
                TamperOp::PutOpening(o) => tx.execute(
                    "INSERT INTO fact_openings (fact_id, salt, content, tags, source) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (fact_id) DO UPDATE SET \
                     salt = EXCLUDED.salt, content = EXCLUDED.content, tags = EXCLUDED.tags, \
                     source = EXCLUDED.source",
                    &[
                        &i(o.fact_id),
                        &o.salt,
                        &o.fields.content,
                        &serde_json::to_string(&o.fields.tags).unwrap(),
                        &o.fields.source,
                    ],
                ),
                TamperOp::DeleteOpening(id) => {
                    tx.execute("DELETE FROM fact_openings WHERE fact_id = $1", &[&i(*id)])
                }
                TamperOp::PutVote(v) => {
                    tx.batch_execute(
                        "ALTER TABLE fact_votes DROP CONSTRAINT IF EXISTS fact_votes_fact_id_fkey",
                    )
                    .unwrap();
                    if v.vote.abs() != 1 {
                        tx.batch_execute(
                            "ALTER TABLE fact_votes DROP CONSTRAINT IF EXISTS fact_votes_vote_check",
                        )
                        .unwrap();
                    }
                    tx.execute(
                        "INSERT INTO fact_votes (fact_id, agent, vote, reason, weight, agreed, \
                         entry_index, voted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (fact_id, agent) DO UPDATE SET vote = EXCLUDED.vote, \
                         reason = EXCLUDED.reason, weight = EXCLUDED.weight, \
                         agreed = EXCLUDED.agreed, entry_index = EXCLUDED.entry_index, \
                         voted_at = EXCLUDED.voted_at",
                        &[
                            &i(v.fact_id),
                            &v.agent,
                            &i16::from(v.vote),
                            &v.reason,
                            &v.weight,
                            &v.agreed,
                            &i(v.entry_index),
                            &v.voted_at,
                        ],
                    )
                }
                TamperOp::DeleteVote(fact, agent) => tx.execute(
                    "DELETE FROM fact_votes WHERE fact_id = $1 AND agent = $2",
                    &[&i(*fact), agent],
                ),
                TamperOp::PutAgent(a) => tx.execute(
                    "INSERT INTO agents (agent, reputation, votes, judged, agreed) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent) DO UPDATE SET \
                     reputation = EXCLUDED.reputation, votes = EXCLUDED.votes, \
                     judged = EXCLUDED.judged, agreed = EXCLUDED.agreed",
                    &[
                        &a.agent,
                        &a.reputation,
                        &i(a.votes),
                        &i(a.judged),
                        &i(a.agreed),
                    ],
                ),
                // Adding a pair that is there already changes nothing, as a set insert.
                TamperOp::PutEvent(fact, entry) => tx
                    .execute(
                        "INSERT INTO fact_events (fact_id, entry_index) VALUES ($1, $2) \
                         ON CONFLICT DO NOTHING",
                        &[&i(*fact), &i(*entry)],
                    )
                    .map(|_| 1),
                TamperOp::DeleteEvent(fact, entry) => tx.execute(
                    "DELETE FROM fact_events WHERE fact_id = $1 AND entry_index = $2",
                    &[&i(*fact), &i(*entry)],
                ),
                TamperOp::SetIndexText(id, text) => {
                    match set_index_text(&mut tx, i(*id), text.as_deref()) {
                        Some(n) => Ok(n),
                        // Dropping the transaction writes nothing.
                        None => {
                            return Outcome::NotApplicable(format!(
                                "the search index keeps a fact's text in the fact's row, and \
                                 there is no row of fact {id}"
                            ));
                        }
                    }
                }
            };
            assert_eq!(changed.unwrap(), 1, "{op:?} must change one row");
        }
        tx.commit().unwrap();
        Outcome::Done
    }
}

/// A fresh store in its own schema, and raw write access to that schema.
fn tamperable(schemas: &Schemas, url: &str) -> (DynStore, PgTamper) {
    let s = schemas.fresh("tamper");
    let store: DynStore = Arc::new(PostgresStore::open_url(&with_schema(url, &s)).unwrap());
    (store, PgTamper::connect(url, &s))
}

/// Core's shared tamper-detection suite: each case on a fresh schema.
#[test]
fn postgres_tamper_conformance() {
    use cortex_core::testkit::tamper::{tamper_case_names, tamper_conformance, test_signer};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let report = tamper_conformance(
        &|| {
            let (store, tamper) = tamperable(&schemas, &url);
            (store, Box::new(tamper) as Box<dyn Tamper>)
        },
        &test_signer,
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, tamper_case_names());
}

/// Core's memory-poisoning suite: every case runs, the search-index ones included (this engine
/// keeps each fact's indexed text).
#[test]
fn postgres_memory_tamper_conformance() {
    use cortex_core::testkit::tamper::{memory_tamper_case_names, memory_tamper_conformance};
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let report = memory_tamper_conformance(&|| {
        let (store, tamper) = tamperable(&schemas, &url);
        (store, Box::new(tamper) as Box<dyn Tamper>)
    });
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, memory_tamper_case_names());
}

/// A memory of three facts (the middle one searched for), the fact ids, and its raw access.
fn memory_of_three(schemas: &Schemas, url: &str) -> (DynStore, AgentMemory, Vec<u64>, PgTamper) {
    let (store, tamper) = tamperable(schemas, url);
    let memory = AgentMemory::open(store.clone(), LedgerOptions::default()).unwrap();
    let ids = memory
        .store_facts(&[
            NewFact::new("p", "the cat sat on the mat"),
            NewFact::new("p", "a dog barked twice"),
            NewFact::new("p", "birds sing at dawn"),
        ])
        .unwrap()
        .facts
        .iter()
        .map(|f| f.id)
        .collect();
    assert!(memory.verify(&Default::default()).unwrap().valid);
    (store, memory, ids, tamper)
}

/// Runs raw SQL on the store's schema.
fn raw(tamper: &PgTamper, sql: &str) {
    tamper.0.lock().unwrap().batch_execute(sql).unwrap();
}

/// The search-index findings of a verification: (key, problem) of each `search_index` row the
/// scan could not square with its text.
fn index_findings(memory: &AgentMemory) -> Vec<String> {
    let report = memory.verify(&Default::default()).unwrap();
    assert!(!report.valid);
    report
        .violations
        .iter()
        .filter(|v| v.memory.as_ref().is_some_and(|m| m.table == "search_index"))
        .map(|v| {
            assert_eq!(v.kind, ViolationKind::MemoryMismatch, "{v:?}");
            v.message.clone()
        })
        .collect()
}

/// A `tsv` that no longer holds the indexed text's words makes search find the fact for other
/// words (or miss it) while `body`, the text `verify` compares with the ledger, still matches:
/// the scan reports it.
#[test]
fn a_tsv_that_does_not_follow_its_text_is_reported() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (_, memory, ids, tamper) = memory_of_three(&schemas, &url);
    raw(
        &tamper,
        &format!(
            "UPDATE facts SET tsv = 'a barked dog twice zebra' WHERE id = {}",
            ids[1]
        ),
    );
    let found = index_findings(&memory);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("tsv does not hold"), "{found:?}");
    assert!(found[0].contains(&format!("row {}", ids[1])), "{found:?}");
}

/// A wrong `doc_len` changes the fact's score; a wrong document or token count in
/// `memory_state` changes every score. Both are reported.
#[test]
fn a_wrong_length_or_statistic_is_reported() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (_, memory, ids, tamper) = memory_of_three(&schemas, &url);
    raw(
        &tamper,
        &format!("UPDATE facts SET doc_len = 40 WHERE id = {}", ids[2]),
    );
    let found = index_findings(&memory);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("doc_len is 40, but the indexed text has 4 tokens"),
        "{found:?}"
    );
    raw(
        &tamper,
        &format!("UPDATE facts SET doc_len = 4 WHERE id = {}", ids[2]),
    );
    assert!(memory.verify(&Default::default()).unwrap().valid);
    raw(&tamper, "UPDATE memory_state SET docs = docs + 1");
    let found = index_findings(&memory);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("statistics"), "{found:?}");
    assert!(
        found[0].contains("memory_state counts 4 indexed facts of 14 tokens"),
        "{found:?}"
    );
}

/// Index terms left on an erased fact (its text gone) would still find it: reported.
#[test]
fn index_terms_without_text_are_reported() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (_, memory, ids, tamper) = memory_of_three(&schemas, &url);
    memory.forget(ids[0], "asked to").unwrap();
    assert!(memory.verify(&Default::default()).unwrap().valid);
    raw(
        &tamper,
        &format!("UPDATE facts SET tsv = 'cat' WHERE id = {}", ids[0]),
    );
    let found = index_findings(&memory);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("no indexed text"), "{found:?}");
}

/// Values of the wrong shape are reported as rows that cannot be read, never an error.
#[test]
fn undecodable_rows_are_findings_not_errors() {
    let Some(url) = server_url() else { return };
    let schemas = Schemas::new(&url);
    let (store, memory, ids, tamper) = memory_of_three(&schemas, &url);
    memory.vote(ids[0], "alice", 1, None).unwrap();
    raw(
        &tamper,
        &format!(
            "UPDATE facts SET tags = 'not json' WHERE id = {}; \
             UPDATE fact_openings SET tags = '{{}}' WHERE fact_id = {}; \
             UPDATE agents SET votes = -3",
            ids[1], ids[2]
        ),
    );
    let mut undecodable = Vec::new();
    store
        .scan_memory(&mut |row| {
            if let cortex_core::memory::store::MemoryRow::Undecodable { table, key, .. } = row {
                undecodable.push((table, key));
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        undecodable,
        [
            ("facts", ids[1].to_string()),
            ("fact_openings", ids[2].to_string()),
            ("agents", "alice".to_owned())
        ]
    );
    let report = memory.verify(&Default::default()).unwrap();
    assert!(!report.valid);
}
