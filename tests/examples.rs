//! Runs the integrator examples in `examples/` as a user would, and checks what they print.
//! `cargo test --all-targets` compiles the examples only as test harnesses, so the first test
//! here builds the real binaries with `cargo build --examples` (same profile and target
//! directory as this test binary; the dependencies are already built, so it only links them).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = built {
        panic!("`cargo build --examples` failed:\n{e}");
    }
    // This binary is <target>/debug/deps/examples-…; the examples are in <target>/debug/examples.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing after the build",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn embedded_blake3_appends_proves_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let out = run(Command::new(example("embedded_blake3")).arg(&db));
    assert!(out.contains("appended 250 entries from index 0"), "{out}");
    assert!(out.contains("example.com/audit/blake3\n250\n"), "{out}");
    assert!(
        out.contains(r#"proof of entry 42 verifies: {"invoice":42,"amount_cents":1042}"#),
        "{out}"
    );
    assert!(
        out.contains("verify: valid=true entries=250 checkpoints=1"),
        "{out}"
    );
    assert!(db.exists(), "the example writes the database it was given");
}

#[test]
fn postgres_blake3_appends_searches_proves_and_verifies() {
    let Some(url) = cortex_core::testkit::postgres_url("the postgres_blake3 example") else {
        return;
    };
    let out = run(Command::new(example("postgres_blake3")).arg(&url));
    assert!(out.contains("appended 10000 entries"), "{out}");
    assert!(out.contains("stored 4 facts (ids 10000..=10003)"), "{out}");
    assert!(
        out.contains("late invoices get a reminder after 14 days"),
        "the search finds the fact: {out}"
    );
    assert!(out.contains("example.com/shared/blake3\n10004\n"), "{out}");
    assert!(
        out.contains(r#"proof of entry 4242 verifies: {"invoice":4242,"amount_cents":5242}"#),
        "{out}"
    );
    assert!(
        out.contains("verify: valid=true entries=10004 checkpoints=11"),
        "{out}"
    );
    assert!(out.contains("dropped the example's schema"), "{out}");
}

#[test]
fn a_ledger_only_journal_store_passes_the_ledger_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(example("journal_store")).arg(dir.path()));
    assert!(
        out.contains("appended 2500 entries, checkpoint 2500"),
        "{out}"
    );
    assert!(
        out.contains("reopened: 2500 entries, verify valid (1 checkpoints checked)"),
        "{out}"
    );
    assert!(
        out.contains("ledger conformance suite: passed on 9 fresh journals"),
        "{out}"
    );
    // The journal is plain JSON lines, one per durable write, that replay into the same ledger.
    let journal = std::fs::read_to_string(dir.path().join("audit.journal")).unwrap();
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line is JSON"))
        .collect();
    assert!(
        lines.iter().any(|l| l.get("append").is_some()),
        "{journal:.300}"
    );
    assert!(lines.iter().any(|l| l.get("checkpoint").is_some()));
    // A torn last write (a crash mid-line) is cut off on reopen; the ledger is intact.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("audit.journal"))
        .unwrap();
    f.write_all(br#"{"append": {"first": 2500, "ts""#).unwrap();
    drop(f);
    let again = run(Command::new(example("journal_store")).arg(dir.path()));
    assert!(
        again.contains("appended 2500 entries, checkpoint 5000"),
        "the torn line was cut and the next append followed the intact ledger: {again}"
    );
    assert!(
        again.contains("reopened: 5000 entries, verify valid"),
        "{again}"
    );
}

/// The composed server (redb, BLAKE3, Ed25519, the memory tools, WebSocket) serves a real MCP
/// session: a fact stored over the socket is found by a search and has an inclusion proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_composed_from_crates_serves_mcp_over_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use std::io::BufRead;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(example("mcp_redb_websocket"))
        .arg(dir.path())
        .arg("0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = common::KillOnDrop(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_owned();

    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut call = async |id: u64, method: &str, params: serde_json::Value| {
        let msg =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        ws.send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        loop {
            match ws.next().await.expect("a reply").unwrap() {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(v["id"], id, "{v}");
                    return v;
                }
                _ => continue,
            }
        }
    };
    let init = call(
        1,
        "initialize",
        serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "example-test", "version": "0"}}),
    )
    .await;
    assert_eq!(
        init["result"]["serverInfo"]["name"], "agent-memory",
        "{init}"
    );
    let stored = call(
        2,
        "tools/call",
        serde_json::json!({"name": "cortex_store", "arguments": {
            "project": "ops", "content": "the backup job runs nightly at two"}}),
    )
    .await;
    assert_eq!(stored["result"]["isError"], false, "{stored}");
    let found = call(
        3,
        "tools/call",
        serde_json::json!({"name": "cortex_search", "arguments": {"query": "backup nightly"}}),
    )
    .await;
    let hits = &found["result"]["structuredContent"]["hits"];
    assert_eq!(
        hits[0]["fact"]["content"], "the backup job runs nightly at two",
        "{found}"
    );
    let id = hits[0]["fact"]["id"].as_u64().unwrap();
    let cp = call(
        4,
        "tools/call",
        serde_json::json!({"name": "cortex_ledger_checkpoint", "arguments": {}}),
    )
    .await;
    assert_eq!(cp["result"]["isError"], false, "{cp}");
    let note = cp["result"]["structuredContent"]["note"].as_str().unwrap();
    assert!(
        note.starts_with("example.com/agent-memory/blake3\n"),
        "{note}"
    );
    let proof = call(
        5,
        "tools/call",
        serde_json::json!({"name": "cortex_ledger_proof", "arguments": {"index": id}}),
    )
    .await;
    assert_eq!(proof["result"]["isError"], false, "{proof}");
    assert!(dir.path().join("memory.redb").exists());
}

#[test]
fn postgres_ssh_witness_signs_twice_anchors_and_verifies_against_its_policy() {
    let Some(url) = cortex_core::testkit::postgres_url("the postgres_ssh_witness example") else {
        return;
    };
    let out = run(Command::new(example("postgres_ssh_witness")).arg(&url));
    for size in [500, 1000, 1500] {
        assert!(
            out.contains(&format!("checkpoint {size}: signed and stored in")),
            "{out}"
        );
    }
    assert_eq!(out.matches(": anchored in ").count(), 3, "{out}");
    assert!(out.contains("example.com/audited/blake3\n1500\n"), "{out}");
    assert!(
        out.contains("sshsig signature by SHA256:")
            && out.contains("-----BEGIN SSH SIGNATURE-----"),
        "the SSH signature is stored beside the checkpoint: {out}"
    );
    assert!(
        out.contains("witness receipt from http://127.0.0.1:")
            && out.contains("\u{2014} witness.example.org "),
        "the witness's cosignature is stored as the receipt: {out}"
    );
    assert!(out.contains("quorum 2\n"), "{out}");
    assert!(
        out.contains("verify: valid=true entries=1500 checkpoints=3 receipts verified offline=3"),
        "{out}"
    );
    assert!(
        out.contains(": anchored at size 1500, 0 entries behind"),
        "{out}"
    );
    assert!(out.contains("dropped the example's schema"), "{out}");
}
