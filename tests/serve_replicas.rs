//! Three `cortex serve` replicas on one PostgreSQL database, as the Kubernetes manifests run
//! them: writes through any replica land in one chain that verifies, a read through another
//! replica right after an acknowledged write sees it, and a key made once works on all three.

mod common;

use common::serve::{call, ok, start};
use std::path::Path;

fn pg_url(what: &str) -> Option<(String, String)> {
    let base = cortex_core::testkit::postgres_url(what)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("replicas_{}_{nanos}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((format!("{base}{sep}schema={schema}"), schema))
}

fn drop_schema(url: &str, schema: &str) {
    let base = url.split("schema=").next().unwrap_or(url);
    let base = base.trim_end_matches(['?', '&']);
    let _ = std::process::Command::new("psql")
        .arg(base)
        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
}

fn global(url: &str) -> Vec<String> {
    vec!["--db".into(), url.into()]
}

#[test]
fn three_replicas_on_one_postgres_keep_one_chain_and_read_their_writes() {
    let Some((url, schema)) = pg_url("three cortex serve replicas on Postgres") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h: &Path = home.path();
    // One key for the ledger's checkpoints (a Kubernetes Secret mounted in every pod), one
    // database; the API key is made once, in the database, and works on every replica.
    ok(
        h,
        &[
            "--db",
            &url,
            "keys",
            "generate",
            "--name",
            "example.com/replicas",
        ],
    );
    let writer = ok(
        h,
        &[
            "--db", &url, "keys", "api", "create", "--name", "loader", "--role", "write",
        ],
    );
    let args: Vec<String> = global(&url)
        .into_iter()
        .chain(["--rate-limit".into(), "0".into()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let replicas: Vec<_> = (0..3).map(|_| start(h, &args)).collect();
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();

    // Three writers at once, each through its own replica, each reading its write back through
    // the next replica as soon as it is acknowledged.
    let per_writer = 40;
    std::thread::scope(|scope| {
        for w in 0..3 {
            let (bases, writer) = (&bases, &writer);
            scope.spawn(move || {
                for i in 0..per_writer {
                    let word = format!("marker{w}x{i}");
                    let body =
                        format!(r#"{{"project": "replicas", "content": "write {word} via {w}"}}"#);
                    let (s, _, stored) = call(
                        "POST",
                        &format!("{}/v1/facts", bases[w]),
                        Some(writer),
                        Some(&body),
                    );
                    assert_eq!(s, 201, "{stored}");
                    let id = stored["facts"][0]["id"].as_u64().unwrap();
                    let other = &bases[(w + 1) % 3];
                    let (s, _, got) =
                        call("GET", &format!("{other}/v1/facts/{id}"), Some(writer), None);
                    assert_eq!(
                        s, 200,
                        "fact {id} written via {w} is not readable via the next replica: {got}"
                    );
                    let (_, _, found) = call(
                        "GET",
                        &format!("{other}/v1/search?query={word}"),
                        Some(writer),
                        None,
                    );
                    assert_eq!(
                        found["count"], 1,
                        "search for {word} via another replica: {found}"
                    );
                }
            });
        }
    });

    // One chain: every write is in it, and it verifies (checkpoint signed by one replica,
    // verified by another).
    let (s, _, cp) = call(
        "POST",
        &format!("{}/v1/ledger/checkpoint", bases[2]),
        Some(&writer),
        None,
    );
    assert_eq!(s, 200, "{cp}");
    let (_, _, v) = call(
        "GET",
        &format!("{}/v1/ledger/verify", bases[0]),
        Some(&writer),
        None,
    );
    assert_eq!(v["valid"], true, "{v}");
    // The key's creation entry, then every fact.
    assert_eq!(v["entries_checked"], 1 + 3 * per_writer, "{v}");
    assert_eq!(v["memory"]["facts"], 3 * per_writer, "{v}");
    let (_, _, status) = call(
        "GET",
        &format!("{}/v1/ledger/status", bases[1]),
        Some(&writer),
        None,
    );
    assert_eq!(status["size"], 1 + 3 * per_writer);
    drop(replicas);
    drop_schema(&url, &schema);
}

#[test]
fn a_key_revoked_through_one_replica_stops_working_on_all() {
    let Some((url, schema)) = pg_url("API keys shared by replicas") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = ok(
        h,
        &[
            "--db", &url, "keys", "api", "create", "--name", "r", "--role", "read",
        ],
    );
    let args = ["--db", url.as_str()];
    let a = start(h, &args);
    let b = start(h, &args);
    for s in [&a, &b] {
        assert_eq!(
            call(
                "GET",
                &format!("{}/v1/ledger/status", s.base),
                Some(&token),
                None
            )
            .0,
            200
        );
    }
    ok(h, &["--db", &url, "keys", "api", "revoke", &token[7..19]]);
    std::thread::sleep(std::time::Duration::from_millis(2600));
    for s in [&a, &b] {
        let (code, _, body) = call(
            "GET",
            &format!("{}/v1/ledger/status", s.base),
            Some(&token),
            None,
        );
        assert_eq!(code, 401, "{body}");
    }
    drop((a, b));
    drop_schema(&url, &schema);
}

/// PostgreSQL crashes (an immediate stop, recovered from its WAL) and comes back while writers
/// store facts through `cortex serve`: every write the server acknowledged is there afterwards,
/// the chain verifies, and the server serves again without a restart of its own.
#[test]
fn a_postgres_crash_under_load_loses_no_acknowledged_write() {
    let cluster = match cortex_core::testkit::peers::OwnCluster::create("crash") {
        Ok(c) => c,
        Err(why) => {
            cortex_core::testkit::skip("a Postgres crash under load", &why);
            return;
        }
    };
    let url = cluster.url();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = ok(
        h,
        &[
            "--db", &url, "keys", "api", "create", "--name", "w", "--role", "write",
        ],
    );
    let server = start(h, &["--db", url.as_str(), "--rate-limit", "0"]);
    let base = server.base.clone();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicU64::new(0);
    let stop_at = std::time::Instant::now() + std::time::Duration::from_secs(6);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (base, token, acknowledged, failed) = (&base, &token, &acknowledged, &failed);
            scope.spawn(move || {
                let mut i = 0;
                while std::time::Instant::now() < stop_at {
                    i += 1;
                    let body = format!(r#"{{"project": "crash", "content": "write {w}-{i}"}}"#);
                    let (s, _, v) = call(
                        "POST",
                        &format!("{base}/v1/facts"),
                        Some(token),
                        Some(&body),
                    );
                    if s == 201 {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(v["facts"][0]["id"].as_u64().unwrap());
                    } else {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        cluster.restart_immediately().expect("restart Postgres");
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() > 20,
        "writes before and after the crash: {}",
        acknowledged.len()
    );
    // The server serves again, by itself.
    let (s, _, body) = call(
        "POST",
        &format!("{base}/v1/facts"),
        Some(&token),
        Some(r#"{"project": "crash", "content": "after the crash"}"#),
    );
    assert_eq!(s, 201, "{body}");
    for id in &acknowledged {
        let (s, _, f) = call("GET", &format!("{base}/v1/facts/{id}"), Some(&token), None);
        assert_eq!(s, 200, "acknowledged fact {id} is lost: {f}");
    }
    let (s, _, cp) = call(
        "POST",
        &format!("{base}/v1/ledger/checkpoint"),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{cp}");
    let (_, _, v) = call(
        "GET",
        &format!("{base}/v1/ledger/verify"),
        Some(&token),
        None,
    );
    assert_eq!(v["valid"], true, "{v}");
    eprintln!(
        "{} writes acknowledged, {} refused during the crash",
        acknowledged.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(server);
}
