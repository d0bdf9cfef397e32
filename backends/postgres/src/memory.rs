//! The agent memory's rows: facts, openings, votes, agent reputations, each fact's history,
//! the memory version; decoding them; writing an append's [`FactChange`]s (new facts and
//! openings in bulk through `copy`); the [`FactStore`] impl (search is in `search`, the memory
//! scan in `scan`, the rebuild's replacement in `rebuild`).

use crate::copy::{COPY_FACTS_SQL, COPY_OPENINGS_SQL, CopyRows};
use crate::pool::{cached, has_code, pg_err};
use crate::{PostgresStore, to_i64};
use cortex_core::embed::{vector_bytes, vector_from_bytes};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::commitment::{FactContent, FactOpening};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{
    FactBatch, FactChange, FactRecall, FactSearch, FactStore, FactTx, MemoryRow, MemoryState,
    ProjectSize, SearchHit,
};
use cortex_core::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement, ToStatement, Transaction};
use std::collections::HashMap;

/// The facts table's columns as [`decode_fact`] reads them (a macro, so statements built from it
/// are `&'static str` and can be prepared once per connection).
macro_rules! fact_columns {
    () => {
        "id, project, content, fact_type, tags, confidence, source, valid_from, valid_until, \
         created_at, deprecated_at, deprecation_reason, consensus, author, surface, erased_at"
    };
}
pub(crate) use fact_columns;

#[cfg(test)]
pub(crate) const FACT_COLUMNS: &str = fact_columns!();

pub(crate) const FACT_SQL: &str = concat!("SELECT ", fact_columns!(), " FROM facts WHERE id = $1");
/// A project's current facts passing the filters, best first (`Fact::passes` in SQL, before
/// the limit).
const RECALL_SQL: &str = concat!(
    "SELECT ",
    fact_columns!(),
    " FROM facts WHERE project = $1 AND deprecated_at IS NULL AND erased_at IS NULL \
     AND valid_from <= $2 AND (valid_until IS NULL OR $2 < valid_until) \
     AND ($4::TEXT IS NULL OR author = $4) AND ($5::FLOAT8 IS NULL OR consensus >= $5) \
     ORDER BY consensus DESC, id DESC LIMIT $3"
);
const PROJECT_FACTS_SQL: &str = concat!(
    "SELECT ",
    fact_columns!(),
    " FROM facts WHERE project = $1 ORDER BY id DESC LIMIT $2"
);
const OPENING_SQL: &str =
    "SELECT fact_id, salt, content, tags, source FROM fact_openings WHERE fact_id = $1";
pub(crate) const VOTES_SQL: &str = "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, \
     voted_at FROM fact_votes WHERE fact_id = $1 ORDER BY agent";
pub(crate) const AGENT_SQL: &str =
    "SELECT agent, reputation, votes, judged, agreed FROM agents WHERE agent = $1";

/// Column `i` of `r`, or what is wrong with it.
fn col<'a, T: postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, String> {
    r.try_get(i)
        .map_err(|e| format!("column {}: {e}", r.columns()[i].name()))
}

/// A count or index column (`BIGINT`) as the `u64` it stands for.
fn unsigned(r: &Row, i: usize) -> Result<u64, String> {
    let v: i64 = col(r, i)?;
    u64::try_from(v).map_err(|_| format!("column {} is negative ({v})", r.columns()[i].name()))
}

/// A JSON array of strings (a fact's or an opening's tags).
fn tags(r: &Row, i: usize) -> Result<Vec<String>, String> {
    serde_json::from_str(col::<&str>(r, i)?).map_err(|e| {
        format!(
            "column {} is not a JSON array of strings: {e}",
            r.columns()[i].name()
        )
    })
}

/// A fact from a row of [`fact_columns!`]; what is wrong if it does not decode.
pub(crate) fn decode_fact(r: &Row) -> Result<Fact, String> {
    Ok(Fact {
        id: unsigned(r, 0)?,
        project: col(r, 1)?,
        content: col(r, 2)?,
        fact_type: col(r, 3)?,
        tags: tags(r, 4)?,
        confidence: col(r, 5)?,
        source: col(r, 6)?,
        valid_from: col(r, 7)?,
        valid_until: col(r, 8)?,
        created_at: col(r, 9)?,
        deprecated_at: col(r, 10)?,
        deprecation_reason: col(r, 11)?,
        consensus: col(r, 12)?,
        author: col(r, 13)?,
        surface: col(r, 14)?,
        erased_at: col(r, 15)?,
    })
}

