//! Memory rows in `COPY … FROM STDIN`'s text format: escaping, the rows of a batch (facts with
//! their search columns, openings, and for a rebuild votes, agents and history pairs), one
//! `COPY` per [`FACT_COPY_BYTES`], and naming a key already taken.

use crate::lexeme::{index_lexemes, tsvector_text};
use crate::pool::{cached, has_code, pg_err};
use crate::to_i64;
use cortex_core::memory::bm25::index_text;
use cortex_core::memory::commitment::FactOpening;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::{Statement, Transaction};
use std::collections::HashMap;

/// Text one `COPY` carries, at most, plus one row (for a fact: content, tags, indexed text and
/// `tsvector`, as sent): a batch of many large facts takes several, so neither side holds more
/// than this at once.
pub(crate) const FACT_COPY_BYTES: usize = 8 << 20;

/// The memory tables' `COPY` statements (text format). `COPY` inserts rows in bulk (one WAL
/// record per heap page rather than per row): 10,000 facts took about 120 ms, against about
/// 245 ms as one `INSERT … SELECT FROM UNNEST(…)` of 16 arrays. A `tsvector` goes through
/// `tsvectorin`, as the `::TEXT::TSVECTOR` cast of a single-row insert did.
pub(crate) const COPY_FACTS_SQL: &str = "COPY facts (id, project, content, fact_type, tags, \
     confidence, source, valid_from, valid_until, created_at, deprecated_at, deprecation_reason, \
     consensus, author, surface, erased_at, body, doc_len, tsv) FROM STDIN";
pub(crate) const COPY_OPENINGS_SQL: &str =
    "COPY fact_openings (fact_id, salt, content, tags, source) FROM STDIN";
pub(crate) const COPY_VOTES_SQL: &str = "COPY fact_votes (fact_id, agent, vote, reason, weight, \
     agreed, entry_index, voted_at) FROM STDIN";
pub(crate) const COPY_AGENTS_SQL: &str =
    "COPY agents (agent, reputation, votes, judged, agreed) FROM STDIN";
pub(crate) const COPY_EVENTS_SQL: &str = "COPY fact_events (fact_id, entry_index) FROM STDIN";

/// Appends `s` to `out` as one field of `COPY`'s text format (backslash, tab, newline and
/// carriage return escaped; every other character as it is).
fn copy_text(out: &mut String, s: &str) {
    if !s.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Like [`copy_text`], `None` as `COPY`'s NULL (`\N`).
fn copy_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => copy_text(out, s),
        None => out.push_str("\\N"),
    }
}

/// Appends a float as `COPY` text: Rust prints the shortest decimal that reads back as the
/// same `f64`, and Postgres' `float8in` rounds correctly, so the stored value has the same bits
/// as the `f64` (subnormals included).
fn copy_f64(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("Infinity");
    } else {
        out.push_str("-Infinity");
    }
}

/// Rows waiting to be copied into one table, in `COPY`'s text format (one line each, in the
/// order given), flushed as one `COPY` per [`FACT_COPY_BYTES`].
pub(crate) struct CopyRows {
    /// The `COPY … FROM STDIN` statement.
    sql: &'static str,
    /// What a row is, for the `Conflict` of a key already taken ("fact", "opening of fact").
    what: &'static str,
    text: String,
    /// The numeric keys of the first and the last row held (to name a taken key when the
    /// server does not).
    keys: Option<(i64, i64)>,
    /// True before the first field of a row.
    row_start: bool,
}

impl CopyRows {
    pub(crate) fn new(sql: &'static str, what: &'static str) -> Self {
        CopyRows {
            sql,
            what,
            text: String::new(),
            keys: None,
            row_start: true,
        }
    }

    /// Starts a row whose key is `key` (its id, or its fact id).
    fn row(&mut self, key: i64) -> &mut Self {
        self.keys = Some(self.keys.map_or((key, key), |(first, _)| (first, key)));
        self.row_start = true;
        self
    }

    fn sep(&mut self) -> &mut String {
        if !self.row_start {
            self.text.push('\t');
        }
        self.row_start = false;
        &mut self.text
    }

