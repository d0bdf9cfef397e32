//! End-to-end tests of the assembled `cortex` binary: every command run as a user would run it,
//! each test in its own temporary CORTEX_HOME, checking exit codes, output, files written and the
//! database rows (read through a separate SQLite connection).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{Run, Sandbox};

impl Sandbox {
    fn rows(&self, table: &str) -> i64 {
        self.conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
    /// Appends `n` entries in one stdin batch without auto-checkpointing.
    fn append(&self, n: usize) {
        self.run_with_stdin(&["ledger", "append", "--checkpoint-every", "0"], &lines(n))
            .ok();
    }
    /// A ledger of `n` entries with a signed checkpoint over all of them.
    fn seeded(n: usize) -> Sandbox {
        let s = Sandbox::new();
        s.append(n);
        s.run(&["ledger", "checkpoint"]).ok();
        s
    }
    fn origin(&self) -> String {
        let v = std::fs::read_to_string(self.vkey()).unwrap();
        v.trim().split('+').next().unwrap().to_owned()
    }
}

/// `n` JSON Lines entries with distinct details.
fn lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("{{\"project\":\"proj\",\"action\":\"act.{i}\",\"detail\":{{\"n\":{i}}}}}\n")
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The stdout lines starting with `✓`.
fn tick_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with('✓')).collect()
}

// ---------------------------------------------------------------------------------------------
// The whole flow
// ---------------------------------------------------------------------------------------------

