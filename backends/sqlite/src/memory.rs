//! The agent memory's rows: facts, commitment openings, votes, agent reputations, each fact's
//! history, the search index's text, the memory version; the FTS5 search; writing an append's
//! [`FactChange`]s; the [`FactStore`] impl (its whole-memory scan and replacement are in
//! `audit`).

use crate::conn::sql_err;
use crate::{SqliteStore, to_i64};
use cortex_core::embed::{vector_bytes, vector_from_bytes};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::bm25::{Candidates, index_text};
use cortex_core::memory::commitment::{FactContent, FactOpening};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{
    FactBatch, FactChange, FactRecall, FactSearch, FactStore, FactTx, MemoryRow, MemoryState,
    ProjectSize, SearchHit,
};
use cortex_core::{Error, ErrorKind, Result};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

pub(crate) const FACT_COLUMNS: &str = "id, project, content, fact_type, tags, confidence, source, \
                                       valid_from, valid_until, created_at, deprecated_at, \
                                       deprecation_reason, consensus, author, surface, erased_at";

pub(crate) const OPENING_COLUMNS: &str = "fact_id, salt, content, tags, source";

pub(crate) const VOTE_COLUMNS: &str =
    "fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at";

pub(crate) const AGENT_COLUMNS: &str = "agent, reputation, votes, judged, agreed";

