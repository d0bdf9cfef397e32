//! The agent memory's rows: facts, votes, agent reputations, each fact's history, the memory
//! version; writing an append's [`FactChange`]s (new facts in bulk through `copy`); the
//! [`FactStore`] impl (search is in `search`).

use crate::copy::FactRows;
use crate::pool::{cached, has_code, pg_err};
use crate::{PostgresStore, to_i64};
use cortex_core::ledger::entry::Entry;
use cortex_core::ledger::store::Head;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactBatch, FactChange, FactSearch, FactStore, FactTx, SearchHit};
use cortex_core::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement, Transaction};
use std::collections::HashMap;

pub(crate) const FACT_COLUMNS: &str = "id, project, content, fact_type, tags, confidence, source, valid_from, \
                            valid_until, created_at, deprecated_at, deprecation_reason, consensus";

pub(crate) fn fact_from_row(r: &Row) -> Result<Fact> {
    let tags: String = r.get(4);
    Ok(Fact {
        id: r.get::<_, i64>(0) as u64,
        project: r.get(1),
        content: r.get(2),
        fact_type: r.get(3),
        tags: serde_json::from_str(&tags)
            .map_err(|e| Error::integrity(format!("fact tags are not JSON: {e}")))?,
        confidence: r.get(5),
        source: r.get(6),
        valid_from: r.get(7),
        valid_until: r.get(8),
        created_at: r.get(9),
        deprecated_at: r.get(10),
        deprecation_reason: r.get(11),
        consensus: r.get(12),
    })
}

pub(crate) fn read_fact(c: &mut impl GenericClient, id: u64) -> Result<Option<Fact>> {
    c.query_opt(
        &format!("SELECT {FACT_COLUMNS} FROM facts WHERE id = $1"),
        &[&to_i64(id)],
    )
    .map_err(pg_err)?
    .map(|r| fact_from_row(&r))
    .transpose()
}

fn read_facts(
    c: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Fact>> {
    c.query(sql, params)
        .map_err(pg_err)?
        .iter()
        .map(fact_from_row)
        .collect()
}

pub(crate) fn read_votes(c: &mut impl GenericClient, fact_id: u64) -> Result<Vec<Vote>> {
    Ok(c.query(
        "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, voted_at \
             FROM fact_votes WHERE fact_id = $1 ORDER BY agent",
        &[&to_i64(fact_id)],
    )
    .map_err(pg_err)?
    .into_iter()
    .map(|r| Vote {
        fact_id: r.get::<_, i64>(0) as u64,
        agent: r.get(1),
        vote: r.get::<_, i16>(2) as i8,
        reason: r.get(3),
        weight: r.get(4),
        agreed: r.get(5),
        entry_index: r.get::<_, i64>(6) as u64,
        voted_at: r.get(7),
    })
    .collect())
}

pub(crate) fn read_agent(
    c: &mut impl GenericClient,
    agent: &str,
) -> Result<Option<AgentReputation>> {
    Ok(c.query_opt(
        "SELECT agent, reputation, votes, judged, agreed FROM agents WHERE agent = $1",
        &[&agent],
    )
    .map_err(pg_err)?
    .map(|r| AgentReputation {
        agent: r.get(0),
        reputation: r.get(1),
        votes: r.get::<_, i64>(2) as u64,
        judged: r.get::<_, i64>(3) as u64,
        agreed: r.get::<_, i64>(4) as u64,
    }))
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
const BUMP_MEMORY_SQL: &str = "UPDATE memory_state \
     SET version = version + 1, docs = docs + $1, tokens = tokens + $2 WHERE id = 1";

/// Writes the memory changes of an append, in order, and bumps the memory version.
///
/// New facts go in bulk: consecutive `Insert`s become one `COPY` per [`FACT_COPY_BYTES`] of
/// text (10,000 ordinary facts are about 3 MB: one), the history events of the whole append
/// one `INSERT … UNNEST` per [`EVENT_ROWS_PER_STATEMENT`], and the collection statistics and
/// version one `UPDATE` with the summed deltas; all prepared once per connection. So a batch
/// of N new facts takes a fixed number of round trips (about 5, plus one `COPY` per 8 MiB).
/// Votes, agents, consensus updates and deprecations (a few per `vote`/`deprecate` append,
/// never in bulk) stay one prepared statement each, written after the facts before them, so
/// the changes apply in their order.
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
    let (mut docs, mut tokens) = (0i64, 0i64);
    let mut facts = FactRows::default();
    let (mut ev_fact, mut ev_entry) = (Vec::new(), Vec::new());
    for c in changes {
        if let FactChange::Insert(f) = c {
            tokens += i64::from(facts.push(f)?);
            docs += 1;
            if facts.full() {
                facts.flush(tx, stmts)?;
            }
        } else {
            // Whatever comes after a fact may refer to it.
            facts.flush(tx, stmts)?;
            write_one_change(tx, stmts, c)?;
        }
        if let Some((fact, entry)) = c.history_event() {
            ev_fact.push(to_i64(fact));
            ev_entry.push(to_i64(entry));
        }
    }
    facts.flush(tx, stmts)?;
    for (f, e) in ev_fact
        .chunks(EVENT_ROWS_PER_STATEMENT)
        .zip(ev_entry.chunks(EVENT_ROWS_PER_STATEMENT))
    {
        let s = cached(tx, stmts, INSERT_EVENTS_SQL)?;
        tx.execute(&s, &[&f, &e]).map_err(pg_err)?;
    }
    let s = cached(tx, stmts, BUMP_MEMORY_SQL)?;
    tx.execute(&s, &[&docs, &tokens]).map_err(pg_err)?;
    Ok(())
}

/// Writes one change other than a new fact (a prepared statement).
fn write_one_change(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    c: &FactChange,
) -> Result<()> {
    match c {
        FactChange::Insert(_) => unreachable!("new facts are written in bulk"),
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
        read_fact(&mut **self.conn()?, id)
    }

    fn recall(&self, project: &str, as_of: &str, limit: usize) -> Result<Vec<Fact>> {
        read_facts(
            &mut **self.conn()?,
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts \
                 WHERE project = $1 AND deprecated_at IS NULL \
                 AND valid_from <= $2 AND (valid_until IS NULL OR $2 < valid_until) \
                 ORDER BY consensus DESC, id DESC LIMIT $3"
            ),
            &[&project, &as_of, &to_i64(limit as u64)],
        )
    }

    fn project_facts(&self, project: &str, limit: usize) -> Result<Vec<Fact>> {
        read_facts(
            &mut **self.conn()?,
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts WHERE project = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&project, &to_i64(limit as u64)],
        )
    }

    fn search_facts(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        self.ranked_search(q)
    }

    fn votes(&self, fact_id: u64) -> Result<Vec<Vote>> {
        read_votes(&mut **self.conn()?, fact_id)
    }

    fn agent_reputation(&self, agent: &str) -> Result<Option<AgentReputation>> {
        read_agent(&mut **self.conn()?, agent)
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
}
