//! The dashboard `cortex serve` shows at `/`, in a real headless Chromium: `cortex serve
//! --port 0` on a fresh home with a read and a write key, a few facts and a checkpoint stored
//! through the REST API, then `tests/dashboard/dashboard_check.py` (Playwright in a venv under
//! `target/test-peers/python/`, driving the machine's Chromium, no browser download) enters the
//! read key, reads the page and clicks the verify button. The screenshot is kept as
//! `target/test-artifacts/dashboard.png`.
//!
//! Chromium comes from Debian (`apt-get install -y chromium`, `/usr/bin/chromium`, or the path
//! in `CORTEX_TEST_CHROMIUM`). Without it, or without the venv, the test is reported as skipped,
//! and under `CI=true` it fails naming the cause.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WHAT: &str = "the dashboard browser test";
/// The Python driver (its `driver` bundles Node; the browser is the machine's Chromium).
const PLAYWRIGHT: &[&str] = &["playwright==1.65.3"];

use common::serve::{cortex, key};

/// `cortex serve --port 0`, killed when dropped; and its base URL.
fn serve(home: &Path) -> (common::KillOnDrop, String) {
    let mut child: Child = cortex(home)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let child = common::KillOnDrop(child);
    let mut seen = String::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("cortex serve ended before listening:\n{seen}");
        };
        seen += &line;
        seen.push('\n');
        if let Some((_, rest)) = line.split_once("cortex serve on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

fn call(method: &str, url: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

/// The machine's Chromium, or `None` after `skip` says why there is none.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CORTEX_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    cortex_core::testkit::skip(
        WHAT,
        &format!(
            "no Chromium at {} (install Debian's: apt-get install -y chromium)",
            path.display()
        ),
    );
    None
}

/// `<target>/test-artifacts/dashboard.png`.
fn screenshot_path() -> PathBuf {
    let peers = cortex_core::testkit::peers::peers_dir().expect("the target directory");
    let dir = peers.parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("dashboard.png")
}

fn drive(python: &Path, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/dashboard_check.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the dashboard driver");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dashboard_check.py did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dashboard_check.py failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad summary {line:?}: {e}"))
}

#[test]
fn the_dashboard_shows_the_ledger_and_verifies_it_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let Some(python) = common::python_or_skip(WHAT, "playwright", PLAYWRIGHT, &["playwright"])
    else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let reader = key(home.path(), "dashboard", "read");
    let writer = key(home.path(), "agent", "write");
    let (_server, base) = serve(home.path());
    let url = |p: &str| format!("{base}{p}");

    for (project, content) in [
        ("billing", "Invoices are sent on the first working day"),
        ("billing", "VAT is 20% for UK customers"),
        ("ops", "Backups run at 02:00 UTC"),
    ] {
        let body = serde_json::json!({"project": project, "content": content}).to_string();
        let (s, v) = call("POST", &url("/v1/facts"), &writer, Some(&body));
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = call("POST", &url("/v1/ledger/checkpoint"), &writer, None);
    assert_eq!(s, 200, "{v}");
    let (s, status) = call("GET", &url("/v1/ledger/status"), &reader, None);
    assert_eq!(s, 200, "{status}");
    let size = status["size"].as_u64().unwrap();

    // The summary the page reads: a read key is enough; no key is a 401.
    let (s, d) = call("GET", &url("/v1/dashboard"), &reader, None);
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["ledger"]["size"], size, "{d}");
    assert_eq!(d["memory"]["facts"], 3, "{d}");
    assert_eq!(
        d["memory"]["projects"][0],
        serde_json::json!({"project": "billing", "facts": 2})
    );
    assert_eq!(d["checkpoints"][0]["size"], size, "{d}");
    assert_eq!(d["checkpoints"][0]["signatures"], 1, "{d}");
    let appended: u64 = d["appends"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(
        appended, size,
        "every entry was appended within the hour: {d}"
    );
    assert_eq!(call("GET", &url("/v1/dashboard"), "", None).0, 401);

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let seen = drive(
        &python,
        &[
            &base,
            &reader,
            shot.to_str().unwrap(),
            chromium.to_str().unwrap(),
        ],
    );
    assert!(
        seen.get("failed").is_none(),
        "the page did not get through (screenshot: {}): {seen:#}",
        shot.display()
    );
    assert_eq!(seen["board_hidden_before_key"], true, "{seen}");
    assert!(
        seen["refused_message"]
            .as_str()
            .is_some_and(|m| m.contains("The key was refused")),
        "{seen}"
    );
    assert_eq!(seen["form_back_after_refusal"], true, "{seen}");
    assert_eq!(
        seen["ledger_size"].as_str(),
        Some(size.to_string().as_str()),
        "the page shows the real size: {seen}"
    );
    assert_eq!(seen["last_hash"], status["last_hash"], "{seen}");
    assert_eq!(seen["stored_key"].as_str(), Some(reader.as_str()), "{seen}");
    assert_eq!(seen["message_hidden"], true, "{seen}");
    assert_eq!(seen["verify_class"], "result ok", "{seen}");
    assert!(
        seen["verify_text"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("Valid: {size} entries"))),
        "{seen}"
    );
    assert_eq!(seen["last_verify"], "valid", "{seen}");
    assert_eq!(seen["append_bars"], 60, "{seen}");
    let projects: Vec<&str> = seen["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        projects.len() == 2 && projects[0].starts_with("billing") && projects[1].starts_with("ops"),
        "{seen}"
    );
    assert_eq!(seen["checkpoints"].as_array().unwrap().len(), 1, "{seen}");
    assert!(
        seen["verifications"][0]
            .as_str()
            .is_some_and(|r| r.contains("valid")),
        "{seen}"
    );
    assert_eq!(
        seen["console_errors"],
        serde_json::json!([]),
        "the page logged errors"
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        shot.display()
    );
}
