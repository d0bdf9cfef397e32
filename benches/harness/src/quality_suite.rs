//! `cortex benchmark --suite search-quality --data DIR`: retrieval quality of the agent
//! memory's three search modes on a real corpus, Debian's man pages (`benches/search-quality/`,
//! built locally by `manpages.py`; the data is never committed).
//!
//! Every document (a man2/man3 page's DESCRIPTION, first 1,000 characters) is stored as a fact
//! of project `manpages` through [`AgentMemory::store_facts`] in batches of 64 (with the
//! embedder, if any, so vectors are computed at store time). Each query (the page's NAME line,
//! such as "terminate the calling process") is then searched in keyword, semantic and hybrid
//! mode, top 10, and scored against `qrels.tsv`:
//!
//! - recall@k: the fraction of the query's relevant documents in the top k;
//! - NDCG@10: binary gains, `1 / log2(rank + 1)` discount, ideal DCG over
//!   `min(relevant, 10)` documents;
//! - MRR@10: `1 / rank` of the first relevant document in the top 10 (0 if none);
//!
//! each averaged over all queries. A query the memory refuses for having no searchable words
//! counts as a miss (0 on every figure). Semantic and hybrid need an embedding model: without
//! one they are skipped, and the output says so. Each mode searches through its own freshly
//! built search index, so its latencies include embedding the query (the index caches query
//! embeddings, which would otherwise flatter whichever mode runs second). The figures also go
//! out as a Markdown table (mode by metric), to paste into docs.

use crate::{Report, num, percentile, rate};
use cortex_core::memory::SearchMode;
use cortex_core::memory::bm25::query_terms;
use cortex_core::{
    AgentMemory, DynStore, Embedder, Error, LedgerOptions, NewFact, Result, SearchQuery,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The project every document is stored in.
pub const PROJECT: &str = "manpages";
/// Facts per [`AgentMemory::store_facts`] call.
pub const STORE_BATCH: usize = 64;
/// Results asked of every search (the depth of every figure).
pub const TOP_K: usize = 10;

/// What the quality suite runs on.
pub struct QualitySuite<'a> {
    /// Directory holding corpus.jsonl, queries.jsonl, qrels.tsv (made by manpages.py).
    pub data: PathBuf,
    /// Opens a fresh empty store for the run (the caller decides backend/location).
    pub open: &'a dyn Fn() -> Result<DynStore>,
    /// The embedding model, if any (semantic and hybrid are skipped, and said so, without one).
    pub embedder: Option<Arc<dyn Embedder>>,
}

/// The benchmark's documents, queries and relevance judgments, by position.
#[derive(Debug)]
struct Dataset {
    /// (doc id, text), in file order.
    docs: Vec<(String, String)>,
    /// (query id, text, relevant doc positions), in file order.
    queries: Vec<(String, String, HashSet<usize>)>,
}

fn data_error(path: &Path, line: usize, what: impl Into<String>) -> Error {
    Error::invalid(what)
        .with_context("file", path.display())
        .with_context("line", line)
}

/// `(id, text)` of every line of a JSONL file of `{"id": …, "text": …}` objects.
fn read_jsonl(path: &Path) -> Result<Vec<(String, String)>> {
    let body = std::fs::read_to_string(path).map_err(|e| {
        Error::from(e)
            .with_context("file", path.display())
            .with_context(
                "hint",
                "make the data with python3 benches/search-quality/manpages.py DIR",
            )
    })?;
    let mut out = Vec::new();
    for (i, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| data_error(path, i + 1, format!("not JSON: {e}")))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| data_error(path, i + 1, format!("no string field {k:?}")))
        };
        out.push((field("id")?, field("text")?));
    }
    Ok(out)
}

