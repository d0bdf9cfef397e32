//! Tokens as Postgres full-text lexemes: truncated to what a `tsvector` accepts and quoted, for
//! the search query and for the rows `COPY` writes; the lexemes an indexed text must have (what
//! the memory scan checks a stored `tsvector` against).

/// Longest lexeme Postgres accepts in a `tsvector`, less a margin; longer tokens are truncated
/// there (matching then finds a superset, and scoring, which reads `body`, stays exact).
const MAX_LEXEME_BYTES: usize = 2000;

/// `token` cut to at most [`MAX_LEXEME_BYTES`] (at a character boundary).
pub(crate) fn truncated(token: &str) -> &str {
    let mut end = token.len().min(MAX_LEXEME_BYTES);
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    &token[..end]
}

/// Appends `token` (already [`truncated`]) to `out` as a quoted `tsvector`/`tsquery` lexeme.
pub(crate) fn push_lexeme(out: &mut String, token: &str) {
    out.push('\'');
    if token.contains(['\\', '\'']) {
        out.push_str(&token.replace('\\', "\\\\").replace('\'', "''"));
    } else {
        out.push_str(token);
    }
    out.push('\'');
}

/// A token as a `tsvector`/`tsquery` lexeme literal (quoted; truncated if too long).
pub(crate) fn lexeme(token: &str) -> String {
    let mut out = String::with_capacity(token.len().min(MAX_LEXEME_BYTES) + 2);
    push_lexeme(&mut out, truncated(token));
    out
}

/// The lexemes of an indexed text ([`cortex_core::memory::bm25::index_text`]: tokens separated
/// by single spaces), [`truncated`], sorted by bytes and distinct (the order and uniqueness a
/// `tsvector` keeps), and the text's token count.
pub(crate) fn index_lexemes(body: &str) -> (usize, Vec<&str>) {
    let mut lexemes: Vec<&str> = body
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(truncated)
        .collect();
    let count = lexemes.len();
    lexemes.sort_unstable();
    lexemes.dedup();
    (count, lexemes)
}

/// The `tsvector` literal of `lexemes` (as [`index_lexemes`] gives them).
pub(crate) fn tsvector_text(lexemes: &[&str]) -> String {
    let mut tsv = String::with_capacity(lexemes.iter().map(|l| l.len() + 3).sum());
    for (i, t) in lexemes.iter().enumerate() {
        if i > 0 {
            tsv.push(' ');
        }
        push_lexeme(&mut tsv, t);
    }
    tsv
}

/// True if `raw`, a `tsvector` in PostgreSQL's binary send format (`i32` lexeme count, then
/// each lexeme as its bytes, a NUL, an `i16` position count and the positions), holds exactly
/// `lexemes` (as [`index_lexemes`] gives them) and no positions. Anything malformed is false.
pub(crate) fn tsvector_holds(raw: &[u8], lexemes: &[&str]) -> bool {
    let Some((count, mut rest)) = raw.split_first_chunk::<4>() else {
        return false;
    };
    if usize::try_from(i32::from_be_bytes(*count)).ok() != Some(lexemes.len()) {
        return false;
    }
    for want in lexemes {
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            return false;
        };
        if &rest[..end] != want.as_bytes() {
            return false;
        }
        match rest[end + 1..].split_first_chunk::<2>() {
            Some(([0, 0], after)) => rest = after,
            _ => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexemes_are_quoted() {
        assert_eq!(lexeme("it's"), "'it''s'");
        assert_eq!(lexeme("a\\b"), "'a\\\\b'");
        assert!(lexeme(&"é".repeat(2000)).len() <= MAX_LEXEME_BYTES + 2);
    }

    #[test]
    fn index_lexemes_are_sorted_distinct_and_counted() {
        let long = "y".repeat(3000);
        let body = format!("b a b {long} {long}z");
        let (n, l) = index_lexemes(&body);
        assert_eq!(n, 5);
        assert_eq!(l, ["a", "b", truncated(&long)]);
        assert_eq!(index_lexemes(""), (0, vec![]));
        assert_eq!(tsvector_text(&["a", "it's"]), "'a' 'it''s'");
    }

    #[test]
    fn binary_tsvectors_are_compared_exactly() {
        let raw = |lexemes: &[(&str, &[u16])]| {
            let mut b = (lexemes.len() as i32).to_be_bytes().to_vec();
            for (l, pos) in lexemes {
                b.extend_from_slice(l.as_bytes());
                b.push(0);
                b.extend_from_slice(&(pos.len() as u16).to_be_bytes());
                for p in *pos {
                    b.extend_from_slice(&p.to_be_bytes());
                }
            }
            b
        };
        assert!(tsvector_holds(&raw(&[("a", &[]), ("b", &[])]), &["a", "b"]));
        assert!(tsvector_holds(&raw(&[]), &[]));
        assert!(!tsvector_holds(&raw(&[("a", &[])]), &["a", "b"]));
        assert!(!tsvector_holds(
            &raw(&[("a", &[]), ("c", &[])]),
            &["a", "b"]
        ));
        assert!(!tsvector_holds(
            &raw(&[("a", &[1]), ("b", &[])]),
            &["a", "b"]
        ));
        let mut extra = raw(&[("a", &[])]);
        extra.push(7);
        assert!(!tsvector_holds(&extra, &["a"]));
        assert!(!tsvector_holds(&[0, 0], &[]));
    }
}
