//! Proves that docs/FORMATS.md is enough to verify CORTEX files independently: the Python verifier
//! in `tests/independent/cortex_verify.py`, written from that document alone, must accept every
//! export (JSON, JSON Lines, CSV; full and sub-range) and tlog-proof file the real binary writes,
//! for a SHA-256 and a BLAKE3 ledger, and must reject copies with a single field or byte altered.
//! The reference verifier (`cortex ledger verify-external`) is run on the same files, so the two
//! are also checked to agree: on the verdict always, and finding for finding (kind and index)
//! wherever both list findings. Edited copies whose findings FORMATS.md 9.7 determines (swapped,
//! deleted and repeated entries, `--full` on a partial export) must give exactly those, and
//! copies that only change what 9.4-9.6 and 8.1 allow (extra line ends, CRLF, quoting) must
//! verify.
//!
//! Runs in a venv with the `cryptography` and `blake3` packages, made under
//! `target/test-peers/python/` on first use (`cortex_core::testkit::peers::python_env`). When it
//! cannot be made the test is skipped with the cause, unless `CI=true`, where it fails.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::{BIN, CLEARED_ENV};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent/cortex_verify.py")
}

/// One ledger under its own CORTEX_HOME.
struct Ledger {
    home: PathBuf,
    hasher: &'static str,
}

