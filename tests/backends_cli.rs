//! The binary picks its store by URL: the same flow on SQLite and redb, and an unknown scheme
//! that lists the available ones.

use std::path::Path;
use std::process::{Command, Output};

fn cortex(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortex"));
    cmd.args(args)
        .env("CORTEX_HOME", home)
        .env("HOME", home)
        .env_remove("CORTEX_DB")
        .env_remove("CORTEX_SIGNING_KEY")
        .env_remove("CORTEX_HASHER")
        .env_remove("CORTEX_CHECKPOINT_EVERY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cortex");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn flow(url: &str, home: &Path) {
    let db = ["--db", url];
    let batch: String = (0..50)
        .map(|i| format!("{{\"project\":\"p\",\"action\":\"a\",\"detail\":{{\"i\":{i}}}}}\n"))
        .collect();
    ok(&cortex(
        home,
        &[&db[..], &["ledger", "append"]].concat(),
        Some(&batch),
    ));
    ok(&cortex(
        home,
        &[
            &db[..],
            &[
                "store",
                "--project",
                "acme",
                "--content",
                "redb and sqlite agree",
            ],
        ]
        .concat(),
        None,
    ));
    ok(&cortex(
        home,
        &[&db[..], &["ledger", "checkpoint"]].concat(),
        None,
    ));
    let v = ok(&cortex(
        home,
        &[&db[..], &["ledger", "verify"]].concat(),
        None,
    ));
    assert!(
        v.contains("✓ Chain valid (51 transactions, 1 checkpoints)"),
        "{url}: {v}"
    );
    let s = ok(&cortex(
        home,
        &[&db[..], &["search", "agree", "--project", "acme"]].concat(),
        None,
    ));
    assert!(s.contains("redb and sqlite agree"), "{url}: {s}");
    let p = ok(&cortex(
        home,
        &[&db[..], &["ledger", "proof", "7", "-o", "-"]].concat(),
        None,
    ));
    assert!(p.starts_with("c2sp.org/tlog-proof@v1\n"), "{url}: {p}");
}

#[test]
fn the_same_flow_runs_on_sqlite_and_redb_urls() {
    let dir = tempfile::tempdir().unwrap();
    flow(
        &format!("sqlite://{}/a.db", dir.path().display()),
        dir.path(),
    );
    let dir2 = tempfile::tempdir().unwrap();
    flow(
        &format!("redb://{}/a.redb", dir2.path().display()),
        dir2.path(),
    );
}

#[test]
fn an_unknown_scheme_lists_the_available_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = cortex(
        dir.path(),
        &["--db", "mongodb://x/y", "ledger", "status"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mongodb") && err.contains("sqlite") && err.contains("redb"),
        "{err}"
    );
}

#[test]
fn the_same_flow_runs_on_a_postgres_url() {
    let Some(base) = cortex_core::testkit::postgres_url("the binary against Postgres") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("cli_{}_{nanos}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let dir = tempfile::tempdir().unwrap();
    flow(&url, dir.path());
    // Best effort: drop the test schema.
    let _ = Command::new("psql")
        .arg(&base)
        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
}

/// An unreachable server, a database that does not exist and an unknown role each fail at once
/// with their cause (the pool used to wait 30 s and say "timed out waiting for connection").
#[test]
fn an_unreachable_postgres_fails_fast_and_names_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |url: &str, says: &str| {
        let started = std::time::Instant::now();
        let o = cortex(dir.path(), &["--db", url, "ledger", "status"], None);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains(says), "{err:?} should say {says:?}");
        assert!(!err.contains("timed out"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    };
    fails("postgres://postgres@127.0.0.1:1/x", "Connection refused");
    let Some(base) = cortex_core::testkit::postgres_url("a missing Postgres database") else {
        return;
    };
    let (address, query) = base.split_once('?').unwrap_or((&base, ""));
    let (server, _) = address.rsplit_once('/').expect("a database in the URL");
    let sep = if query.is_empty() { "" } else { "?" };
    fails(
        &format!("{server}/cortex_no_such_db{sep}{query}"),
        "\"cortex_no_such_db\" does not exist",
    );
}
