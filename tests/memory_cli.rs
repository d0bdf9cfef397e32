//! End-to-end tests of the agent-memory commands of the assembled `cortex` binary
//! (`store`, `search`, `recall`, `vote`, `deprecate`, `history`), each test in its own temporary
//! CORTEX_HOME, checking exit codes, output and the database rows (read through a separate
//! SQLite connection), and that the ledger still verifies.

use serde_json::Value;

mod common;

use common::Sandbox;

impl Sandbox {
    fn count(&self, table: &str) -> i64 {
        if !self.db().exists() {
            return 0;
        }
        self.conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
    /// Rows of the ledger and the memory, and the memory version: what a refused command
    /// must leave unchanged.
    fn state(&self) -> (i64, i64, i64, i64, i64) {
        if !self.db().exists() {
            return (0, 0, 0, 0, 0);
        }
        let version: i64 = self
            .conn()
            .query_row("SELECT version FROM memory_state", [], |r| r.get(0))
            .unwrap();
        (
            self.count("entries"),
            self.count("facts"),
            self.count("fact_votes"),
            self.count("fact_events"),
            version,
        )
    }
    fn store(&self, project: &str, content: &str) -> u64 {
        let j = self
            .run(&[
                "--json",
                "store",
                "--project",
                project,
                "--content",
                content,
            ])
            .ok()
            .json();
        j["ids"][0].as_u64().expect("an id")
    }
    #[track_caller]
    fn verify_ok(&self) {
        self.run(&["ledger", "verify"])
            .ok()
            .out_has("✓ Chain valid");
    }
}

fn ids(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
        .iter()
        .map(|x| {
            x.get("fact")
                .unwrap_or(x)
                .get("id")
                .and_then(Value::as_u64)
                .unwrap()
        })
        .collect()
}

#[test]
fn store_search_vote_deprecate_history_and_the_ledger_still_verifies() {
    let s = Sandbox::new();
    // Plain ledger entries first, so fact ids (ledger indices) do not start at 0.
    s.run_with_stdin(
        &["ledger", "append", "--checkpoint-every", "0"],
        "{\"project\":\"ops\",\"action\":\"deploy\"}\n",
    )
    .ok();
    s.run(&[
        "store",
        "--project",
        "billing",
        "--content",
        "Invoices are sent on the first day of each month",
        "--type",
        "policy",
        "--tags",
        "finance, invoices",
        "--confidence",
        "0.9",
        "--source",
        "https://wiki.example/billing",
        "--valid-from",
        "2024-01-01",
    ])
    .ok()
    .out_has("✓ Stored fact 1 in billing (ledger now holds 2 entries)")
    .err_has("Generated checkpoint signing key");
    let j = s
        .run(&[
            "--json",
            "store",
            "--project",
            "billing",
            "--content",
            "Refunds above 100 EUR need a manager's approval",
        ])
        .ok()
        .json();
    assert_eq!(j["ids"], serde_json::json!([2]));
    assert_eq!(j["fact"]["fact_type"], "knowledge");
    assert_eq!(j["fact"]["confidence"], 1.0);

    let (content, tags, kind, conf, source, from): (String, String, String, f64, String, String) = s
        .conn()
        .query_row(
            "SELECT content, tags, fact_type, confidence, source, valid_from FROM facts WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(content, "Invoices are sent on the first day of each month");
    assert_eq!(tags, r#"["finance","invoices"]"#);
    assert_eq!((kind.as_str(), conf), ("policy", 0.9));
    assert_eq!(source, "https://wiki.example/billing");
    assert_eq!(from, "2024-01-01T00:00:00.000000Z");
    let (action, detail): (String, String) = s
        .conn()
        .query_row(
            "SELECT action, detail FROM entries WHERE idx = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(action, "fact.store");
    // The ledger holds a salted commitment, never the content; the opening is beside it.
    let d: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(d.get("content"), None, "{d}");
    assert_eq!(d["commitment"].as_str().map(str::len), Some(64), "{d}");
    assert_eq!(d["author"]["surface"], "cli");
    assert!(!detail.contains("Invoices"));
    let (opened, salt): (String, String) = s
        .conn()
        .query_row(
            "SELECT content, salt FROM fact_openings WHERE fact_id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(opened, content);
    assert_eq!(salt.len(), 64);

    s.run(&["search", "invoices month"])
        .ok()
        .out_has("✓ 1 fact match \"invoices month\"")
        .out_has("[1] score ");
    s.run(&["search", "approval"]).ok().out_has("[2]");
    s.run(&["search", "nothing-like-this"])
        .ok()
        .out_has("✓ No facts match");

    s.run(&[
        "vote",
        "1",
        "--agent",
        "alice",
        "--up",
        "--reason",
        "matches the contract",
    ])
    .ok()
    .out_has("✓ Vote +1 by alice on fact 1 recorded (ledger entry 3)")
    .out_has("consensus now +0.33");
    let j = s
        .run(&["--json", "vote", "1", "--agent", "bob", "--down"])
        .ok()
        .json();
    assert_eq!(j["agreed"], false);
    assert_eq!(j["entry_index"], 4);
    let j = s
        .run(&["--json", "vote", "1", "--agent", "bob", "--up"])
        .ok()
        .json();
    assert_eq!(j["replaced"], -1, "re-voting replaces the agent's vote");
    assert_eq!(j["reputation"]["agreed"], 1);
    assert_eq!(s.count("fact_votes"), 2);
    assert_eq!(s.count("agents"), 2);

    let j = s
        .run(&["--json", "recall", "--project", "billing"])
        .ok()
        .json();
    assert_eq!(ids(&j, "facts"), [1, 2], "the upvoted fact comes first");
    s.run(&["recall", "--project", "billing"])
        .ok()
        .out_has("✓ 2 current facts in billing");

    s.run(&["deprecate", "2", "--reason", "policy changed"])
        .ok()
        .out_has("✓ Deprecated fact 2 in billing (ledger entry 6)");
    let j = s
        .run(&["--json", "recall", "--project", "billing"])
        .ok()
        .json();
    assert_eq!(ids(&j, "facts"), [1]);
    let j = s.run(&["--json", "search", "approval"]).ok().json();
    assert_eq!(j["count"], 0, "deprecated facts leave search");
    let j = s
        .run(&["--json", "search", "approval", "--include-deprecated"])
        .ok()
        .json();
    assert_eq!(ids(&j, "results"), [2]);

    let j = s
        .run(&["--json", "history", "--project", "billing"])
        .ok()
        .json();
    assert_eq!(ids(&j, "facts"), [2, 1], "all facts, newest first");
    let j = s.run(&["--json", "history", "--fact", "1"]).ok().json();
    let entries: Vec<(u64, String)> = j["history"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (1, "fact.store".to_owned()),
            (3, "fact.vote".to_owned()),
            (4, "fact.vote".to_owned()),
            (5, "fact.vote".to_owned())
        ]
    );
    s.run(&["history", "--fact", "2"])
        .ok()
        .out_has("Fact 2 in billing")
        .out_has("deprecated ")
        .out_has("fact.deprecate");

    s.verify_ok();
    // A fact's id is its ledger index, so it has an inclusion proof.
    s.run(&["ledger", "checkpoint"]).ok();
    s.run(&["ledger", "proof", "1", "--output", "fact1.tlog-proof"])
        .ok();
    let vkey = s.home().join("keys").join("ledger.vkey");
    s.run(&[
        "ledger",
        "verify-external",
        "fact1.tlog-proof",
        "--vkey",
        &vkey.display().to_string(),
    ])
    .ok()
    .out_has("✓ Proof valid: entry 1")
    .out_has("fact.store");
}

#[test]
fn a_stdin_batch_is_one_transaction() {
    let s = Sandbox::new();
    let batch = concat!(
        "{\"content\":\"The cache is keyed on the memory version\"}\n",
        "\n",
        "{\"project\":\"zoo\",\"content\":\"Foxes eat berries\",\"type\":\"observation\",\"tags\":[\"animals\"]}\n",
        "{\"content\":\"Old rule\",\"valid_from\":\"2020-01-01\",\"valid_until\":\"2021-01-01T00:00:00+01:00\"}\n",
    );
    let j = s
        .run_with_stdin(&["--json", "store", "--project", "eng"], batch)
        .ok()
        .json();
    assert_eq!(j["ids"], serde_json::json!([0, 1, 2]));
    assert_eq!(j["count"], 3);
    let rows: Vec<(i64, String, String)> = s
        .conn()
        .prepare("SELECT id, project, fact_type FROM facts ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (0, "eng".into(), "knowledge".into()),
            (1, "zoo".into(), "observation".into()),
            (2, "eng".into(), "knowledge".into())
        ]
    );
    let until: String = s
        .conn()
        .query_row("SELECT valid_until FROM facts WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(until, "2020-12-31T23:00:00.000000Z");
    s.run(&["search", "rule"]).ok().out_has("No facts match");
    s.run(&["search", "rule", "--as-of", "2020-06-01"])
        .ok()
        .out_has("[2]");
    s.run_with_stdin(
        &["store"],
        "{\"project\":\"p\",\"content\":\"x\"}\n{\"project\":\"p\",\"content\":\"y\"}\n",
    )
    .ok()
    .out_has("✓ Stored 2 facts (3–4; ledger now holds 5 entries)");

    // One bad line refuses the whole batch, naming the line.
    let before = s.state();
    for (input, want) in [
        (
            "{\"project\":\"p\",\"content\":\"ok\"}\n{\"project\":\"p\",\"content\":\"ok\"}\n{\"project\":\"p\",\"content\":\"bad\",\"confidence\":7}\n",
            "stdin line: 3",
        ),
        (
            "{\"project\":\"p\",\"content\":\"ok\"}\n{not json\n",
            "stdin line 2",
        ),
        (
            "{\"project\":\"p\",\"content\":\"x\",\"colour\":\"red\"}\n",
            "unknown field",
        ),
        ("{\"content\":\"no project\"}\n", "missing field `project`"),
        (
            "{\"project\":\"p\",\"content\":\"  \"}\n",
            "content must not be empty",
        ),
        ("", "nothing to store"),
    ] {
        s.run_with_stdin(&["store"], input).code(2).err_has(want);
        assert_eq!(
            s.state(),
            before,
            "a refused batch writes nothing: {input:?}"
        );
    }
    s.verify_ok();
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let s = Sandbox::new();
    // On a fresh home, refused input creates neither the database nor a key.
    for (args, want) in [
        (
            vec![
                "store",
                "--project",
                "p",
                "--content",
                "x",
                "--confidence",
                "7",
            ],
            "confidence 7 is outside 0..=1",
        ),
        (
            vec!["store", "--project", "p", "--content", ""],
            "content must not be empty",
        ),
        (
            vec![
                "store",
                "--project",
                "p",
                "--content",
                "x",
                "--valid-from",
                "yesterday",
            ],
            "valid_from \"yesterday\" is not a timestamp",
        ),
        (
            vec![
                "store",
                "--project",
                "p",
                "--content",
                "x",
                "--valid-from",
                "2026-02-01",
                "--valid-until",
                "2026-01-01",
            ],
            "valid_until",
        ),
        (
            vec!["store", "--project", "", "--content", "x"],
            "project must not be empty",
        ),
    ] {
        s.run(&args).code(2).err_has(want);
    }
    assert!(
        !s.db().exists(),
        "refused input must not create the database"
    );
    assert!(!s.skey().exists(), "refused input must not create a key");

    let id = s.store("p", "The sky is blue");
    let before = s.state();
    s.run(&["vote", "99", "--agent", "alice", "--up"])
        .code(2)
        .err_has("no fact with id 99");
    let j = s
        .run(&["--json", "vote", "99", "--agent", "alice", "--up"])
        .code(2)
        .json();
    assert_eq!(j["error"]["kind"], "not_found");
    for (args, want, code) in [
        (vec!["vote", "0", "--agent", "alice"], "--up", 2),
        (
            vec!["vote", "0", "--agent", "alice", "--up", "--down"],
            "cannot be used with",
            2,
        ),
        (
            vec!["vote", "zero", "--agent", "a", "--up"],
            "invalid value",
            2,
        ),
        (
            vec!["vote", "0", "--agent", "", "--up"],
            "agent must not be empty",
            2,
        ),
        (vec!["deprecate", "42"], "no fact with id 42", 2),
        (vec!["search", "   "], "has no words", 2),
        (vec!["search", "sky", "--top-k", "0"], "top_k 0", 2),
        (
            vec!["search", "sky", "--as-of", "noon"],
            "as_of \"noon\"",
            2,
        ),
        (
            vec!["recall", "--project", "p", "--limit", "0"],
            "limit 0",
            2,
        ),
        (vec!["history"], "--project", 2),
        (vec!["store", "--content", "x"], "--project", 2),
    ] {
        s.run(&args).code(code).err_has(want);
        assert_eq!(s.state(), before, "{args:?} must write nothing");
    }
    s.run(&["deprecate", &id.to_string()]).ok();
    let before = s.state();
    s.run(&["deprecate", &id.to_string()])
        .code(3)
        .err_has("already deprecated");
    s.run(&["vote", &id.to_string(), "--agent", "a", "--up"])
        .code(3)
        .err_has("deprecated");
    assert_eq!(s.state(), before);
    s.verify_ok();
}

#[test]
fn memory_writes_checkpoint_like_ledger_appends() {
    let s = Sandbox::new();
    let batch: String = (0..5)
        .map(|i| format!("{{\"project\":\"p\",\"content\":\"fact number {i}\"}}\n"))
        .collect();
    s.run_with_stdin(&["store", "--checkpoint-every", "4"], &batch)
        .ok()
        .out_has("✓ Checkpoint signed at 5 entries");
    s.run(&[
        "vote",
        "0",
        "--agent",
        "a",
        "--up",
        "--checkpoint-every",
        "3",
    ])
    .ok()
    .out_has("✓ Checkpoint signed at 6 entries");
    s.run(&["deprecate", "1", "--checkpoint-every", "0"]).ok();
    assert_eq!(s.count("checkpoints"), 2);
    s.run(&["ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (7 transactions, 2 checkpoints)");
}

#[test]
fn search_ranks_and_filters_from_the_command_line() {
    let s = Sandbox::new();
    let a = s.store("zoo", "A fox");
    let b = s.store("zoo", "The quick brown fox jumps over the lazy dog");
    let c = s.store("farm", "Fox fox fox: the farm has a fox problem");
    s.store("farm", "Cows eat grass");
    let j = s.run(&["--json", "search", "fox"]).ok().json();
    assert_eq!(ids(&j, "results"), [c, a, b]);
    let scores: Vec<f64> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let j = s
        .run(&[
            "--json",
            "search",
            "fox",
            "--project",
            "zoo",
            "--top-k",
            "1",
        ])
        .ok()
        .json();
    assert_eq!(ids(&j, "results"), [a]);
    let j = s
        .run(&["--json", "search", "FOX", "--as-of", "2000-01-01"])
        .ok()
        .json();
    assert_eq!(j["count"], 0, "nothing was valid in 2000");
}

#[test]
fn authors_filters_forget_and_a_poisoned_memory_end_to_end() {
    let s = Sandbox::new();
    // Who writes: --agent (or CORTEX_AGENT), on the surface `cli`.
    let fact = |agent: &str, content: &str| -> u64 {
        s.run(&[
            "--json",
            "--agent",
            agent,
            "store",
            "--project",
            "ops",
            "--content",
            content,
        ])
        .ok()
        .json()["ids"][0]
            .as_u64()
            .unwrap()
    };
    let good = fact("alice", "deploys go through the staging cluster first");
    let planted = fact("mallory", "deploys may skip the staging cluster");
    let secret = fact("alice", "carol's pager number is 555-0199");
    for voter in ["alice", "bob"] {
        s.run(&[
            "--agent",
            voter,
            "vote",
            &planted.to_string(),
            "--agent",
            voter,
            "--down",
        ])
        .ok();
    }
    s.run(&["search", "deploys staging"])
        .ok()
        .out_has("by mallory via cli")
        .out_has("by alice via cli");
    let hits = s
        .run(&[
            "--json",
            "search",
            "deploys staging",
            "--min-consensus",
            "0",
        ])
        .ok()
        .json();
    let ids: Vec<u64> = hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fact"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [good], "the fact voted down is kept out: {hits}");
    let mine = s
        .run(&[
            "--json",
            "recall",
            "--project",
            "ops",
            "--author",
            "mallory",
        ])
        .ok()
        .json();
    assert_eq!(mine["count"], 1, "{mine}");
    s.run(&["history", "--fact", &planted.to_string()])
        .ok()
        .out_has("stored by mallory via cli")
        .out_has("by bob via cli · bob -1");
    s.run(&["search", "x", "--min-consensus", "2"])
        .code(2)
        .err_has("min_consensus 2 is outside -1..=1");

    // The ledger's own actions for the memory cannot be appended around it.
    let before = s.state();
    s.run(&[
        "ledger",
        "append",
        "--project",
        "ops",
        "--action",
        "fact.store",
        "--detail",
        "{}",
    ])
    .code(2)
    .err_has("reserved for the agent memory");
    assert_eq!(s.state(), before, "nothing written");

    // Forget: the content is gone from every read; the ledger still verifies.
    s.run(&[
        "forget",
        &secret.to_string(),
        "--reason",
        "asked to be forgotten",
    ])
    .ok()
    .out_has("every proof and checkpoint stays valid");
    s.run(&["search", "pager"]).ok().out_has("No facts match");
    s.run(&["history", "--fact", &secret.to_string()])
        .ok()
        .out_has("(content erased)");
    let leftovers: i64 = s
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM facts WHERE content LIKE '%555-0199%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    s.run(&["forget", &secret.to_string(), "--reason", "again"])
        .code(3)
        .err_has("was erased at");
    s.run(&["ledger", "verify"])
        .ok()
        .out_has("3 facts (1 erased, 2 commitments checked), 2 votes, 2 agents");

    // Poisoning: an edit behind the ledger's back is named; rebuild puts it right.
    s.conn()
        .execute(
            "UPDATE facts SET content = 'deploys never need staging' WHERE id = ?1",
            [good as i64],
        )
        .unwrap();
    s.conn()
        .execute(
            "UPDATE agents SET reputation = 0.99 WHERE agent = 'bob'",
            [],
        )
        .unwrap();
    let bad = s.run(&["--json", "ledger", "verify"]).code(1).json();
    let v = &bad["violations"];
    assert_eq!(v[0]["kind"], "memory_mismatch", "{bad}");
    assert_eq!(
        (
            v[0]["table"].as_str(),
            v[0]["fact_id"].as_u64(),
            v[0]["column"].as_str()
        ),
        (Some("facts"), Some(good), Some("content")),
        "{bad}"
    );
    assert_eq!(v[0]["index"], good, "the entry that says the true value");
    assert_eq!(
        (
            v[1]["table"].as_str(),
            v[1]["agent"].as_str(),
            v[1]["column"].as_str()
        ),
        (Some("agents"), Some("bob"), Some("reputation")),
        "{bad}"
    );
    s.run(&["ledger", "verify"])
        .code(1)
        .out_has("memory_mismatch at index 0 [facts fact 0 column content]");
    let before = s.state();
    s.run(&["memory", "rebuild", "--dry-run"])
        .ok()
        .out_has("a rebuild would change 2 things");
    assert_eq!(s.state(), before, "a dry run writes nothing");
    s.run(&["memory", "rebuild"])
        .ok()
        .out_has("2 differences put right");
    s.verify_ok();
    s.run(&["search", "staging"])
        .ok()
        .out_has("deploys go through the staging cluster first");
    let rebuilds: i64 = s
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM integrity_checks WHERE check_type = 'memory_rebuild'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rebuilds, 1, "the rebuild is recorded");
}

#[test]
fn history_of_a_fact_whose_entry_was_tampered_does_not_panic() {
    let s = Sandbox::new();
    let id = s.store("p", "a fact whose entry someone edits");
    // A sealed detail with a short, non-ASCII commitment: still parses, never sliceable.
    let detail: String = s
        .conn()
        .query_row(
            "SELECT detail FROM entries WHERE idx = ?1",
            [id as i64],
            |r| r.get(0),
        )
        .unwrap();
    let mut d: Value = serde_json::from_str(&detail).unwrap();
    d["commitment"] = Value::String("é".into());
    s.conn()
        .execute(
            "UPDATE entries SET detail = ?1 WHERE idx = ?2",
            rusqlite::params![d.to_string(), id as i64],
        )
        .unwrap();
    s.run(&["history", "--fact", &id.to_string()])
        .ok()
        .out_has("commitment é");
    s.run(&["ledger", "verify"])
        .code(1)
        .out_has("altered_entry at index 0");
}
