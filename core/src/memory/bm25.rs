//! BM25 ranking, store-agnostic: the tokenizer, the scoring formula, and an in-memory inverted
//! index ([`Bm25Index`]) that [`crate::in_memory::InMemoryStore`] uses and a key-value backend can reuse.
//!
//! Every backend must rank the same way, so the rules are fixed here:
//!
//! - **Tokens**: maximal runs of alphanumeric characters (Unicode `Alphabetic` or `Numeric`),
//!   lowercased (full Unicode lowercase). Everything else separates tokens. No stemming, no stop
//!   words, no diacritic folding.
//! - **Indexed text** of a fact: the tokens of its content followed by the tokens of its tags
//!   ([`index_text`] joins them with single spaces, so an engine with a plain whitespace
//!   tokenizer, such as SQLite FTS5's `ascii`, sees exactly these tokens).
//! - **Query**: its distinct tokens in order of first appearance; a fact matches if it contains
//!   any of them.
//! - **Score** (Okapi BM25 as SQLite FTS5's `bm25()` computes it, with the sign flipped so
//!   higher is better), over all indexed facts (every project, deprecated ones included):
//!   `score(D) = Σ_t idf(t) · f(t,D)·(k1+1) / (f(t,D) + k1·(1 − b + b·|D|/avgdl))`, with
//!   `k1 = 1.2`, `b = 0.75`, `idf(t) = ln((N − n(t) + 0.5) / (n(t) + 0.5))` replaced by `1e-6`
//!   when not positive, `N` the number of indexed facts, `n(t)` those containing `t`, `|D|` the
//!   fact's token count and `avgdl` the mean token count. Terms are summed in query order.
//! - **Order**: score descending, then fact id descending (newer first).

use std::collections::HashMap;

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalization.
pub const B: f64 = 0.75;

/// The tokens of `text`, lowercased, in order.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// The text a backend indexes for a fact: its content's and tags' tokens joined by spaces.
pub fn index_text(content: &str, tags: &[String]) -> String {
    let mut out = String::with_capacity(content.len() + 16);
    for t in tokens(content).chain(tags.iter().flat_map(|t| tokens(t))) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&t);
    }
    out
}

/// The distinct tokens of a query, in order of first appearance.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tokens(query) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Inverse document frequency of a term found in `containing` of `docs` documents.
pub fn idf(docs: u64, containing: u64) -> f64 {
    let v = ((docs as f64 - containing as f64 + 0.5) / (containing as f64 + 0.5)).ln();
    if v <= 0.0 { 1e-6 } else { v }
}

/// One term's contribution to a document's score.
pub fn term_score(idf: f64, tf: u32, doc_len: u32, avg_len: f64) -> f64 {
    let tf = f64::from(tf);
    // Parenthesized as SQLite's fts5_aux.c does, so both give the same bits.
    idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * f64::from(doc_len) / avg_len)))
}

/// One term's postings: document positions and term frequencies, side by side (6 bytes a
/// posting).
#[derive(Debug, Default, Clone)]
struct Postings {
    positions: Vec<u32>,
    freqs: Vec<u16>,
}

/// An in-memory inverted index over [`index_text`] tokens. Documents get dense positions in
/// the order they are added.
#[derive(Debug, Default, Clone)]
pub struct Bm25Index {
    postings: HashMap<String, Postings>,
    ids: Vec<u64>,
    lens: Vec<u32>,
    positions: HashMap<u64, u32>,
    total_tokens: u64,
    removed: usize,
}

