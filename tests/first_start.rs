//! Safe first start: a fresh home (and a fresh database) opened by many processes at once ends
//! with one origin and one signing key, and every process succeeds. Eight `cortex ledger append`
//! processes, a `cortex store` and a `cortex mcp start` that stores a fact over stdio start
//! together on a fresh home, twenty times, on SQLite and on PostgreSQL; then every later
//! command works. Also: what happens when the home and the database do not belong together.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{KillOnDrop, Run, Sandbox};

/// `cortex ledger append` processes per round.
const APPENDS: usize = 8;
/// Rounds per store.
const ROUNDS: usize = 20;
/// Entries each round writes: the appends, the `cortex store` and the MCP server's store.
const ENTRIES: u64 = APPENDS as u64 + 2;
/// How long any one process may take.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

impl Sandbox {
    /// The binary in the sandbox with `db` (if any) as `--db`, all three pipes captured.
    fn spawn(&self, db: Option<&str>, args: &[&str]) -> KillOnDrop {
        let mut c = self.std_command();
        if let Some(db) = db {
            c.args(["--db", db]);
        }
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        KillOnDrop(c.spawn().expect("spawn cortex"))
    }
    fn run_on(&self, db: Option<&str>, args: &[&str]) -> Run {
        let mut all = Vec::new();
        if let Some(db) = db {
            all.extend(["--db", db]);
        }
        all.extend_from_slice(args);
        self.run(&all)
    }
}

/// Waits for `child` (its stdin closed) and returns what it produced.
fn finish(mut child: KillOnDrop, what: &str) -> Run {
    drop(child.0.stdin.take());
    let (tx, rx) = mpsc::channel();
    let Child { stdout, stderr, .. } = &mut child.0;
    let (mut stdout, mut stderr) = (stdout.take().unwrap(), stderr.take().unwrap());
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        let _ = tx.send((out, err));
    });
    let (stdout, stderr) = rx
        .recv_timeout(PROCESS_TIMEOUT)
        .unwrap_or_else(|_| panic!("{what} did not finish within {PROCESS_TIMEOUT:?}"));
    let status = child.0.wait().expect("wait for cortex");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Drives a `cortex mcp start` (stdio) child: the `initialize` handshake, then one
/// `cortex_store` call, then end of input; returns the reply to the call and how it ended.
fn mcp_store(mut child: KillOnDrop, content: &str) -> (Value, Run) {
    let mut stdin = child.0.stdin.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let messages = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "first-start-test", "version": "0"}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "cortex_store", "arguments": {"project": "race", "content": content}}}),
    ];
    // A server that failed to start has closed its stdin: the reply wait below reports it.
    for m in messages {
        let _ = writeln!(stdin, "{m}");
    }
    let _ = stdin.flush();
    let mut reply = Value::Null;
    while let Ok(line) = rx.recv_timeout(PROCESS_TIMEOUT) {
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["id"] == 2 {
            reply = v;
            break;
        }
    }
    drop(stdin);
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr);
    let status = child.0.wait().expect("wait for cortex mcp start");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: rx.try_iter().collect::<Vec<_>>().join("\n"),
        stderr,
    };
    (reply, run)
}