#[test]
fn fresh_home_migrate_append_checkpoint_verify_status() {
    let s = Sandbox::new();
    let db = s.db().display().to_string();

    let latest = cortex_sqlite::latest_schema_version();
    s.run(&["migrate"]).ok().out_has(&format!(
        "✓ Database {db} at schema version {latest} (sha256 hasher)"
    ));
    assert!(s.db().is_file(), "migrate creates $CORTEX_HOME/cortex.db");
    let j = s.run(&["--json", "migrate"]).ok().json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["schema_version"], latest);
    assert_eq!(j["hasher"], "sha256");
    assert_eq!(j["db"], db.as_str());
    assert!(!s.skey().exists(), "migrate needs no key");

    // One entry from flags; the first append that may checkpoint generates the default key.
    s.run(&[
        "ledger",
        "append",
        "--project",
        "billing",
        "--action",
        "invoice.create",
        "--detail",
        r#"{"amount": 12}"#,
    ])
    .ok()
    .out_has("✓ Appended entry 0 (ledger now holds 1)")
    .err_has("Generated checkpoint signing key");
    assert!(s.skey().is_file() && Path::new(&s.vkey()).is_file());

    // A batch on stdin: detail as object, array, string, number, and missing.
    let batch = concat!(
        "{\"project\":\"p\",\"action\":\"obj\",\"detail\":{\"a\": 1}}\n",
        "{\"project\":\"p\",\"action\":\"arr\",\"detail\":[1, 2, 3]}\n",
        "\n",
        "{\"project\":\"p\",\"action\":\"str\",\"detail\":\"text\"}\n",
        "{\"project\":\"p\",\"action\":\"num\",\"detail\":42}\n",
        "{\"project\":\"p\",\"action\":\"none\"}\n",
    );
    s.run_with_stdin(&["ledger", "append"], batch)
        .ok()
        .out_has("✓ Appended 5 entries (1–5; ledger now 6 entries)");

    let conn = s.conn();
    let rows: Vec<(i64, String, String, String)> = conn
        .prepare("SELECT idx, project, action, detail FROM entries ORDER BY idx")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let details: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        details,
        [
            r#"{"amount": 12}"#,
            r#"{"a": 1}"#,
            "[1, 2, 3]",
            r#""text""#,
            "42",
            "{}"
        ],
        "details are stored verbatim, a missing one as {{}}"
    );
    assert_eq!(rows[0].1, "billing");
    assert_eq!(rows[0].2, "invoice.create");
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    drop(conn);
    assert_eq!(s.rows("checkpoints"), 0, "6 entries do not cross 1000");

    s.run(&["ledger", "checkpoint"])
        .ok()
        .out_has("✓ Checkpoint signed: 6 entries (adds 0–5), root ");
    s.run(&["ledger", "checkpoint"])
        .ok()
        .out_has("✓ Up to date: the latest checkpoint already covers all 6 entries");
    let j = s.run(&["--json", "ledger", "checkpoint"]).ok().json();
    assert_eq!(j["created"], false);
    assert_eq!(j["size"], 6);
    assert_eq!(s.rows("checkpoints"), 1);
    let note: String = s
        .conn()
        .query_row("SELECT signed_note FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert!(note.starts_with(&format!("{}\n6\n", s.origin())), "{note}");

    s.run(&["ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (6 transactions, 1 checkpoints)");
    let j = s.run(&["--json", "ledger", "verify"]).ok().json();
    assert_eq!(j["valid"], true);
    assert_eq!(j["entries_checked"], 6);
    assert_eq!(j["checkpoints_checked"], 1);
    assert_eq!(j["violations"], serde_json::json!([]));
    let checks: Vec<String> = s
        .conn()
        .prepare("SELECT status FROM integrity_checks ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        checks,
        ["ok", "ok"],
        "each verify records an integrity check"
    );

    s.run(&["ledger", "status"])
        .ok()
        .out_has(&format!(
            "Ledger {db} (sha256 hasher, origin {})",
            s.origin()
        ))
        .out_has("entries:    6")
        .out_has("checkpoint: 6 entries at ")
        .out_has("last verify: ok at ");
    let j = s.run(&["--json", "ledger", "status"]).ok().json();
    assert_eq!(j["size"], 6);
    assert_eq!(j["hasher"], "sha256");
    assert_eq!(j["origin"], s.origin().as_str());
    assert_eq!(j["latest_checkpoint"]["size"], 6);
    assert_eq!(j["last_verify"]["status"], "ok");
    let last_hash: Vec<u8> = s
        .conn()
        .query_row("SELECT hash FROM entries WHERE idx = 5", [], |r| r.get(0))
        .unwrap();
    assert_eq!(j["last_hash"], hex::encode(last_hash).as_str());
}

#[test]
fn auto_checkpoint_when_crossing_a_multiple() {
    let s = Sandbox::new();
    s.run_with_stdin(&["ledger", "append", "--checkpoint-every", "5"], &lines(7))
        .ok()
        .out_has("✓ Appended 7 entries (0–6; ledger now 7 entries)")
        .out_has("✓ Checkpoint signed at 7 entries (root ");

    // 7 → 9 crosses no multiple of 5.
    let j = s
        .run_with_stdin(
            &["--json", "ledger", "append", "--checkpoint-every", "5"],
            &lines(2),
        )
        .ok()
        .json();
    assert_eq!(j["first_index"], 7);
    assert_eq!(j["count"], 2);
    assert_eq!(j["size"], 9);
    assert_eq!(j["checkpoints"], serde_json::json!([]));

    // 9 → 16 crosses 10 and 15: one checkpoint of the whole ledger.
    let j = s
        .run_with_stdin(
            &["--json", "ledger", "append", "--checkpoint-every", "5"],
            &lines(7),
        )
        .ok()
        .json();
    assert_eq!(j["size"], 16);
    assert_eq!(j["checkpoints"].as_array().unwrap().len(), 1);
    assert_eq!(j["checkpoints"][0]["size"], 16);

    let cps: Vec<(i64, i64, i64, i64)> = s
        .conn()
        .prepare("SELECT tree_size, range_start, range_end, range_count FROM checkpoints ORDER BY tree_size")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(cps, [(7, 0, 6, 7), (16, 7, 15, 9)]);
    s.run(&["ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (16 transactions, 2 checkpoints)");
}

#[test]
fn proof_files_and_offline_verification() {
    let s = Sandbox::seeded(6);
    let origin = s.origin();

    s.run(&["ledger", "proof", "2"]).ok().out_has(
        "✓ Wrote inclusion proof of entry 2 in checkpoint 6 to entry-2.tlog-proof (3 hashes)",
    );
    let path = s.path("entry-2.tlog-proof");
    let text = std::fs::read_to_string(&path).expect("proof written in the cwd");
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"), "{text}");
    assert!(text.contains("\nindex 2\n"), "{text}");
    assert!(text.contains(&format!("\n{origin}\n6\n")), "{text}");

    let piped = s.run(&["ledger", "proof", "2", "-o", "-"]).ok();
    assert_eq!(piped.stdout, text, "-o - prints the same proof");

    let j = s
        .run(&["--json", "ledger", "proof", "5", "-o", "five.proof"])
        .ok()
        .json();
    assert_eq!(j["index"], 5);
    assert_eq!(j["tree_size"], 6);
    assert_eq!(j["file"], "five.proof");
    assert!(s.path("five.proof").is_file());

    let vkey = s.vkey();
    s.run(&[
        "ledger",
        "verify-external",
        "entry-2.tlog-proof",
        "--vkey",
        &vkey,
    ])
    .ok()
    .out_has(&format!(
        "✓ Proof valid: entry 2 is in checkpoint 6 of {origin}"
    ))
    .out_has(" proj act.2");
    // The verifier key also works as text rather than a file.
    let vkey_text = std::fs::read_to_string(&vkey).unwrap();
    let j = s
        .run(&[
            "--json",
            "ledger",
            "verify-external",
            "five.proof",
            "--vkey",
            vkey_text.trim(),
        ])
        .ok()
        .json();
    assert_eq!(j["valid"], true);
    assert_eq!(j["kind"], "tlog-proof");
    assert_eq!(j["index"], 5);
    assert_eq!(j["tree_size"], 6);
    assert_eq!(j["origin"], origin.as_str());
    assert_eq!(j["entry"]["action"], "act.5");

    // A proof whose entry was edited no longer verifies.
    let forged = text.replacen("\nindex 2\n", "\nindex 3\n", 1);
    std::fs::write(s.path("forged.tlog-proof"), forged).unwrap();
    s.run(&[
        "ledger",
        "verify-external",
        "forged.tlog-proof",
        "--vkey",
        &vkey,
    ])
    .code(1)
    .out_has("✗ Proof invalid");
}

#[test]
fn exports_in_every_format_verify_offline_and_are_recorded() {
    let s = Sandbox::seeded(6);
    let origin = s.origin();
    let vkey = s.vkey();
    // (format, file, from, to, expected first, expected last)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u64, u64);
    let cases: &[Case] = &[
        ("json", "all.json", None, None, 0, 5),
        ("csv", "all.csv", None, None, 0, 5),
        ("jsonl", "all.jsonl", None, None, 0, 5),
        ("json", "part.json", Some("2"), Some("4"), 2, 4),
        ("csv", "part.csv", Some("1"), Some("3"), 1, 3),
        ("jsonl", "tail.jsonl", Some("3"), None, 3, 5),
        ("csv", "head.csv", None, Some("0"), 0, 0),
    ];
    for &(format, file, from, to, first, last) in cases {
        let mut args = vec!["ledger", "export", "--format", format, "-o", file];
        if let Some(f) = from {
            args.extend(["--from", f]);
        }
        if let Some(t) = to {
            args.extend(["--to", t]);
        }
        let count = last - first + 1;
        let run = s.run(&args).ok().out_has(&format!(
            "✓ Exported {count} entries ({first}–{last}) to {file} ({format}, checkpoint 6 entries, sha256 "
        ));
        let bytes = std::fs::read(s.path(file)).expect("export file written");
        let digest = sha256_hex(&bytes);
        assert!(run.stdout.contains(&digest[..16]), "{run:#?}");
        assert!(
            !s.path(file).with_extension("partial").exists(),
            "no .partial left behind"
        );
        s.run(&["ledger", "verify-external", file, "--vkey", &vkey])
            .ok()
            .out_has(&format!(
                "✓ Export valid: {count} entries ({first}–{last}) match checkpoint 6 of {origin}"
            ));
        let row: (String, String, i64, i64) = s
            .conn()
            .query_row(
                "SELECT export_type, file_hash, tx_start_id, tx_end_id FROM audit_exports \
                 WHERE filename = ?1",
                [file],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("audit_exports row for the export");
        assert_eq!(row, (format.to_owned(), digest, first as i64, last as i64));
    }
    assert_eq!(s.rows("audit_exports"), cases.len() as i64);

    // --json output and stdout exports.
    let j = s
        .run(&[
            "--json", "ledger", "export", "--format", "jsonl", "-o", "j.jsonl",
        ])
        .ok()
        .json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["summary"]["count"], 6);
    assert_eq!(j["summary"]["tree_size"], 6);
    assert_eq!(j["summary"]["format"], "jsonl");
    assert_eq!(
        j["sha256"],
        sha256_hex(&std::fs::read(s.path("j.jsonl")).unwrap()).as_str()
    );
    let piped = s.run(&["ledger", "export", "-o", "-"]).ok();
    assert_eq!(
        piped.stdout.as_bytes(),
        std::fs::read(s.path("all.json")).unwrap(),
        "-o - writes the export itself to stdout"
    );
    assert_eq!(s.rows("audit_exports"), cases.len() as i64 + 2);

    let j = s
        .run(&[
            "--json",
            "ledger",
            "verify-external",
            "all.csv",
            "--vkey",
            &vkey,
        ])
        .ok()
        .json();
    assert_eq!(j["valid"], true);
    assert_eq!(j["entries_checked"], 6);
    assert_eq!(j["format"], "csv");

    // An edited export is rejected.
    let text = std::fs::read_to_string(s.path("all.jsonl")).unwrap();
    let forged = text.replacen(r#"{\"n\":4}"#, r#"{\"n\":40}"#, 1);
    assert_ne!(forged, text);
    std::fs::write(s.path("forged.jsonl"), forged).unwrap();
    s.run(&["ledger", "verify-external", "forged.jsonl", "--vkey", &vkey])
        .code(1)
        .out_has("✗ Export invalid")
        .out_has("at index 4");
}

#[test]
fn keys_generate_writes_a_private_skey_and_a_vkey() {
    let s = Sandbox::new();
    let run = s
        .run(&["keys", "generate", "--name", "example.com/audit"])
        .ok()
        .out_has("✓ Generated Ed25519 checkpoint key \"example.com/audit\"");
    let skey = std::fs::read_to_string(s.skey()).expect("skey at the default location");
    let vkey = std::fs::read_to_string(s.vkey()).expect("vkey beside the skey");
    assert!(skey.starts_with("PRIVATE+KEY+example.com/audit+"), "{skey}");
    let parts: Vec<&str> = vkey.trim().splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "vkey is <name>+<id>+<key>: {vkey}");
    assert_eq!(parts[0], "example.com/audit");
    assert!(
        parts[1].len() == 8 && parts[1].chars().all(|c| c.is_ascii_hexdigit()),
        "{vkey}"
    );
    assert!(!parts[2].is_empty());
    assert!(run.stdout.contains(vkey.trim()), "the vkey is printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.skey()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "skey mode {mode:o}");
    }

    // No silent overwrite.
    s.run(&["keys", "generate", "--name", "example.com/audit"])
        .code(2)
        .err_has("already exists; pass --force");
    assert_eq!(std::fs::read_to_string(s.skey()).unwrap(), skey);
    s.run(&["keys", "generate", "--name", "example.com/audit", "--force"])
        .ok();
    assert_ne!(std::fs::read_to_string(s.skey()).unwrap(), skey);
    assert_ne!(std::fs::read_to_string(s.vkey()).unwrap(), vkey);

    // --out elsewhere, JSON output.
    let j = s
        .run(&[
            "--json",
            "keys",
            "generate",
            "--name",
            "other.example/log",
            "--out",
            "k/other.skey",
        ])
        .ok()
        .json();
    assert_eq!(j["name"], "other.example/log");
    assert!(s.path("k/other.skey").is_file() && s.path("k/other.vkey").is_file());
    assert_eq!(
        j["vkey"].as_str().unwrap(),
        std::fs::read_to_string(s.path("k/other.vkey"))
            .unwrap()
            .trim()
    );

    // The generated default key names the ledger's checkpoints.
    s.run_with_stdin(&["ledger", "append"], &lines(3)).ok();
    s.run(&["ledger", "checkpoint"]).ok();
    let j = s.run(&["--json", "ledger", "status"]).ok().json();
    assert_eq!(j["origin"], "example.com/audit");
    s.run(&["ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (3 transactions, 1 checkpoints)");
}

#[test]
fn blake3_ledger_and_hasher_mismatch() {
    let s = Sandbox::new();
    s.run(&["--hasher", "blake3", "migrate"])
        .ok()
        .out_has("(blake3 hasher)");
    s.run_with_stdin(&["--hasher", "blake3", "ledger", "append"], &lines(4))
        .ok();
    // Once created, the ledger remembers its hasher.
    s.run(&["ledger", "append", "--project", "p", "--action", "a"])
        .ok();
    s.run(&["ledger", "checkpoint"])
        .ok()
        .out_has("✓ Checkpoint signed: 5 entries");
    assert!(
        s.origin().ends_with("/blake3"),
        "a BLAKE3 origin: {}",
        s.origin()
    );
    s.run(&["ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (5 transactions, 1 checkpoints)")
        .out_has("blake3");
    let j = s.run(&["--json", "ledger", "status"]).ok().json();
    assert_eq!(j["hasher"], "blake3");

    s.run(&["ledger", "export", "--format", "jsonl", "-o", "b.jsonl"])
        .ok();
    s.run(&["ledger", "verify-external", "b.jsonl", "--vkey", &s.vkey()])
        .ok()
        .out_has("✓ Export valid: 5 entries");
    s.run(&["ledger", "proof", "1"]).ok();
    s.run(&[
        "ledger",
        "verify-external",
        "entry-1.tlog-proof",
        "--vkey",
        &s.vkey(),
    ])
    .ok();

    let before = s.rows("entries");
    for args in [
        &["--hasher", "sha256", "ledger", "status"][..],
        &[
            "--hasher",
            "sha256",
            "ledger",
            "append",
            "--project",
            "p",
            "--action",
            "a",
        ][..],
    ] {
        let run = s.run(args).code(2);
        assert!(
            run.stderr.contains("blake3") && run.stderr.contains("sha256"),
            "names both hashers: {run:#?}"
        );
    }
    assert_eq!(s.rows("entries"), before);
}

#[test]
fn checkpoint_interval_signs_each_round_with_new_entries() {
    let s = Sandbox::new();
    s.append(2);
    let t = Instant::now();
    let mut child = s
        .std_command()
        .args(["ledger", "checkpoint", "--interval", "0.2", "--rounds", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cortex ledger checkpoint --interval");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();

    // Round 1 signs the two entries; append between rounds and the next rounds sign them.
    let first = out.next().expect("a first checkpoint line").unwrap();
    assert!(
        first.starts_with("✓ Checkpoint signed: 2 entries (adds 0–1), root "),
        "{first}"
    );
    printed.push(first);
    s.run(&[
        "ledger",
        "append",
        "--project",
        "p",
        "--action",
        "tick",
        "--checkpoint-every",
        "0",
    ])
    .ok();
    if let Some(line) = out.next() {
        printed.push(line.unwrap());
        s.run(&[
            "ledger",
            "append",
            "--project",
            "p",
            "--action",
            "tock",
            "--checkpoint-every",
            "0",
        ])
        .ok();
    }
    printed.extend(out.map(Result::unwrap));
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status:?}; stderr {stderr}");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "three rounds sleep twice"
    );

    // Every printed line is a newly signed checkpoint; the DB holds exactly those.
    assert!(printed.len() >= 2, "{printed:?}");
    let sizes: Vec<i64> = s
        .conn()
        .prepare("SELECT tree_size FROM checkpoints ORDER BY tree_size")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sizes.len(), printed.len(), "{printed:?} vs {sizes:?}");
    for (line, size) in printed.iter().zip(&sizes) {
        assert!(
            line.starts_with(&format!("✓ Checkpoint signed: {size} entries")),
            "{line}"
        );
    }
    assert_eq!(
        sizes[1], 3,
        "the entry appended after round 1 is signed next"
    );
    s.run(&["ledger", "verify"]).ok();

    // A nonsensical interval is refused.
    s.run(&["ledger", "checkpoint", "--interval", "0", "--rounds", "1"])
        .code(2)
        .err_has("--interval 0 must be a positive number of seconds");
}

#[test]
fn demo_runs_the_whole_flow() {
    let s = Sandbox::new();
    let dir = s.path("demo");
    let d = dir.display().to_string();
    let run = s
        .run(&["demo", "--dir", &d, "--entries", "300"])
        .ok()
        .out_has("✓ Created ledger ")
        .out_has("✓ Appended 300 audit entries")
        .out_has("✓ Stored 5 facts by 3 agents (ids 300, 301, 302, 303, 304)")
        .out_has("✓ Search \"deploy database\": 3 hits, best #301 by bob")
        .out_has("keeps #304 out: 2 of 3 hits")
        .out_has("✓ Chain valid (308 transactions, 1 checkpoints)")
        .out_has("agent memory matches the ledger (5 facts, 0 erased, 3 votes, 3 agents)")
        .out_has("✓ verify caught it: memory_mismatch at index 301 (fact 301, column content)")
        .out_has("✓ cortex memory rebuild recomputed the memory from the ledger (1 difference")
        .out_has("✓ Forgot fact #302 (fact.erase at entry 308)")
        .out_has("search for it finds 0")
        .out_has("(5 facts, 1 erased, 3 votes, 3 agents)")
        .out_has("✓ Inclusion proof of entry 150 in checkpoint 309 verified offline")
        .out_has("✓ Export of 309 entries verified offline, with the content and salt of the 4")
        .out_has("✓ Tampered export rejected: altered_entry at index 17")
        .out_has(
            "✓ Export with a fact's content altered rejected: commitment_mismatch at index 300",
        );
    assert_eq!(tick_lines(&run.stdout).len(), 15, "{run:#?}");
    assert!(
        !run.stdout.contains("555-0142"),
        "the erased text is printed nowhere"
    );
    for f in [
        "cortex.db",
        "ledger.skey",
        "ledger.vkey",
        "entry-150.tlog-proof",
        "export.json",
    ] {
        assert!(dir.join(f).is_file(), "demo wrote {f}");
    }
    assert!(!s.home().exists(), "the demo leaves CORTEX_HOME alone");
    // Its suggestions work.
    let key = dir.join("ledger.skey").display().to_string();
    let db = dir.join("cortex.db").display().to_string();
    s.run(&["--db", &db, "--key", &key, "ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (309 transactions, 2 checkpoints)")
        .out_has("5 facts (1 erased");
    s.run(&["--db", &db, "search", "deploy", "--min-consensus", "0"])
        .ok()
        .out_has("✓ 2 facts match");
    s.run(&["--db", &db, "history", "--fact", "302"])
        .ok()
        .out_has("(content erased)")
        .out_has("fact.erase");
    let vkey = dir.join("ledger.vkey").display().to_string();
    let export = dir.join("export.json").display().to_string();
    s.run(&["ledger", "verify-external", &export, "--vkey", &vkey])
        .ok();
    // It refuses to reuse a directory.
    s.run(&["demo", "--dir", &d, "--entries", "300"])
        .code(2)
        .err_has("already exists; pick an empty --dir");
}

// ---------------------------------------------------------------------------------------------
// Bad input: exit 2, a clear message, nothing written
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_stdin_batches_append_nothing() {
    let s = Sandbox::seeded(2);
    let good = "{\"project\":\"p\",\"action\":\"a\",\"detail\":{}}";
    let cases = [
        ("{\"project\":\"p\",", "stdin line 3"),
        (
            "{\"project\":\"p\",\"action\":\"a\",\"colour\":\"red\"}",
            "unknown field `colour`",
        ),
        (
            "{\"project\":\"p\",\"action\":\"a\",\"detail\":not-json}",
            "stdin line 3",
        ),
        (
            "{\"project\":\"\",\"action\":\"a\"}",
            "project must not be empty",
        ),
    ];
    for (bad, needle) in cases {
        let input = format!("{good}\n{good}\n{bad}\n{good}\n{good}\n");
        let run = s
            .run_with_stdin(&["ledger", "append"], &input)
            .code(2)
            .err_has(needle);
        assert!(
            run.stderr.contains("stdin line 3") || run.stderr.contains("stdin line: 3"),
            "names line 3: {run:#?}"
        );
        assert!(run.stdout.is_empty(), "{run:#?}");
        assert_eq!(s.rows("entries"), 2, "nothing appended for {bad}");
    }
    let j = s
        .run_with_stdin(
            &["--json", "ledger", "append"],
            &format!("{good}\n{good}\n{{oops\n"),
        )
        .code(2)
        .json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"]["kind"], "invalid_input");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stdin line 3")
    );

    s.run_with_stdin(&["ledger", "append"], "")
        .code(2)
        .err_has("nothing to append");
    s.run_with_stdin(&["ledger", "append"], "\n  \n")
        .code(2)
        .err_has("nothing to append");
    assert_eq!(s.rows("entries"), 2);
    assert_eq!(s.rows("checkpoints"), 1);
}

#[test]
fn bad_single_entries_append_nothing() {
    let s = Sandbox::seeded(2);
    let append = |detail: &str| {
        s.run(&[
            "ledger",
            "append",
            "--project",
            "p",
            "--action",
            "a",
            "--detail",
            detail,
        ])
    };
    append("{not json")
        .code(2)
        .err_has("detail is not valid JSON");
    let big = format!("\"{}\"", "x".repeat(65_536));
    append(&big).code(2).err_has("over the 65535-byte limit");
    s.run(&["ledger", "append", "--project", "", "--action", "a"])
        .code(2)
        .err_has("project must not be empty");
    let big_line = format!("{{\"project\":\"p\",\"action\":\"a\",\"detail\":{big}}}\n");
    s.run_with_stdin(&["ledger", "append"], &format!("{}{big_line}", lines(1)))
        .code(2)
        .err_has("over the 65535-byte limit");
    assert_eq!(s.rows("entries"), 2);
    // Just under the limit is fine.
    let fits = format!("\"{}\"", "x".repeat(65_000));
    append(&fits).ok();
    assert_eq!(s.rows("entries"), 3);
}

#[test]
fn bad_settings_are_refused_before_anything_is_written() {
    let s = Sandbox::new();
    let run = s
        .run(&[
            "--hasher",
            "md5",
            "ledger",
            "append",
            "--project",
            "p",
            "--action",
            "a",
        ])
        .code(2)
        .err_has("unknown hasher \"md5\"");
    assert!(run.stderr.contains("sha256") && run.stderr.contains("blake3"));
    s.run(&["--db", "mongodb://127.0.0.1/audit", "migrate"])
        .code(2)
        .err_has("unknown or unavailable store scheme \"mongodb\"")
        .err_has("available: sqlite, redb, postgres");
    assert!(!s.home().exists(), "nothing created under CORTEX_HOME");

    let s = Sandbox::seeded(2);
    s.run(&[
        "--key",
        "missing.skey",
        "ledger",
        "append",
        "--project",
        "p",
        "--action",
        "a",
    ])
    .code(2)
    .err_has("signing key missing.skey does not exist");
    s.run(&["--key", "missing.skey", "ledger", "checkpoint"])
        .code(2)
        .err_has("missing.skey");
    assert_eq!(s.rows("entries"), 2);
    assert_eq!(s.rows("checkpoints"), 1);
    assert!(!s.path("missing.skey").exists());
}

/// Shared by the two corrupt-database tests.
fn corrupt_db_run() -> (Sandbox, Run, &'static [u8]) {
    const JUNK: &[u8] = b"this is not a database, just some text\n";
    let s = Sandbox::new();
    std::fs::write(s.path("junk.db"), JUNK).unwrap();
    let run = s.run(&["--db", "junk.db", "ledger", "status"]);
    (s, run, JUNK)
}

#[test]
fn a_corrupt_database_file_is_refused_and_left_alone() {
    let (s, run, junk) = corrupt_db_run();
    assert_ne!(run.code, 0, "{run:#?}");
    assert_ne!(run.code, 1, "not an integrity verdict: {run:#?}");
    assert!(
        run.stderr
            .contains("junk.db is not a usable SQLite database"),
        "{run:#?}"
    );
    assert_eq!(std::fs::read(s.path("junk.db")).unwrap(), junk);
    assert!(!s.path("junk.db-wal").exists() && !s.path("junk.db-shm").exists());
    s.run(&[
        "--db",
        "junk.db",
        "ledger",
        "append",
        "--project",
        "p",
        "--action",
        "a",
    ])
    .err_has("not a usable SQLite database");
    assert_eq!(std::fs::read(s.path("junk.db")).unwrap(), junk);
}

#[test]
fn a_corrupt_database_file_is_bad_input() {
    let (_s, run, _) = corrupt_db_run();
    run.code(2);
}

#[test]
fn proof_errors() {
    let s = Sandbox::new();
    s.append(3);
    s.run(&["ledger", "proof", "0"])
        .code(2)
        .err_has("no checkpoint yet");
    s.run(&["ledger", "checkpoint"]).ok();
    s.append(2);
    s.run(&["ledger", "proof", "9"])
        .code(2)
        .err_has("no entry 9: the ledger has 5 entries");
    s.run(&["ledger", "proof", "3"])
        .code(2)
        .err_has("entry 3 is not covered by the latest checkpoint (3 entries)");
    let j = s.run(&["--json", "ledger", "proof", "4"]).code(2).json();
    assert_eq!(j["ok"], false);
    for f in [
        "entry-0.tlog-proof",
        "entry-3.tlog-proof",
        "entry-4.tlog-proof",
        "entry-9.tlog-proof",
    ] {
        assert!(!s.path(f).exists(), "{f} not written");
    }
    s.run(&["ledger", "proof", "2"]).ok();
}

#[test]
fn export_errors() {
    let s = Sandbox::seeded(5);
    s.run(&[
        "ledger", "export", "--from", "4", "--to", "2", "-o", "x.json",
    ])
    .code(2)
    .err_has("--from 4 is after --to 2");
    s.run(&["ledger", "export", "--format", "xml", "-o", "x.xml"])
        .code(2)
        .err_has("unknown export format \"xml\"")
        .err_has("json, jsonl, csv");
    s.run(&["ledger", "export", "--to", "5", "-o", "x.json"])
        .code(2)
        .err_has("entry 5 is not covered by the latest checkpoint (5 entries)");
    for f in ["x.json", "x.xml", "x.partial"] {
        assert!(!s.path(f).exists(), "{f} not written");
    }
    assert_eq!(s.rows("audit_exports"), 0);

    let s = Sandbox::new();
    s.append(2);
    s.run(&["ledger", "export", "-o", "y.json"])
        .code(2)
        .err_has("no checkpoint yet");
    assert!(!s.path("y.json").exists() && !s.path("y.partial").exists());
}

#[test]
fn verify_external_errors() {
    let s = Sandbox::seeded(4);
    s.run(&["ledger", "export", "-o", "e.json"]).ok();
    s.run(&["ledger", "proof", "1"]).ok();

    s.run(&[
        "ledger",
        "verify-external",
        "e.json",
        "--vkey",
        "foo+bar+baz",
    ])
    .code(2)
    .err_has("verifier key");
    s.run(&[
        "ledger",
        "verify-external",
        "e.json",
        "--vkey",
        "no-such.vkey",
    ])
    .code(2)
    .err_has("neither a file nor a key");

    // Another key: the signatures do not verify.
    s.run(&[
        "keys",
        "generate",
        "--name",
        "other.example/log",
        "--out",
        "o/other.skey",
    ])
    .ok();
    s.run(&[
        "ledger",
        "verify-external",
        "e.json",
        "--vkey",
        "o/other.vkey",
    ])
    .code(1)
    .out_has("✗ Export invalid")
    .out_has("bad_signature");
    let j = s
        .run(&[
            "--json",
            "ledger",
            "verify-external",
            "e.json",
            "--vkey",
            "o/other.vkey",
        ])
        .code(1)
        .json();
    assert_eq!(j["valid"], false);
    assert_eq!(j["violations"][0]["kind"], "bad_signature");
    s.run(&[
        "ledger",
        "verify-external",
        "entry-1.tlog-proof",
        "--vkey",
        "o/other.vkey",
    ])
    .code(1)
    .out_has("✗ Proof invalid");

    std::fs::write(s.path("garbage.txt"), "hello, I am not an export\n").unwrap();
    s.run(&[
        "ledger",
        "verify-external",
        "garbage.txt",
        "--vkey",
        &s.vkey(),
    ])
    .code(2)
    .err_has("not a CORTEX export");
    s.run(&[
        "ledger",
        "verify-external",
        "missing.json",
        "--vkey",
        &s.vkey(),
    ])
    .code(2)
    .err_has("cannot read missing.json");
}

#[test]
fn keys_generate_rejects_bad_names() {
    let s = Sandbox::new();
    for name in ["audit log", "audit+log"] {
        s.run(&["keys", "generate", "--name", name, "--out", "k/x.skey"])
            .code(2)
            .err_has(&format!("origin {name:?} is not a valid key name"));
    }
    s.run(&[
        "--hasher",
        "blake3",
        "keys",
        "generate",
        "--name",
        "example.com/log",
        "--out",
        "k/x.skey",
    ])
    .code(2)
    .err_has("must end in \"/blake3\"");
    assert!(!s.path("k").exists());
    assert!(!s.home().exists());
}

#[test]
fn verify_without_any_key_is_refused() {
    let s = Sandbox::seeded(3);
    let db = s.db().display().to_string();
    let other = s.path("elsewhere").display().to_string();
    s.run(&["--home", &other, "--db", &db, "ledger", "verify"])
        .code(2)
        .err_has("no verifier key: pass --vkey");
    assert_eq!(s.rows("integrity_checks"), 0);
    // The same, given a --vkey, works.
    s.run(&[
        "--home",
        &other,
        "--db",
        &db,
        "ledger",
        "verify",
        "--vkey",
        &s.vkey(),
    ])
    .ok()
    .out_has("✓ Chain valid (3 transactions, 1 checkpoints)");
}

// ---------------------------------------------------------------------------------------------
// Tampering through a separate connection
// ---------------------------------------------------------------------------------------------

#[test]
fn an_altered_detail_is_reported_at_its_index() {
    let s = Sandbox::seeded(8);
    s.run(&["ledger", "verify"]).ok();
    let n = s
        .conn()
        .execute(
            "UPDATE entries SET detail = '{\"n\":999}' WHERE idx = 3",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);

    s.run(&["ledger", "verify"])
        .code(1)
        .out_has("✗ Integrity violations: 1")
        .out_has("altered_entry at index 3");
    let j = s.run(&["--json", "ledger", "verify"]).code(1).json();
    assert_eq!(j["valid"], false);
    assert_eq!(j["violations"][0]["kind"], "altered_entry");
    assert_eq!(j["violations"][0]["index"], 3);
    let last: String = s
        .conn()
        .query_row(
            "SELECT status FROM integrity_checks ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(last, "ok");
    s.run(&["ledger", "status"])
        .ok()
        .out_has("last verify: violation");

    // Exports and proofs made from the altered ledger do not verify offline.
    s.run(&["ledger", "export", "--format", "jsonl", "-o", "t.jsonl"])
        .ok();
    s.run(&["ledger", "verify-external", "t.jsonl", "--vkey", &s.vkey()])
        .code(1)
        .out_has("✗ Export invalid")
        .out_has("altered_entry at index 3");
    s.run(&["ledger", "proof", "3", "-o", "t.proof"]).ok();
    s.run(&["ledger", "verify-external", "t.proof", "--vkey", &s.vkey()])
        .code(1)
        .out_has("✗ Proof invalid");
}

#[test]
fn a_deleted_row_is_reported_missing() {
    let s = Sandbox::seeded(8);
    s.conn()
        .execute("DELETE FROM entries WHERE idx = 5", [])
        .unwrap();
    s.run(&["ledger", "verify"])
        .code(1)
        .out_has("missing_entry at index 5");
    let j = s.run(&["--json", "ledger", "verify"]).code(1).json();
    assert_eq!(j["valid"], false);
    assert_eq!(j["violations"][0]["kind"], "missing_entry");
    assert_eq!(j["violations"][0]["index"], 5);
}

#[test]
fn checkpoint_refuses_to_sign_a_truncated_ledger() {
    let s = Sandbox::seeded(8);
    s.conn()
        .execute_batch(
            "DELETE FROM entries WHERE idx >= 5;
             UPDATE ledger_head SET size = 5,
                 last_hash = (SELECT hash FROM entries WHERE idx = 4);",
        )
        .unwrap();
    s.run(&["ledger", "checkpoint"])
        .code(1)
        .err_has("refusing to sign a shorter history");
    let j = s.run(&["--json", "ledger", "checkpoint"]).code(1).json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"]["kind"], "integrity");
    assert_eq!(s.rows("checkpoints"), 1, "nothing signed");
    let j = s.run(&["--json", "ledger", "verify"]).code(1).json();
    assert_eq!(j["valid"], false);
    assert!(
        j["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["kind"] == "truncated"),
        "{j:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Offline verification of edited files (docs/FORMATS.md 8.1, 9.4-9.8)
// ---------------------------------------------------------------------------------------------

/// `verify-external --json FILE` (plus `extra` arguments): the exit code, each violation as
/// `(kind, index)` in the order listed, and the whole report.
fn external_findings(s: &Sandbox, file: &str, extra: &[&str]) -> (i32, Vec<(String, i64)>, Value) {
    let vkey = s.vkey();
    let mut args = vec!["--json", "ledger", "verify-external", file, "--vkey", &vkey];
    args.extend(extra);
    let run = s.run(&args);
    let j = run.json();
    let found = j["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| {
                    let kind = v["kind"].as_str().unwrap().to_owned();
                    (kind, v["index"].as_i64().unwrap_or(-1))
                })
                .collect()
        })
        .unwrap_or_default();
    (run.code, found, j)
}

fn finding(kind: &str, index: i64) -> (String, i64) {
    (kind.to_owned(), index)
}

/// `text` with its lines `a` and `b` (0-based, split at `\n`) exchanged.
fn swap_lines(text: &str, a: usize, b: usize) -> String {
    let mut l: Vec<&str> = text.split('\n').collect();
    l.swap(a, b);
    l.join("\n")
}

/// `text` with `line` inserted before its line `k` (0-based, split at `\n`).
fn insert_line(text: &str, k: usize, line: &str) -> String {
    let mut l: Vec<&str> = text.split('\n').collect();
    l.insert(k, line);
    l.join("\n")
}

/// `text` without its line `k` (0-based, split at `\n`).
fn drop_line(text: &str, k: usize) -> String {
    let mut l: Vec<&str> = text.split('\n').collect();
    l.remove(k);
    l.join("\n")
}

/// The line of entry `index` in an export of a ledger with one-line details: JSON and JSON
/// Lines put the header on line 0, CSV the column names on line 0 and the header row on line 1.
fn entry_line(format: &str, index: usize) -> usize {
    if format == "csv" {
        index + 2
    } else {
        index + 1
    }
}

#[test]
fn two_swapped_entries_are_two_reordered_entries_in_every_format() {
    let s = Sandbox::seeded(12);
    for format in ["jsonl", "csv", "json"] {
        let file = format!("all.{format}");
        s.run(&["ledger", "export", "--format", format, "-o", &file])
            .ok();
        let text = std::fs::read_to_string(s.path(&file)).unwrap();
        // (In JSON, entries 5 and 6 are not the last, so both lines end in a comma.)
        let swapped = swap_lines(&text, entry_line(format, 5), entry_line(format, 6));
        let name = format!("swapped.{format}");
        std::fs::write(s.path(&name), &swapped).unwrap();
        let (code, found, j) = external_findings(&s, &name, &[]);
        assert_eq!(code, 1, "{format}: {j:#}");
        assert_eq!(
            found,
            [finding("reordered_entry", 5), finding("reordered_entry", 6)],
            "{format}: the swap is the two rows it is: {j:#}"
        );
        assert_eq!(j["violation_count"], 2, "{format}");
        s.run(&["ledger", "verify-external", &name, "--vkey", &s.vkey()])
            .code(1)
            .out_has("✗ Export invalid: 2 violations")
            .out_has("reordered_entry at index 5: entry 5 stands where entry 6 belongs")
            .out_has("reordered_entry at index 6: entry 6 stands where entry 5 belongs");
    }
    // `ledger verify` says the same of the same swap in the database.
    s.conn()
        .execute_batch(
            "CREATE TEMP TABLE two AS SELECT * FROM entries WHERE idx IN (5, 6);
             UPDATE entries SET
                 timestamp = (SELECT timestamp FROM two WHERE two.idx = 11 - entries.idx),
                 project = (SELECT project FROM two WHERE two.idx = 11 - entries.idx),
                 action = (SELECT action FROM two WHERE two.idx = 11 - entries.idx),
                 detail = (SELECT detail FROM two WHERE two.idx = 11 - entries.idx),
                 prev_hash = (SELECT prev_hash FROM two WHERE two.idx = 11 - entries.idx),
                 hash = (SELECT hash FROM two WHERE two.idx = 11 - entries.idx)
             WHERE idx IN (5, 6);",
        )
        .unwrap();
    let j = s.run(&["--json", "ledger", "verify"]).code(1).json();
    let kinds: Vec<(String, i64)> = j["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_owned(),
                v["index"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [finding("reordered_entry", 5), finding("reordered_entry", 6)]
    );
}

#[test]
fn a_deleted_entry_is_one_missing_entry_and_a_cut_tail_is_truncated() {
    let s = Sandbox::seeded(12);
    for format in ["jsonl", "csv"] {
        let file = format!("all.{format}");
        s.run(&["ledger", "export", "--format", format, "-o", &file])
            .ok();
        let text = std::fs::read_to_string(s.path(&file)).unwrap();
        let name = format!("deleted.{format}");
        std::fs::write(s.path(&name), drop_line(&text, entry_line(format, 5))).unwrap();
        let (code, found, j) = external_findings(&s, &name, &[]);
        assert_eq!(code, 1, "{format}: {j:#}");
        assert_eq!(found, [finding("missing_entry", 5)], "{format}: {j:#}");
        assert_eq!(j["violations"][0]["message"], "entry 5 is missing");

        let name = format!("three-deleted.{format}");
        let mut cut = text.clone();
        for _ in 0..3 {
            cut = drop_line(&cut, entry_line(format, 4));
        }
        std::fs::write(s.path(&name), cut).unwrap();
        let (_, found, j) = external_findings(&s, &name, &[]);
        assert_eq!(found, [finding("missing_entry", 4)], "{format}: {j:#}");
        assert_eq!(j["violations"][0]["message"], "entries 4 to 6 are missing");

        let name = format!("tail-cut.{format}");
        std::fs::write(s.path(&name), drop_line(&text, entry_line(format, 11))).unwrap();
        let (_, found, j) = external_findings(&s, &name, &[]);
        assert_eq!(found, [finding("truncated", 11)], "{format}: {j:#}");
    }
}

#[test]
fn trailing_and_blank_lines_are_accepted_where_formats_md_says() {
    let s = Sandbox::seeded(6);
    s.run(&["ledger", "proof", "2", "-o", "p.proof"]).ok();
    for format in ["json", "jsonl", "csv"] {
        s.run(&[
            "ledger",
            "export",
            "--format",
            format,
            "-o",
            &format!("all.{format}"),
        ])
        .ok();
    }
    let read = |f: &str| std::fs::read_to_string(s.path(f)).unwrap();
    let (proof, json, jsonl, csv) = (
        read("p.proof"),
        read("all.json"),
        read("all.jsonl"),
        read("all.csv"),
    );
    assert!(proof.ends_with('\n') && csv.ends_with('\n') && jsonl.ends_with('\n'));
    let variants: Vec<(&str, String)> = vec![
        ("proof+1.tlog-proof", format!("{proof}\n")),
        ("proof+3.tlog-proof", format!("{proof}\n\n\n")),
        ("json+2.json", format!("\n{json}\n\n")),
        ("jsonl+2.jsonl", format!("{jsonl}\n\n")),
        ("jsonl-leading.jsonl", format!("\n \r\n\t\n{jsonl}")),
        ("jsonl-crlf.jsonl", jsonl.replace('\n', "\r\n")),
        ("jsonl-blank-inside.jsonl", insert_line(&jsonl, 3, " \t")),
        ("csv+1.csv", format!("{csv}\n")),
        ("csv+3.csv", format!("{csv}\r\n\n\r\n")),
        (
            "csv-no-final-newline.csv",
            csv.trim_end_matches('\n').to_owned(),
        ),
        ("csv-leading.csv", format!("\n\r\n{csv}")),
        (
            "csv-blank-inside.csv",
            insert_line(&insert_line(&csv, 4, ""), 2, "\r"),
        ),
    ];
    for (name, text) in variants {
        std::fs::write(s.path(name), text).unwrap();
        s.run(&["ledger", "verify-external", name, "--vkey", &s.vkey()])
            .ok()
            .out_has("✓");
    }
}

#[test]
fn csv_with_crlf_or_cr_rows_and_quoted_fields_is_accepted_and_bad_quoting_refused() {
    let s = Sandbox::new();
    s.append(3);
    for detail in [
        "{\"crlf\":1,\r\n\"quote\":\"a \\\"b\\\", c\"}\r\n",
        "{\"lf\":\n2}",
        "{\"cr\":3\r}",
    ] {
        s.run(&[
            "ledger",
            "append",
            "--checkpoint-every",
            "0",
            "--project",
            "p,\"q\"",
            "--action",
            "a",
            "--detail",
            detail,
        ])
        .ok();
    }
    s.run(&["ledger", "checkpoint"]).ok();
    s.run(&["ledger", "export", "--format", "csv", "-o", "all.csv"])
        .ok();
    let text = std::fs::read_to_string(s.path("all.csv")).unwrap();
    let rows = common::csv_rows(&text);
    assert_eq!(rows.len(), 8);
    assert!(rows[5][5].contains("\r\n") && rows[6][5].contains('\n') && rows[7][5].contains('\r'));
    for (name, text) in [
        ("crlf.csv", text.clone()),
        ("quoted-crlf.csv", common::csv_text(&rows, true, "\r\n")),
        ("quoted-lf.csv", common::csv_text(&rows, true, "\n")),
        ("quoted-cr.csv", common::csv_text(&rows, true, "\r")),
    ] {
        // crlf.csv: CRLF only where the writer ended a row, never inside a quoted field.
        let text = if name == "crlf.csv" {
            let mut out = String::new();
            let mut quoted = false;
            for c in text.chars() {
                if c == '"' {
                    quoted = !quoted;
                }
                if c == '\n' && !quoted {
                    out.push('\r');
                }
                out.push(c);
            }
            out
        } else {
            text
        };
        std::fs::write(s.path(name), text).unwrap();
        s.run(&["ledger", "verify-external", name, "--vkey", &s.vkey()])
            .ok()
            .out_has("✓ Export valid: 6 entries");
    }
    // Quoting that RFC 4180 does not allow is a malformed file, never read as altered data.
    let detail_of_2 = "\"{\"\"n\"\":2}\"";
    assert!(text.contains(detail_of_2));
    for (name, bad, why) in [
        (
            "after-quote.csv",
            text.replacen(detail_of_2, &format!("{detail_of_2}x"), 1),
            "a character follows the closing quote",
        ),
        (
            "quote-inside.csv",
            text.replacen(",proj,", ",pr\"oj,", 1),
            "a quote inside a field that does not start with one",
        ),
        (
            "unterminated.csv",
            format!("{text}entry,\"abc"),
            "a quoted field is not closed",
        ),
    ] {
        std::fs::write(s.path(name), bad).unwrap();
        s.run(&["ledger", "verify-external", name, "--vkey", &s.vkey()])
            .code(2)
            .err_has("CSV row")
            .err_has(why);
    }
}

#[test]
fn verify_external_full_requires_the_whole_tree_of_the_checkpoint() {
    let s = Sandbox::seeded(10);
    s.run(&["ledger", "export", "--format", "jsonl", "-o", "all.jsonl"])
        .ok();
    s.run(&[
        "ledger", "export", "--format", "csv", "--from", "2", "--to", "6", "-o", "mid.csv",
    ])
    .ok();
    // Entries 8 and 9 cut off: exactly what an export of 0..=7 is, so it verifies as one...
    s.run(&[
        "ledger",
        "export",
        "--format",
        "jsonl",
        "--to",
        "7",
        "-o",
        "head.jsonl",
    ])
    .ok();
    s.run(&[
        "ledger",
        "verify-external",
        "head.jsonl",
        "--vkey",
        &s.vkey(),
    ])
    .ok();
    // ...unless the auditor asks for the whole tree.
    let (code, found, j) = external_findings(&s, "head.jsonl", &["--full"]);
    assert_eq!(code, 1, "{j:#}");
    assert_eq!(found, [finding("truncated", 8)], "{j:#}");
    assert_eq!(
        j["violations"][0]["message"],
        "--full: the export holds entries 0 to 7 of a checkpoint of 10; entries 8 to 9 are not in it"
    );
    let (code, found, j) = external_findings(&s, "mid.csv", &["--full"]);
    assert_eq!(code, 1, "{j:#}");
    assert_eq!(
        found,
        [finding("missing_entry", 0), finding("truncated", 7)],
        "{j:#}"
    );
    s.run(&["ledger", "verify-external", "--full", "mid.csv", "--vkey", &s.vkey()])
        .code(1)
        .out_has("missing_entry at index 0: --full: the export holds entries 2 to 6 of a checkpoint of 10; entries 0 to 1 are not in it")
        .out_has("truncated at index 7: --full: the export holds entries 2 to 6 of a checkpoint of 10; entries 7 to 9 are not in it");
    s.run(&[
        "ledger",
        "verify-external",
        "--full",
        "all.jsonl",
        "--vkey",
        &s.vkey(),
    ])
    .ok()
    .out_has("✓ Export valid: 10 entries (0–9) match checkpoint 10");
    // Without --full, a partial export says so.
    s.run(&["ledger", "verify-external", "mid.csv", "--vkey", &s.vkey()])
        .ok()
        .out_has("partial export")
        .out_has("--full");
}

#[test]
fn an_unverified_checkpoint_does_not_choose_the_hasher() {
    // The header's origin and hasher are unsigned: with a checkpoint that does not verify, the
    // verifier has no algorithm, so it reports the signature and hashes nothing with a guess.
    let s = Sandbox::seeded(6);
    s.run(&["ledger", "export", "--format", "jsonl", "-o", "all.jsonl"])
        .ok();
    let text = std::fs::read_to_string(s.path("all.jsonl")).unwrap();
    let origin = s.origin();
    let forged = text
        .replacen(
            &format!("\"origin\":\"{origin}\""),
            &format!("\"origin\":\"{origin}/blake3\""),
            1,
        )
        .replacen("\"hasher\":\"sha256\"", "\"hasher\":\"blake3\"", 1)
        .replacen(
            &format!("{origin}\\n6\\n"),
            &format!("{origin}\\nsix\\n"),
            1,
        );
    assert_ne!(forged, text);
    std::fs::write(s.path("forged.jsonl"), forged).unwrap();
    let (code, found, j) = external_findings(&s, "forged.jsonl", &[]);
    assert_eq!(code, 1, "{j:#}");
    assert!(
        !found.is_empty() && found.iter().all(|(k, _)| k == "bad_signature"),
        "only the signature is reported, no entry is hashed with the header's BLAKE3: {j:#}"
    );
}