/// An opening from a row of `fact_id, salt, content, tags, source`.
pub(crate) fn decode_opening(r: &Row) -> Result<FactOpening, String> {
    Ok(FactOpening {
        fact_id: unsigned(r, 0)?,
        salt: col(r, 1)?,
        fields: FactContent {
            content: col(r, 2)?,
            tags: tags(r, 3)?,
            source: col(r, 4)?,
        },
    })
}

/// A vote from a row of `fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at`.
pub(crate) fn decode_vote(r: &Row) -> Result<Vote, String> {
    let vote: i16 = col(r, 2)?;
    Ok(Vote {
        fact_id: unsigned(r, 0)?,
        agent: col(r, 1)?,
        vote: i8::try_from(vote).map_err(|_| format!("vote {vote} is out of range"))?,
        reason: col(r, 3)?,
        weight: col(r, 4)?,
        agreed: col(r, 5)?,
        entry_index: unsigned(r, 6)?,
        voted_at: col(r, 7)?,
    })
}

/// An agent's record from a row of `agent, reputation, votes, judged, agreed`.
pub(crate) fn decode_agent(r: &Row) -> Result<AgentReputation, String> {
    Ok(AgentReputation {
        agent: col(r, 0)?,
        reputation: col(r, 1)?,
        votes: unsigned(r, 2)?,
        judged: unsigned(r, 3)?,
        agreed: unsigned(r, 4)?,
    })
}

/// A row that does not decode, outside a scan: an integrity error naming the table.
fn undecodable(table: &str) -> impl Fn(String) -> Error + '_ {
    move |problem| Error::integrity(format!("a {table} row cannot be read: {problem}"))
}

