//! Semantic and hybrid search over a store's vectors: what the vectors table must keep, lose and
//! give back, checked with the test embedder (no model files).

use super::{fact, open_memory};
use crate::embed::{Embedder, HashEmbedder};
use crate::error::ErrorKind;
use crate::memory::store::DynStore;
use crate::memory::{AgentMemory, SearchMode, SearchQuery};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test embedder, counting the texts it embeds.
struct Counting {
    inner: HashEmbedder,
    texts: AtomicUsize,
}

impl Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn embed(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts)
    }
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: HashEmbedder::new(128),
        texts: AtomicUsize::new(0),
    })
}

fn ids(m: &AgentMemory, q: SearchQuery) -> Vec<u64> {
    m.search(&q)
        .unwrap()
        .into_iter()
        .map(|h| h.fact.id)
        .collect()
}

fn mode(query: &str, mode: SearchMode) -> SearchQuery {
    SearchQuery {
        mode: Some(mode),
        ..SearchQuery::new(query)
    }
}

/// Stored facts get vectors at store time; semantic and hybrid search rank by them under the
/// keyword filters; a new process reads the vectors rather than embedding again; facts stored
/// without a model are embedded (once) when a model is there; erasing a fact deletes its vector;
/// semantic search without a model says how to get one.
pub fn semantic_search_keeps_vectors(store: DynStore) {
    let plain = open_memory(&store);
    let e = counting();
    let m = plain.clone().with_embedder(e.clone());
    assert_eq!(m.mode(), SearchMode::Hybrid);
    assert_eq!(plain.mode(), SearchMode::Keyword);
    let stored = m
        .store_facts(&[
            fact("a", "dark mode editor theme"),
            fact("a", "quarterly tax forms due"),
            fact("b", "dark mode terminal colors"),
        ])
        .unwrap();
    let [dark, tax, term] = [0, 1, 2].map(|i| stored.facts[i].id);
    assert_eq!(
        e.texts.load(Ordering::SeqCst),
        3,
        "embedded once, at store time"
    );
    let model = e.model_id();
    let kept = store.vectors(model, &[dark, tax, term]).unwrap();
    assert_eq!(kept.len(), 3, "every stored fact has a vector");
    assert!(store.vectors("another/model", &[dark]).unwrap().is_empty());

    // Ranking: the closest fact first; filters as in keyword search.
    let sem = ids(&m, mode("editor theme dark", SearchMode::Semantic));
    assert_eq!(sem[0], dark);
    assert_eq!(sem.len(), 3, "semantic search ranks every fact");
    let only_b = ids(
        &m,
        SearchQuery {
            project: Some("b".into()),
            ..mode("editor theme dark", SearchMode::Semantic)
        },
    );
    assert_eq!(only_b, [term]);
    let hybrid = ids(&m, SearchQuery::new("dark mode"));
    assert_eq!(hybrid.len(), 3);
    assert!(hybrid[..2].contains(&dark) && hybrid[..2].contains(&term));
    assert_eq!(ids(&m, mode("dark mode", SearchMode::Keyword)).len(), 2);
    m.deprecate(term, None).unwrap();
    assert!(!ids(&m, mode("dark", SearchMode::Semantic)).contains(&term));

    // Another process with the model: reads the vectors, embeds only the query.
    let e2 = counting();
    let m2 = open_memory(&store).with_embedder(e2.clone());
    assert_eq!(
        ids(&m2, mode("editor theme dark", SearchMode::Semantic))[0],
        dark
    );
    assert_eq!(
        e2.texts.load(Ordering::SeqCst),
        1,
        "only the query was embedded"
    );
    // The query's embedding is cached.
    ids(&m2, mode("editor theme dark", SearchMode::Semantic));
    assert_eq!(e2.texts.load(Ordering::SeqCst), 1);

    // A fact stored with no model is embedded when a model next searches, and written back.
    let late = plain
        .store_fact(&fact("a", "editor font size"))
        .unwrap()
        .facts[0]
        .id;
    assert!(store.vectors(model, &[late]).unwrap().is_empty());
    assert!(ids(&m2, mode("editor font", SearchMode::Semantic)).contains(&late));
    assert_eq!(store.vectors(model, &[late]).unwrap().len(), 1);
    let n = e2.texts.load(Ordering::SeqCst);
    let m3 = open_memory(&store).with_embedder(counting());
    assert_eq!(
        m3.embed_missing(&mut |_, _| {}).unwrap(),
        0,
        "nothing left to embed"
    );
    assert_eq!(e2.texts.load(Ordering::SeqCst), n);

    // Erasure takes the vector with the content, here and in every index.
    m.forget(dark, "test").unwrap();
    assert!(store.vectors(model, &[dark]).unwrap().is_empty());
    store.put_vectors(model, &[(dark, vec![0.5; 128])]).unwrap();
    assert!(
        store.vectors(model, &[dark]).unwrap().is_empty(),
        "an erased fact takes no vector"
    );
    for mem in [&m, &m2] {
        assert!(!ids(mem, mode("editor theme dark", SearchMode::Semantic)).contains(&dark));
    }

    // No model: a clear refusal, keyword still works.
    let err = plain
        .search(&mode("dark", SearchMode::Semantic))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("cortex models install"), "{err}");
    assert_eq!(ids(&plain, SearchQuery::new("tax")), [tax]);
}