/// One round: every process starts at once on the fresh home of `s` (no key yet) and its
/// database (`db`, or the home's SQLite file): a fresh one in even rounds, one `cortex migrate`
/// made beforehand in odd rounds, where the processes reach the key sooner and all together.
/// All must succeed, and leave one origin, one key pair and a ledger that verifies and keeps
/// working.
fn race(s: &Sandbox, db: Option<&str>, round: usize) {
    let migrated = round % 2 == 1;
    if migrated {
        s.run_on(db, &["migrate"]).ok();
    }
    let appends: Vec<(String, KillOnDrop)> = (0..APPENDS)
        .map(|i| {
            let detail = format!("{{\"round\":{round},\"process\":{i}}}");
            let args = [
                "ledger",
                "append",
                "--project",
                "race",
                "--action",
                "start",
                "--detail",
            ];
            let child = s.spawn(db, &[&args[..], &[detail.as_str()]].concat());
            (format!("ledger append #{i}"), child)
        })
        .collect();
    let store = s.spawn(
        db,
        &[
            "store",
            "--project",
            "race",
            "--content",
            "stored by the CLI",
        ],
    );
    let server = s.spawn(db, &["mcp", "start", "--transport", "stdio"]);

    let mut runs: Vec<(String, Run)> = appends
        .into_iter()
        .map(|(what, child)| {
            let run = finish(child, &what);
            (what, run)
        })
        .collect();
    runs.push(("store".into(), finish(store, "cortex store")));
    let (reply, run) = mcp_store(server, "stored over MCP");
    runs.push(("mcp start".into(), run));

    let context = format!(
        "round {round} on {}{}",
        db.unwrap_or("SQLite"),
        if migrated { ", migrated first" } else { "" }
    );
    for (what, run) in &runs {
        assert_eq!(run.code, 0, "{context}: {what} failed: {run:#?}");
    }
    assert_eq!(
        reply["result"]["isError"], false,
        "{context}: the MCP store failed: {reply}"
    );
    let announced = runs
        .iter()
        .filter(|(_, r)| r.stderr.contains("Generated checkpoint signing key"))
        .count();
    assert_eq!(
        announced, 1,
        "{context}: {announced} processes say they generated the key: {runs:#?}"
    );

    // One key pair, nothing else left in the key directory, the secret key private.
    let keys = s.home().join("keys");
    let mut files: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["ledger.skey", "ledger.vkey"], "{context}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.skey()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{context}: the secret key's mode");
    }
    let skey = std::fs::read_to_string(s.skey()).unwrap();
    let vkey = std::fs::read_to_string(s.vkey()).unwrap();
    let key_name = vkey.split('+').next().unwrap().to_owned();
    assert!(
        skey.starts_with(&format!("PRIVATE+KEY+{key_name}+")),
        "{context}: the secret and verifier keys differ: {skey:?} / {vkey:?}"
    );

    // One origin, the key's name, and every entry there.
    let status = s.run_on(db, &["--json", "ledger", "status"]).ok().json();
    assert_eq!(status["origin"], key_name.as_str(), "{context}: {status}");
    assert_eq!(status["size"], ENTRIES, "{context}: {status}");

    // Later commands all work: a checkpoint signed by the key, verified with its vkey.
    s.run_on(db, &["ledger", "checkpoint"]).ok();
    s.run_on(
        db,
        &["ledger", "append", "--project", "race", "--action", "after"],
    )
    .ok();
    let report = s.run_on(db, &["--json", "ledger", "verify"]).ok().json();
    assert_eq!(report["valid"], true, "{context}: {report}");
    assert_eq!(
        report["entries_checked"],
        ENTRIES + 1,
        "{context}: {report}"
    );
    assert_eq!(report["checkpoints_checked"], 1, "{context}: {report}");
}

#[test]
fn many_processes_share_a_fresh_home_on_sqlite() {
    for round in 0..ROUNDS {
        race(&Sandbox::new(), None, round);
    }
}

#[test]
fn many_processes_share_a_fresh_home_and_database_on_postgres() {
    let Some(base) = cortex_core::testkit::postgres_url("the first-start race on Postgres") else {
        return;
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for round in 0..ROUNDS {
        let schema = format!("first_start_{}_{nanos}_{round}", std::process::id());
        let url = format!("{base}{sep}schema={schema}");
        race(&Sandbox::new(), Some(&url), round);
        // Best effort: drop the round's schema.
        let _ = Command::new("psql")
            .arg(&base)
            .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
            .output();
    }
}

/// A key made beforehand names a fresh ledger; a ledger whose key is missing, or whose home
/// holds another ledger's key, is refused with an error naming both, and nothing is written.
#[test]
fn a_home_and_a_database_that_do_not_belong_together_are_refused() {
    let append = ["ledger", "append", "--project", "p", "--action", "a"];

    // Key first, database fresh: the key's name becomes the origin.
    let s = Sandbox::new();
    s.run(&["keys", "generate", "--name", "example.com/audit"])
        .ok();
    s.run(&append).ok();
    let status = s.run(&["--json", "ledger", "status"]).ok().json();
    assert_eq!(status["origin"], "example.com/audit");

    // Database with an origin, key gone: refused, naming the origin and the missing key.
    std::fs::remove_file(s.skey()).unwrap();
    s.run(&append)
        .code(2)
        .err_has("this ledger's origin is \"example.com/audit\"")
        .err_has("ledger.skey is missing");
    assert!(!s.skey().exists(), "no replacement key is made");

    // Another ledger's key in the home: refused, naming both.
    s.run(&["keys", "generate", "--name", "example.com/other"])
        .ok();
    s.run(&append)
        .code(2)
        .err_has("this ledger's origin is \"example.com/audit\"")
        .err_has("the signing key is named \"example.com/other\"");
    let status = s.run(&["--json", "ledger", "status"]).ok().json();
    assert_eq!(status["size"], 1, "the refused appends wrote nothing");
}