/// Loads and cross-checks the three files in `dir`: unique ids, every judged document in the
/// corpus, every query judged.
fn load(dir: &Path) -> Result<Dataset> {
    let docs = read_jsonl(&dir.join("corpus.jsonl"))?;
    let queries = read_jsonl(&dir.join("queries.jsonl"))?;
    let mut doc_pos = HashMap::with_capacity(docs.len());
    for (i, (id, _)) in docs.iter().enumerate() {
        if doc_pos.insert(id.as_str(), i).is_some() {
            return Err(Error::invalid(format!(
                "corpus.jsonl: document id {id:?} twice"
            )));
        }
    }
    let path = dir.join("qrels.tsv");
    let body = std::fs::read_to_string(&path)
        .map_err(|e| Error::from(e).with_context("file", path.display()))?;
    let mut qrels: HashMap<String, HashSet<usize>> = HashMap::new();
    for (i, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [q, d, r] = f[..] else {
            return Err(data_error(
                &path,
                i + 1,
                "not query_id TAB doc_id TAB relevance",
            ));
        };
        let r: i64 = r
            .trim()
            .parse()
            .map_err(|_| data_error(&path, i + 1, format!("relevance {r:?} is not an integer")))?;
        if r <= 0 {
            continue;
        }
        let d = *doc_pos.get(d).ok_or_else(|| {
            data_error(
                &path,
                i + 1,
                format!("document {d:?} is not in corpus.jsonl"),
            )
        })?;
        qrels.entry(q.to_owned()).or_default().insert(d);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(queries.len());
    for (id, text) in queries {
        if !seen.insert(id.clone()) {
            return Err(Error::invalid(format!(
                "queries.jsonl: query id {id:?} twice"
            )));
        }
        let rel = qrels.remove(&id).ok_or_else(|| {
            Error::invalid(format!(
                "query {id:?} has no relevant document in qrels.tsv"
            ))
        })?;
        out.push((id, text, rel));
    }
    if let Some(q) = qrels.keys().next() {
        return Err(Error::invalid(format!(
            "qrels.tsv judges query {q:?}, which is not in queries.jsonl"
        )));
    }
    if docs.is_empty() || out.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no documents or no queries",
            dir.display()
        )));
    }
    Ok(Dataset { docs, queries: out })
}

/// The relevant documents among the first `k` of `ranked`, each counted once.
fn hits_at(ranked: &[usize], relevant: &HashSet<usize>, k: usize) -> usize {
    let top: HashSet<usize> = ranked.iter().take(k).copied().collect();
    top.iter().filter(|d| relevant.contains(d)).count()
}

/// Recall@k: the fraction of `relevant` found in the first `k` of `ranked` (0 when nothing is
/// relevant).
pub fn recall_at(ranked: &[usize], relevant: &HashSet<usize>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits_at(ranked, relevant, k) as f64 / relevant.len() as f64
}

/// NDCG@k with binary gains: DCG = sum over the first `k` of `ranked` of `1 / log2(rank + 1)`
/// for each relevant document (rank from 1; a repeat counts once), divided by the DCG of an
/// ideal list of `min(relevant, k)` relevant documents (0 when nothing is relevant).
pub fn ndcg_at(ranked: &[usize], relevant: &HashSet<usize>, k: usize) -> f64 {
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let mut seen = HashSet::new();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, d)| relevant.contains(d) && seen.insert(**d))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    dcg / ideal
}

/// Reciprocal rank at k: `1 / rank` of the first relevant document among the first `k` of
/// `ranked` (rank from 1), 0 if there is none.
pub fn reciprocal_rank_at(ranked: &[usize], relevant: &HashSet<usize>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| relevant.contains(d))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// One mode's figures, averaged over the queries.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// Mean recall@5.
    pub recall5: f64,
    /// Mean recall@10.
    pub recall10: f64,
    /// Mean NDCG@10.
    pub ndcg10: f64,
    /// Mean reciprocal rank at 10.
    pub mrr10: f64,
}

impl Scores {
    /// The figures of one ranked list (a refused query is an empty list: all zero).
    pub fn of(ranked: &[usize], relevant: &HashSet<usize>) -> Scores {
        Scores {
            recall5: recall_at(ranked, relevant, 5),
            recall10: recall_at(ranked, relevant, 10),
            ndcg10: ndcg_at(ranked, relevant, 10),
            mrr10: reciprocal_rank_at(ranked, relevant, 10),
        }
    }

