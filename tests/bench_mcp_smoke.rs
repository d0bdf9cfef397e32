//! Keeps `cortex benchmark` (both suites, every backend) compiled and exercised: a tiny run must finish and print
//! every figure's line. Values are never asserted (timings belong to the benchmark, not tests).

use assert_cmd::Command;

#[test]
fn mcp_suite_runs_small_and_prints_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_cortex"))
        .env("CORTEX_HOME", dir.path())
        .env_remove("CORTEX_DB")
        .args([
            "benchmark",
            "--suite",
            "mcp",
            "--facts",
            "2000",
            "--entries",
            "5000",
        ])
        .args(["--duration", "1", "--dir"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "warm search, stdio (p50)",
        "warm search, Streamable HTTP (p50)",
        "uncached search, stdio (p99)",
        "uncached search, Streamable HTTP (p99)",
        "throughput, Streamable HTTP, 32 connections",
        "throughput, wrk, 32 connections",
        "RSS while serving",
        "process start → first MCP answer (median)",
    ] {
        assert!(stdout.contains(line), "no {line:?} line in:\n{stdout}");
    }
    // The suite cleans up after itself.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cortex-bench-mcp-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A tiny `--suite ledger` run on one backend must finish, print every figure's line, and clean
/// up after itself.
fn ledger_suite_runs_small(backend: &str, db: Option<&str>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortex"));
    cmd.env("CORTEX_HOME", dir.path())
        .env_remove("CORTEX_DB")
        .args(["benchmark", "--suite", "ledger", "--backend", backend])
        .args(["--entries", "10000", "--singles", "100", "--facts", "1000"])
        .arg("--dir")
        .arg(dir.path());
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    let out = cmd
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{backend}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("CORTEX ledger benchmark: {backend}")),
        "{stdout}"
    );
    for line in [
        "append, batched (durable at commit)",
        "append, single entry per transaction",
        "append, 64 concurrent single writers",
        "full verify, N entries",
        "inclusion proof at N (p50)",
        "consistency proof at N (p50)",
        "verify-external, N entries (jsonl)",
        "store facts, batches of 10k",
        "search (store), top 10 (p50)",
    ] {
        assert!(
            stdout.contains(line),
            "{backend}: no {line:?} line in:\n{stdout}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cortex-bench-"))
        .collect();
    assert!(left.is_empty(), "{backend}: left behind: {left:?}");
}

#[test]
fn ledger_suite_runs_small_on_sqlite_and_redb() {
    ledger_suite_runs_small("sqlite", None);
    ledger_suite_runs_small("redb", None);
}

#[test]
fn ledger_suite_runs_small_on_postgres() {
    let Some(url) = cortex_core::testkit::postgres_url("the Postgres ledger benchmark smoke run")
    else {
        return;
    };
    ledger_suite_runs_small("postgres", Some(&url));
}

#[test]
fn ledger_suite_names_a_bad_backend() {
    for (args, want) in [
        (
            vec!["--backend", "mysql"],
            "available: sqlite, redb, postgres",
        ),
        (
            vec!["--backend", "postgres"],
            "--backend postgres needs the server",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cortex"))
            .env_remove("CORTEX_DB")
            .args(["benchmark", "--entries", "10000"])
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
