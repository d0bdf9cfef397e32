//! What a client gets for paths that are not tiles, tiles beyond the checkpoint, a ledger without
//! a checkpoint, other methods, and a BLAKE3 ledger: the right status and a body naming the
//! problem, never a 500.

mod common;

use common::{Served, TestLedger};
use cortex_core::{DynLedgerStore, ErrorKind, HashAlgorithm, InMemoryStore, Ledger, LedgerOptions};
use reqwest::{Method, StatusCode};
use std::sync::Arc;

#[test]
fn a_ledger_without_a_checkpoint_publishes_nothing() {
    let t = TestLedger::new();
    t.append(300);
    let served = Served::start(t.ledger.clone());
    for path in ["/checkpoint", "/tile/0/000.p/1", "/tile/entries/000.p/1"] {
        let r = served.get(path);
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            r.text().contains("no checkpoint yet"),
            "{path}: {}",
            r.text()
        );
        assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    }
}

#[test]
fn bad_paths_get_400_or_404_with_the_reason() {
    let t = TestLedger::new();
    t.append(300);
    t.ledger.checkpoint().unwrap();
    let served = Served::start(t.ledger.clone());
    let long = format!("/tile/0/{}000", "x001/".repeat(400));
    let cases: &[(&str, StatusCode, &str)] = &[
        // Not canonical tlog-tiles paths.
        (
            "/tile/0/1.p/0",
            StatusCode::BAD_REQUEST,
            "last element \"1\"",
        ),
        (
            "/tile/0/001.p/0",
            StatusCode::BAD_REQUEST,
            "partial width \"0\"",
        ),
        ("/tile/0/x1/000", StatusCode::BAD_REQUEST, "element \"x1\""),
        (
            "/tile/0/x000/001",
            StatusCode::BAD_REQUEST,
            "starts with x000",
        ),
        ("/tile/01/000", StatusCode::BAD_REQUEST, "level \"01\""),
        ("/tile/64/000", StatusCode::BAD_REQUEST, "level \"64\""),
        (
            "/tile/0/000.p/256",
            StatusCode::BAD_REQUEST,
            "partial width \"256\"",
        ),
        (
            "/tile/0/%30%30%30",
            StatusCode::BAD_REQUEST,
            "last element \"%30%30%30\"",
        ),
        ("/tile/8/0/000", StatusCode::BAD_REQUEST, "element \"0\""),
        ("/tile/data/000", StatusCode::BAD_REQUEST, "level \"data\""),
        ("/tile/0", StatusCode::BAD_REQUEST, "no tile index"),
        (&long, StatusCode::BAD_REQUEST, "overflows"),
        // Canonical, but not in the tree of the checkpoint (300 entries).
        ("/tile/9/000", StatusCode::NOT_FOUND, "300 entries"),
        ("/tile/2/000.p/1", StatusCode::NOT_FOUND, "300 entries"),
        ("/tile/0/001", StatusCode::NOT_FOUND, "300 entries"),
        ("/tile/0/001.p/45", StatusCode::NOT_FOUND, "300 entries"),
        ("/tile/0/002.p/1", StatusCode::NOT_FOUND, "300 entries"),
        (
            "/tile/entries/001.p/45",
            StatusCode::NOT_FOUND,
            "300 entries",
        ),
        (
            "/tile/0/x018/x446/x744/x073/x709/x551/615",
            StatusCode::NOT_FOUND,
            "300 entries",
        ),
        // Not a tlog-tiles resource at all.
        ("/", StatusCode::NOT_FOUND, "serves /checkpoint"),
        ("/checkpoint/", StatusCode::NOT_FOUND, "serves /checkpoint"),
        ("/tiles/0/000", StatusCode::NOT_FOUND, "serves /checkpoint"),
    ];
    for (path, status, why) in cases {
        let r = served.get(path);
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        assert!(r.text().contains(why), "{path}: {}", r.text());
        assert_eq!(r.header("cache-control"), "no-cache", "{path}");
    }
    // Still served after all that: the partial tiles of 300 entries.
    assert_eq!(served.get("/tile/0/001.p/44").body.len(), 44 * 32);
    assert_eq!(served.get("/tile/1/000.p/1").body.len(), 32);
}

#[test]
fn head_answers_like_get_without_a_body_and_writes_are_refused() {
    let t = TestLedger::new();
    t.append(300);
    t.ledger.checkpoint().unwrap();
    let served = Served::start(t.ledger.clone());
    for (path, len) in [
        ("/tile/0/000", 8192),
        ("/tile/0/001.p/44", 44 * 32),
        ("/checkpoint", served.get("/checkpoint").body.len()),
    ] {
        let head = served.request(Method::HEAD, path);
        assert_eq!(head.status, StatusCode::OK, "{path}");
        assert!(head.body.is_empty(), "{path}");
        assert_eq!(head.header("content-length"), len.to_string(), "{path}");
    }
    assert_eq!(
        served.request(Method::HEAD, "/tile/0/002").status,
        StatusCode::NOT_FOUND
    );
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = served.request(method.clone(), "/tile/0/000");
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[test]
fn a_blake3_ledger_has_no_tlog_tiles_view() {
    let store: DynLedgerStore = Arc::new(InMemoryStore::new());
    store.migrate().unwrap();
    let options = LedgerOptions {
        hasher: Some(HashAlgorithm::Blake3),
        checkpoint_every: 0,
    };
    let ledger = Ledger::open(store, options).unwrap();
    let e = cortex_tiles::router(&ledger).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("blake3"), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let first = cortex_tiles::bind("127.0.0.1", 0).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let e = cortex_tiles::bind("127.0.0.1", port).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    });
}
