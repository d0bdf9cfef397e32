//! Replacing the whole memory with a replay of the ledger
//! ([`FactStore::replace_memory`](cortex_core::FactStore::replace_memory), `cortex memory
//! rebuild`).
//!
//! One write transaction holding the head row's lock, as an append does, so no append runs
//! meanwhile and the state cannot be overtaken between the head check and the commit. The old
//! rows are removed with `DELETE`, not `TRUNCATE`: `TRUNCATE` is not MVCC-safe, and a `verify`
//! whose snapshot began before the commit would see the tables empty. The new rows go in with
//! one `COPY` per table (per 8 MiB), the search columns computed as an append computes them
//! (none for an erased fact), and the collection statistics are set to what was written.

use crate::PostgresStore;
use crate::append::lock_head;
use crate::copy::{
    COPY_AGENTS_SQL, COPY_EVENTS_SQL, COPY_FACTS_SQL, COPY_OPENINGS_SQL, COPY_VOTES_SQL, CopyRows,
};
use crate::pool::{PgConn, cached, pg_err};
use cortex_core::memory::store::MemoryState;
use cortex_core::{Error, ErrorKind, Result};

/// Every memory row but the version, children first (votes refer to facts).
const CLEAR_MEMORY_SQL: &str = "DELETE FROM fact_votes; DELETE FROM fact_events; \
     DELETE FROM fact_openings; DELETE FROM agents; DELETE FROM facts";
const SET_MEMORY_SQL: &str =
    "UPDATE memory_state SET version = version + 1, docs = $1, tokens = $2 WHERE id = 1";

impl PostgresStore {
    /// See the module docs.
    pub(crate) fn replace(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        let mut tx = client.transaction().map_err(pg_err)?;
        let head = lock_head(&mut tx, stmts)?;
        if head.size != ledger_size {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the ledger has {} entries, not the {ledger_size} the memory was replayed from",
                    head.size
                ),
            ));
        }
        tx.batch_execute(CLEAR_MEMORY_SQL).map_err(pg_err)?;
        let (mut docs, mut tokens) = (0i64, 0i64);
        let mut rows = CopyRows::new(COPY_FACTS_SQL, "fact");
        for f in &state.facts {
            if let Some(doc_len) = rows.push_fact(f)? {
                docs += 1;
                tokens += i64::from(doc_len);
            }
            if rows.full() {
                rows.flush(&mut tx, stmts)?;
            }
        }
        rows.flush(&mut tx, stmts)?;
        let mut rows = CopyRows::new(COPY_OPENINGS_SQL, "the opening of fact");
        for o in &state.openings {
            rows.push_opening(o)?;
            if rows.full() {
                rows.flush(&mut tx, stmts)?;
            }
        }
        rows.flush(&mut tx, stmts)?;
        let mut rows = CopyRows::new(COPY_VOTES_SQL, "the vote (fact, agent)");
        for v in &state.votes {
            rows.push_vote(v);
            if rows.full() {
                rows.flush(&mut tx, stmts)?;
            }
        }
        rows.flush(&mut tx, stmts)?;
        let mut rows = CopyRows::new(COPY_AGENTS_SQL, "agent");
        for a in &state.agents {
            rows.push_agent(a);
            if rows.full() {
                rows.flush(&mut tx, stmts)?;
            }
        }
        rows.flush(&mut tx, stmts)?;
        let mut rows = CopyRows::new(COPY_EVENTS_SQL, "the history pair (fact, entry)");
        for &(f, e) in &state.events {
            rows.push_event(f, e);
            if rows.full() {
                rows.flush(&mut tx, stmts)?;
            }
        }
        rows.flush(&mut tx, stmts)?;
        // Vectors only for facts that are present and not erased.
        tx.batch_execute(
            "DELETE FROM fact_vectors WHERE fact_id NOT IN \
             (SELECT id FROM facts WHERE erased_at IS NULL)",
        )
        .map_err(pg_err)?;
        let s = cached(&mut tx, stmts, SET_MEMORY_SQL)?;
        let n = tx.execute(&s, &[&docs, &tokens]).map_err(pg_err)?;
        if n != 1 {
            return Err(Error::integrity("the memory_state row is missing"));
        }
        tx.commit().map_err(pg_err)
    }
}
