//! The query cache (hits, misses after writes from another server, `as_of` searches) and the
//! metrics tool.

use super::*;

fn hit_ids(r: &Value) -> Vec<u64> {
    r["structuredContent"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fact"]["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn query_cache_hits_on_repeat_and_misses_after_a_write_from_another_server() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let a = cached_server(&store, &metrics);
    // A second server (a second ledger object, as another process would have) on the same store.
    let b = cached_server(&store, &Arc::new(Metrics::new()));
    let first = tool_call(
        &a,
        "cortex_store",
        json!({"project": "p", "content": "Rust compiles to native code"}),
    );
    let id1 = first["structuredContent"]["facts"][0]["id"]
        .as_u64()
        .unwrap();

    let q = json!({"query": "native Rust", "project": "p"});
    let r1 = tool_call(&a, "cortex_search", q.clone());
    assert_eq!(hit_ids(&r1), vec![id1]);
    assert_eq!(metrics.snapshot().cache_misses, 1);
    // Repeat, and the same query normalized differently (case, spacing): hits.
    let r2 = tool_call(&a, "cortex_search", q.clone());
    assert_eq!(r2, r1);
    let r3 = tool_call(
        &a,
        "cortex_search",
        json!({"query": "  NATIVE   rust ", "project": "p"}),
    );
    assert_eq!(hit_ids(&r3), vec![id1]);
    let snap = metrics.snapshot();
    assert_eq!((snap.cache_hits, snap.cache_misses), (2, 1), "{snap:?}");
    assert!(snap.cache_hit_rate > 0.6);
    let rec = tool_call(&a, "cortex_recall", json!({"project": "p"}));
    assert_eq!(rec["structuredContent"]["count"], 1);
    assert_eq!(tool_call(&a, "cortex_recall", json!({"project": "p"})), rec);

    // A write through the OTHER server: the next read on `a` misses and sees it.
    let second = tool_call(
        &b,
        "cortex_store",
        json!({"project": "p", "content": "native binaries start fast in Rust"}),
    );
    let id2 = second["structuredContent"]["facts"][0]["id"]
        .as_u64()
        .unwrap();
    let misses = metrics.snapshot().cache_misses;
    let r4 = tool_call(&a, "cortex_search", q.clone());
    let mut ids = hit_ids(&r4);
    ids.sort_unstable();
    assert_eq!(ids, vec![id1, id2], "{r4}");
    assert_eq!(metrics.snapshot().cache_misses, misses + 1);
    let rec2 = tool_call(&a, "cortex_recall", json!({"project": "p"}));
    assert_eq!(rec2["structuredContent"]["count"], 2, "{rec2}");

    // A vote and a deprecation through the other server are seen as well.
    tool_call(&b, "cortex_deprecate", json!({"fact_id": id2}));
    assert_eq!(
        hit_ids(&tool_call(&a, "cortex_search", q.clone())),
        vec![id1]
    );
    let v = tool_call(
        &b,
        "cortex_vote",
        json!({"fact_id": id1, "agent": "x", "vote": -1}),
    );
    let consensus = v["structuredContent"]["consensus"].as_f64().unwrap();
    let r5 = tool_call(&a, "cortex_search", q);
    assert_eq!(
        r5["structuredContent"]["hits"][0]["fact"]["consensus"].as_f64(),
        Some(consensus),
        "{r5}"
    );

    // Errors are not cached and count as errors.
    let bad = tool_call(&a, "cortex_search", json!({"query": "!!!"}));
    assert_eq!(bad["isError"], true);
    let snap = metrics.snapshot();
    assert!(snap.errors["mcp"]["cortex_search"] >= 1, "{snap:?}");
}

#[test]
fn explicit_as_of_search_is_cached_and_still_exact() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let a = cached_server(&store, &metrics);
    tool_call(
        &a,
        "cortex_store",
        json!({"project": "p", "content": "alpha beta"}),
    );
    let q = json!({"query": "alpha", "as_of": "2999-01-01"});
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q.clone())).len(), 1);
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q.clone())).len(), 1);
    assert_eq!(metrics.snapshot().cache_hits, 1);
    tool_call(
        &a,
        "cortex_store",
        json!({"project": "q", "content": "alpha gamma"}),
    );
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q)).len(), 2);
}

#[test]
fn metrics_tool_reports_requests_latency_errors_and_cache() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let s = cached_server(&store, &metrics);
    let list = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    let tool = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cortex_metrics")
        .expect("cortex_metrics is listed")
        .clone();
    assert_eq!(tool["outputSchema"]["type"], "object");
    tool_call(
        &s,
        "cortex_store",
        json!({"project": "p", "content": "one fact"}),
    );
    tool_call(&s, "cortex_search", json!({"query": "fact"}));
    tool_call(&s, "cortex_search", json!({"query": "fact"}));
    tool_call(
        &s,
        "cortex_vote",
        json!({"fact_id": 999, "agent": "a", "vote": 1}),
    );
    call(&s, json!({"jsonrpc": "2.0", "id": 2, "method": "no/such"}));
    let m = tool_call(&s, "cortex_metrics", json!({}));
    assert_eq!(m["isError"], false, "{m}");
    let problems = schema::validate(&tool["outputSchema"], &m["structuredContent"]);
    assert!(problems.is_empty(), "{problems:?}");
    let sc = &m["structuredContent"];
    assert_eq!(sc["requests"]["mcp"]["cortex_store"], 1, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["cortex_search"], 2, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["tools/list"], 1, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["other"], 1, "{sc}");
    assert_eq!(sc["errors"]["mcp"]["cortex_vote"], 1, "{sc}");
    assert_eq!(sc["errors"]["mcp"]["other"], 1, "{sc}");
    assert_eq!(sc["cache_hits"], 1, "{sc}");
    assert_eq!(sc["cache_misses"], 1, "{sc}");
    assert_eq!(sc["cache_hit_rate"], 0.5, "{sc}");
    assert!(sc["latency_count"].as_u64().unwrap() >= 6, "{sc}");
    assert_eq!(sc["latency_buckets"].as_array().unwrap().len(), 14);
    let text = metrics.render_prometheus();
    assert!(text.contains("cortex_requests_total{transport=\"mcp\",method=\"cortex_search\"} 2"));
    assert!(text.contains("cortex_cache_hits_total 1"));
    assert!(s.check_health().is_ok());
}
