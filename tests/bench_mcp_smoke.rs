//! Keeps `cortex benchmark --suite mcp` compiled and exercised: a tiny run must finish and print
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
