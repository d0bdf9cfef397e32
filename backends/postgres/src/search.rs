//! Ranked full-text search: facts' tokens as `tsvector`/`tsquery` lexemes, the candidate query
//! under a GIN index, and BM25 scores computed by core's `Candidates`, so they equal core's
//! `Bm25Index` bit for bit.

use crate::PostgresStore;
use crate::lexeme::lexeme;
use crate::memory::{decode_fact, fact_columns};
use crate::pool::{PgConn, cached, pg_err};
use cortex_core::memory::bm25::Candidates;
use cortex_core::memory::fact::Fact;
use cortex_core::memory::store::{FactSearch, SearchHit};
use cortex_core::{Error, Result};
use postgres::IsolationLevel;
use std::collections::HashMap;

/// Search candidates: the collection statistics, and every fact matching the tsquery `$1`
/// (id, token count, token text, passes the filters: project `$2`, valid at `$3`, deprecated
/// ones if `$4`, not erased, stored by `$5` if given, consensus at least `$6` if given: what
/// `Fact::passes` says); one row of statistics and NULLs when no fact matches. An erased fact
/// has no `tsv`, so it is never a candidate and counts in no document frequency.
const SEARCH_CANDIDATES_SQL: &str = "SELECT m.docs, m.tokens, f.id, f.doc_len, f.body, \
     ($2::TEXT IS NULL OR f.project = $2) AND f.valid_from <= $3 \
     AND (f.valid_until IS NULL OR $3 < f.valid_until) AND ($4 OR f.deprecated_at IS NULL) \
     AND f.erased_at IS NULL AND ($5::TEXT IS NULL OR f.author = $5) \
     AND ($6::FLOAT8 IS NULL OR f.consensus >= $6) \
     FROM memory_state m LEFT JOIN facts f ON f.tsv @@ $1::TEXT::TSQUERY WHERE m.id = 1";

/// Whole facts by id (`$1`, an array), in no particular order.
const FACTS_BY_ID_SQL: &str = concat!("SELECT ", fact_columns!(), " FROM facts WHERE id = ANY($1)");

impl PostgresStore {
    /// Ranked full-text search ([`FactStore::search_facts`](cortex_core::FactStore::search_facts)):
    /// the candidates and collection statistics in one query, scored here, then the `top_k`
    /// facts read whole, all in one read-only snapshot.
    pub(crate) fn ranked_search(&self, q: &FactSearch) -> Result<Vec<SearchHit>> {
        if q.terms.is_empty() || q.top_k == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let PgConn { client, stmts } = &mut *conn;
        // One snapshot for the collection statistics, the candidates and the facts returned.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg_err)?;
        // Every fact holding a lexeme of a term (all projects, deprecated ones included: the
        // document counts are over every indexed fact), its token text and whether it passes
        // the query's filters; the statistics come with it (a row of NULLs when none match).
        let tsquery = q
            .terms
            .iter()
            .map(|t| lexeme(t))
            .collect::<Vec<_>>()
            .join(" | ");
        let s = cached(&mut tx, stmts, SEARCH_CANDIDATES_SQL)?;
        let rows = tx
            .query(
                &s,
                &[
                    &tsquery,
                    &q.project,
                    &q.as_of,
                    &q.include_deprecated,
                    &q.author,
                    &q.min_consensus,
                ],
            )
            .map_err(pg_err)?;
        let Some(first) = rows.first() else {
            return Err(Error::integrity("the memory_state row is missing"));
        };
        let (docs, total): (i64, i64) = (first.get(0), first.get(1));
        if docs <= 0 {
            return Ok(Vec::new());
        }
        // Each candidate's term frequencies, from its tokens (a lexeme match alone is not
        // enough: lexemes are truncated, tokens are not), scored as core defines.
        let mut candidates = Candidates::new(&q.terms);
        for r in &rows {
            let Some(body) = r.get::<_, Option<&str>>(4) else {
                continue;
            };
            // NULL or negative only if tampered with (the memory scan reports it).
            let doc_len = r
                .get::<_, Option<i32>>(3)
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0);
            let id = r.get::<_, i64>(2).max(0) as u64;
            candidates.add(
                id,
                body,
                Some(doc_len),
                r.get::<_, Option<bool>>(5) == Some(true),
            );
        }
        let scored: Vec<(i64, f64)> = candidates
            .top_k(docs as u64, total.max(0) as u64, q.top_k)
            .into_iter()
            .map(|(id, s)| (id as i64, s))
            .collect();
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        // Only the facts returned are read whole.
        let ids: Vec<i64> = scored.iter().map(|h| h.0).collect();
        let s = cached(&mut tx, stmts, FACTS_BY_ID_SQL)?;
        let mut facts: HashMap<u64, Fact> = tx
            .query(&s, &[&ids])
            .map_err(pg_err)?
            .iter()
            .map(|r| {
                decode_fact(r)
                    .map(|f| (f.id, f))
                    .map_err(|p| Error::integrity(format!("a facts row cannot be read: {p}")))
            })
            .collect::<Result<_>>()?;
        tx.commit().map_err(pg_err)?;
        scored
            .into_iter()
            .map(|(id, score)| {
                let fact = facts
                    .remove(&(id as u64))
                    .ok_or_else(|| Error::integrity(format!("fact {id} vanished mid-search")))?;
                Ok(SearchHit { fact, score })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FACT_COLUMNS;

    #[test]
    fn search_reads_the_fact_columns() {
        let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(norm(FACTS_BY_ID_SQL).contains(&norm(FACT_COLUMNS)));
    }
}
