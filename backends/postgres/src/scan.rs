//! The memory scan ([`FactStore::scan_memory`](cortex_core::FactStore::scan_memory)): every
//! memory row as stored, for `verify` to compare with the replay of the ledger.
//!
//! All of it is read in one `REPEATABLE READ` read-only transaction (one snapshot, whose head
//! size comes first), one streaming query per table, each statement prepared once per
//! connection: no round trip per row. Rows are decoded with checked conversions, so a value of
//! the wrong shape (tags that are not JSON, a negative count) becomes
//! [`MemoryRow::Undecodable`], never an error or a panic.
//!
//! **The search index.** Each fact row keeps its indexed text (`body`), streamed as
//! [`MemoryRow::IndexText`] for `verify` to check against the fact's content. What search
//! actually uses beside it is derived from that text, so the scan checks it here: the `tsv`
//! (candidates are found with it) must hold exactly the text's distinct lexemes, `doc_len` must
//! be its token count, and the collection statistics in `memory_state` (document count and
//! total tokens: every score depends on them) must be those of the indexed rows. A row that
//! breaks one of these is reported as `Undecodable` in table `search_index`. The `tsv` is read
//! in PostgreSQL's binary format and compared lexeme by lexeme, without a text round trip.

use crate::PostgresStore;
use crate::lexeme::{index_lexemes, tsvector_holds};
use crate::memory::{decode_agent, decode_fact, decode_opening, decode_vote, fact_columns};
use crate::pool::{PgConn, cached, pg_err};
use cortex_core::Result;
use cortex_core::memory::store::MemoryRow;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, ToSql, Type};
use postgres::{IsolationLevel, Row, Statement, Transaction};
use std::collections::HashMap;

const HEAD_SIZE_SQL: &str = "SELECT size FROM ledger_head WHERE id = 1";
/// Every fact with its search columns (at 16, 17, 18), by id.
const SCAN_FACTS_SQL: &str = concat!(
    "SELECT ",
    fact_columns!(),
    ", body, doc_len, tsv FROM facts ORDER BY id"
);
const SCAN_OPENINGS_SQL: &str =
    "SELECT fact_id, salt, content, tags, source FROM fact_openings ORDER BY fact_id";
const SCAN_VOTES_SQL: &str = "SELECT fact_id, agent, vote, reason, weight, agreed, entry_index, \
     voted_at FROM fact_votes ORDER BY fact_id, agent";
const SCAN_AGENTS_SQL: &str =
    "SELECT agent, reputation, votes, judged, agreed FROM agents ORDER BY agent";
const SCAN_EVENTS_SQL: &str =
    "SELECT fact_id, entry_index FROM fact_events ORDER BY fact_id, entry_index";
const STATISTICS_SQL: &str = "SELECT docs, tokens FROM memory_state WHERE id = 1";

/// The table name `verify` reports search-index findings under.
const SEARCH_INDEX: &str = "search_index";

/// A `tsvector` as its binary send format (see [`tsvector_holds`]).
struct RawTsvector<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawTsvector<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawTsvector(raw))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TS_VECTOR
    }
}

/// The collection statistics of the rows indexed, as the scan counts them.
#[derive(Default)]
struct Indexed {
    docs: i64,
    tokens: i64,
}

/// Runs `sql` (no parameters) and calls `each` with every row as it arrives.
fn stream(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
    each: &mut dyn FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let s = cached(tx, stmts, sql)?;
    let mut rows = tx
        .query_raw(&s, std::iter::empty::<&(dyn ToSql + Sync)>())
        .map_err(pg_err)?;
    while let Some(r) = rows.next().map_err(pg_err)? {
        each(&r)?;
    }
    Ok(())
}

fn undecodable(table: &'static str, key: impl ToString, problem: String) -> MemoryRow {
    MemoryRow::Undecodable {
        table,
        key: key.to_string(),
        problem,
    }
}

/// Column `i` of `r` as text for a key (`?` if it does not decode).
fn key_text<'a, T: FromSql<'a> + ToString>(r: &'a Row, i: usize) -> String {
    r.try_get::<_, T>(i)
        .map_or_else(|_| "?".to_owned(), |v| v.to_string())
}