    fn text(&mut self, s: &str) -> &mut Self {
        copy_text(self.sep(), s);
        self
    }

    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        copy_opt(self.sep(), s);
        self
    }

    fn float(&mut self, v: f64) -> &mut Self {
        copy_f64(self.sep(), v);
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sep(), "{v}");
        self
    }

    fn null(&mut self) -> &mut Self {
        self.sep().push_str("\\N");
        self
    }

    fn end(&mut self) {
        self.text.push('\n');
        self.row_start = true;
    }

    /// True once the rows held should be sent.
    pub(crate) fn full(&self) -> bool {
        self.text.len() >= FACT_COPY_BYTES
    }

    /// Adds a fact with its search columns (none for an erased fact: it is out of the index);
    /// returns its token count if it is indexed.
    pub(crate) fn push_fact(&mut self, f: &Fact) -> Result<Option<i32>> {
        let tags = json(&f.tags)?;
        self.row(to_i64(f.id))
            .int(to_i64(f.id))
            .text(&f.project)
            .text(&f.content)
            .text(&f.fact_type)
            .text(&tags)
            .float(f.confidence)
            .opt(f.source.as_deref())
            .text(&f.valid_from)
            .opt(f.valid_until.as_deref())
            .text(&f.created_at)
            .opt(f.deprecated_at.as_deref())
            .opt(f.deprecation_reason.as_deref())
            .float(f.consensus)
            .opt(f.author.as_deref())
            .opt(f.surface.as_deref())
            .opt(f.erased_at.as_deref());
        if f.is_erased() {
            self.null().null().null().end();
            return Ok(None);
        }
        let body = index_text(&f.content, &f.tags);
        let (count, lexemes) = index_lexemes(&body);
        let doc_len = i32::try_from(count).unwrap_or(i32::MAX);
        let tsv = tsvector_text(&lexemes);
        self.text(&body).int(i64::from(doc_len)).text(&tsv).end();
        Ok(Some(doc_len))
    }

    /// Adds a fact's opening.
    pub(crate) fn push_opening(&mut self, o: &FactOpening) -> Result<()> {
        let tags = json(&o.fields.tags)?;
        self.row(to_i64(o.fact_id))
            .int(to_i64(o.fact_id))
            .text(&o.salt)
            .text(&o.fields.content)
            .text(&tags)
            .opt(o.fields.source.as_deref())
            .end();
        Ok(())
    }

    /// Adds a vote.
    pub(crate) fn push_vote(&mut self, v: &Vote) {
        self.row(to_i64(v.fact_id))
            .int(to_i64(v.fact_id))
            .text(&v.agent)
            .int(i64::from(v.vote))
            .opt(v.reason.as_deref())
            .float(v.weight)
            .opt(v.agreed.map(|a| if a { "t" } else { "f" }))
            .int(to_i64(v.entry_index))
            .text(&v.voted_at)
            .end();
    }

    /// Adds an agent's record.
    pub(crate) fn push_agent(&mut self, a: &AgentReputation) {
        self.row(0)
            .text(&a.agent)
            .float(a.reputation)
            .int(to_i64(a.votes))
            .int(to_i64(a.judged))
            .int(to_i64(a.agreed))
            .end();
    }

    /// Adds a (fact, entry) history pair.
    pub(crate) fn push_event(&mut self, fact_id: u64, entry_index: u64) {
        self.row(to_i64(fact_id))
            .int(to_i64(fact_id))
            .int(to_i64(entry_index))
            .end();
    }

    /// Copies the rows held in (one `COPY`) and empties the buffer.
    pub(crate) fn flush(
        &mut self,
        tx: &mut Transaction<'_>,
        stmts: &mut HashMap<&'static str, Statement>,
    ) -> Result<()> {
        let Some(keys) = self.keys.take() else {
            return Ok(());
        };
        let s = cached(tx, stmts, self.sql)?;
        let what = self.what;
        let map = |err: postgres::Error| {
            if has_code(&err, &SqlState::UNIQUE_VIOLATION) {
                duplicate(&err, what, keys)
            } else {
                pg_err(err)
            }
        };
        let mut w = tx.copy_in(&s).map_err(map)?;
        std::io::Write::write_all(&mut w, self.text.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Unavailable, "PostgreSQL COPY").with_source(e))?;
        w.finish().map_err(map)?;
        self.text.clear();
        Ok(())
    }
}

fn json(tags: &[String]) -> Result<String> {
    serde_json::to_string(tags).map_err(|x| Error::backend(x.to_string()))
}

/// The `Conflict` for a key that is already taken, naming it (from the server's
/// "Key (id)=(N) already exists." detail; else the range of keys inserted).
fn duplicate(err: &postgres::Error, what: &str, (first, last): (i64, i64)) -> Error {
    let named = err
        .as_db_error()
        .and_then(|d| d.detail())
        .and_then(|d| d.split_once("=("))
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map(|(key, _)| key.to_owned());
    let msg = match named {
        Some(key) => format!("{what} {key} already exists"),
        None if first == last => format!("{what} {first} already exists"),
        None => format!("{what} with a key in {first}..={last} already exists"),
    };
    Error::new(ErrorKind::Conflict, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let mut o = String::new();
        copy_text(&mut o, "a\tb\nc\rd\\e \\N 'f'");
        copy_opt(&mut o, None);
        copy_f64(&mut o, 1.0 / 3.0);
        assert_eq!(o, "a\\tb\\nc\\rd\\\\e \\\\N 'f'\\N0.3333333333333333");
        for v in [0.1, 5e-324, 1e300, -0.0, 0.700_000_000_000_000_1] {
            let mut o = String::new();
            copy_f64(&mut o, v);
            assert_eq!(o.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{o}");
        }
    }
}