fn read_facts(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Fact>> {
    c.query(sql, params)
        .map_err(pg_err)?
        .iter()
        .map(|r| decode_fact(r).map_err(undecodable("facts")))
        .collect()
}

/// A fact by id (`sql` is [`FACT_SQL`], or its prepared statement).
pub(crate) fn read_fact(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
    id: u64,
) -> Result<Option<Fact>> {
    Ok(read_facts(c, sql, &[&to_i64(id)])?.pop())
}

pub(crate) fn read_votes(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
    fact_id: u64,
) -> Result<Vec<Vote>> {
    c.query(sql, &[&to_i64(fact_id)])
        .map_err(pg_err)?
        .iter()
        .map(|r| decode_vote(r).map_err(undecodable("fact_votes")))
        .collect()
}

pub(crate) fn read_agent(
    c: &mut impl GenericClient,
    sql: &(impl ToStatement + ?Sized),
    agent: &str,
) -> Result<Option<AgentReputation>> {
    c.query_opt(sql, &[&agent])
        .map_err(pg_err)?
        .map(|r| decode_agent(&r).map_err(undecodable("agents")))
        .transpose()
}

/// Most rows one `INSERT INTO fact_events` carries.
const EVENT_ROWS_PER_STATEMENT: usize = 65_536;

const INSERT_EVENTS_SQL: &str = "INSERT INTO fact_events (fact_id, entry_index) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])";
const PUT_VOTE_SQL: &str = "INSERT INTO fact_votes \
     (fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (fact_id, agent) DO UPDATE SET vote = EXCLUDED.vote, \
     reason = EXCLUDED.reason, weight = EXCLUDED.weight, agreed = EXCLUDED.agreed, \
     entry_index = EXCLUDED.entry_index, voted_at = EXCLUDED.voted_at";
const SET_CONSENSUS_SQL: &str = "UPDATE facts SET consensus = $2 WHERE id = $1";
const PUT_AGENT_SQL: &str = "INSERT INTO agents (agent, reputation, votes, judged, agreed) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (agent) DO UPDATE SET reputation = EXCLUDED.reputation, \
     votes = EXCLUDED.votes, judged = EXCLUDED.judged, agreed = EXCLUDED.agreed";
const DEPRECATE_SQL: &str = "UPDATE facts SET deprecated_at = $2, deprecation_reason = $3 \
     WHERE id = $1 AND deprecated_at IS NULL";
/// Erases fact `$1` at `$2`: deletes its opening and vector, empties content, tags and source, and takes
/// it out of the search index; returns whether it was indexed and its token count (the old
/// row's, read by the subquery), so the collection statistics can drop it.
const ERASE_SQL: &str = "WITH gone AS (DELETE FROM fact_openings WHERE fact_id = $1), \
     unvectored AS (DELETE FROM fact_vectors WHERE fact_id = $1) \
     UPDATE facts f SET content = '', tags = '[]', source = NULL, erased_at = $2, \
     body = NULL, doc_len = NULL, tsv = NULL \
     FROM (SELECT id, body IS NOT NULL AS indexed, doc_len FROM facts WHERE id = $1) old \
     WHERE f.id = old.id RETURNING old.indexed, old.doc_len";
const BUMP_MEMORY_SQL: &str = "UPDATE memory_state \
     SET version = version + 1, docs = docs + $1, tokens = tokens + $2 WHERE id = 1";

/// Changes to the BM25 collection statistics (facts indexed, their tokens) of an append.
#[derive(Default)]
struct IndexDelta {
    docs: i64,
    tokens: i64,
}

/// Writes the memory changes of an append, in order, and bumps the memory version.
///
/// New facts and their openings go in bulk: consecutive `Insert`s and `PutOpening`s become one
/// `COPY` per table per [`FACT_COPY_BYTES`] of text (10,000 ordinary facts are about 3 MB:
/// one each), the history events of the whole append one `INSERT … UNNEST` per
/// [`EVENT_ROWS_PER_STATEMENT`], and the collection statistics and version one `UPDATE` with
/// the summed deltas; all prepared once per connection. So a batch of N new facts takes a fixed
/// number of round trips (about 6, plus one `COPY` per 8 MiB). Votes, agents, consensus
/// updates, deprecations and erasures (a few per `vote`/`deprecate`/`forget` append, never in
/// bulk) stay one prepared statement each, written after the rows before them are sent, so the
/// changes apply in their order.
///
/// [`FACT_COPY_BYTES`]: crate::copy::FACT_COPY_BYTES
pub(crate) fn write_fact_changes(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    changes: &[FactChange],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut delta = IndexDelta::default();
    let mut facts = CopyRows::new(COPY_FACTS_SQL, "fact");
    let mut openings = CopyRows::new(COPY_OPENINGS_SQL, "the opening of fact");
    let (mut ev_fact, mut ev_entry) = (Vec::new(), Vec::new());
    for c in changes {
        match c {
            FactChange::Insert(f) => {
                if let Some(doc_len) = facts.push_fact(f)? {
                    delta.docs += 1;
                    delta.tokens += i64::from(doc_len);
                }
                if facts.full() {
                    facts.flush(tx, stmts)?;
                }
            }
            FactChange::PutOpening(o) => {
                openings.push_opening(o)?;
                if openings.full() {
                    openings.flush(tx, stmts)?;
                }
            }
            _ => {
                // Whatever comes after a fact or an opening may refer to it.
                facts.flush(tx, stmts)?;
                openings.flush(tx, stmts)?;
                write_one_change(tx, stmts, c, &mut delta)?;
            }
        }
        if let Some((fact, entry)) = c.history_event() {
            ev_fact.push(to_i64(fact));
            ev_entry.push(to_i64(entry));
        }
    }
    facts.flush(tx, stmts)?;
    openings.flush(tx, stmts)?;
    for (f, e) in ev_fact
        .chunks(EVENT_ROWS_PER_STATEMENT)
        .zip(ev_entry.chunks(EVENT_ROWS_PER_STATEMENT))
    {
        let s = cached(tx, stmts, INSERT_EVENTS_SQL)?;
        tx.execute(&s, &[&f, &e]).map_err(pg_err)?;
    }
    let s = cached(tx, stmts, BUMP_MEMORY_SQL)?;
    tx.execute(&s, &[&delta.docs, &delta.tokens])
        .map_err(pg_err)?;
    Ok(())
}

/// Writes one change other than a new fact or opening (a prepared statement).
fn write_one_change(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    c: &FactChange,
    delta: &mut IndexDelta,
) -> Result<()> {
    match c {
        FactChange::Insert(_) | FactChange::PutOpening(_) => {
            unreachable!("new facts and openings are written in bulk")
        }
        FactChange::PutVote(v) => {
            let s = cached(tx, stmts, PUT_VOTE_SQL)?;
            tx.execute(
                &s,
                &[
                    &to_i64(v.fact_id),
                    &v.agent,
                    &i16::from(v.vote),
                    &v.reason,
                    &v.weight,
                    &v.agreed,
                    &to_i64(v.entry_index),
                    &v.voted_at,
                ],
            )
            .map_err(|err| {
                if has_code(&err, &SqlState::FOREIGN_KEY_VIOLATION)
                    || has_code(&err, &SqlState::CHECK_VIOLATION)
                {
                    Error::not_found(format!("no fact {} to vote on", v.fact_id))
                } else {
                    pg_err(err)
                }
            })?;
        }
        FactChange::SetConsensus { fact_id, consensus } => {
            let s = cached(tx, stmts, SET_CONSENSUS_SQL)?;
            let n = tx
                .execute(&s, &[&to_i64(*fact_id), consensus])
                .map_err(pg_err)?;
            if n != 1 {
                return Err(Error::not_found(format!("no fact {fact_id}")));
            }
        }
        FactChange::PutAgent(a) => {
            let s = cached(tx, stmts, PUT_AGENT_SQL)?;
            tx.execute(
                &s,
                &[
                    &a.agent,
                    &a.reputation,
                    &to_i64(a.votes),
                    &to_i64(a.judged),
                    &to_i64(a.agreed),
                ],
            )
            .map_err(pg_err)?;
        }
        FactChange::Deprecate {
            fact_id,
            at,
            reason,
            ..
        } => {
            let s = cached(tx, stmts, DEPRECATE_SQL)?;
            let n = tx
                .execute(&s, &[&to_i64(*fact_id), at, reason])
                .map_err(pg_err)?;
            if n != 1 {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("fact {fact_id} is missing or already deprecated"),
                ));
            }
        }
        FactChange::Erase { fact_id, at, .. } => {
            let s = cached(tx, stmts, ERASE_SQL)?;
            let row = tx
                .query_opt(&s, &[&to_i64(*fact_id), at])
                .map_err(pg_err)?
                .ok_or_else(|| Error::not_found(format!("no fact {fact_id} to erase")))?;
            if row.get::<_, bool>(0) {
                delta.docs -= 1;
                delta.tokens -= i64::from(row.get::<_, Option<i32>>(1).unwrap_or(0));
            }
        }
    }
    Ok(())
}

