//! JSON-RPC validation, notifications and batches, the legacy handshake, and the modern
//! (stateless) era's `_meta` and header checks.

use super::*;

#[test]
fn malformed_json_is_a_parse_error_with_null_id() {
    let s = server_for(&ledger(false));
    let r = send(&s, "{\"jsonrpc\": \"2.0\", \"id\": 1, ").unwrap();
    assert_eq!(err_code(&r), codes::PARSE_ERROR);
    assert_eq!(r["id"], Value::Null);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[test]
fn invalid_requests_name_the_problem() {
    let s = server_for(&ledger(false));
    let r = send(&s, "42").unwrap();
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );

    let r = call(&s, json!({"jsonrpc": "1.0", "id": 3, "method": "ping"}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert_eq!(r["id"], 3);
    assert!(r["error"]["message"].as_str().unwrap().contains("2.0"));

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 4, "method": 12}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("method must be a string")
    );

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
    );
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert_eq!(r["id"], Value::Null);

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 5}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [1]}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be an object")
    );
}

#[test]
fn unknown_method_is_method_not_found() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": "a", "method": "nope/never"}),
    );
    assert_eq!(err_code(&r), codes::METHOD_NOT_FOUND);
    assert_eq!(r["id"], "a");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope/never")
    );
}

#[test]
fn notifications_and_client_responses_get_no_reply() {
    let s = server_for(&ledger(false));
    for m in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "method": "no/such/notification"}),
        json!({"jsonrpc": "1.0", "method": "bad/version"}),
        json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "nope"}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {}}),
    ] {
        assert_eq!(send(&s, &m.to_string()), None, "{m}");
    }
}

#[test]
fn batches_reply_per_request_in_order() {
    let s = server_for(&ledger(false));
    let r = send(
        &s,
        &json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
            17
        ])
        .to_string(),
    )
    .unwrap();
    let items = r.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["result"], json!({}));
    assert_eq!(err_code(&items[1]), codes::METHOD_NOT_FOUND);
    assert_eq!(err_code(&items[2]), codes::INVALID_REQUEST);

    let r = send(&s, "[]").unwrap();
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        send(
            &s,
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#
        )
        .is_none()
    );
}

#[test]
fn legacy_handshake_negotiates_the_version() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
    );
    let res = &r["result"];
    assert_eq!(res["protocolVersion"], "2025-06-18");
    assert_eq!(res["serverInfo"]["name"], "cortex");
    assert!(res["capabilities"]["tools"].is_object());
    assert!(res["capabilities"]["resources"].is_object());
    assert!(res["capabilities"]["prompts"].is_object());
    assert!(res.get("resultType").is_none());

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "initialize",
               "params": {"protocolVersion": "1999-01-01", "capabilities": {}}}),
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protocolVersion")
    );

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}));
    assert_eq!(r["result"], json!({}));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    );
    assert_eq!(r["result"]["tools"].as_array().unwrap().len(), 4);
    assert!(r["result"].get("resultType").is_none());
}

#[test]
fn modern_requests_are_stateless_with_meta() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}),
    );
    let res = &r["result"];
    assert_eq!(res["resultType"], "complete");
    let versions = res["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")));
    assert!(res["capabilities"]["tools"].is_object());
    assert!(res["ttlMs"].is_u64());
    assert_eq!(res["cacheScope"], "public");
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "cortex"
    );

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta()}}),
    );
    assert_eq!(r["result"]["resultType"], "complete");
    for t in r["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["outputSchema"].is_object(), "{t}");
    }

    // ping was removed in 2026-07-28.
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": meta()}}),
    );
    assert_eq!(err_code(&r), codes::METHOD_NOT_FOUND);
}

#[test]
fn modern_version_and_header_checks() {
    let s = server_for(&ledger(false));
    let mut m = meta();
    m["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": m}}),
    );
    assert_eq!(err_code(&r), codes::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(r["error"]["data"]["requested"], "1900-01-01");
    assert!(
        r["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );

    let mut m = meta();
    m.as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": m}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );

    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "cortex_ledger_proof", "arguments": {"index": 0}, "_meta": meta()}})
    .to_string();
    let with = |v: Option<&str>, method: Option<&str>, name: Option<&str>| {
        send_with(
            &s,
            Incoming {
                message: body.clone(),
                protocol_version: v.map(Into::into),
                mcp_method: method.map(Into::into),
                mcp_name: name.map(Into::into),
                ..Default::default()
            },
        )
        .unwrap()
    };
    assert_eq!(
        err_code(&with(Some("2025-11-25"), None, None)),
        codes::HEADER_MISMATCH
    );
    assert_eq!(
        err_code(&with(None, Some("tools/list"), None)),
        codes::HEADER_MISMATCH
    );
    assert_eq!(
        err_code(&with(None, None, Some("other"))),
        codes::HEADER_MISMATCH
    );
    let ok = with(
        Some("2026-07-28"),
        Some("tools/call"),
        Some("cortex_ledger_proof"),
    );
    assert_eq!(ok["result"]["isError"], true, "{ok}"); // no checkpoint yet, but headers fine
    let b64 = with(None, None, Some("=?base64?Y29ydGV4X2xlZGdlcl9wcm9vZg==?="));
    assert!(b64.get("result").is_some(), "{b64}");

    // A modern header on a body without _meta.
    let r = send_with(
        &s,
        Incoming {
            message: json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}).to_string(),
            protocol_version: Some("2026-07-28".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(err_code(&r), codes::HEADER_MISMATCH);
}