    /// The mean of `all` (zero if empty).
    pub fn mean(all: &[Scores]) -> Scores {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&Scores) -> f64| all.iter().map(f).sum::<f64>() / n;
        Scores {
            recall5: sum(|s| s.recall5),
            recall10: sum(|s| s.recall10),
            ndcg10: sum(|s| s.ndcg10),
            mrr10: sum(|s| s.mrr10),
        }
    }

    fn rows(&self) -> [(&'static str, f64); 4] {
        [
            ("recall@5", self.recall5),
            ("recall@10", self.recall10),
            ("NDCG@10", self.ndcg10),
            ("MRR@10", self.mrr10),
        ]
    }
}

/// One mode's run: its figures, queries refused (no searchable words), search latencies (ms).
struct ModeRun {
    scores: Scores,
    refused: usize,
    latency_ms: Vec<f64>,
}

fn run_mode(
    memory: &AgentMemory,
    data: &Dataset,
    doc_of: &HashMap<u64, usize>,
    mode: SearchMode,
) -> Result<ModeRun> {
    let mut per_query = Vec::with_capacity(data.queries.len());
    let mut refused = 0;
    let mut latency_ms = Vec::with_capacity(data.queries.len());
    for (id, text, relevant) in &data.queries {
        let q = SearchQuery {
            mode: Some(mode),
            top_k: Some(TOP_K),
            ..SearchQuery::new(text.as_str())
        };
        let t = Instant::now();
        let ranked: Vec<usize> = match memory.search(&q) {
            Ok(hits) => {
                latency_ms.push(t.elapsed().as_secs_f64() * 1e3);
                hits.iter()
                    .map(|h| {
                        doc_of.get(&h.fact.id).copied().ok_or_else(|| {
                            Error::integrity(format!(
                                "search returned fact {}, which the suite did not store \
                                 (the store was not empty?)",
                                h.fact.id
                            ))
                        })
                    })
                    .collect::<Result<_>>()?
            }
            // Only the refusal of a query with no words is a miss; anything else is a failure.
            Err(_) if query_terms(text).is_empty() => {
                refused += 1;
                Vec::new()
            }
            Err(e) => {
                return Err(e
                    .with_context("query", id)
                    .with_context("mode", mode.as_str()));
            }
        };
        per_query.push(Scores::of(&ranked, relevant));
    }
    Ok(ModeRun {
        scores: Scores::mean(&per_query),
        refused,
        latency_ms,
    })
}