impl FactStore for PostgresStore {
    fn append_facts<'a>(
        &self,
        build: &mut dyn FnMut(&mut dyn FactTx) -> Result<FactBatch<'a>>,
    ) -> Result<Head> {
        self.commit_append(&mut |tx| build(tx))
    }

    fn fact(&self, id: u64) -> Result<Option<Fact>> {
        let mut c = self.conn()?;
        let s = c.prepared(FACT_SQL)?;
        read_fact(&mut c.client, &s, id)
    }

    fn opening(&self, fact_id: u64) -> Result<Option<FactOpening>> {
        let mut c = self.conn()?;
        let s = c.prepared(OPENING_SQL)?;
        c.client
            .query_opt(&s, &[&to_i64(fact_id)])
            .map_err(pg_err)?
            .map(|r| decode_opening(&r).map_err(undecodable("fact_openings")))
            .transpose()
    }

    fn recall(&self, q: &FactRecall) -> Result<Vec<Fact>> {
        let mut c = self.conn()?;
        let s = c.prepared(RECALL_SQL)?;
        read_facts(
            &mut c.client,
            &s,
            &[
                &q.project,
                &q.as_of,
                &to_i64(q.limit as u64),
                &q.author,
                &q.min_consensus,
            ],
        )
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        let mut c = self.conn()?;
        let s = c.prepared(PROJECT_FACTS_SQL)?;
        read_facts(&mut c.client, &s, &[&project, &to_i64(limit as u64)])
    }

    fn project_sizes(&self) -> Result<Vec<ProjectSize>> {
        // COLLATE "C": byte order, whatever the database's collation.
        Ok(self
            .conn()?
            .query(
                "SELECT project, COUNT(*) FROM facts GROUP BY project ORDER BY project COLLATE \"C\"",
                &[],
            )
            .map_err(pg_err)?
            .into_iter()
            .map(|r| ProjectSize {
                project: r.get(0),
                facts: r.get::<_, i64>(1).max(0) as u64,
            })
            .collect())
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        self.ranked_search(q)
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        let mut c = self.conn()?;
        let s = c.prepared(VOTES_SQL)?;
        read_votes(&mut c.client, &s, fact_id)
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        let mut c = self.conn()?;
        let s = c.prepared(AGENT_SQL)?;
        read_agent(&mut c.client, &s, agent)
    }

    fn fact_history(&self, fact_id: u64) -> Result<Vec<Entry>> {
        Ok(self
            .conn()?
            .query(
                "SELECT e.idx, e.timestamp, e.project, e.action, e.detail \
                 FROM fact_events fe JOIN entries e ON e.idx = fe.entry_index \
                 WHERE fe.fact_id = $1 ORDER BY fe.entry_index",
                &[&to_i64(fact_id)],
            )
            .map_err(pg_err)?
            .into_iter()
            .map(|r| Entry {
                index: r.get::<_, i64>(0) as u64,
                timestamp: r.get(1),
                project: r.get(2),
                action: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }

    fn memory_version(&self) -> Result<u64> {
        Ok(self
            .conn()?
            .query_one("SELECT version FROM memory_state WHERE id = 1", &[])
            .map_err(pg_err)?
            .get::<_, i64>(0) as u64)
    }

    fn scan_memory(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()> {
        self.scan(visit)
    }

    fn replace_memory(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        self.replace(ledger_size, state)
    }

    /// True: each fact row keeps its indexed text (`body`), which the scan streams and checks
    /// its `tsv` and `doc_len` against.
    fn keeps_index_text(&self) -> bool {
        true
    }

    fn vectors(&self, model: &str, ids: &[u64]) -> Result<Vec<(u64, Vec<f32>)>> {
        let ids: Vec<i64> = ids.iter().map(|&i| to_i64(i)).collect();
        let mut c = self.conn()?;
        let s = c.prepared(VECTORS_SQL)?;
        let rows = c.client.query(&s, &[&ids, &model]).map_err(pg_err)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let v = vector_from_bytes(r.get::<_, &[u8]>(1))?;
                Some((r.get::<_, i64>(0).max(0) as u64, v))
            })
            .collect())
    }

    fn put_vectors(&self, model: &str, vectors: &[(u64, Vec<f32>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = vectors.iter().map(|(i, _)| to_i64(*i)).collect();
        let bytes: Vec<Vec<u8>> = vectors.iter().map(|(_, v)| vector_bytes(v)).collect();
        let mut c = self.conn()?;
        let s = c.prepared(PUT_VECTORS_SQL)?;
        c.client
            .execute(&s, &[&ids, &model, &bytes])
            .map_err(pg_err)?;
        Ok(())
    }
}

/// The vectors of model `$2` of the facts `$1` (an array).
const VECTORS_SQL: &str =
    "SELECT fact_id, vector FROM fact_vectors WHERE fact_id = ANY($1) AND model = $2";
/// Stores vectors (`$1` fact ids, `$3` their bytes) of model `$2`, for facts present and not
/// erased, replacing what they had.
const PUT_VECTORS_SQL: &str = "INSERT INTO fact_vectors (fact_id, model, vector) \
     SELECT u.id, $2, u.v FROM unnest($1::BIGINT[], $3::BYTEA[]) AS u(id, v) \
     JOIN facts f ON f.id = u.id AND f.erased_at IS NULL \
     ON CONFLICT (fact_id) DO UPDATE SET model = EXCLUDED.model, vector = EXCLUDED.vector";
