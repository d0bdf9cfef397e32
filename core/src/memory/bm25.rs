//! BM25 ranking, store-agnostic: the tokenizer, the scoring formula, and an in-memory inverted
//! index ([`Bm25Index`]) that [`crate::in_memory::InMemoryStore`] uses and a key-value backend can reuse.
//!
//! Every backend must rank the same way, so the rules are fixed here (and in docs/FORMATS.md):
//!
//! - **Tokens** ([`tokens`], version [`TOKENIZER_VERSION`]): the text is folded (when it is not
//!   pure ASCII: Unicode compatibility decomposition, NFKD, then every combining mark removed, so
//!   `Café` and `cafe`, `ﬁ` and `fi`, `①` and `1` are the same), split into maximal runs of
//!   alphanumeric characters (Unicode `Alphabetic` or `Numeric`; everything else separates
//!   tokens), each run lowercased (full Unicode lowercase), and each run made only of ASCII
//!   letters stemmed with the Snowball English (Porter 2) stemmer (`prefers` → `prefer`,
//!   `running` → `run`). No stop words.
//! - **Indexed text** of a fact: the tokens of its content followed by the tokens of its tags
//!   ([`index_text`] joins them with single spaces, so an engine with a plain whitespace
//!   tokenizer, such as SQLite FTS5's `ascii`, sees exactly these tokens).
//! - **Query**: its distinct tokens in order of first appearance; a fact matches if it contains
//!   any of them.
//! - **Score** (Okapi BM25 with Lucene's idf, which never vanishes: a word in most facts still
//!   counts a little, where the classic idf would make it worthless or negative), over all
//!   indexed facts (every project, deprecated ones included):
//!   `score(D) = Σ_t idf(t) · f(t,D)·(k1+1) / (f(t,D) + k1·(1 − b + b·|D|/avgdl))`, with
//!   `k1 = 1.2`, `b = 0.75`, `idf(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))`, `N` the number
//!   of indexed facts, `n(t)` those containing `t`, `|D|` the fact's token count and `avgdl` the
//!   mean token count. Terms are summed from zero in query order.
//! - **Order**: score descending, then fact id descending (newer first).
//!
//! Engines that find candidates with their own index (SQLite FTS5, Postgres `tsvector`) score
//! them with [`Candidates`], so every backend returns the same scores, bit for bit.

use std::collections::HashMap;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalization.
pub const B: f64 = 0.75;
/// The version of the [`tokens`] rules. A backend that keeps indexed text records the version it
/// was made with and re-derives the text when it differs.
pub const TOKENIZER_VERSION: u32 = 2;

fn stemmer() -> &'static rust_stemmers::Stemmer {
    static STEMMER: OnceLock<rust_stemmers::Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English))
}

/// Distinct words a thread keeps the stems of. Words repeat (a memory's vocabulary is small next
/// to its token count), and the Snowball stemmer costs more than a lookup: indexing a fact or
/// verifying its index text stems each of its words. Full, the cache starts over, so a thread
/// holds at most a few hundred KB whatever text it sees.
const STEM_CACHE_WORDS: usize = 4096;

thread_local! {
    static STEMS: std::cell::RefCell<StemCache> = std::cell::RefCell::default();
}

#[derive(Default)]
struct StemCache {
    stems: HashMap<Box<str>, Box<str>>,
    /// The token being made, lowercased (reused, so an ASCII word costs no allocation).
    lower: String,
}

impl StemCache {
    /// The stem of `word` (ASCII lowercase letters only).
    fn stem(&mut self, word: &str) -> &str {
        if !self.stems.contains_key(word) {
            if self.stems.len() >= STEM_CACHE_WORDS {
                self.stems.clear();
            }
            let stem = stemmer().stem(word).into_owned().into_boxed_str();
            self.stems.insert(word.into(), stem);
        }
        &self.stems[word]
    }
}

/// Calls `f` with each token of `text`, folded, lowercased and stemmed as the module docs say,
/// in order. The thread's stem cache is borrowed meanwhile, so `f` must not tokenize.
fn each_token(text: &str, f: &mut dyn FnMut(&str)) {
    let folded;
    let text = if text.is_ascii() {
        text
    } else {
        folded = text
            .nfkd()
            .filter(|c| !is_combining_mark(*c))
            .collect::<String>();
        folded.as_str()
    };
    STEMS.with_borrow_mut(|cache| {
        for t in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
        {
            let mut lower = std::mem::take(&mut cache.lower);
            lower.clear();
            if t.is_ascii() {
                lower.extend(t.bytes().map(|b| char::from(b.to_ascii_lowercase())));
            } else {
                // Full Unicode lowercase of the whole run (a final sigma depends on its place).
                lower.push_str(&t.to_lowercase());
            }
            if lower.bytes().all(|b| b.is_ascii_lowercase()) {
                f(cache.stem(&lower));
            } else {
                f(&lower);
            }
            cache.lower = lower;
        }
    });
}

