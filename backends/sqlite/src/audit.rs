//! What core's `memory::audit` needs from the store: every memory row in one read snapshot
//! (`verify` compares them with the replay of the ledger), and the whole memory replaced in one
//! write transaction (`cortex memory rebuild`).

use crate::ledger::read_head;
use crate::memory::{
    AGENT_COLUMNS, FACT_COLUMNS, OPENING_COLUMNS, VOTE_COLUMNS, add_event, agent_from_row,
    bump_memory_version, fact_from_row, insert_fact, insert_opening, opening_from_row, put_agent,
    put_vote, unsigned, vote_from_row,
};
use crate::{SqliteStore, to_i64};
use cortex_core::memory::bm25::index_text;
use cortex_core::memory::store::{MemoryRow, MemoryState};
use cortex_core::{Error, ErrorKind, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row, TransactionBehavior, params};

/// A stored key as text, whatever its type, for a row that does not decode.
fn key_text(v: rusqlite::Result<ValueRef<'_>>) -> String {
    match v {
        Ok(ValueRef::Integer(i)) => i.to_string(),
        Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        Ok(ValueRef::Real(f)) => f.to_string(),
        Ok(ValueRef::Blob(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Ok(ValueRef::Null) => "NULL".into(),
        Err(e) => format!("({e})"),
    }
}

/// Runs `sql` and hands each row to `visit`, decoded by `decode` or, if it does not decode, as
/// [`MemoryRow::Undecodable`] in `table` under the key `key` makes of it.
fn scan(
    conn: &Connection,
    sql: &str,
    table: &'static str,
    decode: &dyn Fn(&Row<'_>) -> rusqlite::Result<MemoryRow>,
    key: &dyn Fn(&Row<'_>) -> String,
    visit: &mut dyn FnMut(MemoryRow) -> Result<()>,
    e: &dyn Fn(rusqlite::Error) -> Error,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(e)?;
    let mut rows = stmt.query([]).map_err(e)?;
    while let Some(r) = rows.next().map_err(e)? {
        visit(decode(r).unwrap_or_else(|problem| MemoryRow::Undecodable {
            table,
            key: key(r),
            problem: problem.to_string(),
        }))?;
    }
    Ok(())
}

impl SqliteStore {
    /// [`FactStore::scan_memory`](cortex_core::FactStore::scan_memory): one read transaction on a
    /// reader connection (a WAL snapshot: appends go on meanwhile), one pass per table in key
    /// order.
    pub(crate) fn scan_memory_rows(
        &self,
        visit: &mut dyn FnMut(MemoryRow) -> Result<()>,
    ) -> Result<()> {
        self.with_reader(|c| {
            let e = self.err();
            // Dropped (rolled back) on every way out; the snapshot starts at the first read.
            let tx = c.unchecked_transaction().map_err(&e)?;
            visit(MemoryRow::Head(read_head(&tx, &self.path)?.size))?;
            let id = |r: &Row<'_>| key_text(r.get_ref(0));
            let pair =
                |r: &Row<'_>| format!("{}/{}", key_text(r.get_ref(0)), key_text(r.get_ref(1)));
            scan(
                &tx,
                &format!("SELECT {FACT_COLUMNS} FROM facts ORDER BY id"),
                "facts",
                &|r| fact_from_row(r).map(MemoryRow::Fact),
                &id,
                visit,
                &e,
            )?;
            scan(
                &tx,
                &format!("SELECT {OPENING_COLUMNS} FROM fact_openings ORDER BY fact_id"),
                "fact_openings",
                &|r| opening_from_row(r).map(MemoryRow::Opening),
                &id,
                visit,
                &e,
            )?;
            scan(
                &tx,
                &format!("SELECT {VOTE_COLUMNS} FROM fact_votes ORDER BY fact_id, agent"),
                "fact_votes",
                &|r| vote_from_row(r).map(MemoryRow::Vote),
                &pair,
                visit,
                &e,
            )?;
            scan(
                &tx,
                &format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY agent"),
                "agents",
                &|r| agent_from_row(r).map(MemoryRow::Agent),
                &id,
                visit,
                &e,
            )?;
            scan(
                &tx,
                "SELECT fact_id, entry_index FROM fact_events ORDER BY fact_id, entry_index",
                "fact_events",
                &|r| {
                    Ok(MemoryRow::Event {
                        fact_id: unsigned(r, 0)?,
                        entry_index: unsigned(r, 1)?,
                    })
                },
                &pair,
                visit,
                &e,
            )?;
            scan(
                &tx,
                "SELECT fact_id, body FROM fact_index ORDER BY fact_id",
                "search_index",
                &|r| {
                    Ok(MemoryRow::IndexText {
                        fact_id: unsigned(r, 0)?,
                        text: r.get(1)?,
                    })
                },
                &id,
                visit,
                &e,
            )?;
            Ok(())
        })
    }

    /// [`FactStore::replace_memory`](cortex_core::FactStore::replace_memory): one `BEGIN
    /// IMMEDIATE` transaction on the writer, so no append can slip in between the head check
    /// and the commit.
    pub(crate) fn replace_memory_rows(&self, ledger_size: u64, state: &MemoryState) -> Result<()> {
        let mut conn = self.writer()?;
        let e = self.err();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&e)?;
        let head = read_head(&tx, &self.path)?.size;
        if head != ledger_size {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the ledger has {head} entries, not the {ledger_size} the memory was \
                     replayed from"
                ),
            ));
        }
        // Children before the facts they reference (foreign keys are on).
        tx.execute_batch(
            "DELETE FROM fact_events; DELETE FROM fact_votes; DELETE FROM fact_openings; \
             DELETE FROM agents; DELETE FROM fact_index; DELETE FROM facts;",
        )
        .map_err(&e)?;
        let mut index = tx
            .prepare("INSERT INTO fact_index (fact_id, body) VALUES (?1, ?2)")
            .map_err(&e)?;
        for f in &state.facts {
            insert_fact(&tx, f).map_err(&e)?;
            if !f.is_erased() {
                index
                    .execute(params![to_i64(f.id), index_text(&f.content, &f.tags)])
                    .map_err(&e)?;
            }
        }
        drop(index);
        for o in &state.openings {
            insert_opening(&tx, o).map_err(&e)?;
        }
        for v in &state.votes {
            put_vote(&tx, v).map_err(&e)?;
        }
        for a in &state.agents {
            put_agent(&tx, a).map_err(&e)?;
        }
        for &(f, entry) in &state.events {
            add_event(&tx, f, entry).map_err(&e)?;
        }
        // The postings from exactly the text just written (the statistics follow fact_index by
        // its triggers); vectors only for facts that are present and not erased.
        tx.execute_batch(
            "INSERT INTO facts_fts (facts_fts) VALUES ('rebuild'); \
             DELETE FROM fact_vectors WHERE fact_id NOT IN \
             (SELECT id FROM facts WHERE erased_at IS NULL);",
        )
        .map_err(&e)?;
        bump_memory_version(&tx).map_err(&e)?;
        tx.commit().map_err(&e)
    }
}

