//! The agent memory's rows: facts, votes, agent reputations, each fact's history, the memory
//! version; the FTS5 search; writing an append's [`FactChange`]s; the [`FactStore`] impl.

use crate::conn::sql_err;
use crate::{SqliteStore, to_i64};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactChange, FactSearch, FactStore, FactTx, SearchHit};
use cortex_core::{Error, ErrorKind, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

const FACT_COLUMNS: &str = "id, project, content, fact_type, tags, confidence, source, valid_from, \
                            valid_until, created_at, deprecated_at, deprecation_reason, consensus";

fn fact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    let tags: String = r.get(4)?;
    Ok(Fact {
        id: r.get::<_, i64>(0)? as u64,
        project: r.get(1)?,
        content: r.get(2)?,
        fact_type: r.get(3)?,
        tags: serde_json::from_str(&tags).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        confidence: r.get(5)?,
        source: r.get(6)?,
        valid_from: r.get(7)?,
        valid_until: r.get(8)?,
        created_at: r.get(9)?,
        deprecated_at: r.get(10)?,
        deprecation_reason: r.get(11)?,
        consensus: r.get(12)?,
    })
}

pub(crate) fn read_fact(conn: &Connection, path: &Path, id: u64) -> Result<Option<Fact>> {
    conn.prepare_cached(&format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = ?1"))
        .and_then(|mut s| s.query_row([to_i64(id)], fact_from_row).optional())
        .map_err(sql_err(path))
}

fn read_facts(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Fact>> {
    let e = sql_err(path);
    let mut stmt = conn.prepare_cached(sql).map_err(&e)?;
    let rows = stmt.query_map(params, fact_from_row).map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

pub(crate) fn read_votes(conn: &Connection, path: &Path, fact_id: u64) -> Result<Vec<Vote>> {
    let e = sql_err(path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at \
             FROM fact_votes WHERE fact_id = ?1 ORDER BY agent",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([to_i64(fact_id)], |r| {
            Ok(Vote {
                fact_id: r.get::<_, i64>(0)? as u64,
                agent: r.get(1)?,
                vote: r.get(2)?,
                reason: r.get(3)?,
                weight: r.get(4)?,
                agreed: r.get(5)?,
                entry_index: r.get::<_, i64>(6)? as u64,
                voted_at: r.get(7)?,
            })
        })
        .map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

pub(crate) fn read_agent(
    conn: &Connection,
    path: &Path,
    agent: &str,
) -> Result<Option<AgentReputation>> {
    conn.prepare_cached(
        "SELECT agent, reputation, votes, judged, agreed FROM agents WHERE agent = ?1",
    )
    .and_then(|mut s| {
        s.query_row([agent], |r| {
            Ok(AgentReputation {
                agent: r.get(0)?,
                reputation: r.get(1)?,
                votes: r.get::<_, i64>(2)? as u64,
                judged: r.get::<_, i64>(3)? as u64,
                agreed: r.get::<_, i64>(4)? as u64,
            })
        })
        .optional()
    })
    .map_err(sql_err(path))
}

fn is_constraint(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Writes the memory changes of an append, in order, and bumps the memory version.
pub(crate) fn write_fact_changes(
    tx: &Connection,
    path: &Path,
    changes: &[FactChange],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let e = sql_err(path);
    for c in changes {
        match c {
            FactChange::Insert(f) => {
                let tags =
                    serde_json::to_string(&f.tags).map_err(|x| Error::backend(x.to_string()))?;
                tx.prepare_cached(&format!(
                    "INSERT INTO facts ({FACT_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        to_i64(f.id),
                        f.project,
                        f.content,
                        f.fact_type,
                        tags,
                        f.confidence,
                        f.source,
                        f.valid_from,
                        f.valid_until,
                        f.created_at,
                        f.deprecated_at,
                        f.deprecation_reason,
                        f.consensus
                    ])
                })
                .map_err(|err| {
                    if is_constraint(&err) {
                        Error::new(ErrorKind::Conflict, format!("fact {} already exists", f.id))
                    } else {
                        e(err)
                    }
                })?;
                tx.prepare_cached("INSERT INTO facts_fts (rowid, body) VALUES (?1, ?2)")
                    .and_then(|mut s| {
                        s.execute(params![
                            to_i64(f.id),
                            cortex_core::memory::bm25::index_text(&f.content, &f.tags)
                        ])
                    })
                    .map_err(&e)?;
            }
            FactChange::PutVote(v) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO fact_votes \
                     (fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        to_i64(v.fact_id),
                        v.agent,
                        v.vote,
                        v.reason,
                        v.weight,
                        v.agreed,
                        to_i64(v.entry_index),
                        v.voted_at
                    ])
                })
                .map_err(|err| {
                    if is_constraint(&err) {
                        Error::not_found(format!("no fact {} to vote on", v.fact_id))
                    } else {
                        e(err)
                    }
                })?;
            }
            FactChange::SetConsensus { fact_id, consensus } => {
                let n = tx
                    .prepare_cached("UPDATE facts SET consensus = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![to_i64(*fact_id), consensus]))
                    .map_err(&e)?;
                if n != 1 {
                    return Err(Error::not_found(format!("no fact {fact_id}")));
                }
            }
            FactChange::PutAgent(a) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO agents (agent, reputation, votes, judged, agreed) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.agent,
                        a.reputation,
                        to_i64(a.votes),
                        to_i64(a.judged),
                        to_i64(a.agreed)
                    ])
                })
                .map_err(&e)?;
            }
            FactChange::Deprecate {
                fact_id,
                at,
                reason,
                ..
            } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE facts SET deprecated_at = ?2, deprecation_reason = ?3 \
                         WHERE id = ?1 AND deprecated_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![to_i64(*fact_id), at, reason]))
                    .map_err(&e)?;
                if n != 1 {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("fact {fact_id} is missing or already deprecated"),
                    ));
                }
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            tx.prepare_cached("INSERT INTO fact_events (fact_id, entry_index) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![to_i64(fact), to_i64(entry)]))
                .map_err(&e)?;
        }
    }
    tx.prepare_cached("UPDATE memory_state SET version = version + 1 WHERE id = 1")
        .and_then(|mut s| s.execute([]))
        .map_err(&e)?;
    Ok(())
}

