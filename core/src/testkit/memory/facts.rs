//! Facts and search: facts read back exactly as stored, recall and project history, BM25
//! search with its filters, and the in-memory search index against the store's own search.

use super::{fact, open_memory};
use crate::error::ErrorKind;
use crate::memory::fact::{Fact, NewFact};
use crate::memory::store::{DynStore, ProjectSize};
use crate::memory::{AgentMemory, RecallQuery, SearchQuery};
use crate::testkit::sample_entries;

const PAST: &str = "2020-01-01T00:00:00.000000Z";
const FUTURE: &str = "2999-01-01T00:00:00.000000Z";

/// Facts read back exactly as stored; ids are ledger indices; recall keeps the current facts
/// of one project, by consensus then recency; project history keeps them all, newest first;
/// project sizes count every fact of each project.
pub fn facts_store_and_recall(store: DynStore) {
    let m = open_memory(&store);
    assert_eq!(m.project_sizes().unwrap(), [], "no fact, no project");
    m.ledger().append(&sample_entries(2)).unwrap();
    let full = NewFact {
        fact_type: Some("decision".into()),
        tags: vec!["db".into(), "ops".into()],
        confidence: Some(0.8),
        source: Some("https://example.com/adr/7".into()),
        valid_from: Some("2024-05-06T07:08:09+02:00".into()),
        valid_until: Some(FUTURE.into()),
        ..fact("p", "We use SQLite in WAL mode")
    };
    let s = m.store_fact(&full).unwrap();
    let f = &s.facts[0];
    assert_eq!(f.id, 2, "a fact's id is the index of its fact.store entry");
    assert_eq!(s.append.first_index, 2);
    assert_eq!(f.valid_from, "2024-05-06T05:08:09.000000Z");
    assert_eq!(f.tags, ["db", "ops"]);
    assert_eq!(f.created_at, m.ledger().entry(2).unwrap().entry.timestamp);
    assert_eq!(
        store.fact(2).unwrap().as_ref(),
        Some(f),
        "fact reads back as stored"
    );
    assert_eq!(store.fact(99).unwrap(), None);

    let batch = m
        .store_facts(&[
            fact("p", "second"),
            fact("q", "other project"),
            NewFact {
                valid_until: Some("2021-01-01".into()),
                valid_from: Some(PAST.into()),
                ..fact("p", "expired")
            },
            NewFact {
                valid_from: Some(FUTURE.into()),
                ..fact("p", "not yet valid")
            },
            fact("p", "third"),
        ])
        .unwrap();
    let ids: Vec<u64> = batch.facts.iter().map(|f| f.id).collect();
    assert_eq!(ids, [3, 4, 5, 6, 7], "a batch gets consecutive ids");
    assert_eq!(store.head().unwrap().size, 8);
    let now = crate::ledger::entry::now_timestamp();
    let names = |fs: Vec<Fact>| fs.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        names(store.recall(&recall_at("p", &now, 100)).unwrap()),
        [7, 3, 2],
        "recall: valid now, newest first when consensus ties"
    );
    m.vote(2, "alice", 1, Some("true")).unwrap();
    m.vote(7, "alice", -1, None).unwrap();
    assert_eq!(
        names(
            m.recall(&RecallQuery {
                limit: Some(100),
                ..RecallQuery::new("p")
            })
            .unwrap()
        ),
        [2, 3, 7],
        "recall orders by consensus first"
    );
    assert_eq!(
        names(
            m.recall(&RecallQuery {
                limit: Some(2),
                ..RecallQuery::new("p")
            })
            .unwrap()
        ),
        [2, 3],
        "recall limit"
    );
    m.deprecate(3, Some("superseded")).unwrap();
    assert_eq!(
        names(
            m.recall(&RecallQuery {
                limit: Some(100),
                ..RecallQuery::new("p")
            })
            .unwrap()
        ),
        [2, 7]
    );
    assert_eq!(
        names(
            store
                .recall(&recall_at("p", "2020-06-01T00:00:00.000000Z", 100))
                .unwrap()
        ),
        [5],
        "recall at another time sees the facts valid then"
    );
    assert_eq!(
        names(m.project_history("p", 100).unwrap()),
        [7, 6, 5, 3, 2],
        "project history: every fact, deprecated ones too, newest first"
    );
    assert_eq!(names(store.project_facts("p", 2).unwrap()), [7, 6]);
    let size = |project: &str, facts: u64| ProjectSize {
        project: project.into(),
        facts,
    };
    assert_eq!(
        store.project_sizes().unwrap(),
        [size("p", 5), size("q", 1)],
        "project sizes: facts only (not other entries), deprecated ones too, by name"
    );
    assert_eq!(names(store.project_facts("q", 10).unwrap()), [4]);
    assert!(
        store
            .recall(&recall_at("nobody", &now, 10))
            .unwrap()
            .is_empty()
    );
    let d = store.fact(3).unwrap().unwrap();
    assert!(d.deprecated_at.is_some());
    assert_eq!(d.deprecation_reason.as_deref(), Some("superseded"));
}