#[cfg(test)]
mod tests {
    use crate::{SqliteOptions, SqliteStore};
    use cortex_core::memory::store::{MemoryRow, MemoryState};
    use cortex_core::{AgentMemory, DynStore, ErrorKind, NewFact};
    use std::sync::Arc;

    fn memory(dir: &tempfile::TempDir) -> (DynStore, AgentMemory) {
        let store: DynStore = Arc::new(
            SqliteStore::open(&dir.path().join("m.db"), SqliteOptions::default()).unwrap(),
        );
        let m = AgentMemory::open(store.clone(), Default::default()).unwrap();
        m.store_facts(&[NewFact::new("p", "one"), NewFact::new("p", "two")])
            .unwrap();
        (store, m)
    }

    #[test]
    fn scan_memory_reads_one_snapshot_while_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (store, m) = memory(&dir);
        let mut head = None;
        let mut facts = Vec::new();
        store
            .scan_memory(&mut |row| {
                match row {
                    MemoryRow::Head(h) => {
                        head = Some(h);
                        // Committed after the snapshot began: not part of this scan.
                        m.store_fact(&NewFact::new("p", "three")).unwrap();
                    }
                    MemoryRow::Fact(f) => facts.push(f.id),
                    _ => {}
                }
                Ok(())
            })
            .unwrap();
        assert_eq!((head, facts), (Some(2), vec![0, 1]));
        let mut after = Vec::new();
        store
            .scan_memory(&mut |row| {
                if let MemoryRow::Fact(f) = row {
                    after.push(f.id);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(after, [0, 1, 2]);
    }

    #[test]
    fn replace_memory_refuses_a_state_replayed_from_another_head() {
        let dir = tempfile::tempdir().unwrap();
        let (store, m) = memory(&dir);
        let version = store.memory_version().unwrap();
        let e = store
            .replace_memory(1, &MemoryState::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(store.memory_version().unwrap(), version, "nothing written");
        assert_eq!(m.fact(1).unwrap().content, "two");
        assert_eq!(
            m.search(&cortex_core::SearchQuery::new("two"))
                .unwrap()
                .len(),
            1
        );
        // The state of the current head replaces everything, the search index included.
        store.replace_memory(2, &MemoryState::default()).unwrap();
        assert_eq!(store.memory_version().unwrap(), version + 1);
        assert!(store.fact(1).unwrap().is_none());
        assert!(
            m.search(&cortex_core::SearchQuery::new("two"))
                .unwrap()
                .is_empty()
        );
    }
}