/// The FTS5 query for `terms`: each a quoted string, any of them matching.
fn fts_query(terms: &[String]) -> String {
    let mut q = String::new();
    for t in terms {
        if !q.is_empty() {
            q.push_str(" OR ");
        }
        q.push('"');
        q.push_str(&t.replace('"', "\"\""));
        q.push('"');
    }
    q
}

impl FactStore for SqliteStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| build(tx))
    }

    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        self.with_reader(|c| read_fact(c, &self.path, id))
    }

    fn recall(&self, project: &str, as_of: &str, limit: usize) -> Result<Vec<Fact>> {
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM facts INDEXED BY facts_recall \
                     WHERE project = ?1 AND deprecated_at IS NULL \
                     AND valid_from <= ?2 AND (valid_until IS NULL OR ?2 < valid_until) \
                     ORDER BY consensus DESC, id DESC LIMIT ?3"
                ),
                params![project, as_of, to_i64(limit as u64)],
            )
        })
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM facts WHERE project = ?1 ORDER BY id DESC LIMIT ?2"
                ),
                params![project, to_i64(limit as u64)],
            )
        })
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        let cols = FACT_COLUMNS
            .split(", ")
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {cols}, bm25(facts_fts) AS rank \
                     FROM facts_fts CROSS JOIN facts f ON f.id = facts_fts.rowid \
                     WHERE facts_fts MATCH ?1 \
                     AND (?2 IS NULL OR f.project = ?2) \
                     AND f.valid_from <= ?3 AND (f.valid_until IS NULL OR ?3 < f.valid_until) \
                     AND (?4 OR f.deprecated_at IS NULL) \
                     ORDER BY rank, f.id DESC LIMIT ?5"
                ))
                .map_err(&e)?;
            let rows = stmt
                .query_map(
                    params![
                        fts_query(&q.terms),
                        q.project,
                        q.as_of,
                        q.include_deprecated,
                        to_i64(q.top_k as u64)
                    ],
                    |r| {
                        Ok(SearchHit {
                            fact: fact_from_row(r)?,
                            score: -r.get::<_, f64>(13)?,
                        })
                    },
                )
                .map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
        })
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        self.with_reader(|c| read_votes(c, &self.path, fact_id))
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        self.with_reader(|c| read_agent(c, &self.path, agent))
    }

    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(
                    "SELECT e.idx, e.timestamp, e.project, e.action, e.detail \
                     FROM fact_events fe JOIN entries e ON e.idx = fe.entry_index \
                     WHERE fe.fact_id = ?1 ORDER BY fe.entry_index",
                )
                .map_err(&e)?;
            let rows = stmt
                .query_map([to_i64(fact_id)], |r| {
                    Ok(Entry {
                        index: r.get::<_, i64>(0)? as u64,
                        timestamp: r.get(1)?,
                        project: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })
                .map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
        })
    }

    fn memory_version(&self) -> Result<u64> {
        self.with_reader(|c| {
            c.prepare_cached("SELECT version FROM memory_state WHERE id = 1")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(|v| v as u64)
                .map_err(self.err())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{SqliteOptions, SqliteStore};
    use std::sync::Arc;

    #[test]
    fn two_handles_on_one_file_share_the_memory_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let open = || {
            let store: cortex_core::DynStore =
                Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
            cortex_core::AgentMemory::open(store, Default::default())
                .unwrap()
                .with_search_index()
        };
        let (a, b) = (open(), open());
        b.warm_up().unwrap();
        let v0 = b.version().unwrap();
        let id = a
            .store_fact(&cortex_core::NewFact::new("p", "written by a"))
            .unwrap()
            .facts[0]
            .id;
        assert_eq!(
            b.version().unwrap(),
            v0 + 1,
            "the other handle sees the bump"
        );
        let hits = b.search(&cortex_core::SearchQuery::new("written")).unwrap();
        assert_eq!(hits.len(), 1, "the other handle's index sees the fact");
        assert_eq!(hits[0].fact.id, id);
        b.vote(id, "agent-b", 1, None).unwrap();
        assert!(a.fact(id).unwrap().consensus > 0.0);
        assert_eq!(a.version().unwrap(), v0 + 2);
    }
}