impl Bm25Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed documents.
    pub fn len(&self) -> usize {
        self.ids.len() - self.removed
    }

    /// True if nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes document `id` out of the index (an erased fact): it no longer matches nor counts in
    /// the statistics. Returns false if it was not indexed. Costs a look-up in every posting
    /// list (erasures are rare).
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(pos) = self.positions.remove(&id) else {
            return false;
        };
        self.postings.retain(|_, p| {
            if let Ok(k) = p.positions.binary_search(&pos) {
                p.positions.remove(k);
                p.freqs.remove(k);
            }
            !p.positions.is_empty()
        });
        self.total_tokens -= u64::from(self.lens[pos as usize]);
        self.removed += 1;
        true
    }

    /// The dense position of document `id`.
    pub fn position(&self, id: u64) -> Option<u32> {
        self.positions.get(&id).copied()
    }

    /// The document at a dense position.
    pub fn id_at(&self, pos: u32) -> u64 {
        self.ids[pos as usize]
    }

    /// Indexes document `id` (ignored if already indexed) with `text` in [`index_text`] form:
    /// tokens separated by spaces, taken as they are (as SQLite's `ascii` tokenizer takes
    /// them). Returns its position.
    pub fn add(&mut self, id: u64, text: &str) -> u32 {
        if let Some(p) = self.positions.get(&id) {
            return *p;
        }
        let pos = u32::try_from(self.ids.len()).expect("fewer than 2^32 documents");
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut len = 0u32;
        for t in text.split(' ').filter(|t| !t.is_empty()) {
            *counts.entry(t.to_owned()).or_default() += 1;
            len += 1;
        }
        for (t, n) in counts {
            let p = self.postings.entry(t).or_default();
            p.positions.push(pos);
            // An entry is at most 65,535 bytes, so a term occurs fewer than 2^16 times.
            p.freqs.push(u16::try_from(n).unwrap_or(u16::MAX));
        }
        self.ids.push(id);
        self.lens.push(len);
        self.positions.insert(id, pos);
        self.total_tokens += u64::from(len);
        pos
    }

    /// Releases spare capacity (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        for p in self.postings.values_mut() {
            p.positions.shrink_to_fit();
            p.freqs.shrink_to_fit();
        }
        self.postings.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.lens.shrink_to_fit();
        self.positions.shrink_to_fit();
    }

    /// `(idf, postings)` of each of `terms` present in the index, in query order.
    fn lists<'a>(&'a self, terms: &[String]) -> Vec<(f64, &'a Postings)> {
        let n = self.len() as u64;
        terms
            .iter()
            .filter_map(|t| self.postings.get(t))
            .map(|l| (idf(n, l.positions.len() as u64), l))
            .collect()
    }

    /// Every document containing any of `terms` (distinct), with its score, unordered.
    pub fn score(&self, terms: &[String]) -> Vec<(u64, f64)> {
        let mut out = Vec::new();
        self.for_each_score(terms, &mut |pos, s| out.push((self.ids[pos as usize], s)));
        out
    }

    /// Calls `visit(position, score)` once for every document containing any of `terms`.
    fn for_each_score(&self, terms: &[String], visit: &mut dyn FnMut(u32, f64)) {
        if self.is_empty() {
            return;
        }
        let avg = self.total_tokens as f64 / self.len() as f64;
        let lists = self.lists(terms);
        if let [(idf, list)] = lists.as_slice() {
            for (&pos, &tf) in list.positions.iter().zip(&list.freqs) {
                visit(
                    pos,
                    0.0 + term_score(*idf, u32::from(tf), self.lens[pos as usize], avg),
                );
            }
            return;
        }
        // Accumulate per document in query-term order, as FTS5 does (same sums, same bits).
        let mut scores = vec![0.0f64; self.ids.len()];
        let mut touched = Vec::new();
        for (idf, list) in &lists {
            for (&pos, &tf) in list.positions.iter().zip(&list.freqs) {
                let s = &mut scores[pos as usize];
                if *s == 0.0 {
                    touched.push(pos);
                }
                *s += term_score(*idf, u32::from(tf), self.lens[pos as usize], avg);
            }
        }
        for pos in touched {
            visit(pos, scores[pos as usize]);
        }
    }

    /// The best `k` documents for `terms` among those `accept`ed (by position), ordered by
    /// score descending, then id descending.
    pub fn top_k(
        &self,
        terms: &[String],
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u64, f64)> {
        let mut hits: Vec<(u64, f64)> = Vec::new();
        self.for_each_score(terms, &mut |pos, s| {
            if accept(pos) {
                hits.push((self.ids[pos as usize], s));
            }
        });
        let order = |a: &(u64, f64), b: &(u64, f64)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
        if k == 0 {
            return Vec::new();
        }
        if hits.len() > k {
            hits.select_nth_unstable_by(k - 1, order);
            hits.truncate(k);
        }
        hits.sort_unstable_by(order);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_lowercases_and_splits_on_non_alphanumerics() {
        assert_eq!(
            tokens("Héllo, WORLD! x86_64 ünïcode—ok").collect::<Vec<_>>(),
            ["héllo", "world", "x86", "64", "ünïcode", "ok"]
        );
        assert_eq!(
            index_text("The cat", &["Pets".into(), "a-b".into()]),
            "the cat pets a b"
        );
        assert_eq!(query_terms("cat CAT dog cat"), ["cat", "dog"]);
        // Lowercasing may yield a non-alphanumeric mark; it stays inside its token.
        assert_eq!(index_text("İx", &[]), "i\u{307}x");
        let mut ix = Bm25Index::new();
        ix.add(1, &index_text("İx", &[]));
        assert_eq!(ix.score(&query_terms("İX")).len(), 1);
    }

    #[test]
    fn rarer_terms_and_shorter_documents_rank_higher() {
        let mut ix = Bm25Index::new();
        ix.add(1, "the cat sat on the mat");
        ix.add(2, "the dog sat");
        ix.add(3, "the cat");
        ix.add(4, "a bird");
        let mut s = ix.score(&query_terms("cat"));
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), [3, 1]);
        // "the" is in 3 of 4 documents: its idf is clamped to 1e-6.
        let the = ix.score(&query_terms("the"));
        assert!(the.iter().all(|x| x.1 < 1e-5));
        // A document with both terms beats one with either.
        let mut s = ix.score(&query_terms("cat sat"));
        s.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert_eq!(s[0].0, 1);
    }

    #[test]
    fn score_matches_the_formula() {
        let mut ix = Bm25Index::new();
        ix.add(1, "alpha beta beta");
        ix.add(2, "gamma");
        ix.add(3, "delta");
        let s = ix.score(&["beta".to_string()]);
        let avg = 5.0 / 3.0;
        let idf = ((3.0 - 1.0 + 0.5) / 1.5f64).ln();
        let want = idf * (2.0 * 2.2) / (2.0 + 1.2 * (0.25 + 0.75 * 3.0 / avg));
        assert_eq!(s.len(), 1);
        assert!((s[0].1 - want).abs() < 1e-12, "{} vs {want}", s[0].1);
    }
}