/// The tokens of `text`, folded, lowercased and stemmed as the module docs say, in order.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_token(text, &mut |t| out.push(t.to_owned()));
    out
}

/// The text a backend indexes for a fact: its content's and tags' tokens joined by spaces.
pub fn index_text(content: &str, tags: &[String]) -> String {
    let mut out = String::with_capacity(content.len() + 16);
    let mut push = |t: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    };
    each_token(content, &mut push);
    for t in tags {
        each_token(t, &mut push);
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

/// Inverse document frequency (Lucene's) of a term found in `containing` of `docs` documents.
pub fn idf(docs: u64, containing: u64) -> f64 {
    (1.0 + (docs as f64 - containing as f64 + 0.5) / (containing as f64 + 0.5)).ln()
}

/// One term's contribution to a document's score.
pub fn term_score(idf: f64, tf: u32, doc_len: u32, avg_len: f64) -> f64 {
    let tf = f64::from(tf);
    idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * f64::from(doc_len) / avg_len)))
}

/// Orders hits by score descending, then id descending.
fn hit_order(a: &(u64, f64), b: &(u64, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(b.0.cmp(&a.0))
}

/// Keeps the best `k` of `hits` (id, score), ordered by score descending, then id descending.
pub fn best_hits(hits: Vec<(u64, f64)>, k: usize) -> Vec<(u64, f64)> {
    best(hits, k)
}

/// Keeps the best `k` of `hits` in [`hit_order`].
fn best(mut hits: Vec<(u64, f64)>, k: usize) -> Vec<(u64, f64)> {
    if k == 0 {
        return Vec::new();
    }
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, hit_order);
        hits.truncate(k);
    }
    hits.sort_unstable_by(hit_order);
    hits
}

/// Scores the candidates an engine's own full-text index found for `terms`: every indexed fact
/// holding any term (all projects, deprecated ones included, so the document counts are right),
/// each with its indexed text and whether it passes the query's filters.
#[derive(Debug)]
pub struct Candidates<'a> {
    terms: &'a [String],
    df: Vec<u64>,
    tf: Vec<u32>,
    tfs: Vec<u32>,
    kept: Vec<(u64, u32)>,
}

