//! `cortex serve` as a separate process on loopback: API keys with roles (401 and 403 with JSON
//! bodies, the key's identity as author and voter, revocation), the REST routes against the
//! same operations as MCP, MCP over HTTP and WebSocket behind the same keys, bad input of many
//! kinds, the rate limit, the cap on MCP sessions with idle expiry, the header-read timeout and
//! graceful shutdown.

mod common;

use common::serve::{Answer, Server, call, call_with, cortex, header, key, ok, start};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Asserts an error answer: the status, and a JSON body whose kind and message are as expected.
fn refused(answer: (u16, Vec<(String, String)>, Value), status: u16, kind: &str, says: &str) {
    let (s, _, body) = answer;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error"]["kind"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

fn mcp_post(server: &Server, token: &str, session: Option<&str>, msg: Value) -> Answer {
    let mut headers = vec![
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    if let Some(s) = session {
        headers.push(("mcp-session-id", s));
    }
    call_with(
        "POST",
        &format!("{}/mcp", server.base),
        Some(token),
        Some(&msg.to_string()),
        &headers,
    )
}

fn initialize(server: &Server, token: &str) -> (u16, Option<String>) {
    let (s, h, _) = mcp_post(
        server,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "declared-name", "version": "1"}}}),
    );
    (s, header(&h, "mcp-session-id").map(str::to_owned))
}

