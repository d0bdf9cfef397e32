//! Anchoring through the binary, against a real `cortex witness serve` on loopback: the newest
//! checkpoint is submitted in the background while appends go on; a witness that goes away
//! never blocks an append, its anchor is reported as failing, and the receipt arrives once it is
//! back; `verify` re-checks every receipt offline and catches an altered one.

mod common;

use common::{KillOnDrop, Sandbox, free_port};
use cortex_bench::peers::TestCa;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A `cortex witness serve` on `port`, witnessing the log whose verifier key is in `logs`; its
/// own verifier key.
fn witness(home: &Path, logs: &Path, port: u16) -> (KillOnDrop, String) {
    let mut child = common::cortex_in(home, &[])
        .args([
            "--json",
            "witness",
            "serve",
            "--name",
            "example.com/witness",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--logs")
        .arg(logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run cortex witness serve");
    let mut text = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let v: Value = serde_json::from_str(&text).expect("the witness's startup JSON");
    (KillOnDrop(child), v["vkey"].as_str().unwrap().to_owned())
}

impl Sandbox {
    fn append_some(&self, n: usize) {
        let lines: String = (0..n)
            .map(|i| format!("{{\"project\":\"p\",\"action\":\"a\",\"detail\":{{\"i\":{i}}}}}\n"))
            .collect();
        self.run_with_stdin(&["ledger", "append"], &lines).ok();
    }
    /// A fresh ledger with its key, a witness home beside it that knows the ledger's key, and a
    /// policy declaring the witness at `port`.
    fn anchored_setup(&self, port: u16) -> (String, std::path::PathBuf) {
        self.append_some(2);
        self.run(&["ledger", "checkpoint"]).ok();
        let whome = self.path("witness-home");
        std::fs::create_dir_all(&whome).unwrap();
        let logs = whome.join("logs.txt");
        std::fs::copy(self.vkey(), &logs).unwrap();
        let policy = self.path("policy.txt");
        std::fs::write(
            &policy,
            format!(
                "signer ed25519 {}\nanchor witness http://127.0.0.1:{port} witness.vkey\n",
                self.vkey()
            ),
        )
        .unwrap();
        (policy.display().to_string(), whome)
    }
    fn anchor_status(&self, policy: &str) -> Value {
        let s = self
            .run(&["--json", "--policy", policy, "ledger", "status"])
            .ok()
            .json();
        s["anchors"][0].clone()
    }
    /// Waits until the witness anchor's status satisfies `done` (60 s at most).
    fn wait_for(&self, policy: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = self.anchor_status(policy);
            if done(&a) {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last status {a:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn appends_go_on_while_the_witness_is_down_and_receipts_arrive_after_it_returns() {
    let sb = Sandbox::new();
    let port = free_port();
    let (policy, whome) = sb.anchored_setup(port);
    let logs = whome.join("logs.txt");
    let (w, wvkey) = witness(&whome, &logs, port);
    std::fs::write(sb.path("witness.vkey"), &wvkey).unwrap();
    // The long-running checkpointer anchors in the background.
    let _checkpointer = KillOnDrop(
        sb.std_command()
            .args([
                "--policy",
                &policy,
                "ledger",
                "checkpoint",
                "--interval",
                "0.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    sb.append_some(5);
    let a = sb.wait_for(&policy, "the first receipt", |a| {
        a["status"] == "anchored" && a["anchored_size"].as_u64() >= Some(7)
    });
    assert_eq!(a["failures"], 0, "{a:#}");

    // The witness goes away: appends still succeed, and checkpoints go on being made.
    drop(w);
    for _ in 0..5 {
        sb.append_some(3);
    }
    let a = sb.wait_for(&policy, "the anchor to fail", |a| {
        a["status"] == "failing" && a["latest_checkpoint"].as_u64() == Some(22)
    });
    assert!(
        a["last_error"].as_str().unwrap().contains("127.0.0.1"),
        "{a:#}"
    );
    assert!(a["lag_entries"].as_u64().unwrap() > 0, "{a:#}");
    sb.run(&["--policy", &policy, "ledger", "status"])
        .ok()
        .out_has("! witness http://127.0.0.1:");

    // It comes back (same key and state): the newest checkpoint gets its receipt.
    let (_w, again) = witness(&whome, &logs, port);
    assert_eq!(again, wvkey);
    let a = sb.wait_for(&policy, "the receipt after the witness returned", |a| {
        a["status"] == "anchored" && a["anchored_size"].as_u64() == Some(22)
    });
    assert_eq!(
        (a["failures"].as_u64(), a["lag_entries"].as_u64()),
        (Some(0), Some(0))
    );

    // verify re-checks every receipt offline with the witness key from the policy.
    let v = sb
        .run(&["--json", "--policy", &policy, "ledger", "verify"])
        .ok()
        .json();
    assert!(v["receipts_checked"].as_u64().unwrap() >= 2, "{v:#}");
    assert_eq!(v["receipts_unchecked"], 0);
    assert_eq!(v["anchors"][0]["status"], "anchored");

    // An altered cosignature is a bad receipt, located at its checkpoint.
    let conn = sb.conn();
    let body: String = conn
        .query_row(
            "SELECT body FROM checkpoint_receipts WHERE tree_size = 22",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let forged = body.replacen('A', "B", 1).replacen("w=", "x=", 1);
    assert_ne!(forged, body);
    conn.execute(
        "UPDATE checkpoint_receipts SET body = ?1 WHERE tree_size = 22",
        [&forged],
    )
    .unwrap();
    let run = sb
        .run(&["--json", "--policy", &policy, "ledger", "verify"])
        .code(1);
    let vs = run.json()["violations"].as_array().unwrap().clone();
    assert_eq!(vs.len(), 1, "{vs:#?}");
    assert_eq!(vs[0]["kind"], "bad_receipt");
    assert_eq!(vs[0]["checkpoint"], 22);
}

#[test]
fn ledger_anchor_submits_now_and_reports_an_unreachable_witness() {
    let sb = Sandbox::new();
    let port = free_port();
    let (policy, whome) = sb.anchored_setup(port);
    let logs = whome.join("logs.txt");
    // The witness made its key once, then went away.
    let (w, wvkey) = witness(&whome, &logs, port);
    drop(w);
    std::fs::write(sb.path("witness.vkey"), &wvkey).unwrap();
    // Nothing listens: a clear failure, recorded, and no receipt.
    let r = sb.run(&["--policy", &policy, "ledger", "anchor"]).code(3);
    assert!(
        r.stdout
            .contains("✗ checkpoint 2 not anchored by witness http://127.0.0.1:"),
        "{r:#?}"
    );
    let a = sb.anchor_status(&policy);
    assert_eq!(
        (a["status"].as_str(), a["failures"].as_u64()),
        (Some("failing"), Some(1))
    );
    // With the witness back, `ledger anchor` tries at once, whatever the backoff, and a second
    // run finds the receipt.
    let (_w, again) = witness(&whome, &logs, port);
    assert_eq!(again, wvkey);
    sb.run(&["--policy", &policy, "ledger", "anchor"])
        .ok()
        .out_has("✓ checkpoint 2 anchored by witness");
    sb.run(&["--policy", &policy, "ledger", "anchor"])
        .ok()
        .out_has("✓ checkpoint 2 already anchored by witness");
    assert_eq!(sb.anchor_status(&policy)["status"], "anchored");
    // A cosignature by a key the policy does not name (here the policy names another key) is
    // refused before anything is stored.
    std::fs::copy(sb.vkey(), sb.path("witness.vkey")).unwrap();
    sb.append_some(1);
    sb.run(&["ledger", "checkpoint"]).ok();
    let r = sb.run(&["--policy", &policy, "ledger", "anchor"]).code(3);
    assert!(r.stdout.contains("✗ checkpoint 3 not anchored"), "{r:#?}");
    let stored: i64 = sb
        .conn()
        .query_row(
            "SELECT count(*) FROM checkpoint_receipts WHERE tree_size = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0);
}

#[test]
fn anchor_flags_and_policy_lines_are_checked() {
    let sb = Sandbox::new();
    sb.append_some(1);
    sb.run(&["ledger", "checkpoint"]).ok();
    sb.run(&["ledger", "anchor"])
        .code(2)
        .err_has("no anchor to submit to");
    sb.run(&["--anchor", "witness+http://127.0.0.1:1", "ledger", "anchor"])
        .code(2)
        .err_has("needs a policy that declares it");
    let p = sb.path("p.txt");
    std::fs::write(
        &p,
        format!(
            "signer ed25519 {}\nanchor carrier-pigeon http://x k\n",
            sb.vkey()
        ),
    )
    .unwrap();
    let p = p.display().to_string();
    sb.run(&["--policy", &p, "ledger", "anchor"])
        .code(2)
        .err_has("unknown anchor kind \"carrier-pigeon\"");
    std::fs::write(
        &p,
        format!(
            "signer ed25519 {}\nanchor witness http://127.0.0.1:1 not-a-key\n",
            sb.vkey()
        ),
    )
    .unwrap();
    sb.run(&[
        "--policy",
        &p,
        "--anchor",
        "witness+http://127.0.0.1:2",
        "ledger",
        "anchor",
    ])
    .code(2)
    .err_has("the policy declares no `anchor witness http://127.0.0.1:2 KEY` line");
    sb.run(&["--policy", &p, "ledger", "anchor"])
        .code(2)
        .err_has("policy line 2 (anchor witness http://127.0.0.1:1)");
}

#[test]
fn a_postgres_ledger_is_anchored_and_its_receipts_verified() {
    // The sync Postgres client must never run on the anchoring runtime's thread (it panicked
    // there: "Cannot start a runtime from within a runtime").
    let Some(base) = cortex_core::testkit::postgres_url("anchoring a Postgres ledger") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("anchor_{}_{nanos}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let sb = Sandbox::new();
    let lines = "{\"project\":\"p\",\"action\":\"a\",\"detail\":{}}\n".repeat(3);
    sb.run_with_stdin(&["--db", &url, "ledger", "append"], &lines)
        .ok();
    sb.run(&["--db", &url, "ledger", "checkpoint"]).ok();
    let whome = sb.path("witness-home");
    std::fs::create_dir_all(&whome).unwrap();
    std::fs::copy(sb.vkey(), whome.join("logs.txt")).unwrap();
    let port = free_port();
    let (_w, wvkey) = witness(&whome, &whome.join("logs.txt"), port);
    std::fs::write(sb.path("witness.vkey"), &wvkey).unwrap();
    let policy = sb.path("policy.txt");
    std::fs::write(
        &policy,
        format!(
            "signer ed25519 {}\nanchor witness http://127.0.0.1:{port} witness.vkey\n",
            sb.vkey()
        ),
    )
    .unwrap();
    let policy = policy.display().to_string();
    sb.run(&["--db", &url, "--policy", &policy, "ledger", "anchor"])
        .ok()
        .out_has("✓ checkpoint 3 anchored by witness");
    let v = sb
        .run(&[
            "--json", "--db", &url, "--policy", &policy, "ledger", "verify",
        ])
        .ok()
        .json();
    assert_eq!(
        (v["valid"].as_bool(), v["receipts_checked"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(v["anchors"][0]["status"], "anchored");
    let _ = std::process::Command::new("psql")
        .arg(&base)
        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
}

/// A witness reached over HTTPS: `cortex witness serve` behind a real TLS terminator (socat,
/// OpenSSL), its certificate issued for `localhost` by a CA made here with the `openssl` tool.
/// The binary's HTTPS client (rustls) trusts the roots `SSL_CERT_FILE` names: with the system's
/// roots the witness is refused for its unknown issuer and nothing is stored; with the test CA
/// the checkpoint is cosigned and the receipt verifies offline.
#[test]
fn a_witness_behind_tls_is_reached_over_https_and_an_unknown_issuer_is_refused() {
    for t in ["openssl", "socat"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            cortex_core::testkit::skip(
                "the HTTPS witness test",
                &format!("{t} is not installed (apt-get install {t})"),
            );
            return;
        }
    }
    let sb = Sandbox::new();
    let pki = sb.path("pki");
    let ca = TestCa::create(&pki, "/CN=cortex test CA", 2).unwrap();
    ca.issue(
        "server",
        "/CN=localhost",
        "[server]\nsubjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
        "server",
        2,
    )
    .unwrap();

    let (port, tls_port) = (free_port(), free_port());
    let (policy, whome) = sb.anchored_setup(port);
    let https = format!("https://localhost:{tls_port}");
    std::fs::write(
        &policy,
        format!(
            "signer ed25519 {}\nanchor witness {https} witness.vkey\n",
            sb.vkey()
        ),
    )
    .unwrap();
    let (_w, wvkey) = witness(&whome, &whome.join("logs.txt"), port);
    std::fs::write(sb.path("witness.vkey"), &wvkey).unwrap();
    let _tls = KillOnDrop(
        std::process::Command::new("socat")
            .current_dir(&pki)
            .arg(format!(
                "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,\
                 key=server.key,verify=0"
            ))
            .arg(format!("TCP:127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("run socat"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "socat did not listen on {tls_port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let anchor = |roots: &Path| {
        let mut c = sb.std_command();
        c.env("SSL_CERT_FILE", roots).env_remove("SSL_CERT_DIR");
        let out = assert_cmd::Command::from_std(c)
            .args(["--policy", &policy, "ledger", "anchor"])
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run cortex");
        common::Run::from_output(out)
    };
    let receipts = || -> i64 {
        sb.conn()
            .query_row("SELECT count(*) FROM checkpoint_receipts", [], |r| r.get(0))
            .unwrap()
    };

    // Roots without the test CA (the system's, or an empty file if it has none here).
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let other_roots = if system.is_file() {
        system.to_path_buf()
    } else {
        let p = pki.join("none.pem");
        std::fs::write(&p, "").unwrap();
        p
    };
    let r = anchor(&other_roots).code(3);
    assert!(
        r.stdout
            .contains(&format!("✗ checkpoint 2 not anchored by witness {https}")),
        "{r:#?}"
    );
    let said = format!("{}{}", r.stdout, r.stderr).to_lowercase();
    assert!(
        said.contains("certificate") || said.contains("issuer"),
        "the refusal does not say the certificate was not trusted: {r:#?}"
    );
    assert_eq!(
        receipts(),
        0,
        "a receipt was stored over an untrusted connection"
    );

    // The test CA trusted: cosigned over TLS, and verify checks the receipt offline.
    anchor(&pki.join("ca.pem"))
        .ok()
        .out_has(&format!("✓ checkpoint 2 anchored by witness {https}"));
    assert_eq!(receipts(), 1);
    sb.run(&["--policy", &policy, "ledger", "verify"]).ok();
}