/// Streams fact `id`'s index text and reports its `doc_len` and `tsv` if they do not follow
/// from it.
fn index_rows(
    r: &Row,
    id: u64,
    indexed: &mut Indexed,
    visit: &mut dyn FnMut(MemoryRow) -> Result<()>,
) -> Result<()> {
    let columns = (|| {
        Ok::<_, postgres::Error>((
            r.try_get::<_, Option<&str>>(16)?,
            r.try_get::<_, Option<i32>>(17)?,
            r.try_get::<_, Option<RawTsvector>>(18)?,
        ))
    })();
    let (body, doc_len, tsv) = match columns {
        Ok(c) => c,
        Err(e) => return visit(undecodable(SEARCH_INDEX, id, e.to_string())),
    };
    let Some(body) = body else {
        if doc_len.is_some() || tsv.is_some() {
            visit(undecodable(
                SEARCH_INDEX,
                id,
                "the row has index terms (tsv) or a length (doc_len) but no indexed text (body)"
                    .to_owned(),
            ))?;
        }
        return Ok(());
    };
    visit(MemoryRow::IndexText {
        fact_id: id,
        text: body.to_owned(),
    })?;
    let (tokens, lexemes) = index_lexemes(body);
    let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
    indexed.docs += 1;
    indexed.tokens = indexed.tokens.saturating_add(tokens);
    if doc_len.map(i64::from) != Some(tokens) {
        visit(undecodable(
            SEARCH_INDEX,
            id,
            format!(
                "doc_len is {}, but the indexed text has {tokens} tokens",
                doc_len.map_or_else(|| "NULL".to_owned(), |d| d.to_string())
            ),
        ))?;
    }
    if !tsv.is_some_and(|t| tsvector_holds(t.0, &lexemes)) {
        visit(undecodable(
            SEARCH_INDEX,
            id,
            "tsv does not hold exactly the lexemes of the indexed text (search would find the \
             fact for other words, or miss it)"
                .to_owned(),
        ))?;
    }
    Ok(())
}

impl PostgresStore {
    /// [`FactStore::scan_memory`](cortex_core::FactStore::scan_memory): see the module docs.
    pub(crate) fn scan(&self, visit: &mut dyn FnMut(MemoryRow) -> Result<()>) -> Result<()> {
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg_err)?;
        // The snapshot is taken by the first statement: this one.
        let s = cached(&mut tx, stmts, HEAD_SIZE_SQL)?;
        let head = tx
            .query_opt(&s, &[])
            .map_err(pg_err)?
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        visit(MemoryRow::Head(head))?;

        let mut indexed = Indexed::default();
        stream(&mut tx, stmts, SCAN_FACTS_SQL, &mut |r| {
            let id = match r.try_get::<_, i64>(0).map(u64::try_from) {
                Ok(Ok(id)) => id,
                _ => {
                    return visit(undecodable(
                        "facts",
                        key_text::<i64>(r, 0),
                        "the id is negative".to_owned(),
                    ));
                }
            };
            match decode_fact(r) {
                Ok(f) => visit(MemoryRow::Fact(f))?,
                Err(problem) => visit(undecodable("facts", id, problem))?,
            }
            index_rows(r, id, &mut indexed, visit)
        })?;
        stream(&mut tx, stmts, SCAN_OPENINGS_SQL, &mut |r| {
            visit(match decode_opening(r) {
                Ok(o) => MemoryRow::Opening(o),
                Err(problem) => undecodable("fact_openings", key_text::<i64>(r, 0), problem),
            })
        })?;
        stream(&mut tx, stmts, SCAN_VOTES_SQL, &mut |r| {
            visit(match decode_vote(r) {
                Ok(v) => MemoryRow::Vote(v),
                Err(problem) => undecodable(
                    "fact_votes",
                    format!("{}/{}", key_text::<i64>(r, 0), key_text::<String>(r, 1)),
                    problem,
                ),
            })
        })?;
        stream(&mut tx, stmts, SCAN_AGENTS_SQL, &mut |r| {
            visit(match decode_agent(r) {
                Ok(a) => MemoryRow::Agent(a),
                Err(problem) => undecodable("agents", key_text::<String>(r, 0), problem),
            })
        })?;
        stream(&mut tx, stmts, SCAN_EVENTS_SQL, &mut |r| {
            let pair = |i| {
                r.try_get::<_, i64>(i)
                    .ok()
                    .and_then(|v| u64::try_from(v).ok())
            };
            visit(match (pair(0), pair(1)) {
                (Some(fact_id), Some(entry_index)) => MemoryRow::Event {
                    fact_id,
                    entry_index,
                },
                _ => undecodable(
                    "fact_events",
                    format!("{}/{}", key_text::<i64>(r, 0), key_text::<i64>(r, 1)),
                    "a fact id or entry index is negative".to_owned(),
                ),
            })
        })?;

        let s = cached(&mut tx, stmts, STATISTICS_SQL)?;
        let stats = tx.query_opt(&s, &[]).map_err(pg_err)?;
        let problem = match stats
            .as_ref()
            .map(|r| (r.try_get::<_, i64>(0), r.try_get::<_, i64>(1)))
        {
            None => Some("the memory_state row is missing".to_owned()),
            Some((Ok(docs), Ok(tokens))) if (docs, tokens) == (indexed.docs, indexed.tokens) => {
                None
            }
            Some((docs, tokens)) => Some(format!(
                "memory_state counts {} indexed facts of {} tokens in all, but the facts table \
                 indexes {} of {} (every search score depends on these)",
                docs.map_or_else(|e| e.to_string(), |d| d.to_string()),
                tokens.map_or_else(|e| e.to_string(), |t| t.to_string()),
                indexed.docs,
                indexed.tokens
            )),
        };
        if let Some(problem) = problem {
            visit(undecodable(SEARCH_INDEX, "statistics", problem))?;
        }
        tx.commit().map_err(pg_err)?;
        Ok(())
    }
}