#[test]
fn api_keys_decide_who_may_do_what_and_who_wrote_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let admin = key(h, "ops", "admin");
    let writer = key(h, "agent-7", "write");
    let reader = key(h, "dashboard", "read");
    let server = start(h, &[]);
    let url = |p: &str| format!("{}{p}", server.base);

    // Open endpoints need no key; everything under /v1 does.
    assert_eq!(call("GET", &url("/health"), None, None).0, 200);
    assert_eq!(call("GET", &url("/ready"), None, None).0, 200);
    let (s, headers, body) = call("GET", &url("/v1/ledger/status"), None, None);
    assert_eq!(s, 401, "{body}");
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cortex keys api create")
    );
    refused(
        call("GET", &url("/v1/ledger/status"), Some("cortex_nope"), None),
        401,
        "unauthorized",
        "malformed",
    );
    let mut wrong = writer.clone();
    wrong.pop();
    wrong.push(if writer.ends_with('A') { 'B' } else { 'A' });
    refused(
        call("GET", &url("/v1/ledger/status"), Some(&wrong), None),
        401,
        "unauthorized",
        "does not match",
    );

    // A write key stores; the fact's author is the key's identity, on the rest surface.
    let (s, _, stored) = call(
        "POST",
        &url("/v1/facts"),
        Some(&writer),
        Some(r#"{"project": "ui", "content": "The user prefers dark mode in the editor"}"#),
    );
    assert_eq!(s, 201, "{stored}");
    let fact = &stored["facts"][0];
    assert_eq!(
        (fact["author"].as_str(), fact["surface"].as_str()),
        (Some("agent-7"), Some("rest"))
    );
    let id = fact["id"].as_u64().unwrap();

    // A read key reads but cannot write; the 403 names the role needed and the key's.
    let (s, _, found) = call(
        "GET",
        &url("/v1/search?query=dark%20mode&project=ui"),
        Some(&reader),
        None,
    );
    assert_eq!((s, found["count"].as_u64()), (200, Some(1)), "{found}");
    refused(
        call(
            "POST",
            &url("/v1/facts"),
            Some(&reader),
            Some(r#"{"project": "ui", "content": "x"}"#),
        ),
        403,
        "forbidden",
        "needs the write role",
    );
    let (s, _, got) = call("GET", &url(&format!("/v1/facts/{id}")), Some(&reader), None);
    assert_eq!(
        (s, got["content"].as_str()),
        (200, Some("The user prefers dark mode in the editor"))
    );

    // Votes are cast as the key's identity; voting as someone else is refused.
    refused(
        call(
            "POST",
            &url(&format!("/v1/facts/{id}/votes")),
            Some(&writer),
            Some(r#"{"vote": -1, "agent": "someone-else"}"#),
        ),
        403,
        "forbidden",
        "cannot vote as \"someone-else\"",
    );
    let (s, _, voted) = call(
        "POST",
        &url(&format!("/v1/facts/{id}/votes")),
        Some(&writer),
        Some(r#"{"vote": 1}"#),
    );
    assert_eq!(s, 200, "{voted}");
    assert_eq!(voted["vote"]["agent"], "agent-7", "{voted}");
    let (_, _, votes) = call(
        "GET",
        &url(&format!("/v1/facts/{id}/votes")),
        Some(&reader),
        None,
    );
    assert_eq!(votes["votes"][0]["agent"], "agent-7", "{votes}");

    // Forget is admin-only.
    refused(
        call(
            "POST",
            &url(&format!("/v1/facts/{id}/forget")),
            Some(&writer),
            Some(r#"{"reason": "GDPR"}"#),
        ),
        403,
        "forbidden",
        "needs the admin role",
    );
    let (s, _, gone) = call(
        "POST",
        &url(&format!("/v1/facts/{id}/forget")),
        Some(&admin),
        Some(r#"{"reason": "GDPR request"}"#),
    );
    assert_eq!(s, 200, "{gone}");
    let (_, _, found) = call(
        "GET",
        &url("/v1/search?query=dark%20mode"),
        Some(&reader),
        None,
    );
    assert_eq!(
        found["count"], 0,
        "an erased fact is never found again: {found}"
    );

    // Key management is recorded in the ledger, and the chain verifies.
    let (_, _, entries) = call(
        "GET",
        &url("/v1/ledger/entries?limit=3"),
        Some(&reader),
        None,
    );
    assert_eq!(
        entries["entries"][0]["action"], "api_key.create",
        "{entries}"
    );
    assert!(
        !entries.to_string().contains(&admin[20..]),
        "no token in the ledger"
    );
    let (s, _, cp) = call("POST", &url("/v1/ledger/checkpoint"), Some(&writer), None);
    assert_eq!(s, 200, "{cp}");
    let (_, _, verified) = call("GET", &url("/v1/ledger/verify"), Some(&reader), None);
    assert_eq!(verified["valid"], true, "{verified}");
    // Prometheus: a latency histogram per route, the ledger's size and its checkpoint's age.
    let metrics = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reqwest::get(url("/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    for needle in [
        "cortex_route_duration_seconds_bucket{transport=\"rest\",method=\"GET /v1/search\",le=\"+Inf\"} 2",
        "cortex_route_duration_seconds_count{transport=\"tool\",method=\"cortex_search\"} 2",
        "cortex_route_duration_seconds_count{transport=\"rest\",method=\"POST /v1/facts\"} 2",
        "cortex_ledger_entries ",
        "cortex_checkpoint_age_seconds ",
        "cortex_cache_hit_ratio ",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }

    // MCP over HTTP: the same keys, the same roles, the key's identity as author.
    let (s, _, _) = call("POST", &url("/mcp"), None, Some("{}"));
    assert_eq!(s, 401);
    let (s, session) = initialize(&server, &reader);
    assert_eq!(s, 200);
    let session = session.expect("a session id");
    let store = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "cortex_store", "arguments": {"project": "ui", "content": "from mcp"}}});
    let (_, _, r) = mcp_post(&server, &reader, Some(&session), store.clone());
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("needs the write role"),
        "{r}"
    );
    // A session belongs to the key that opened it.
    let (s, _, _) = mcp_post(&server, &writer, Some(&session), store.clone());
    assert_eq!(s, 404, "another key cannot use the session");
    let (_, writer_session) = initialize(&server, &writer);
    let (_, _, r) = mcp_post(&server, &writer, writer_session.as_deref(), store);
    assert_eq!(r["result"]["isError"], false, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["facts"][0]["author"], "agent-7",
        "the key's identity, not the client's declared name: {r}"
    );

    // MCP over WebSocket (/ws): refused without a key; with one, writes as its identity.
    assert_eq!(
        ws_store(&server.addr, None).unwrap_err(),
        401,
        "a WebSocket upgrade without a key"
    );
    let r = ws_store(&server.addr, Some(&writer)).unwrap();
    assert_eq!(
        r["result"]["structuredContent"]["facts"][0]["author"], "agent-7",
        "{r}"
    );
    assert_eq!(
        r["result"]["structuredContent"]["facts"][0]["surface"], "mcp-ws",
        "{r}"
    );
    // The tlog-tiles view is public: its checkpoint is the ledger's latest, with no key.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tiles = rt.block_on(async {
        let r = reqwest::get(url("/tiles/checkpoint")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(tiles.0, 200, "{}", tiles.1);
    assert!(
        tiles
            .1
            .starts_with(cp["note"].as_str().unwrap().lines().next().unwrap()),
        "{}",
        tiles.1
    );

    // Revoking a key stops it within the cache time.
    let reader_id = &reader[7..19];
    ok(h, &["keys", "api", "revoke", reader_id]);
    std::thread::sleep(Duration::from_millis(2600));
    refused(
        call("GET", &url("/v1/ledger/status"), Some(&reader), None),
        401,
        "unauthorized",
        "revoked",
    );
    let (_, _, listed) = {
        let out = cortex(h)
            .args(["--json", "keys", "api", "list"])
            .output()
            .unwrap();
        (0, (), serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    assert_eq!(listed["count"], 3);
    assert!(
        !listed.to_string().contains(&writer[20..]),
        "list never shows a token"
    );
}

#[test]
fn bad_input_gets_a_json_error_that_names_it_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = key(h, "ops", "admin");
    let server = start(h, &["--max-body-bytes", "4096"]);
    let url = |p: &str| format!("{}{p}", server.base);
    let t = Some(token.as_str());
    let size = || {
        call("GET", &url("/v1/ledger/status"), t, None).2["size"]
            .as_u64()
            .unwrap()
    };
    let before = size();
    refused(
        call("POST", &url("/v1/facts"), t, Some("{bad")),
        400,
        "invalid_input",
        "not valid JSON",
    );
    refused(
        call("POST", &url("/v1/facts"), t, Some("[1,2]")),
        400,
        "invalid_input",
        "JSON object",
    );
    refused(
        call("POST", &url("/v1/facts"), t, Some(r#"{"project": "p"}"#)),
        400,
        "invalid_input",
        "content",
    );
    refused(
        call(
            "POST",
            &url("/v1/facts"),
            t,
            Some(r#"{"project": "p", "content": 5}"#),
        ),
        400,
        "invalid_input",
        "content",
    );
    refused(
        call(
            "POST",
            &url("/v1/facts"),
            t,
            Some(r#"{"project": "p", "content": "x", "colour": "red"}"#),
        ),
        400,
        "invalid_input",
        "colour",
    );
    let big = format!(r#"{{"project": "p", "content": "{}"}}"#, "x".repeat(5000));
    refused(
        call("POST", &url("/v1/facts"), t, Some(&big)),
        413,
        "invalid_input",
        "larger",
    );
    refused(
        call("GET", &url("/v1/search?query=x&top_k=abc"), t, None),
        400,
        "invalid_input",
        "top_k must be an integer",
    );
    refused(
        call("GET", &url("/v1/search?query=x&colour=red"), t, None),
        400,
        "invalid_input",
        "colour",
    );
    refused(
        call("GET", &url("/v1/facts/abc"), t, None),
        400,
        "invalid_input",
        "fact_id",
    );
    refused(
        call("GET", &url("/v1/facts/999999"), t, None),
        404,
        "not_found",
        "999999",
    );
    refused(
        call("GET", &url("/v1/ledger/entries?limit=5000"), t, None),
        400,
        "invalid_input",
        "limit",
    );
    refused(
        call(
            "GET",
            &url("/v1/ledger/proofs/consistency?old=5&new=2"),
            t,
            None,
        ),
        400,
        "invalid_input",
        "",
    );
    refused(
        call("GET", &url("/v1/nowhere"), t, None),
        404,
        "not_found",
        "openapi.json",
    );
    refused(
        call("DELETE", &url("/v1/facts"), t, None),
        405,
        "invalid_input",
        "not allowed",
    );
    refused(
        call("POST", &url("/v1/facts/1/votes"), t, Some(r#"{"vote": 3}"#)),
        400,
        "invalid_input",
        "vote",
    );
    refused(
        call(
            "POST",
            &url("/v1/facts/1/votes"),
            t,
            Some(r#"{"vote": 1, "fact_id": 2}"#),
        ),
        400,
        "invalid_input",
        "given by the path",
    );
    assert_eq!(size(), before, "nothing was written");
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = key(h, "ops", "read");
    let other = key(h, "other", "read");
    let server = start(h, &["--rate-limit", "5"]);
    let url = format!("{}/v1/ledger/status", server.base);
    let answers: Vec<_> = (0..20)
        .map(|_| call("GET", &url, Some(&token), None))
        .collect();
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!((5..=7).contains(&ok), "{ok} of 20 passed a limit of 5/s");
    let (_, headers, body) = limited[0];
    assert!(header(headers, "retry-after").is_some(), "{headers:?}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit"),
        "{body}"
    );
    // Each key has its own quota.
    assert_eq!(call("GET", &url, Some(&other), None).0, 200);
}

#[test]
fn mcp_sessions_are_capped_and_idle_ones_expire() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = key(h, "ops", "read");
    let server = start(
        h,
        &[
            "--max-sessions",
            "3",
            "--session-idle-secs",
            "1",
            "--rate-limit",
            "0",
        ],
    );
    for _ in 0..3 {
        assert_eq!(initialize(&server, &token).0, 200);
    }
    let (s, h2, body) = mcp_post(
        &server,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"}}}),
    );
    assert_eq!(s, 503, "{body} {h2:?}");
    assert!(
        body.to_string().contains("3 MCP sessions are open"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        initialize(&server, &token).0,
        200,
        "idle sessions ended and made room"
    );
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let home = tempfile::tempdir().unwrap();
    let server = start(home.path(), &["--header-read-timeout-secs", "1"]);
    let mut slow = std::net::TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the connection stayed open {waited:?}"
    );
    // Other clients are served meanwhile and after.
    assert_eq!(
        call("GET", &format!("{}/health", server.base), None, None).0,
        200
    );
}

#[test]
fn openapi_describes_every_route_with_the_tools_schemas() {
    let home = tempfile::tempdir().unwrap();
    let server = start(home.path(), &[]);
    let (s, _, doc) = call("GET", &format!("{}/openapi.json", server.base), None, None);
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/v1/facts", "post"),
        ("/v1/search", "get"),
        ("/v1/ledger/verify", "get"),
        ("/v1/ledger/proofs/consistency", "get"),
        ("/v1/facts/{fact_id}/votes", "post"),
        ("/v1/agents/{agent}", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    // The search parameters are the MCP tool's, typed as the tool types them.
    let params = doc["paths"]["/v1/search"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let top_k = params.iter().find(|p| p["name"] == "top_k").unwrap();
    assert_eq!(top_k["schema"]["type"], "integer");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn no_auth_serves_without_keys_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let server = start(home.path(), &["--no-auth"]);
    let (s, _, body) = call(
        "POST",
        &format!("{}/v1/facts", server.base),
        None,
        Some(r#"{"project": "p", "content": "open server"}"#),
    );
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["facts"][0]["author"], Value::Null);
}

#[test]
fn the_config_file_fills_what_flags_and_environment_leave_and_show_hides_passwords() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("config.toml"),
        "db = \"postgres://cortex:s3cret@127.0.0.1:1/x\"\n[serve]\nrate_limit = 2\nport = 1\n",
    )
    .unwrap();
    let show = |extra: &[&str], env: &[(&str, &str)]| -> Value {
        let mut c = cortex(h);
        c.args(extra).args(["--json", "config", "show"]);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["settings"].clone()
    };
    let s = show(&[], &[]);
    assert_eq!(s["db"]["value"], "postgres://cortex:***@127.0.0.1:1/x");
    assert_eq!(s["db"]["source"], "file");
    assert!(!s.to_string().contains("s3cret"), "{s}");
    assert_eq!(
        (
            s["serve.rate_limit"]["value"].as_u64(),
            s["serve.rate_limit"]["source"].as_str()
        ),
        (Some(2), Some("file"))
    );
    assert_eq!(s["serve.host"]["source"], "default");
    // The environment beats the file, and a flag beats both.
    let s = show(
        &["--db", "/tmp/flag.db"],
        &[("CORTEX_RATE_LIMIT", "9"), ("CORTEX_DB", "/tmp/env.db")],
    );
    assert_eq!(
        (s["db"]["value"].as_str(), s["db"]["source"].as_str()),
        (Some("/tmp/flag.db"), Some("flag"))
    );
    assert_eq!(
        (
            s["serve.rate_limit"]["value"].as_u64(),
            s["serve.rate_limit"]["source"].as_str()
        ),
        (Some(9), Some("env"))
    );

    // `serve` takes its settings from the file too: a limit of 2/s answers 429 soon.
    std::fs::write(h.join("config.toml"), "[serve]\nrate_limit = 2\n").unwrap();
    let token = key(h, "ops", "read");
    let server = start(h, &[]);
    let url = format!("{}/v1/ledger/status", server.base);
    let statuses: Vec<u16> = (0..6)
        .map(|_| call("GET", &url, Some(&token), None).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");

    // A file with an unknown key is refused by name.
    std::fs::write(h.join("config.toml"), "dbb = \"x\"\n").unwrap();
    let out = cortex(h).args(["config", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `dbb`"));
}

#[test]
fn sigterm_finishes_the_writes_in_flight_and_loses_none_it_acknowledged() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = key(h, "loader", "write");
    let server = start(h, &["--rate-limit", "0"]);
    let base = server.base.clone();
    let pid = server.child.id();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..8 {
            let (base, token, acknowledged) = (&base, &token, &acknowledged);
            scope.spawn(move || {
                for i in 0..200 {
                    let body = format!(r#"{{"project": "load", "content": "write {w}-{i}"}}"#);
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let sent = rt.block_on(async {
                        reqwest::Client::new()
                            .post(format!("{base}/v1/facts"))
                            .header("authorization", format!("Bearer {token}"))
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                    });
                    match sent {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let v: Value = rt.block_on(r.json()).unwrap();
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(v["facts"][0]["id"].as_u64().unwrap());
                        }
                        // Refused once the server stopped accepting: not acknowledged.
                        _ => break,
                    }
                }
            });
        }
        // A large batch that is still being written when the signal comes: it must finish.
        let facts: Vec<Value> = (0..20_000)
            .map(|i| json!({"project": "batch", "content": format!("batch fact {i}")}))
            .collect();
        let body = json!({ "facts": facts }).to_string();
        let (sending, sent) = std::sync::mpsc::channel();
        let (base, token) = (&base, &token);
        let batch = scope.spawn(move || {
            sending.send(()).unwrap();
            call(
                "POST",
                &format!("{base}/v1/facts/batch"),
                Some(token),
                Some(&body),
            )
        });
        sent.recv().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let (s, _, body) = batch.join().unwrap();
        assert_eq!(
            (s, body["count"].as_u64()),
            (201, Some(20_000)),
            "the batch in flight"
        );
    });
    let mut server = server;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() > 8,
        "some writes were acknowledged before the stop"
    );
    // Every acknowledged write is in the ledger, which verifies.
    let out = cortex(h)
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    let out = cortex(h)
        .args([
            "--json",
            "history",
            "--project",
            "load",
            "--limit",
            "100000",
        ])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stored: std::collections::HashSet<u64> = listed["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_u64().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged fact {id} is missing");
    }
}

/// Opens `/ws` (subprotocol `mcp`) with `token` as bearer and stores one fact through
/// `tools/call` (2026-07-28 envelope): the reply, or the HTTP status the upgrade was refused with.
fn ws_store(addr: &str, token: Option<&str>) -> Result<Value, u16> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message, http::HeaderValue};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        let h = request.headers_mut();
        h.insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
        if let Some(t) = token {
            h.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        let mut ws = match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => ws,
            Err(WsError::Http(r)) => return Err(r.status().as_u16()),
            Err(e) => panic!("WebSocket: {e}"),
        };
        let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "cortex_store", "arguments": {"project": "ui", "content": "over websocket"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "ws-client", "version": "1"}}}});
        ws.send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        loop {
            if let Message::Text(t) = ws.next().await.expect("a reply").unwrap() {
                return Ok(serde_json::from_str(&t).unwrap());
            }
        }
    })
}
