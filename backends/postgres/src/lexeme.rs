//! Tokens as Postgres full-text lexemes: truncated to what a `tsvector` accepts and quoted, for
//! the search query and for the rows `COPY` writes.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexemes_are_quoted() {
        assert_eq!(lexeme("it's"), "'it''s'");
        assert_eq!(lexeme("a\\b"), "'a\\\\b'");
        assert!(lexeme(&"é".repeat(2000)).len() <= MAX_LEXEME_BYTES + 2);
    }
}