impl Ledger {
    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        for v in CLEARED_ENV {
            c.env_remove(v);
        }
        c.env("CORTEX_HOME", &self.home)
            .env("CORTEX_CHECKPOINT_EVERY", "0")
            .args(["--hasher", self.hasher]);
        c
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run cortex");
        assert!(
            out.status.success(),
            "cortex {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    #[track_caller]
    fn append_batch(&self, lines: &[String]) {
        self.batch(&["ledger", "append"], lines)
    }

    /// Runs `args` with `lines` as JSON Lines on stdin.
    #[track_caller]
    fn batch(&self, args: &[&str], lines: &[String]) {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cortex");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for l in lines {
                stdin.write_all(l.as_bytes()).unwrap();
                stdin.write_all(b"\n").unwrap();
            }
        }
        let out = child.wait_with_output().expect("wait for cortex");
        assert!(
            out.status.success(),
            "batch append failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn vkey(&self) -> PathBuf {
        self.home.join("keys/ledger.vkey")
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A stdin line for `ledger append`: `detail` is raw JSON text, stored verbatim.
fn input_line(project: &str, action: &str, detail: &str) -> String {
    format!(
        "{{\"project\":{},\"action\":{},\"detail\":{detail}}}",
        quote(project),
        quote(action)
    )
}

const PROJECTS: &[&str] = &[
    "billing",
    "ops,team",
    "proj \"quoted\"",
    "ünïcødé-prøject",
    "日本語プロジェクト",
];
const ACTIONS: &[&str] = &[
    "invoice.create",
    "a,b,c",
    "say \"hi\"",
    "déploiement ✓",
    "🚀.launch",
];

/// Varied detail JSON texts (all single-line, as a stdin line requires).
fn detail(i: usize) -> String {
    match i % 8 {
        0 => format!(r#"{{"seq":{i},"text":"héllo wörld ✓ 日本語 🚀"}}"#),
        1 => format!(
            r#"{{"seq":{i},"csv":"a,b,c","quote":"she said \"hi\"","nl":"line1\nline2\r\nline3"}}"#
        ),
        2 => {
            format!(r#"{{"seq":{i},"nested":{{"a":[1,2,{{"b":null}}],"c":{{"d":{{"e":true}}}}}}}}"#)
        }
        3 => format!(r#"[{i},"x",1.5e3,-0.0,{{"k":"v"}}]"#),
        4 => format!(r#""a string {i}, with \"quotes\", commas and \\ backslashes""#),
        5 => format!(
            r#"{{"seq":{i},"tab":"\t","ctrl":"\u0001\u001f","rtl":"مرحبا","combining":"e\u0301","emoji":"\ud83d\ude00"}}"#
        ),
        6 => format!(r#"{{ "seq" : {i} , "spaced" : "  x  " , "num" : 1.0000 , "exp" : 1E+2 }}"#),
        _ => format!(
            r#"{{"seq":{i},"empty":{{}},"list":[],"deep":[[[[["x"]]]]],"unicode":"Ω≈ç√∫"}}"#
        ),
    }
}

/// Entries appended one by one with `--detail`: raw newlines, CRLF and tabs inside the JSON text.
const TRICKY: &[&str] = &[
    "{\n  \"seq\": \"pretty\",\n  \"list\": [\n    1,\n    2\n  ]\n}",
    "{\r\n\"seq\":\"crlf\"}\r\n",
    "{\t\"seq\":\"tab\"}",
    "{\"marker\":\"tamper-me\",\"why\":\"the detail the tamper cases alter\"}",
    "42",
    "\"a top-level string, with a comma\"",
    "null",
    "{\"csv-hostile\":\"\\\",\\\",\\n\",\n\"x\":\"\\u2028\"}",
];

/// First and last entries of the sub-range exports; they include the TRICKY entries.
const SUB_FROM: u64 = 100;
const SUB_TO: u64 = 230;

/// Builds a ledger of 303 entries: 120 by batch, a checkpoint, the TRICKY ones (120–127), 170 more
/// by batch (so several timestamps), four facts (298–301), the erasure of one (302), and a final
/// checkpoint.
fn build(home: PathBuf, hasher: &'static str) -> (Ledger, u64) {
    let l = Ledger { home, hasher };
    let batch = |range: std::ops::Range<usize>| -> Vec<String> {
        range
            .map(|i| {
                input_line(
                    PROJECTS[i % PROJECTS.len()],
                    ACTIONS[(i / 3) % ACTIONS.len()],
                    &detail(i),
                )
            })
            .collect()
    };
    l.append_batch(&batch(0..60));
    l.append_batch(&batch(60..120));
    l.run(&["ledger", "checkpoint"]);
    for (k, d) in TRICKY.iter().enumerate() {
        l.run(&[
            "ledger",
            "append",
            "--project",
            PROJECTS[k % PROJECTS.len()],
            "--action",
            "tricky",
            "--detail",
            d,
        ]);
    }
    l.append_batch(&batch(128..298));
    // Facts (298–301): their contents ride beside their sealed entries in full exports
    // (FORMATS.md 15.3); 299 is then forgotten (302), so its content is in no file.
    let facts = [
        r#"{"project":"people","content":"Zoë's number is \"555,0100\"\nsecond line","tags":["a,b","ü"],"source":"crm, export"}"#,
        &format!(r#"{{"project":"people","content":"{FORGOTTEN}"}}"#),
        r#"{"project":"p","content":"plain fact"}"#,
        r#"{"project":"p","content":"emoji 🦀 and CRLF\r\nend","tags":["x"]}"#,
    ];
    l.batch(&["store"], &facts.map(str::to_owned));
    l.run(&["forget", "299", "--reason", "erasure request"]);
    l.run(&["ledger", "checkpoint"]);
    (l, 303)
}

/// The content of the fact the ledger forgets.
const FORGOTTEN: &str = "bob's address is 12 Elm Street";

/// A file to verify and whether it must verify.
struct Case {
    label: String,
    file: PathBuf,
    vkey: PathBuf,
    valid: bool,
    /// Extra arguments for both verifiers (`--full`).
    args: Vec<&'static str>,
    /// The findings both verifiers must report, exactly, as `(kind, index)` in index order.
    findings: Option<Vec<Finding>>,
}

/// A finding as `(kind, index)`.
type Finding = (String, Option<u64>);

/// An edit of an export's entry lines or rows (in file order).
type Edit<'a> = &'a dyn Fn(&mut Vec<String>);

fn finding(kind: &str, index: u64) -> Finding {
    (kind.to_owned(), Some(index))
}

/// The export `text` (of entries `from..`) in `format` with entry lines or rows edited by `edit`
/// (which gets them in file order, the header and column rows excluded).
fn edit_entries(format: &str, text: &str, edit: Edit) -> String {
    match format {
        "csv" => {
            let mut rows = common::csv_rows(text);
            let mut entries: Vec<String> = rows
                .split_off(2)
                .iter()
                .map(|r| common::csv_text(std::slice::from_ref(r), false, "\n"))
                .collect();
            edit(&mut entries);
            common::csv_text(&rows, false, "\n") + &entries.concat()
        }
        _ => {
            // One entry per line after the header line; JSON ends with a `]}` line.
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let tail = if format == "json" { lines.pop() } else { None };
            let mut entries = lines.split_off(1);
            let last_has_comma = format == "json";
            if last_has_comma {
                for e in entries.iter_mut() {
                    if let Some(x) = e.strip_suffix(',') {
                        *e = x.to_owned();
                    }
                }
            }
            edit(&mut entries);
            let sep = if format == "json" { ",\n" } else { "\n" };
            let mut out = lines.join("\n") + "\n" + &entries.join(sep) + "\n";
            if let Some(t) = tail {
                out.push_str(&t);
                out.push('\n');
            }
            out
        }
    }
}

/// Replaces the first occurrence of `from` with `to`, insisting that it occurs.
#[track_caller]
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replacen(from, to, 1)
}

/// `s` with the character at byte position `at` swapped for another of the same alphabet (hex or
/// base64), so the result still parses and only the value changes.
fn flip_at(s: &str, at: usize) -> String {
    let c = s.as_bytes()[at];
    let d = match c {
        b'0' => b'1',
        b'A' => b'B',
        _ if c.is_ascii_hexdigit() => b'0',
        _ => b'A',
    };
    let mut v = s.as_bytes().to_vec();
    v[at] = d;
    String::from_utf8(v).unwrap()
}

/// The base64 signature of the first signature line of a note.
fn note_signature(note: &str) -> String {
    let line = note
        .lines()
        .find(|l| l.starts_with('\u{2014}'))
        .expect("signature line");
    line.rsplit(' ').next().unwrap().to_owned()
}

/// Writes the valid files of one ledger and their tampered copies; returns the cases.
fn files_for(l: &Ledger, size: u64, dir: &Path, other_vkey: &Path) -> Vec<Case> {
    let tag = l.hasher;
    let mut cases = Vec::new();
    let mut add = |label: String, file: PathBuf, valid: bool| {
        cases.push(Case {
            label,
            file,
            vkey: l.vkey(),
            valid,
            args: Vec::new(),
            findings: valid.then(Vec::new),
        })
    };
    // Edited copies whose findings the document determines exactly.
    let mut exact: Vec<Case> = Vec::new();
    let mut expect = |label: String, file: PathBuf, args: Vec<&'static str>, f: Vec<Finding>| {
        exact.push(Case {
            label,
            file,
            vkey: l.vkey(),
            valid: f.is_empty(),
            args,
            findings: Some(f),
        })
    };
    let write = |name: String, text: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    // Exports: three formats, full and sub-range.
    for format in ["json", "jsonl", "csv"] {
        for (range, from_to) in [("full", None), ("sub", Some((SUB_FROM, SUB_TO)))] {
            let name = format!("{tag}-{range}.{format}");
            let path = dir.join(&name);
            let range_args: Vec<String> = match from_to {
                Some((a, b)) => vec!["--from".into(), a.to_string(), "--to".into(), b.to_string()],
                None => Vec::new(),
            };
            let export = |format: &str, out: &str| -> String {
                let mut args: Vec<&str> = vec!["ledger", "export", "--format", format, "-o", out];
                args.extend(range_args.iter().map(String::as_str));
                l.run(&args)
            };
            export(format, &path.display().to_string());
            let text = std::fs::read_to_string(&path).unwrap();
            add(format!("{name} as written"), path.clone(), true);
            assert!(
                !text.contains("Elm Street"),
                "{name}: an erased content is in no export"
            );
            if from_to.is_none() {
                assert!(text.contains("second line"), "{name} carries the openings");
                // A fact's content altered beside its entry: its commitment is not met.
                expect(
                    format!("{name} with a fact's content altered beside its entry"),
                    write(
                        format!("{tag}-content.{format}"),
                        &replace_once(&text, "second line", "second lime"),
                    ),
                    Vec::new(),
                    vec![finding("commitment_mismatch", 298)],
                );
                // Tags too (the CSV holds the opening as JSON text, quotes doubled).
                let tag_from = if format == "csv" {
                    "\"\"a,b\"\""
                } else {
                    "\"a,b\""
                };
                let tag_to = if format == "csv" {
                    "\"\"a;b\"\""
                } else {
                    "\"a;b\""
                };
                expect(
                    format!("{name} with a fact's tag altered beside its entry"),
                    write(
                        format!("{tag}-tags.{format}"),
                        &replace_once(&text, tag_from, tag_to),
                    ),
                    Vec::new(),
                    vec![finding("commitment_mismatch", 298)],
                );
            }

            // The header and entries, read through the JSON Lines form of the same range.
            let jsonl = export("jsonl", "-");
            let mut lines = jsonl.lines();
            let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            let entries: Vec<Value> = lines.map(|x| serde_json::from_str(x).unwrap()).collect();
            assert_eq!(header["tree_size"], size);
            let sig = note_signature(header["checkpoint"].as_str().unwrap());
            let marked = entries
                .iter()
                .find(|e| e["detail"].as_str().unwrap().contains("tamper-me"))
                .expect("the marked entry is exported");
            let hash = marked["hash"].as_str().unwrap();

            // Swapped, deleted and repeated entries: one finding per edited entry (9.7), also
            // among the hostile details (121 has a CRLF, 120 raw newlines).
            let from = from_to.map_or(0, |(a, _)| a);
            let at = |i: u64| (i - from) as usize;
            let edits: [(&str, Edit, Vec<Finding>); 4] = [
                (
                    "swapped-121-122",
                    &|e| e.swap(at(121), at(122)),
                    vec![
                        finding("reordered_entry", 121),
                        finding("reordered_entry", 122),
                    ],
                ),
                (
                    "swapped-120-127",
                    &|e| e.swap(at(120), at(127)),
                    vec![
                        finding("reordered_entry", 120),
                        finding("reordered_entry", 127),
                    ],
                ),
                (
                    "deleted-123",
                    &|e| drop(e.remove(at(123))),
                    vec![finding("missing_entry", 123)],
                ),
                (
                    "repeated-125",
                    &|e| {
                        let x = e[at(125)].clone();
                        e.insert(at(200), x)
                    },
                    vec![finding("inserted_entry", 125)],
                ),
            ];
            assert_eq!(
                edit_entries(format, &text, &|_| {}),
                text,
                "{name}: edits round-trip"
            );
            for (what, edit, f) in edits {
                let p = write(format!("{name}.{what}"), &edit_entries(format, &text, edit));
                expect(format!("{name} {what}"), p, Vec::new(), f);
            }
            // Reading rules: extra line ends, leading blank lines, CRLF, quoting (9.4-9.6).
            let mut variants = vec![
                ("trailing-newlines", format!("{text}\n\n")),
                ("leading-blank-lines", format!("\n \r\n{text}")),
            ];
            match format {
                "csv" => {
                    let rows = common::csv_rows(&text);
                    variants.push(("crlf-quoted", common::csv_text(&rows, true, "\r\n")));
                    variants.push(("cr", common::csv_text(&rows, false, "\r")));
                    variants.push((
                        "crlf-no-final",
                        common::csv_text(&rows, false, "\r\n").trim_end().to_owned(),
                    ));
                }
                _ => variants.push(("crlf", text.replace('\n', "\r\n"))),
            }
            for (what, v) in variants {
                let p = write(format!("{name}.{what}"), &v);
                expect(format!("{name} {what}"), p, Vec::new(), Vec::new());
            }
            // --full: the whole tree, or the ends that are not in the file.
            let f = match from_to {
                None => Vec::new(),
                Some((a, b)) => vec![finding("missing_entry", 0), finding("truncated", b + 1)]
                    .into_iter()
                    .filter(|x| a > 0 || x.0 != "missing_entry")
                    .collect(),
            };
            expect(format!("{name} --full"), path.clone(), vec!["--full"], f);

            let mut tamper = |what: &str, altered: String| {
                assert_ne!(altered, text, "{what}: nothing changed");
                let p = write(format!("{name}.{what}"), &altered);
                add(format!("{name} with {what}"), p, false);
            };
            tamper(
                "altered-detail",
                replace_once(&text, "tamper-me", "tamper-mE"),
            );
            tamper(
                "altered-hash",
                replace_once(&text, hash, &flip_at(hash, 10)),
            );
            tamper(
                "altered-signature",
                text.replace(&sig, &flip_at(&sig, sig.len() / 2)),
            );
            if let Some(st) = header["subtrees"].as_array().and_then(|s| s.first()) {
                let h = st["hash"].as_str().unwrap();
                tamper("altered-subtree", replace_once(&text, h, &flip_at(h, 5)));
            } else {
                assert!(from_to.is_none(), "a sub-range export lists subtrees");
            }
            if format == "jsonl" {
                // Drop one entry line (the marked one).
                let kept: Vec<&str> = text.lines().filter(|x| !x.contains("tamper-me")).collect();
                tamper("deleted-entry", kept.join("\n") + "\n");
                tamper(
                    "altered-tree-size",
                    replace_once(
                        &text,
                        &format!("\"tree_size\":{size}"),
                        &format!("\"tree_size\":{}", size - 1),
                    ),
                );
            }
        }
    }
    cases.extend(exact);
    let full_json = dir.join(format!("{tag}-full.json"));
    cases.push(Case {
        label: format!("{tag}-full.json with another ledger's key"),
        file: full_json,
        vkey: other_vkey.to_owned(),
        valid: false,
        args: Vec::new(),
        findings: None,
    });

    // tlog-proof files.
    for index in [0u64, 1, 119, 120, 123, 127, 128, 255, size - 1] {
        let name = format!("{tag}-entry-{index}.tlog-proof");
        let path = dir.join(&name);
        l.run(&[
            "ledger",
            "proof",
            &index.to_string(),
            "-o",
            &path.display().to_string(),
        ]);
        let text = std::fs::read_to_string(&path).unwrap();
        for extra in ["\n", "\n\n\n"] {
            let p = write(
                format!("{name}.{}-newlines", extra.len()),
                &format!("{text}{extra}"),
            );
            cases.push(Case {
                label: format!("{name} with {} more newlines", extra.len()),
                file: p,
                vkey: l.vkey(),
                valid: true,
                args: Vec::new(),
                findings: None,
            });
        }
        cases.push(Case {
            label: format!("{name} as written"),
            file: path,
            vkey: l.vkey(),
            valid: true,
            args: Vec::new(),
            findings: None,
        });
        if ![0, 123, size - 1].contains(&index) {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "c2sp.org/tlog-proof@v1");
        let extra = lines[1].strip_prefix("extra ").expect("extra line");
        assert_eq!(lines[2], format!("index {index}"));
        let proof_hash = lines[3];
        assert_eq!(proof_hash.len(), 44, "a proof hash line: {proof_hash:?}");
        let sig = note_signature(&text);
        let mut tamper = |what: &str, altered: String| {
            assert_ne!(altered, text, "{what}: nothing changed");
            let p = write(format!("{name}.{what}"), &altered);
            cases.push(Case {
                label: format!("{name} with {what}"),
                file: p,
                vkey: l.vkey(),
                valid: false,
                args: Vec::new(),
                findings: None,
            });
        };
        tamper(
            "altered-proof-hash",
            replace_once(&text, proof_hash, &flip_at(proof_hash, 20)),
        );
        tamper(
            "altered-extra",
            replace_once(&text, extra, &flip_at(extra, extra.len() / 2)),
        );
        tamper(
            "altered-signature",
            replace_once(&text, &sig, &flip_at(&sig, sig.len() / 2)),
        );
        tamper(
            "altered-index",
            replace_once(
                &text,
                &format!("\nindex {index}\n"),
                &format!("\nindex {}\n", index ^ 1),
            ),
        );
    }
    cases
}

/// Outcome of one case: the Python and reference exit codes, their output, and the findings
/// each listed (`None` when it printed no list: a valid proof, or a malformed file).
struct Outcome {
    python: Option<i32>,
    python_out: String,
    python_findings: Option<Vec<Finding>>,
    reference: Option<i32>,
    reference_out: String,
    reference_findings: Option<Vec<Finding>>,
}

/// The `violations` of a `--json` report as sorted `(kind, index)` pairs.
fn findings_of(stdout: &str) -> Option<Vec<Finding>> {
    let j: Value = serde_json::from_str(stdout).ok()?;
    let mut out: Vec<Finding> = j
        .get("violations")?
        .as_array()?
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or("?").to_owned(),
                v["index"].as_u64(),
            )
        })
        .collect();
    if j.get("error").is_some() && out.is_empty() {
        return None; // the file was rejected as a whole
    }
    out.sort();
    Some(out)
}

fn check(python: &Path, case: &Case) -> Outcome {
    let py = Command::new(python)
        .arg(script())
        .arg(&case.file)
        .arg("--vkey")
        .arg(&case.vkey)
        .arg("--json")
        .args(&case.args)
        .output()
        .expect("run the venv's python");
    let mut reference = Command::new(BIN);
    for v in CLEARED_ENV {
        reference.env_remove(v);
    }
    let rf = reference
        .args(["--json", "ledger", "verify-external"])
        .arg(&case.file)
        .arg("--vkey")
        .arg(&case.vkey)
        .args(&case.args)
        .output()
        .expect("run cortex verify-external");
    let py_stdout = String::from_utf8_lossy(&py.stdout).into_owned();
    let rf_stdout = String::from_utf8_lossy(&rf.stdout).into_owned();
    Outcome {
        python: py.status.code(),
        python_findings: findings_of(&py_stdout),
        python_out: format!("{py_stdout}{}", String::from_utf8_lossy(&py.stderr)),
        reference: rf.status.code(),
        reference_findings: findings_of(&rf_stdout),
        reference_out: format!("{rf_stdout}{}", String::from_utf8_lossy(&rf.stderr)),
    }
}

#[test]
fn python_verifier_written_from_the_spec_agrees_with_the_binary() {
    let Some(python) = common::python_or_skip(
        "the independent Python verifier",
        "independent-verifier",
        common::VERIFIER_PACKAGES,
        &["cryptography", "blake3"],
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();

    let (sha, sha_size) = build(tmp.path().join("sha256"), "sha256");
    let (b3, b3_size) = build(tmp.path().join("blake3"), "blake3");
    let origin = std::fs::read_to_string(b3.vkey()).unwrap();
    assert!(
        origin.split('+').next().unwrap().ends_with("/blake3"),
        "a BLAKE3 ledger's origin ends in /blake3: {origin}"
    );

    let mut cases = files_for(&sha, sha_size, &files, &b3.vkey());
    cases.extend(files_for(&b3, b3_size, &files, &sha.vkey()));
    assert!(cases.iter().filter(|c| c.valid).count() >= 30);
    assert!(cases.iter().filter(|c| !c.valid).count() >= 50);

    // Run the cases in parallel: each is two short-lived processes.
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get().min(16));
    let chunk = cases.len().div_ceil(workers);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                let python = &python;
                s.spawn(move || part.iter().map(|c| check(python, c)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });

    let mut failures = Vec::new();
    for (case, out) in cases.iter().zip(&outcomes) {
        let (want_py, ref_ok) = if case.valid {
            (Some(0), out.reference == Some(0))
        } else {
            (Some(1), matches!(out.reference, Some(1 | 2)))
        };
        if out.python != want_py {
            failures.push(format!(
                "{}: python verifier exited {:?}, expected {:?}\n{}",
                case.label, out.python, want_py, out.python_out
            ));
        }
        if !ref_ok {
            failures.push(format!(
                "{}: reference verifier exited {:?} (expected {})\n{}",
                case.label,
                out.reference,
                if case.valid { "0" } else { "1 or 2" },
                out.reference_out
            ));
        }
        // Where both list findings, they list the same ones; where the document fixes them,
        // both list exactly those.
        if let (Some(p), Some(r)) = (&out.python_findings, &out.reference_findings)
            && p != r
        {
            failures.push(format!(
                "{}: the verifiers disagree: python {p:?}, reference {r:?}",
                case.label
            ));
        }
        if let Some(want) = &case.findings {
            for (who, got) in [
                ("python", &out.python_findings),
                ("reference", &out.reference_findings),
            ] {
                if got.as_ref() != Some(want) {
                    failures.push(format!(
                        "{}: {who} verifier found {got:?}, expected exactly {want:?}",
                        case.label
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!(
        "independent verifier: {} valid and {} tampered files checked ({} with their findings \
         fixed by the document, {} compared finding for finding)",
        cases.iter().filter(|c| c.valid).count(),
        cases.iter().filter(|c| !c.valid).count(),
        cases.iter().filter(|c| c.findings.is_some()).count(),
        outcomes
            .iter()
            .filter(|o| o.python_findings.is_some() && o.reference_findings.is_some())
            .count()
    );
}
