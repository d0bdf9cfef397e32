//! `cortex mcp start --transport stdio`, end to end:
//! - driven by the official MCP Python SDK (`mcp==2.3.0`, `mcp.Client`) in the legacy
//!   (initialize) era, pinned to 2026-07-28, and in `auto` mode (server/discover probe), calling
//!   every tool, reading the checkpoint resource and fetching the prompt
//!   (tests/mcp_clients/stdio_client.py);
//! - driven by a lean raw JSON-RPC client (lines in, lines out) with bad input.
//!
//! The SDK is found at `$CORTEX_TEST_PYTHON`, else in the venv `target/test-peers/python/mcp-sdk`
//! (made on first use, `cortex_core::testkit::peers::python_env`). Without it the SDK test is
//! skipped with the cause, except under `CI=true`, where it fails.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::BIN;
use common::stdio::StdioMcp;

fn cortex(home: &Path) -> Command {
    common::cortex_in(home, &[])
}

/// A fresh ledger with `n` entries (the first append also creates the signing key).
fn ledger_with(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let out = cortex(dir.path())
            .args(["ledger", "append", "--project", "mcp", "--action", "test"])
            .arg("--detail")
            .arg(format!("{{\"i\":{i}}}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

fn ledger_size(home: &Path) -> u64 {
    let out = cortex(home)
        .args(["--json", "ledger", "status"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["size"].as_u64().unwrap()
}

/// `$CORTEX_TEST_PYTHON`, else the provisioned venv's interpreter, or why there is none.
fn python() -> Result<PathBuf, String> {
    match std::env::var_os("CORTEX_TEST_PYTHON") {
        Some(py) => Ok(PathBuf::from(py)),
        None => cortex_core::testkit::peers::python_env("mcp-sdk", common::MCP_SDK, &["mcp"]),
    }
}

/// `Ok` if the interpreter imports the SDK at the pinned version, else why not.
fn sdk_ready(py: &Path) -> Result<(), String> {
    let check = "import importlib.metadata as m, mcp; v = m.version('mcp'); \
                 assert v == '2.3.0', f'mcp {v} installed, 2.3.0 required'";
    match Command::new(py).args(["-c", check]).output() {
        Err(e) => Err(format!("{} cannot be run: {e}", py.display())),
        Ok(o) if !o.status.success() => Err(format!(
            "{} lacks mcp==2.3.0: {}",
            py.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

#[test]
fn python_sdk_drives_both_eras_over_stdio() {
    let py = match python().and_then(|py| sdk_ready(&py).map(|()| py)) {
        Ok(py) => py,
        Err(why) => {
            cortex_core::testkit::skip("the MCP Python SDK stdio test", &why);
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_clients/stdio_client.py");
    for mode in ["legacy", "2026-07-28", "auto"] {
        let dir = ledger_with(3);
        let out = Command::new(&py)
            .arg(&script)
            .arg(mode)
            .arg(BIN)
            .arg("--home")
            .arg(dir.path())
            .args(["mcp", "start", "--transport", "stdio"])
            .env_remove("CORTEX_DB")
            .env_remove("CORTEX_HOME")
            .env_remove("CORTEX_SIGNING_KEY")
            .env_remove("CORTEX_HASHER")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "mode {mode} failed:\n{stderr}");
        let summary: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("mode {mode}: bad summary ({e}): {stderr}"));
        let want_version = if mode == "legacy" {
            "2025-11-25"
        } else {
            "2026-07-28"
        };
        assert_eq!(summary["protocol_version"], want_version, "{summary}");
        assert_eq!(summary["checkpoint_size"], 3, "{summary}");
        assert_eq!(
            summary["tools"],
            json!([
                "cortex_deprecate",
                "cortex_forget",
                "cortex_history",
                "cortex_ledger_checkpoint",
                "cortex_ledger_proof",
                "cortex_ledger_verify",
                "cortex_metrics",
                "cortex_recall",
                "cortex_search",
                "cortex_store",
                "cortex_vote"
            ])
        );
        // 3 entries, then 3 facts, an erasure, a vote and a deprecation; the bad calls wrote
        // nothing.
        assert_eq!(summary["ledger_size"], 9, "{summary}");
        assert_eq!(ledger_size(dir.path()), 9);
    }
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {v}"))
}

#[test]
fn raw_json_rpc_over_stdio_with_bad_input() {
    let dir = ledger_with(2);
    let mut c = StdioMcp::spawn(cortex(dir.path()));

    let r = c.ask(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#);
    assert_eq!(r["result"]["protocolVersion"], "2025-03-26");
    c.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    // A notification gets no reply: the next line answers the ping.
    let r = c.ask(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#);
    assert_eq!(r, json!({"jsonrpc": "2.0", "id": "p", "result": {}}));

    let r = c.ask(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list""#);
    assert_eq!(code(&r), -32700);
    assert_eq!(r["id"], Value::Null);
    let r = c.ask(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
    assert_eq!(code(&r), -32600);
    let r = c.ask(r#"{"jsonrpc":"2.0","id":4,"method":"no/such"}"#);
    assert_eq!(code(&r), -32601);
    assert!(r["error"]["message"].as_str().unwrap().contains("no/such"));
    let r =
        c.ask(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"cortex_nope"}}"#);
    assert_eq!(code(&r), -32602);
    let r = c.ask(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"cortex_ledger_proof","arguments":{"index":"zero"}}}"#);
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("must be integer")
    );
    let r = c.ask(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"cortex_ledger_checkpoint","arguments":[]}}"#);
    assert_eq!(r["result"]["isError"], true, "{r}");

    // Modern era on the same process: stateless, with _meta; bad version and ping rejected.
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let r = c.ask(&format!(
        r#"{{"jsonrpc":"2.0","id":8,"method":"server/discover","params":{{{meta}}}}}"#
    ));
    assert_eq!(r["result"]["resultType"], "complete");
    assert!(
        r["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    let r = c.ask(r#"{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#);
    assert_eq!(code(&r), -32022);
    assert_eq!(r["error"]["data"]["requested"], "2099-01-01");
    let r = c.ask(&format!(
        r#"{{"jsonrpc":"2.0","id":10,"method":"ping","params":{{{meta}}}}}"#
    ));
    assert_eq!(code(&r), -32601);

    // A batch: replies for the two requests only.
    let r = c.ask(r#"[{"jsonrpc":"2.0","id":11,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"cortex_ledger_checkpoint","arguments":{}}}]"#);
    let items = r.as_array().unwrap();
    assert_eq!(items.len(), 2, "{r}");
    assert_eq!(items[1]["result"]["structuredContent"]["size"], 2, "{r}");

    // End of input: the server exits cleanly and printed nothing else on stdout.
    let (rest, status) = c.finish();
    assert_eq!(rest, "", "stdout carries only protocol");
    assert!(status.success(), "exit status {status}");
    assert_eq!(ledger_size(dir.path()), 2, "bad input wrote nothing");
}