/// Runs the suite, recording every figure in `b`.
pub fn run(a: &QualitySuite<'_>, b: &mut Report) -> Result<()> {
    let data = load(&a.data)?;
    let store = (a.open)()?;
    store.migrate()?;
    if store.head()?.size != 0 {
        return Err(Error::invalid(
            "the quality suite needs an empty store: its figures count every fact found",
        ));
    }
    let scheme = store.scheme();
    let model = a
        .embedder
        .as_ref()
        .map_or("none".to_owned(), |e| e.model_id().to_owned());
    let judged: usize = data.queries.iter().map(|q| q.2.len()).sum();
    b.note(&format!(
        "CORTEX retrieval quality: {} ({} documents, {} queries, {} judgments), store {scheme}, \
         embedding model {model}, top {TOP_K}",
        a.data.display(),
        num(data.docs.len() as u64),
        num(data.queries.len() as u64),
        num(judged as u64),
    ));
    let mut memory = AgentMemory::open(store, LedgerOptions::default())?;
    if let Some(e) = &a.embedder {
        memory = memory.with_embedder(e.clone());
    }

    // Store every document; the fact ids map results back to document ids.
    let mut doc_of = HashMap::with_capacity(data.docs.len());
    let t = Instant::now();
    for (chunk_no, chunk) in data.docs.chunks(STORE_BATCH).enumerate() {
        let facts: Vec<NewFact> = chunk
            .iter()
            .map(|(_, text)| NewFact::new(PROJECT, text.as_str()))
            .collect();
        let stored = memory.store_facts(&facts)?;
        for (i, f) in stored.facts.iter().enumerate() {
            doc_of.insert(f.id, chunk_no * STORE_BATCH + i);
        }
    }
    let stored_rate = rate(data.docs.len() as u64, t);
    let store_secs = t.elapsed().as_secs_f64();
    b.report(
        &format!("store documents, batches of {STORE_BATCH}"),
        stored_rate,
        "facts/s",
        "",
        None,
        format!(
            "{} facts in {store_secs:.1} s{}",
            num(data.docs.len() as u64),
            if a.embedder.is_some() {
                ", embedding included"
            } else {
                ", no embedding"
            }
        ),
    );
    // Each mode searches through a handle of its own: a fresh in-memory index (built, and the
    // stored vectors loaded, before any search is timed), so no mode finds the query
    // embeddings an earlier one cached and the latencies include embedding the query.
    let searcher = |label: &str, b: &Report| -> Result<AgentMemory> {
        let Some(e) = &a.embedder else {
            return Ok(memory.clone());
        };
        let m = AgentMemory::new(memory.store().clone(), memory.ledger().clone())?
            .with_embedder(e.clone());
        let t = Instant::now();
        m.warm_up()?;
        b.note(&format!(
            "  {label}: search index built in {:.2} s",
            t.elapsed().as_secs_f64()
        ));
        Ok(m)
    };

    let modes = [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ];
    let mut results: Vec<(SearchMode, Option<Scores>)> = Vec::new();
    for mode in modes {
        if mode != SearchMode::Keyword && a.embedder.is_none() {
            b.note(&format!(
                "  {} search: skipped (no embedding model)",
                mode.as_str()
            ));
            results.push((mode, None));
            continue;
        }
        let mut r = run_mode(&searcher(mode.as_str(), b)?, &data, &doc_of, mode)?;
        let n = data.queries.len();
        let refused = if r.refused > 0 {
            format!(
                ", {} refused (no searchable words) counted as misses",
                r.refused
            )
        } else {
            String::new()
        };
        for (metric, value) in r.scores.rows() {
            b.report(
                &format!("{} {metric}", mode.as_str()),
                value,
                "",
                "",
                None,
                format!("{value:.4} over {} queries{refused}", num(n as u64)),
            );
        }
        if !r.latency_ms.is_empty() {
            let answered = r.latency_ms.len();
            let mean = r.latency_ms.iter().sum::<f64>() / answered as f64;
            let (p50, p99) = (
                percentile(&mut r.latency_ms, 0.5),
                percentile(&mut r.latency_ms, 0.99),
            );
            b.report(
                &format!("{} search, top {TOP_K} (p50)", mode.as_str()),
                p50,
                "ms",
                "",
                None,
                format!(
                    "mean {mean:.2} ms, p99 {p99:.2} ms, {} queries{}",
                    num(answered as u64),
                    if mode == SearchMode::Keyword {
                        ""
                    } else {
                        ", embedding each query included"
                    }
                ),
            );
        }
        results.push((mode, Some(r.scores)));
    }

    let get = |m: SearchMode| results.iter().find(|r| r.0 == m).and_then(|r| r.1);
    match (get(SearchMode::Hybrid), get(SearchMode::Keyword)) {
        (Some(h), Some(k)) => {
            let diff = h.ndcg10 - k.ndcg10;
            b.report(
                "hybrid NDCG@10 − keyword NDCG@10",
                diff,
                "",
                "> 0",
                Some(diff > 0.0),
                format!("{:.4} − {:.4} = {diff:+.4}", h.ndcg10, k.ndcg10),
            );
        }
        _ => b.note("  hybrid NDCG@10 − keyword NDCG@10: skipped (no embedding model)"),
    }
    b.note(&markdown_table(&results));
    Ok(())
}

