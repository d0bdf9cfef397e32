//! `cortex serve` against its own OpenAPI document, fuzzed by the real Schemathesis
//! (`schemathesis==4.32.5`, in a venv under `target/test-peers/python/` made on first use by
//! `cortex_core::testkit::peers::python_env`).
//!
//! The server runs in a fresh `CORTEX_HOME` with an admin API key, a few stored facts and a
//! signed checkpoint, so reads have data. Schemathesis then loads `/openapi.json` and runs every
//! phase (examples, coverage, fuzzing, stateful) over every operation, positive and negative
//! data, with a fixed seed, one worker and a bounded number of examples per operation, checking
//! that no response is a 5xx (`not_a_server_error`), that each status is documented
//! (`status_code_conformance`), that each body has a documented content type
//! (`content_type_conformance`) and matches its schema (`response_schema_conformance`), that a
//! request without the API key is refused (`ignored_auth`, `missing_required_header`) and that an
//! undocumented method gets 405 with `Allow` ([`CHECKS`]); any failure or error (a dropped
//! connection, a cut-off body) fails the test with Schemathesis's report. `/v1/ledger/export`
//! is included: its streamed bodies are checked too.
//!
//! A venv that cannot be made fails the test when `CI=true` and is reported as skipped otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pinned Schemathesis release.
const SCHEMATHESIS: &[&str] = &["schemathesis==4.32.5"];

/// What every response must satisfy. Not `positive_data_acceptance`: the server refuses, with
/// a documented 400, values the schemas cannot express (control characters in names, blank
/// fields, timestamps, `old` > `new`). Not `negative_data_rejection`: the server leniently takes
/// a whitespace-only body as no body.
const CHECKS: &[&str] = &[
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
];

/// Test cases per operation and phase: the run takes a little over a minute on two cores.
const MAX_EXAMPLES: u32 = 300;

/// The seed, so that a failure is reproduced by running the test again.
const SEED: u32 = 20260101;

/// Longest the Schemathesis run may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The binary with `--home home`, and no `CORTEX_*` variable of the caller's that could point
/// it at another database, key or setting.
fn cortex(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cortex"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CORTEX_") {
            command.env_remove(name);
        }
    }
    command.arg("--home").arg(home);
    command
}

/// A running `cortex serve`, killed (and reaped) when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
    /// The server's stderr so far (the last lines), for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

/// Starts `cortex serve --port 0 --rate-limit 0` and learns its address from the line it prints
/// on stderr once it listens. Its stderr is drained for as long as it runs (so a full pipe
/// never blocks it), the last lines kept.
fn serve(home: &Path) -> Server {
    let mut child = cortex(home)
        .args(["serve", "--port", "0", "--rate-limit", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cortex serve");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().expect("stderr is piped");
    let lines = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            // The line may come with a log prefix (time, level).
            const READY: &str = "cortex serve on http://";
            if let Some(at) = line.find(READY) {
                let rest = &line[at + READY.len()..];
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(address.to_owned());
            }
            if let Ok(mut l) = lines.lock() {
                if l.len() >= 200 {
                    l.remove(0);
                }
                l.push(line);
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(30));
    let mut server = Server {
        child,
        address: String::new(),
        stderr,
    };
    match address {
        Ok(a) => server.address = a,
        Err(_) => {
            let status = server.child.try_wait().ok().flatten();
            panic!(
                "cortex serve printed no `cortex serve on http://…` line within 30 s (exited: \
                 {status:?}); stderr:\n{}",
                server.log()
            );
        }
    }
    server
}

/// One HTTP/1.1 request with the API key; returns the status and the body.
fn call(server: &Server, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.address)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.address));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.address,
        body.len()
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("{method} {path}: no response: {e}"));
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The `st` of the Schemathesis venv, or `None` (after reporting the skip) when it cannot be
/// made; under `CI=true` that is a failure naming the cause.
fn schemathesis() -> Option<PathBuf> {
    cortex_core::testkit::peers::python_env("schemathesis", SCHEMATHESIS, &["schemathesis"])
        .map_err(|why| cortex_core::testkit::skip("the Schemathesis fuzz of cortex serve", &why))
        .ok()
        .map(|python| python.with_file_name("st"))
}

#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let Some(st) = schemathesis() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");

    let key = cortex(&home)
        .args([
            "keys", "api", "create", "--name", "fuzzer", "--role", "admin",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run cortex keys api create");
    let token = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    assert!(
        key.status.success() && token.starts_with("cortex_"),
        "cortex keys api create failed ({}): stdout {token:?}, stderr {}",
        key.status,
        String::from_utf8_lossy(&key.stderr)
    );

    let server = serve(&home);
    for (project, content) in [
        ("p", "the build uses cargo and two cores"),
        ("p", "schemathesis fuzzes the REST API"),
        ("q", "facts are ledger entries"),
    ] {
        let body = serde_json::json!({"project": project, "content": content}).to_string();
        let (status, answer) = call(&server, &token, "POST", "/v1/facts", &body);
        assert_eq!(status, 201, "storing a fact: {answer}");
    }
    let (status, answer) = call(&server, &token, "POST", "/v1/ledger/checkpoint", "");
    assert_eq!(status, 200, "signing a checkpoint: {answer}");

    let work = tmp.path().join("schemathesis");
    std::fs::create_dir_all(&work).expect("schemathesis directory");
    let output = work.join("output.txt");
    let log = std::fs::File::create(&output).expect("output file");
    let url = format!("http://{}/openapi.json", server.address);
    let mut command = Command::new(&st);
    command
        .current_dir(&work)
        .args(["run", &url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", &CHECKS.join(",")])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--seed", &SEED.to_string()])
        .args(["--workers", "1"])
        .args(["--request-timeout", "60"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONWARNINGS", "ignore::DeprecationWarning")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("output file"))
        .stderr(log);
    let shown = format!("{command:?}").replace(&token, "cortex_…");
    let began = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if began.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = std::fs::read_to_string(&output).unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "schemathesis ran for {:.0} s: {}",
        began.elapsed().as_secs_f64(),
        report.lines().last().unwrap_or_default()
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "schemathesis failed ({s}):\n{shown}\n\n{report}\n\ncortex serve's stderr (last \
             lines):\n{}",
            server.log()
        ),
        None => panic!(
            "schemathesis did not finish within {} s:\n{shown}\n\n{report}",
            RUN_TIMEOUT.as_secs()
        ),
    }
    // The server is still up after the run.
    let (status, answer) = call(&server, &token, "GET", "/v1/ledger/status", "");
    assert_eq!(status, 200, "{answer}");
}