/// A column that holds a non-negative integer (an id, an index, a count).
pub(crate) fn unsigned(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

/// A column that holds a JSON array of strings (tags).
fn string_list(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(r.get_ref(i)?.as_str()?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}

/// A nullable 0/1 column.
fn flag(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<bool>> {
    match r.get::<_, Option<i64>>(i)? {
        None => Ok(None),
        Some(0) => Ok(Some(false)),
        Some(1) => Ok(Some(true)),
        Some(v) => Err(rusqlite::Error::IntegralValueOutOfRange(i, v)),
    }
}

/// A fact from a row of [`FACT_COLUMNS`]; an error (never a panic) for a value of the wrong
/// type or shape.
pub(crate) fn fact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fact> {
    Ok(Fact {
        id: unsigned(r, 0)?,
        project: r.get(1)?,
        content: r.get(2)?,
        fact_type: r.get(3)?,
        tags: string_list(r, 4)?,
        confidence: r.get(5)?,
        source: r.get(6)?,
        valid_from: r.get(7)?,
        valid_until: r.get(8)?,
        created_at: r.get(9)?,
        deprecated_at: r.get(10)?,
        deprecation_reason: r.get(11)?,
        consensus: r.get(12)?,
        author: r.get(13)?,
        surface: r.get(14)?,
        erased_at: r.get(15)?,
    })
}

/// An opening from a row of [`OPENING_COLUMNS`].
pub(crate) fn opening_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FactOpening> {
    Ok(FactOpening {
        fact_id: unsigned(r, 0)?,
        salt: r.get(1)?,
        fields: FactContent {
            content: r.get(2)?,
            tags: string_list(r, 3)?,
            source: r.get(4)?,
        },
    })
}

/// A vote from a row of [`VOTE_COLUMNS`].
pub(crate) fn vote_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vote> {
    Ok(Vote {
        fact_id: unsigned(r, 0)?,
        agent: r.get(1)?,
        vote: r.get(2)?,
        reason: r.get(3)?,
        weight: r.get(4)?,
        agreed: flag(r, 5)?,
        entry_index: unsigned(r, 6)?,
        voted_at: r.get(7)?,
    })
}

/// An agent record from a row of [`AGENT_COLUMNS`].
pub(crate) fn agent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentReputation> {
    Ok(AgentReputation {
        agent: r.get(0)?,
        reputation: r.get(1)?,
        votes: unsigned(r, 2)?,
        judged: unsigned(r, 3)?,
        agreed: unsigned(r, 4)?,
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
        .prepare_cached(&format!(
            "SELECT {VOTE_COLUMNS} FROM fact_votes WHERE fact_id = ?1 ORDER BY agent"
        ))
        .map_err(&e)?;
    let rows = stmt
        .query_map([to_i64(fact_id)], vote_from_row)
        .map_err(&e)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
}

pub(crate) fn read_agent(
    conn: &Connection,
    path: &Path,
    agent: &str,
) -> Result<Option<AgentReputation>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE agent = ?1"
    ))
    .and_then(|mut s| s.query_row([agent], agent_from_row).optional())
    .map_err(sql_err(path))
}

fn extended_code(err: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match err {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

fn is_constraint(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Inserts a fact row (every column as given).
pub(crate) fn insert_fact(tx: &Connection, f: &Fact) -> rusqlite::Result<()> {
    let tags = serde_json::to_string(&f.tags)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(&format!(
        "INSERT INTO facts ({FACT_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
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
        f.consensus,
        f.author,
        f.surface,
        f.erased_at
    ])?;
    Ok(())
}

/// Inserts an opening row. A plain one-row `INSERT`: a statement that may change several rows
/// (`OR REPLACE`) opens a statement savepoint, and FTS5 writes its pending postings to disk at
/// every savepoint, which made storing a batch of facts three times slower.
pub(crate) fn insert_opening(tx: &Connection, o: &FactOpening) -> rusqlite::Result<()> {
    let tags = serde_json::to_string(&o.fields.tags)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(&format!(
        "INSERT INTO fact_openings ({OPENING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?
    .execute(params![
        to_i64(o.fact_id),
        o.salt,
        o.fields.content,
        tags,
        o.fields.source
    ])?;
    Ok(())
}

/// Inserts, or replaces, a vote row.
pub(crate) fn put_vote(tx: &Connection, v: &Vote) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO fact_votes ({VOTE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        to_i64(v.fact_id),
        v.agent,
        v.vote,
        v.reason,
        v.weight,
        v.agreed,
        to_i64(v.entry_index),
        v.voted_at
    ])?;
    Ok(())
}

/// Inserts, or replaces, an agent row.
pub(crate) fn put_agent(tx: &Connection, a: &AgentReputation) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO agents ({AGENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?
    .execute(params![
        a.agent,
        a.reputation,
        to_i64(a.votes),
        to_i64(a.judged),
        to_i64(a.agreed)
    ])?;
    Ok(())
}

/// Adds a (fact, entry) pair to a fact's history.
pub(crate) fn add_event(tx: &Connection, fact_id: u64, entry_index: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO fact_events (fact_id, entry_index) VALUES (?1, ?2)")?
        .execute(params![to_i64(fact_id), to_i64(entry_index)])?;
    Ok(())
}

/// Puts facts' texts into the search index: their `fact_index` rows first, then their FTS5
/// postings. FTS5 writes the postings it holds to disk (a new segment, merged later) at every
/// statement savepoint, and each `fact_index` insert opens one (its triggers keep the counts);
/// interleaved per fact, a batch of 10,000 wrote 10,000 one-fact segments and spent more time
/// merging them than on everything else (profiled: store 26-35k facts/s, BENCHMARKS.md).
pub(crate) fn index_facts(tx: &Connection, texts: &[(u64, String)]) -> rusqlite::Result<()> {
    let mut rows = tx.prepare_cached("INSERT INTO fact_index (fact_id, body) VALUES (?1, ?2)")?;
    for (id, text) in texts {
        rows.execute(params![to_i64(*id), text])?;
    }
    let mut postings = tx.prepare_cached("INSERT INTO facts_fts (rowid, body) VALUES (?1, ?2)")?;
    for (id, text) in texts {
        postings.execute(params![to_i64(*id), text])?;
    }
    Ok(())
}

/// Takes a fact out of the search index (a no-op if it is not in it). An external-content
/// FTS5 table forgets a row only when told the text it indexed, so the postings go first.
pub(crate) fn unindex_fact(tx: &Connection, fact_id: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO facts_fts (facts_fts, rowid, body) \
         SELECT 'delete', fact_id, body FROM fact_index WHERE fact_id = ?1",
    )?
    .execute([to_i64(fact_id)])?;
    tx.prepare_cached("DELETE FROM fact_index WHERE fact_id = ?1")?
        .execute([to_i64(fact_id)])?;
    Ok(())
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
    // The texts of the facts inserted, indexed together (see `index_facts`): before an erasure
    // (which takes postings out) and at the end.
    let mut texts: Vec<(u64, String)> = Vec::new();
    for c in changes {
        match c {
            FactChange::Insert(f) => {
                insert_fact(tx, f).map_err(|err| {
                    if is_constraint(&err) {
                        Error::new(ErrorKind::Conflict, format!("fact {} already exists", f.id))
                    } else {
                        e(err)
                    }
                })?;
                if !f.is_erased() {
                    texts.push((f.id, index_text(&f.content, &f.tags)));
                }
            }
            FactChange::PutOpening(o) => {
                insert_opening(tx, o).map_err(|err| match extended_code(&err) {
                    Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                        Error::not_found(format!("no fact {} to open", o.fact_id))
                    }
                    Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => Error::new(
                        ErrorKind::Conflict,
                        format!("fact {} already has an opening", o.fact_id),
                    ),
                    _ => e(err),
                })?;
            }
            FactChange::PutVote(v) => {
                put_vote(tx, v).map_err(|err| {
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
            FactChange::PutAgent(a) => put_agent(tx, a).map_err(&e)?,
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
            FactChange::Erase { fact_id, at, .. } => {
                let n = tx
                    .prepare_cached(
                        "UPDATE facts SET content = '', tags = '[]', source = NULL, \
                         erased_at = ?2 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![to_i64(*fact_id), at]))
                    .map_err(&e)?;
                if n != 1 {
                    return Err(Error::not_found(format!("no fact {fact_id} to erase")));
                }
                for sql in [
                    "DELETE FROM fact_openings WHERE fact_id = ?1",
                    "DELETE FROM fact_vectors WHERE fact_id = ?1",
                ] {
                    tx.prepare_cached(sql)
                        .and_then(|mut s| s.execute([to_i64(*fact_id)]))
                        .map_err(&e)?;
                }
                index_facts(tx, &std::mem::take(&mut texts)).map_err(&e)?;
                unindex_fact(tx, *fact_id).map_err(&e)?;
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            add_event(tx, fact, entry).map_err(&e)?;
        }
    }
    index_facts(tx, &texts).map_err(&e)?;
    bump_memory_version(tx).map_err(&e)
}

pub(crate) fn bump_memory_version(tx: &Connection) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE memory_state SET version = version + 1 WHERE id = 1")?
        .execute([])?;
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

    fn facts_by_id(&self, ids: &[u64]) -> Result<Vec<Fact>> {
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        // One range read: the facts between the first and the last id (the contract allows
        // the extra ones).
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!("SELECT {FACT_COLUMNS} FROM facts WHERE id >= ?1 AND id < ?2 ORDER BY id"),
                params![to_i64(first), to_i64(last.saturating_add(1))],
            )
        })
    }

    fn opening(&self, fact_id: u64) -> Result<Option<FactOpening>> {
        self.with_reader(|c| {
            // Never the opening of an erased fact, even one written back behind the store.
            c.prepare_cached(&format!(
                "SELECT {OPENING_COLUMNS} FROM fact_openings WHERE fact_id = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM facts WHERE id = ?1 AND erased_at IS NOT NULL)"
            ))
            .and_then(|mut s| s.query_row([to_i64(fact_id)], opening_from_row).optional())
            .map_err(self.err())
        })
    }

    fn recall(&self, q: &FactRecall) -> Result<Vec<Fact>> {
        self.with_reader(|c| {
            read_facts(
                c,
                &self.path,
                &format!(
                    "SELECT {FACT_COLUMNS} FROM facts INDEXED BY facts_recall \
                     WHERE project = ?1 AND deprecated_at IS NULL AND erased_at IS NULL \
                     AND valid_from <= ?2 AND (valid_until IS NULL OR ?2 < valid_until) \
                     AND (?4 IS NULL OR author = ?4) AND (?5 IS NULL OR consensus >= ?5) \
                     ORDER BY consensus DESC, id DESC LIMIT ?3"
                ),
                params![
                    q.project,
                    q.as_of,
                    to_i64(q.limit as u64),
                    q.author,
                    q.min_consensus
                ],
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

    fn project_sizes(&self) -> Result<Vec<ProjectSize>> {
        // The project index (facts_project) covers it; BINARY collation is byte order.
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached(
                    "SELECT project, COUNT(*) FROM facts GROUP BY project ORDER BY project",
                )
                .map_err(&e)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ProjectSize {
                        project: r.get(0)?,
                        facts: r.get::<_, i64>(1)?.max(0) as u64,
                    })
                })
                .map_err(&e)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
        })
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        self.with_reader(|c| {
            let e = self.err();
            // One read transaction: the statistics, the candidates and the facts agree.
            let tx = c.unchecked_transaction().map_err(&e)?;
            let (docs, tokens): (i64, i64) = tx
                .prepare_cached("SELECT docs, tokens FROM memory_state WHERE id = 1")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(&e)?;
            // FTS5 finds every indexed fact holding a term (all of them count in the document
            // frequencies); core scores them from their indexed text.
            let mut candidates = Candidates::new(&q.terms);
            {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT fi.fact_id, fi.body, \
                         (?2 IS NULL OR f.project = ?2) \
                         AND f.valid_from <= ?3 AND (f.valid_until IS NULL OR ?3 < f.valid_until) \
                         AND (?4 OR f.deprecated_at IS NULL) AND f.erased_at IS NULL \
                         AND (?5 IS NULL OR f.author = ?5) AND (?6 IS NULL OR f.consensus >= ?6) \
                         FROM facts_fts CROSS JOIN fact_index fi ON fi.fact_id = facts_fts.rowid \
                         LEFT JOIN facts f ON f.id = fi.fact_id \
                         WHERE facts_fts MATCH ?1",
                    )
                    .map_err(&e)?;
                let mut rows = stmt
                    .query(params![
                        fts_query(&q.terms),
                        q.project,
                        q.as_of,
                        q.include_deprecated,
                        q.author,
                        q.min_consensus
                    ])
                    .map_err(&e)?;
                while let Some(r) = rows.next().map_err(&e)? {
                    let id = r.get::<_, i64>(0).map_err(&e)?.max(0) as u64;
                    let body = r.get_ref(1).map_err(&e)?.as_str().unwrap_or("");
                    let passes = r.get::<_, Option<bool>>(2).map_err(&e)? == Some(true);
                    candidates.add(id, body, None, passes);
                }
            }
            let hits = candidates.top_k(docs.max(0) as u64, tokens.max(0) as u64, q.top_k);
            hits.into_iter()
                .map(|(id, score)| {
                    let fact = read_fact(&tx, &self.path, id)?.ok_or_else(|| {
                        Error::integrity(format!("fact {id} is indexed but has no facts row"))
                    })?;
                    Ok(SearchHit { fact, score })
                })
                .collect()
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

    fn scan_memory(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()> {
        self.scan_memory_rows(visit)
    }

    fn replace_memory(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        self.replace_memory_rows(ledger_size, state)
    }

    fn keeps_index_text(&self) -> bool {
        true
    }

    fn vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>> {
        self.with_reader(|c| {
            let e = self.err();
            let mut stmt = c
                .prepare_cached("SELECT vector FROM fact_vectors WHERE fact_id = ?1 AND model = ?2")
                .map_err(&e)?;
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                let v: Option<Vec<u8>> = stmt
                    .query_row(params![to_i64(id), model], |r| r.get(0))
                    .optional()
                    .map_err(&e)?;
                if let Some(v) = v.as_deref().and_then(vector_from_bytes) {
                    out.push((id, v));
                }
            }
            Ok(out)
        })
    }

    fn put_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer()?;
        let e = self.err();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&e)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO fact_vectors (fact_id, model, vector) \
                     SELECT id, ?2, ?3 FROM facts WHERE id = ?1 AND erased_at IS NULL",
                )
                .map_err(&e)?;
            for (id, v) in vectors {
                stmt.execute(params![to_i64(*id), model, vector_bytes(v)])
                    .map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
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

#[cfg(test)]
mod index_tests {
    use crate::{SqliteOptions, SqliteStore};
    use cortex_core::{AgentMemory, DynStore, NewFact, SearchQuery};
    use std::sync::Arc;

    /// A batch's postings go to FTS5 together: a few new segments a batch, not one a fact (FTS5
    /// writes what it holds at every statement savepoint, and each `fact_index` insert opens one).
    /// The index stays whole through erasures in between, and search finds what it should.
    #[test]
    fn a_batch_of_facts_is_indexed_in_one_segment_and_the_index_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let store: DynStore = Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        let m = AgentMemory::open(store, Default::default()).unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        // FTS5's structure record (id 10 of facts_fts_data): a 4-byte cookie, an optional
        // 4-byte version marker, then varints: levels, segments, and the count of segments ever
        // written (one per flush of its pending postings).
        let segments_written = || -> u64 {
            let b: Vec<u8> = raw
                .query_row("SELECT block FROM facts_fts_data WHERE id = 10", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let mut p = &b[4..];
            if p.starts_with(&[0xff, 0, 0, 1]) {
                p = &p[4..];
            }
            let mut varint = || {
                let mut v = 0u64;
                for (i, &byte) in p.iter().enumerate() {
                    v = (v << 7) | u64::from(byte & 0x7f);
                    if byte & 0x80 == 0 {
                        p = &p[i + 1..];
                        return v;
                    }
                }
                panic!("truncated structure record")
            };
            let _levels = varint();
            let _segments = varint();
            varint()
        };
        let before = segments_written();
        let batch: Vec<NewFact> = (0..2000)
            .map(|i| NewFact::new("p", format!("note {i} about word{}", i % 7)))
            .collect();
        let ids: Vec<u64> = m
            .store_facts(&batch)
            .unwrap()
            .facts
            .iter()
            .map(|f| f.id)
            .collect();
        let written = segments_written() - before;
        // A handful (merges write segments too); one a fact was 2,000.
        assert!(
            written < 50,
            "storing one batch of 2,000 facts wrote {written} FTS5 segments"
        );
        m.forget(ids[3], "test").unwrap();
        m.store_facts(&[NewFact::new("p", "note after about word3")])
            .unwrap();
        raw.execute_batch("INSERT INTO facts_fts (facts_fts, rank) VALUES ('integrity-check', 1)")
            .unwrap();
        let query = SearchQuery {
            top_k: Some(1000),
            ..SearchQuery::new("word3")
        };
        let hits = m.search(&query).unwrap();
        // 2000 / 7 facts mention word3 (ids 3, 10, ...), one of them forgotten, one added.
        assert_eq!(hits.len(), (0..2000).filter(|i| i % 7 == 3).count());
        assert!(hits.iter().all(|h| h.fact.id != ids[3]));
    }
}