/// The figures as a Markdown table, mode by metric (a skipped mode says so).
fn markdown_table(results: &[(SearchMode, Option<Scores>)]) -> String {
    let mut s = String::from(
        "\n| mode | recall@5 | recall@10 | NDCG@10 | MRR@10 |\n|---|---:|---:|---:|---:|\n",
    );
    for (mode, scores) in results {
        match scores {
            Some(x) => s.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
                mode.as_str(),
                x.recall5,
                x.recall10,
                x.ndcg10,
                x.mrr10
            )),
            None => s.push_str(&format!(
                "| {} | skipped: no embedding model | | | |\n",
                mode.as_str()
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::{HashEmbedder, InMemoryStore};

    fn set(v: &[usize]) -> HashSet<usize> {
        v.iter().copied().collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // Relevant: 1, 2 (ranks 2 and 4) and 10 (not retrieved).
        let ranked = [3, 1, 7, 2, 9, 4, 5, 6, 8, 0, 10];
        let rel = set(&[1, 2, 10]);
        assert!(close(recall_at(&ranked, &rel, 1), 0.0));
        assert!(close(recall_at(&ranked, &rel, 2), 1.0 / 3.0));
        assert!(close(recall_at(&ranked, &rel, 5), 2.0 / 3.0));
        // 10 is at rank 11: outside the top 10.
        assert!(close(recall_at(&ranked, &rel, 10), 2.0 / 3.0));
        assert!(close(recall_at(&ranked, &rel, 11), 1.0));
        // DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3) + 1/log2(4).
        let dcg = 0.630_929_753_571_457_4 + 0.430_676_558_073_393;
        let ideal = 1.0 + 0.630_929_753_571_457_4 + 0.5;
        assert!(close(ndcg_at(&ranked, &rel, 10), dcg / ideal));
        assert!((ndcg_at(&ranked, &rel, 10) - 0.498_189_257_466).abs() < 1e-6);
        assert!(close(reciprocal_rank_at(&ranked, &rel, 10), 0.5));
        assert!(close(reciprocal_rank_at(&ranked, &rel, 1), 0.0));
        let s = Scores::of(&ranked, &rel);
        assert!(close(s.recall5, 2.0 / 3.0) && close(s.mrr10, 0.5));

        // A perfect single answer, and a miss.
        let one = set(&[4]);
        assert_eq!(
            Scores::of(&[4, 1, 2], &one),
            Scores {
                recall5: 1.0,
                recall10: 1.0,
                ndcg10: 1.0,
                mrr10: 1.0
            }
        );
        assert_eq!(Scores::of(&[], &one), Scores::default());
        assert_eq!(Scores::of(&[1, 2, 3], &one), Scores::default());
        // The relevant one at rank 3 only: 1/log2(4) = 0.5.
        assert!(close(ndcg_at(&[1, 2, 4], &one, 10), 0.5));
        assert!(close(reciprocal_rank_at(&[1, 2, 4], &one, 10), 1.0 / 3.0));

        // Twenty relevant, the top 10 all relevant: ideal DCG is capped at 10, so NDCG is 1
        // while recall is 0.5.
        let many: HashSet<usize> = (0..20).collect();
        let top: Vec<usize> = (0..10).collect();
        assert!(close(ndcg_at(&top, &many, 10), 1.0));
        assert!(close(recall_at(&top, &many, 10), 0.5));

        // Two relevant, found at ranks 1 and 3: (1 + 0.5) / (1 + 1/log2(3)).
        let two = set(&[7, 8]);
        assert!(close(
            ndcg_at(&[7, 0, 8], &two, 10),
            1.5 / (1.0 + 0.630_929_753_571_457_4)
        ));
        // A repeated hit counts once.
        assert!(close(recall_at(&[7, 7], &two, 10), 0.5));
        assert!(close(
            ndcg_at(&[7, 7], &two, 10),
            1.0 / (1.0 + 0.630_929_753_571_457_4)
        ));

        let mean = Scores::mean(&[Scores::of(&[4], &one), Scores::default()]);
        assert!(close(mean.ndcg10, 0.5) && close(mean.recall5, 0.5));
    }

    /// A scratch directory under the system's temporary one, removed on drop.
    fn scratch(name: &str) -> crate::Cleanup {
        let dir = std::env::temp_dir().join(format!(
            "cortex-quality-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        crate::Cleanup(dir)
    }

    fn write_tiny(dir: &Path) {
        let docs = [
            (
                "man2/open.2",
                "open and possibly create a file descriptor for a pathname",
            ),
            (
                "man2/close.2",
                "close a file descriptor so that it no longer refers to any file",
            ),
            (
                "man3/printf.3",
                "formatted output conversion to standard output stream",
            ),
            (
                "man3/dprintf.3",
                "formatted output conversion to a file descriptor",
            ),
        ];
        let corpus: String = docs
            .iter()
            .map(|(id, t)| format!("{}\n", serde_json::json!({"id": id, "text": t})))
            .collect();
        std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(
            dir.join("queries.jsonl"),
            concat!(
                "{\"id\": \"q:man2/close.2\", \"text\": \"close a file descriptor\"}\n",
                "{\"id\": \"q:man3/dprintf.3\", \"text\": \"formatted output conversion\"}\n",
                "{\"id\": \"q:none\", \"text\": \"?? --\"}\n",
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("qrels.tsv"),
            "q:man2/close.2\tman2/close.2\t1\nq:man3/dprintf.3\tman3/printf.3\t1\n\
             q:man3/dprintf.3\tman3/dprintf.3\t1\nq:none\tman2/open.2\t1\nq:none\tman2/close.2\t0\n",
        )
        .unwrap();
    }

    fn row_names(b: &Report) -> Vec<String> {
        b.rows
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_tiny_run_reports_every_figure() {
        let dir = scratch("tiny");
        write_tiny(&dir.0);
        let open = || -> Result<DynStore> { Ok(Arc::new(InMemoryStore::new())) };
        let mut b = Report::new(true);
        run(
            &QualitySuite {
                data: dir.0.clone(),
                open: &open,
                embedder: Some(Arc::new(HashEmbedder::new(64))),
            },
            &mut b,
        )
        .unwrap();
        let names = row_names(&b);
        for mode in ["keyword", "semantic", "hybrid"] {
            for m in ["recall@5", "recall@10", "NDCG@10", "MRR@10"] {
                assert!(
                    names.contains(&format!("{mode} {m}")),
                    "{mode} {m}: {names:?}"
                );
            }
            assert!(
                names.contains(&format!("{mode} search, top 10 (p50)")),
                "{names:?}"
            );
        }
        let diff = b
            .rows
            .iter()
            .find(|r| r["name"] == "hybrid NDCG@10 − keyword NDCG@10")
            .unwrap();
        assert_eq!(diff["bar"], "> 0");
        assert!(diff["met"].is_boolean());
        // Three queries, one refused (no words): every recall is at most 2/3.
        let r10 = b
            .rows
            .iter()
            .find(|r| r["name"] == "keyword recall@10")
            .unwrap();
        let v = r10["value"].as_f64().unwrap();
        assert!(v > 0.0 && v <= 2.0 / 3.0 + 1e-9, "{v}");
        assert!(
            r10["detail"].as_str().unwrap().contains("1 refused"),
            "{r10}"
        );
        let keyword = |b: &Report| -> Vec<f64> {
            b.rows
                .iter()
                .filter(|r| r["name"].as_str().unwrap().starts_with("keyword") && r["unit"] == "")
                .map(|r| r["value"].as_f64().unwrap())
                .collect()
        };
        let with_model = keyword(&b);

        // Without a model: keyword only (the same figures: the store's own search ranks as the
        // in-memory index does), and no difference row.
        let mut b = Report::new(true);
        run(
            &QualitySuite {
                data: dir.0.clone(),
                open: &open,
                embedder: None,
            },
            &mut b,
        )
        .unwrap();
        let names = row_names(&b);
        assert!(names.contains(&"keyword NDCG@10".to_owned()));
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("semantic") || n.starts_with("hybrid")),
            "{names:?}"
        );
        assert_eq!(keyword(&b), with_model);
    }

    #[test]
    fn bad_data_is_refused_with_the_file_named() {
        let dir = scratch("bad");
        let open = || -> Result<DynStore> { Ok(Arc::new(InMemoryStore::new())) };
        let suite = QualitySuite {
            data: dir.0.clone(),
            open: &open,
            embedder: None,
        };
        let e = run(&suite, &mut Report::new(true)).unwrap_err();
        assert!(e.to_string().contains("corpus.jsonl"), "{e}");
        write_tiny(&dir.0);
        std::fs::write(dir.0.join("qrels.tsv"), "q:man2/close.2\tman9/nope\t1\n").unwrap();
        let e = run(&suite, &mut Report::new(true)).unwrap_err();
        assert!(e.to_string().contains("man9/nope"), "{e}");
        std::fs::write(dir.0.join("qrels.tsv"), "q:man2/close.2\tman2/close.2\t1\n").unwrap();
        let e = run(&suite, &mut Report::new(true)).unwrap_err();
        assert!(e.to_string().contains("no relevant document"), "{e}");
    }
}