/// Search ranks by BM25 exactly as `bm25::Bm25Index` does, and filters by project, time,
/// deprecation and `top_k`.
pub fn search_ranks_and_filters(store: DynStore) {
    let m = open_memory(&store);
    let texts: [(&str, &str, &[&str]); 8] = [
        ("a", "The quick brown fox jumps over the lazy dog", &[]),
        ("a", "A fox", &[]),
        ("a", "Foxes are not FOX: fox fox", &["animals"]),
        ("b", "Dogs chase the fox around the yard", &[]),
        ("b", "Nothing to see here", &["fox"]),
        ("a", "Databases: SQLite, Postgres and redb", &["storage"]),
        ("a", "The lazy cat sleeps", &[]),
        ("b", "Ünïcode FÜCHSE und Füchse in İstanbul", &[]),
    ];
    let facts: Vec<NewFact> = texts
        .iter()
        .map(|(p, c, t)| NewFact {
            tags: t.iter().map(|s| s.to_string()).collect(),
            ..fact(p, c)
        })
        .collect();
    m.store_facts(&facts).unwrap();
    let mut ix = crate::memory::bm25::Bm25Index::new();
    for (i, (_, c, t)) in texts.iter().enumerate() {
        let tags: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        ix.add(i as u64, &crate::memory::bm25::index_text(c, &tags));
    }
    for q in [
        "fox",
        "lazy dog",
        "FOX storage",
        "füchse",
        "the",
        "sqlite redb",
        "İSTANBUL",
    ] {
        let mut want = ix.score(&crate::memory::bm25::query_terms(q));
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        let got = m.search(&SearchQuery::new(q)).unwrap();
        assert_eq!(
            got.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            want.iter().map(|w| w.0).collect::<Vec<_>>(),
            "ranking of {q:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.1).abs() <= 1e-9 * w.1.abs().max(1.0),
                "score of fact {} for {q:?}: {} vs {}",
                g.fact.id,
                g.score,
                w.1
            );
        }
    }
    let ids = |q: SearchQuery| {
        m.search(&q)
            .unwrap()
            .into_iter()
            .map(|h| h.fact.id)
            .collect::<Vec<_>>()
    };
    let top = ids(SearchQuery::new("fox"));
    assert_eq!(top[0], 2, "the fact saying fox four times ranks first");
    assert!(top.contains(&4), "tags are searchable");
    assert!(ids(SearchQuery::new("zebra")).is_empty());
    assert_eq!(
        ids(SearchQuery::new("İstanbul")),
        [7],
        "case and diacritics fold"
    );
    assert_eq!(ids(SearchQuery::new("istanbul")), [7], "diacritics fold");
    assert_eq!(ids(SearchQuery::new("FUCHSE")), [7], "umlauts fold");
    assert_eq!(
        ids(SearchQuery::new("databases")),
        [5],
        "plural and singular meet (stemming)"
    );
    assert_eq!(
        ids(SearchQuery {
            top_k: Some(2),
            ..SearchQuery::new("fox")
        }),
        top[..2]
    );
    let only_b = ids(SearchQuery {
        project: Some("b".into()),
        ..SearchQuery::new("fox")
    });
    assert_eq!(only_b, [4, 3], "project filter");
    m.deprecate(2, None).unwrap();
    assert!(
        !ids(SearchQuery::new("fox")).contains(&2),
        "deprecated facts are excluded"
    );
    assert!(
        ids(SearchQuery {
            include_deprecated: true,
            ..SearchQuery::new("fox")
        })
        .contains(&2)
    );
    // as_of: a fact valid only in 2020 is found then, not now.
    let old = m
        .store_fact(&NewFact {
            valid_from: Some("2020-01-01".into()),
            valid_until: Some("2021-01-01".into()),
            ..fact("a", "fox of the past")
        })
        .unwrap()
        .facts[0]
        .id;
    assert!(!ids(SearchQuery::new("past")).contains(&old));
    assert_eq!(
        ids(SearchQuery {
            as_of: Some("2020-06-01T00:00:00Z".into()),
            ..SearchQuery::new("fox past")
        }),
        [old],
        "as_of sees only the facts valid then"
    );
    for (q, want) in [
        (SearchQuery::new("   "), "no words"),
        (
            SearchQuery {
                top_k: Some(0),
                ..SearchQuery::new("fox")
            },
            "top_k 0",
        ),
        (
            SearchQuery {
                as_of: Some("soon".into()),
                ..SearchQuery::new("fox")
            },
            "as_of",
        ),
    ] {
        let e = m.search(&q).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(want), "{e}");
    }
}

