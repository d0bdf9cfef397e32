//! New facts in `COPY … FROM STDIN`'s text format: escaping, the rows of a batch with their
//! search columns, one `COPY` per [`FACT_COPY_BYTES`], and naming a fact id already taken.

use crate::lexeme::{push_lexeme, truncated};
use crate::pool::{cached, has_code, pg_err};
use crate::to_i64;
use cortex_core::memory::fact::Fact;
use cortex_core::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::{Statement, Transaction};
use std::collections::HashMap;

/// Text one `COPY` of new facts carries, at most, plus one fact (content, tags, indexed text
/// and `tsvector`, as sent): a batch of many large facts takes several, so neither side holds
/// more than this at once.
pub(crate) const FACT_COPY_BYTES: usize = 8 << 20;

/// New facts, in `COPY`'s text format (one line each, batch order). `COPY` inserts rows in
/// bulk (one WAL record per heap page rather than per row): 10,000 facts took about 120 ms,
/// against about 245 ms as one `INSERT … SELECT FROM UNNEST(…)` of 16 arrays. The `tsvector`
/// goes through `tsvectorin`, as the `::TEXT::TSVECTOR` cast of a single-row insert did.
const COPY_FACTS_SQL: &str = "COPY facts (id, project, content, fact_type, tags, confidence, \
     source, valid_from, valid_until, created_at, deprecated_at, deprecation_reason, consensus, \
     body, doc_len, tsv) FROM STDIN";

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

/// New facts waiting to be copied in.
#[derive(Default)]
pub(crate) struct FactRows {
    /// The rows, in `COPY` text format.
    text: String,
    /// The ids of the first and the last row held.
    ids: Option<(i64, i64)>,
}

impl FactRows {
    /// Adds `f` with its search columns; returns its token count.
    pub(crate) fn push(&mut self, f: &Fact) -> Result<i32> {
        use std::fmt::Write;
        let tags = serde_json::to_string(&f.tags).map_err(|x| Error::backend(x.to_string()))?;
        let body = cortex_core::memory::bm25::index_text(&f.content, &f.tags);
        // The distinct (truncated) tokens, quoted: Postgres sorts and deduplicates a
        // tsvector's lexemes itself, so the order here changes nothing stored.
        let mut lexemes: Vec<&str> = body
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(truncated)
            .collect();
        let doc_len = i32::try_from(lexemes.len()).unwrap_or(i32::MAX);
        lexemes.sort_unstable();
        lexemes.dedup();
        let mut tsv = String::with_capacity(body.len() + 3 * lexemes.len());
        for (i, t) in lexemes.iter().enumerate() {
            if i > 0 {
                tsv.push(' ');
            }
            push_lexeme(&mut tsv, t);
        }
        let id = to_i64(f.id);
        self.ids = Some(self.ids.map_or((id, id), |(first, _)| (first, id)));
        let o = &mut self.text;
        let _ = write!(o, "{id}\t");
        copy_text(o, &f.project);
        o.push('\t');
        copy_text(o, &f.content);
        o.push('\t');
        copy_text(o, &f.fact_type);
        o.push('\t');
        copy_text(o, &tags);
        o.push('\t');
        copy_f64(o, f.confidence);
        o.push('\t');
        copy_opt(o, f.source.as_deref());
        o.push('\t');
        copy_text(o, &f.valid_from);
        o.push('\t');
        copy_opt(o, f.valid_until.as_deref());
        o.push('\t');
        copy_text(o, &f.created_at);
        o.push('\t');
        copy_opt(o, f.deprecated_at.as_deref());
        o.push('\t');
        copy_opt(o, f.deprecation_reason.as_deref());
        o.push('\t');
        copy_f64(o, f.consensus);
        o.push('\t');
        copy_text(o, &body);
        let _ = write!(o, "\t{doc_len}\t");
        copy_text(o, &tsv);
        o.push('\n');
        Ok(doc_len)
    }

    pub(crate) fn full(&self) -> bool {
        self.text.len() >= FACT_COPY_BYTES
    }

    /// Copies the facts held in (one `COPY`) and empties the buffer.
    pub(crate) fn flush(
        &mut self,
        tx: &mut Transaction<'_>,
        stmts: &mut HashMap<&'static str, Statement>,
    ) -> Result<()> {
        let Some(ids) = self.ids.take() else {
            return Ok(());
        };
        let s = cached(tx, stmts, COPY_FACTS_SQL)?;
        let map = |err: postgres::Error| {
            if has_code(&err, &SqlState::UNIQUE_VIOLATION) {
                duplicate_fact(&err, ids)
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

/// The `Conflict` for a fact id that is already taken, naming it (from the server's
/// "Key (id)=(N) already exists." detail; else the range of ids inserted).
fn duplicate_fact(err: &postgres::Error, (first, last): (i64, i64)) -> Error {
    let named = err
        .as_db_error()
        .and_then(|d| d.detail())
        .and_then(|d| d.split_once("=("))
        .and_then(|(_, r)| r.split_once(')'))
        .and_then(|(id, _)| id.parse::<i64>().ok());
    let msg = match named {
        Some(id) => format!("fact {id} already exists"),
        None if first == last => format!("fact {first} already exists"),
        None => format!("a fact with an id in {first}..={last} already exists"),
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