impl<'a> Candidates<'a> {
    /// No candidates yet, for the distinct `terms` of [`query_terms`].
    pub fn new(terms: &'a [String]) -> Self {
        Candidates {
            terms,
            df: vec![0; terms.len()],
            tf: vec![0; terms.len()],
            tfs: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// One candidate: fact `id`, its [`index_text`] `body`, its token count (the engine's own
    /// when it keeps one, else `None` to count `body`'s) and whether it passes the filters.
    pub fn add(&mut self, id: u64, body: &str, doc_len: Option<u32>, passes: bool) {
        let Candidates { terms, tf, .. } = self;
        tf.fill(0);
        let mut len = 0u32;
        for tok in body.split(' ').filter(|t| !t.is_empty()) {
            len += 1;
            if let Some(i) = terms.iter().position(|t| t == tok) {
                tf[i] += 1;
            }
        }
        for (d, f) in self.df.iter_mut().zip(&self.tf) {
            *d += u64::from(*f > 0);
        }
        if passes && self.tf.iter().any(|f| *f > 0) {
            self.kept.push((id, doc_len.unwrap_or(len)));
            self.tfs.extend_from_slice(&self.tf);
        }
    }

    /// The best `k` candidates that pass the filters, scored against a collection of `docs`
    /// indexed facts holding `total_tokens` tokens, in score order.
    pub fn top_k(self, docs: u64, total_tokens: u64, k: usize) -> Vec<(u64, f64)> {
        if docs == 0 || self.terms.is_empty() {
            return Vec::new();
        }
        let avg = total_tokens as f64 / docs as f64;
        let idfs: Vec<Option<f64>> = self
            .df
            .iter()
            .map(|&n| (n > 0).then(|| idf(docs, n)))
            .collect();
        let hits = self
            .kept
            .iter()
            .zip(self.tfs.chunks_exact(self.terms.len()))
            .map(|(&(id, doc_len), tf)| {
                let mut score = 0.0f64;
                for (idf, &f) in idfs.iter().zip(tf) {
                    if let (Some(idf), true) = (idf, f > 0) {
                        score += term_score(*idf, f, doc_len, avg);
                    }
                }
                (id, score)
            })
            .collect();
        best(hits, k)
    }
}

/// Per-document score accumulators for a [`Bm25Index`]'s multi-term queries, all zero between
/// queries, kept for reuse rather than allocated and zeroed for every query (800 KB at 100,000
/// facts, its pages faulted in anew each time). At most
/// [`ScratchPool::KEEP`] are kept (the queries that run at once on a small machine); a query
/// finding none free allocates its own.
#[derive(Debug, Default)]
struct ScratchPool(std::sync::Mutex<Vec<Vec<f64>>>);

impl ScratchPool {
    const KEEP: usize = 4;

    /// A zeroed array of at least `n` accumulators.
    fn take(&self, n: usize) -> Vec<f64> {
        let mut v = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        if v.len() < n {
            v.resize(n, 0.0);
        }
        v
    }

    /// Gives back an array that is all zero again.
    fn put(&self, v: Vec<f64>) {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < Self::KEEP {
            pool.push(v);
        }
    }
}

impl Clone for ScratchPool {
    /// A clone starts with no arrays of its own.
    fn clone(&self) -> Self {
        ScratchPool::default()
    }
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
    scratch: ScratchPool,
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
        // Accumulate per document in query-term order, as Candidates does (same sums, same bits).
        let mut scores = self.scratch.take(self.ids.len());
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
        // Read out and zeroed before any caller code runs, so the array goes back clean
        // whatever `visit` does.
        let scored: Vec<(u32, f64)> = touched
            .into_iter()
            .map(|pos| (pos, std::mem::take(&mut scores[pos as usize])))
            .collect();
        self.scratch.put(scores);
        for (pos, s) in scored {
            visit(pos, s);
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
        best(hits, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_folds_lowercases_stems_and_splits_on_non_alphanumerics() {
        assert_eq!(
            tokens("Héllo, WORLD! x86_64 ünïcode—ok"),
            ["hello", "world", "x86", "64", "unicod", "ok"]
        );
        assert_eq!(
            index_text(
                "The user prefers dark themes",
                &["Editors".into(), "a-b".into()]
            ),
            "the user prefer dark theme editor a b"
        );
        assert_eq!(query_terms("cat CATS dog cat"), ["cat", "dog"]);
        // Folding: compatibility forms and accents; non-Latin scripts are lowercased only.
        assert_eq!(
            tokens("Café ﬁle ① ΣΟΦΊΑ İx"),
            ["cafe", "file", "1", "σοφια", "ix"]
        );
        assert_eq!(tokens("running ran runs"), ["run", "ran", "run"]);
        let mut ix = Bm25Index::new();
        ix.add(1, &index_text("İx", &[]));
        assert_eq!(ix.score(&query_terms("IX")).len(), 1);
    }

    #[test]
    fn stems_are_the_stemmers_own_whether_cached_or_not_and_the_cache_stays_bounded() {
        // Letter-only words (only those are stemmed), more than the cache keeps, with endings
        // the stemmer takes off; each pass over them must give the stemmer's own answer.
        let word = |i: usize| {
            let (mut w, mut k) = (String::from("x"), i);
            while k > 0 {
                w.push(char::from(b'a' + (k % 26) as u8));
                k /= 26;
            }
            w.push_str(["ing", "s", "ed", "ly", ""][i % 5]);
            w
        };
        let words: Vec<String> = (0..STEM_CACHE_WORDS * 2 + 7).map(word).collect();
        let want: Vec<String> = words
            .iter()
            .map(|w| stemmer().stem(w).into_owned())
            .collect();
        for pass in 0..3 {
            for (chunk, want) in words.chunks(50).zip(want.chunks(50)) {
                let text = chunk.join(" ").to_uppercase();
                assert_eq!(tokens(&text), want, "pass {pass}");
                assert_eq!(index_text(&text, &[]), want.join(" "), "pass {pass}");
            }
            let cached = STEMS.with_borrow(|c| c.stems.len());
            assert!(cached <= STEM_CACHE_WORDS, "{cached} words cached");
        }
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
        // "the" is in 3 of 4 documents: Lucene's idf keeps it small but positive (the classic
        // idf would be negative), and the shorter document still ranks first.
        let mut the = ix.score(&query_terms("the"));
        the.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert!(the.iter().all(|x| x.1 > 0.1 && x.1 < 1.0), "{the:?}");
        assert_eq!(the[0].0, 3);
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
        let idf = (1.0 + (3.0 - 1.0 + 0.5) / 1.5f64).ln();
        let want = idf * (2.0 * 2.2) / (2.0 + 1.2 * (0.25 + 0.75 * 3.0 / avg));
        assert_eq!(s.len(), 1);
        assert!((s[0].1 - want).abs() < 1e-12, "{} vs {want}", s[0].1);
    }
}

#[cfg(test)]
mod candidate_tests {
    use super::*;

    #[test]
    fn candidates_score_as_the_index_does() {
        let docs = [
            (1, "the cat sat on the mat"),
            (2, "the dog sat"),
            (3, "the cat"),
            (4, "a bird"),
        ];
        let mut ix = Bm25Index::new();
        for (id, d) in docs {
            ix.add(id, d);
        }
        let terms = query_terms("cat sat bird");
        let mut c = Candidates::new(&terms);
        // A candidate that fails the filters still counts in the document frequencies.
        for (id, d) in docs {
            c.add(id, d, None, id != 2);
        }
        let got = c.top_k(4, 13, 10);
        let want = ix.top_k(&terms, 10, &|pos| ix.id_at(pos) != 2);
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), [4, 1, 3]);
    }
}