/// The in-memory search index (`AgentMemory::with_search_index`) returns exactly what the
/// store's own search returns, and sees writes made through another handle at once.
pub fn search_index_matches_the_store(store: DynStore) {
    let plain = open_memory(&store);
    let indexed = AgentMemory::new(store.clone(), plain.ledger().clone())
        .unwrap()
        .with_search_index();
    // Another "process": its own ledger handle and its own index over the same store.
    let other = open_memory(&store).with_search_index();
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    ];
    let mut facts = Vec::new();
    let mut x: u64 = 7;
    for i in 0..300usize {
        let mut content = Vec::new();
        for _ in 0..(3 + i % 9) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Skewed: low words are common, high words rare.
            let r = ((x >> 33) % 1000) as f64 / 1000.0;
            content.push(words[((r * r * r) * words.len() as f64) as usize]);
        }
        let mut f = fact(["p", "q", "r"][i % 3], &content.join(" "));
        if i % 10 == 0 {
            f.valid_from = Some("2020-01-01".into());
            f.valid_until = Some("2021-01-01".into());
        }
        if i % 7 == 0 {
            f.tags = vec!["kappa".into()];
        }
        facts.push(f);
    }
    plain.store_facts(&facts).unwrap();
    indexed.warm_up().unwrap();
    for id in [3, 50, 51, 200] {
        plain.deprecate(id, None).unwrap();
    }
    let same = |m: &AgentMemory, q: &SearchQuery| {
        let want = store.search_facts(&q.resolve().unwrap()).unwrap();
        let got = m.search(q).unwrap();
        assert_eq!(
            got.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            want.iter().map(|h| h.fact.id).collect::<Vec<_>>(),
            "ranking of {q:?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.score).abs() <= 1e-12 * w.score.abs().max(1.0),
                "score of {} for {q:?}: {} vs {}",
                g.fact.id,
                g.score,
                w.score
            );
            assert_eq!(g.fact, w.fact);
        }
        got.len()
    };
    let mut total = 0;
    for words_q in [
        "alpha",
        "kappa",
        "iota theta",
        "alpha beta gamma",
        "zeta kappa",
        "nothing",
    ] {
        for project in [None, Some("q")] {
            for as_of in [None, Some("2020-06-01")] {
                for (top_k, include_deprecated) in [(10, false), (1, false), (100, true)] {
                    let q = SearchQuery {
                        query: words_q.into(),
                        project: project.map(String::from),
                        as_of: as_of.map(String::from),
                        top_k: Some(top_k),
                        include_deprecated,
                        ..SearchQuery::default()
                    };
                    total += same(&indexed, &q);
                    total += same(&other, &q);
                }
            }
        }
    }
    assert!(total > 500, "the queries must find facts ({total})");
    // Writes through one handle are seen by the other's index at once.
    let id = plain.store_fact(&fact("q", "omega arrives")).unwrap().facts[0].id;
    let ids = |m: &AgentMemory| {
        m.search(&SearchQuery::new("omega"))
            .unwrap()
            .into_iter()
            .map(|h| h.fact.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&other), [id]);
    assert_eq!(ids(&indexed), [id]);
    other.deprecate(id, None).unwrap();
    assert!(ids(&indexed).is_empty(), "a deprecation elsewhere is seen");
    same(&indexed, &SearchQuery::new("alpha omega"));
}

/// A recall of `project` at `as_of` with no author or consensus filter.
pub fn recall_at(project: &str, as_of: &str, limit: usize) -> crate::memory::store::FactRecall {
    crate::memory::store::FactRecall {
        project: project.into(),
        as_of: as_of.into(),
        limit,
        author: None,
        min_consensus: None,
    }
}
