//! `cortex mcp start` over the network, driven by the official Python SDK: Streamable HTTP in
//! both protocol eras and legacy HTTP+SSE with `mcp==2.3.0`, WebSocket with `mcp[ws]==1.30.0`,
//! each in a venv under `target/test-peers/python/` made on first use
//! (`cortex_core::testkit::peers::python_env`). Client scripts live in `tests/mcp_clients/`.
//!
//! A venv that cannot be made fails the test when `CI=true` and is reported as skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

mod common;

/// The interpreter of the SDK venv: `ws` selects the WebSocket-capable release.
fn python(ws: bool) -> Option<PathBuf> {
    let (name, requirements, imports): (_, _, &[&str]) = if ws {
        ("mcp-sdk-ws", common::MCP_SDK_WS, &["mcp", "websockets"])
    } else {
        ("mcp-sdk", common::MCP_SDK, &["mcp"])
    };
    common::python_or_skip("this MCP SDK test", name, requirements, imports)
}

fn cortex(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cortex"));
    command
        .env("CORTEX_HOME", home)
        .env_remove("CORTEX_DB")
        .env_remove("CORTEX_SIGNING_KEY")
        .env_remove("CORTEX_ALLOWED_ORIGINS");
    command
}

/// A running `cortex mcp start` and the home it serves.
struct Server {
    _server: common::NetworkServer,
    port: u16,
    _home: tempfile::TempDir,
}

fn start(transport: &str) -> Server {
    let home = tempfile::tempdir().expect("tempdir");
    for args in [&["migrate"][..], &["keys", "generate"][..]] {
        let out = cortex(home.path()).args(args).output().expect("run cortex");
        assert!(
            out.status.success(),
            "cortex {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let port = common::free_port();
    let mut command = cortex(home.path());
    command
        .args([
            "mcp",
            "start",
            "--transport",
            transport,
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Server {
        _server: common::listening(command, port),
        port,
        _home: home,
    }
}

/// Runs a client script and returns its JSON summary line.
fn run_client(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let dir = root().join("tests/mcp_clients");
    let mut child = Command::new(python)
        .current_dir(&dir)
        .arg(dir.join(script))
        .args(args)
        .env("PYTHONWARNINGS", "ignore::DeprecationWarning")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python client");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} {args:?} timed out");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {args:?} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad summary {line:?}: {e}"));
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["verify"], true, "{summary}");
    summary
}

#[test]
fn streamable_http_both_eras_with_the_python_sdk() {
    let Some(python) = python(false) else {
        return;
    };
    let server = start("http");
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let modern = run_client(&python, "http_client.py", &[&url, "auto"]);
    assert_eq!(modern["protocol_version"], "2026-07-28", "{modern}");
    let legacy = run_client(&python, "http_client.py", &[&url, "legacy"]);
    assert_eq!(legacy["protocol_version"], "2025-11-25", "{legacy}");
}

#[test]
fn legacy_sse_with_the_python_sdk() {
    let Some(python) = python(false) else {
        return;
    };
    let server = start("sse");
    let url = format!("http://127.0.0.1:{}/sse", server.port);
    let summary = run_client(&python, "sse_client.py", &[&url]);
    assert_eq!(summary["transport"], "sse");
}

#[test]
fn websocket_with_the_python_sdk() {
    let Some(python) = python(true) else {
        return;
    };
    let server = start("ws");
    let url = format!("ws://127.0.0.1:{}/mcp", server.port);
    let summary = run_client(&python, "ws_client.py", &[&url]);
    assert_eq!(summary["transport"], "ws");
}
