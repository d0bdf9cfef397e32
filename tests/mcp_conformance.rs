//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios)
//! against `cortex mcp start --transport http`, judged strictly against
//! `tests/mcp_conformance/expected-failures.txt` by `tests/mcp_conformance/run.sh`. The suite and
//! the Node it needs (>= 22, from the `node-linux-<arch>` package) are installed under
//! `target/test-peers/npm/mcp-conformance` on first use (`cortex_core::testkit::peers`). When they
//! cannot be installed the test is skipped with the cause, except under `CI=true`, where it fails.

use std::path::Path;
use std::process::Command;

/// The suite and a Node that can run it, pinned.
fn packages() -> [String; 2] {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "x64",
        other => other,
    };
    [
        format!("node-linux-{arch}@22"),
        "@modelcontextprotocol/conformance@0.1.16".to_owned(),
    ]
}

#[test]
fn the_official_conformance_suite_passes_but_for_the_expected_failures() {
    let packages = packages();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    let dir = match cortex_core::testkit::peers::npm_packages(
        "mcp-conformance",
        &packages,
        &["conformance"],
    ) {
        Ok(dir) => dir,
        Err(why) => {
            cortex_core::testkit::skip("the MCP conformance suite", &why);
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_conformance/run.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .env("CORTEX_BIN", env!("CARGO_BIN_EXE_cortex"))
        .output()
        .expect("run tests/mcp_conformance/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the conformance suite failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stdout.contains("conformance suite missing"),
        "the suite did not run:\n{stdout}"
    );
    // The suite's summary (shown with --nocapture).
    let lines: Vec<&str> = stdout.lines().collect();
    eprintln!("{}", lines[lines.len().saturating_sub(15)..].join("\n"));
}
