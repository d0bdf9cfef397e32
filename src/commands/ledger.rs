//! `cortex migrate` and `cortex ledger …`.

use crate::config::{self, Settings};
use crate::output::{self, num};
use clap::Args;
use cortex_core::ledger::DEFAULT_CHECKPOINT_EVERY;
use cortex_core::ledger::anchoring::anchor_pending;
use cortex_core::ledger::export::{
    ExportFormat, ExportVerifyOptions, verify_export_with, write_export_with,
};
use cortex_core::ledger::store::AuditExport;
use cortex_core::{
    DynStore, Error, Ledger, LedgerOptions, NewEntry, ProofFile, Result, Signer, Verifier,
    VerifyOptions,
};
use cortex_ed25519::Ed25519Signer;
use serde::Deserialize;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries per append transaction when a batch arrives on stdin.
const STDIN_CHUNK: usize = 50_000;

#[derive(Args, Debug)]
pub struct AppendArgs {
    /// Project of the entry (omit to read JSON Lines from stdin).
    #[arg(long, requires = "action")]
    project: Option<String>,
    /// Action of the entry.
    #[arg(long, requires = "project")]
    action: Option<String>,
    /// Detail: JSON text, stored verbatim.
    #[arg(long, default_value = "{}", requires = "project")]
    detail: String,
    /// Make a checkpoint whenever the ledger crosses a multiple of this many entries (0 = never).
    #[arg(long, env = "CORTEX_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Keep running, checkpointing every this many seconds.
    #[arg(long, env = "CORTEX_CHECKPOINT_INTERVAL")]
    interval: Option<f64>,
    /// With --interval: stop after this many rounds (default: run until killed).
    #[arg(long, requires = "interval")]
    rounds: Option<u64>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Trusted verifier key (text or file); repeatable. Default: the .vkey beside the signing key.
    #[arg(long)]
    vkey: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// json, csv or jsonl.
    #[arg(long, default_value = "json")]
    format: String,
    /// File to write (`-` for stdout).
    #[arg(long, short)]
    output: PathBuf,
    /// First index (default 0).
    #[arg(long)]
    from: Option<u64>,
    /// Last index, inclusive (default: the last entry of the latest checkpoint).
    #[arg(long)]
    to: Option<u64>,
}

#[derive(Args, Debug)]
pub struct VerifyExternalArgs {
    /// An export (json, jsonl, csv) or a .tlog-proof file.
    file: PathBuf,
    /// Trusted verifier key (text or file); repeatable. With --policy, the policy's keys are
    /// used (and must all be satisfied).
    #[arg(long)]
    vkey: Vec<String>,
    /// Require an export of the whole tree of its checkpoint (entries 0 to its size − 1). An
    /// export's `from` and `to` are not signed: without this, a copy with entries cut off
    /// either end verifies as a partial export.
    #[arg(long)]
    full: bool,
}

#[derive(Args, Debug)]
pub struct ProofArgs {
    /// Index of the entry.
    index: u64,
    /// File to write (`-` for stdout). Default: entry-INDEX.tlog-proof.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn open_ledger(s: &Settings, checkpoint_every: u64) -> Result<Ledger> {
    Ok(open_store_and_ledger(s, checkpoint_every)?.1)
}

/// Opens the store and the ledger on it (the agent memory needs both).
pub fn open_store_and_ledger(s: &Settings, checkpoint_every: u64) -> Result<(DynStore, Ledger)> {
    let store = crate::plugins::open_store(&s.db)?;
    let ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: s.hasher,
            checkpoint_every,
        },
    )?;
    Ok((store, ledger))
}

/// Attaches the signing key, creating one on first use of the default location (and saying so
/// on stderr), then the `--signer` signers beside it.
pub fn attach_signer(s: &Settings, ledger: &mut Ledger) -> Result<()> {
    let (signer, created) = signing_key(s, ledger)?;
    if let Some(vkey) = created {
        eprintln!(
            "✓ Generated checkpoint signing key {} for origin {:?}\n  give {} to auditors",
            s.key.display(),
            signer.key_name(),
            vkey.display()
        );
    }
    ledger.add_signer(Arc::new(signer))?;
    for spec in &s.signers {
        ledger.add_signer(crate::plugins::signers::open(spec)?)?;
    }
    Ok(())
}

/// The ledger's signing key: read from `s.key`, or made there (with its verifier key beside it)
/// on first use of the default location, named with a fresh origin; the verifier key's path
/// when this call made it.
///
/// Safe when many processes start at once on a fresh home: the key file is created
/// exclusively ([`Ed25519Signer::create_files`]), so exactly one process makes it and every
/// other one reads that key. A key is always in its file before its name is set as the
/// ledger's origin ([`Ledger::add_signer`], a compare-and-set in the store), and the origin
/// was read (when the ledger was opened) before the key file was looked for here; so an
/// origin with no key file means the key was lost or lives elsewhere, never that another
/// process is about to write it, and that stays an error rather than a new key.
pub fn signing_key(s: &Settings, ledger: &Ledger) -> Result<(Ed25519Signer, Option<PathBuf>)> {
    Ok(if s.key.exists() {
        (Ed25519Signer::read_file(&s.key)?, None)
    } else if s.key_explicit {
        return Err(Error::config(format!(
            "signing key {} does not exist (create it with `cortex keys generate --out {}`)",
            s.key.display(),
            s.key.display()
        )));
    } else if let Some(origin) = ledger.origin() {
        return Err(Error::config(format!(
            "this ledger's origin is {origin:?} but its signing key {} is missing; pass --key",
            s.key.display()
        )));
    } else {
        let origin = config::default_origin(ledger.hasher().algorithm())?;
        let signer = Ed25519Signer::generate(&origin)?;
        match signer.create_files(&s.key)? {
            Some(vkey) => (signer, Some(vkey)),
            // Another process made the key first: that one is the ledger's.
            None => (Ed25519Signer::read_file(&s.key)?, None),
        }
    })
}

pub fn verifiers(s: &Settings, given: &[String]) -> Result<Vec<Box<dyn Verifier>>> {
    if !given.is_empty() {
        return given
            .iter()
            .map(|v| Ok(Box::new(config::load_verifier(v)?) as Box<dyn Verifier>))
            .collect();
    }
    let vkey = Settings::vkey_path(&s.key);
    if vkey.is_file() {
        return Ok(vec![Box::new(config::load_verifier(
            &vkey.display().to_string(),
        )?)]);
    }
    if s.key.is_file() {
        return Ok(vec![
            cortex_ed25519::Ed25519Signer::read_file(&s.key)?.verifier(),
        ]);
    }
    Err(Error::config(format!(
        "no verifier key: pass --vkey (no key at {})",
        vkey.display()
    )))
}

pub fn migrate(s: &Settings) -> Result<u8> {
    let store = crate::plugins::open_store(&s.db)?;
    let report = store.migrate()?;
    let ledger = Ledger::open(
        store,
        LedgerOptions {
            hasher: s.hasher,
            ..Default::default()
        },
    )?;
    let hasher = ledger.hasher().algorithm().name();
    if s.json {
        output::json(
            &json!({"ok": true, "db": s.db, "schema_version": report.to_version, "hasher": hasher}),
        );
    } else {
        println!(
            "✓ Database {} at schema version {} ({} hasher)",
            s.db, report.to_version, hasher
        );
    }
    Ok(0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine<'a> {
    project: String,
    action: String,
    #[serde(borrow)]
    detail: Option<&'a serde_json::value::RawValue>,
}

fn read_stdin_batch() -> Result<Vec<NewEntry>> {
    super::read_stdin_lines(
        "nothing to append: give --project and --action, or JSON Lines on stdin",
        |n, line| {
            let parsed: InputLine = serde_json::from_str(line).map_err(|e| {
                Error::invalid(format!(
                    "stdin line {n}: expected {{\"project\": …, \"action\": …, \"detail\": …}}: {e}"
                ))
            })?;
            let e = NewEntry::new(
                parsed.project,
                parsed.action,
                parsed.detail.map_or("{}", |d| d.get()).to_owned(),
            );
            e.validate()
                .map_err(|err| err.with_context("stdin line", n))?;
            Ok(e)
        },
    )
}

pub fn append(s: &Settings, a: AppendArgs) -> Result<u8> {
    let batch = match (a.project, a.action) {
        (Some(p), Some(act)) => {
            let e = NewEntry::new(p, act, a.detail);
            e.validate()?;
            vec![e]
        }
        _ => read_stdin_batch()?,
    };
    for (i, e) in batch.iter().enumerate() {
        cortex_core::memory::fact::check_not_reserved(&e.action).map_err(|err| {
            if batch.len() > 1 {
                err.with_context("stdin line", i + 1)
            } else {
                err
            }
        })?;
    }
    let mut ledger = open_ledger(s, a.checkpoint_every)?;
    if a.checkpoint_every > 0 {
        attach_signer(s, &mut ledger)?;
    }
    let pb = output::progress(s.json, batch.len() as u64, "appending");
    let mut first = None;
    let mut checkpoints = Vec::new();
    let mut head = ledger.head()?;
    for chunk in batch.chunks(STDIN_CHUNK) {
        let out = ledger.append(chunk)?;
        first.get_or_insert(out.first_index);
        checkpoints.extend(out.checkpoint);
        output::checkpoint_warning(out.checkpoint_error.as_deref());
        head = out.head;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let first = first.unwrap_or_default();
    if s.json {
        output::json(&json!({
            "ok": true, "first_index": first, "count": batch.len(), "size": head.size,
            "last_hash": head.last_hash.to_hex(),
            "checkpoints": checkpoints.iter().map(|c| json!({"size": c.size, "root": c.root.to_base64()})).collect::<Vec<_>>(),
        }));
    } else {
        if batch.len() == 1 {
            println!(
                "✓ Appended entry {} (ledger now holds {})",
                num(first),
                num(head.size)
            );
        } else {
            println!(
                "✓ Appended {} entries ({}–{}; ledger now {} entries)",
                num(batch.len() as u64),
                num(first),
                num(head.size - 1),
                num(head.size)
            );
        }
        for c in &checkpoints {
            println!(
                "✓ Checkpoint signed at {} entries (root {})",
                num(c.size),
                c.root.to_base64()
            );
        }
    }
    Ok(0)
}

pub fn checkpoint(s: &Settings, a: CheckpointArgs) -> Result<u8> {
    let mut ledger = open_ledger(s, 0)?;
    attach_signer(s, &mut ledger)?;
    let policy = s.load_policy()?;
    let anchors = crate::plugins::anchors::selected(&s.anchors, policy.as_deref(), &s.home)?;
    let print = |o: &cortex_core::CheckpointOutcome| {
        let r = &o.record;
        if s.json {
            output::json(&json!({
                "ok": true, "created": o.created, "size": r.size, "root": r.root.to_base64(),
                "range": {"start": r.range_start, "end": r.range_end(), "count": r.range_count},
                "note": r.note,
            }));
        } else if o.created {
            println!(
                "✓ Checkpoint signed: {} entries (adds {}–{}), root {}",
                num(r.size),
                num(r.range_start),
                num(r.size - 1),
                r.root.to_base64()
            );
        } else {
            println!(
                "✓ Up to date: the latest checkpoint already covers all {} entries",
                num(r.size)
            );
        }
    };
    let Some(interval) = a.interval else {
        print(&ledger.checkpoint()?);
        if !anchors.is_empty() {
            // A one-shot checkpoint is submitted at once; a failure is recorded and retried by
            // `cortex ledger anchor` or a running server, and never undoes the checkpoint.
            for o in run_async(anchor_pending(&ledger, &anchors, true))?? {
                crate::anchoring::report(&o);
            }
        }
        return Ok(0);
    };
    let ledger = Arc::new(ledger);
    let _worker = crate::anchoring::AnchorWorker::spawn(ledger.clone(), anchors, Box::new(|_| {}))?;
    if !(interval.is_finite() && interval > 0.0) {
        return Err(Error::invalid(format!(
            "--interval {interval} must be a positive number of seconds"
        )));
    }
    let mut round = 0;
    loop {
        match ledger.checkpoint() {
            Ok(o) if o.created => print(&o),
            Ok(_) => {}
            Err(e) if e.kind() == cortex_core::ErrorKind::InvalidInput => {}
            Err(e) => return Err(e),
        }
        round += 1;
        if a.rounds.is_some_and(|r| round >= r) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs_f64(interval));
    }
}

pub fn verify(s: &Settings, a: VerifyArgs) -> Result<u8> {
    let (store, ledger) = open_store_and_ledger(s, 0)?;
    let policy = s.load_policy()?;
    // With a policy its keys are the trusted ones; --vkey still adds keys for the note check.
    let verifiers = match (&policy, a.vkey.is_empty()) {
        (Some(_), true) => Vec::new(),
        _ => verifiers(s, &a.vkey)?,
    };
    let anchors = crate::plugins::anchors::to_check(policy.as_deref(), &s.home)?;
    let size = ledger.head()?.size;
    let pb = output::progress(s.json, size, "verifying");
    let pbc = pb.clone();
    let opts = VerifyOptions {
        verifiers,
        anchors,
        policy,
        threads: a.threads,
        progress: Some(Arc::new(move |d| pbc.set_position(d))),
        record: true,
    };
    let report =
        cortex_core::memory::audit::verify(&*store, ledger.hasher(), ledger.origin(), &opts)?;
    pb.finish_and_clear();
    let memory_line = report.memory.as_ref().map(|m| {
        format!(
            "  agent memory matches the ledger: {} facts ({} erased, {} commitments checked), \
             {} votes, {} agents",
            num(m.facts),
            num(m.facts_erased),
            num(m.commitments_checked),
            num(m.votes),
            num(m.agents)
        )
    });
    if s.json {
        output::json(&serde_json::to_value(&report).map_err(|e| Error::backend(e.to_string()))?);
    } else if report.valid {
        let rate = report.entries_checked as f64 / (report.elapsed_ms / 1000.0).max(1e-9);
        println!(
            "✓ Chain valid ({} transactions, {} checkpoints)",
            num(report.entries_checked),
            num(report.checkpoints_checked)
        );
        if let Some(line) = &memory_line {
            println!("{line}");
        }
        println!(
            "  verified in {:.1} ms ({} entries/s, {})",
            report.elapsed_ms,
            num(rate as u64),
            report.hasher
        );
        print_anchors(&report);
    } else {
        let total: u64 = report.violation_counts.values().sum();
        println!(
            "✗ Integrity violations: {} (ledger of {} entries, {} checkpoints)",
            num(total),
            num(report.tree_size),
            num(report.checkpoints_checked)
        );
        for v in report.violations.iter().take(20) {
            println!("  {}", output::violation(v));
        }
        if total > 20 {
            println!("  … and {} more (use --json for the list)", num(total - 20));
        }
        print_anchors(&report);
    }
    Ok(if report.valid { 0 } else { 1 })
}

/// The receipts checked, and each policy anchor's status (pending and failing anchors are
/// reported, never violations: an anchor that is down does not make the ledger invalid).
fn print_anchors(report: &cortex_core::VerifyReport) {
    if report.receipts_checked + report.receipts_unchecked > 0 {
        println!(
            "  anchor receipts: {} verified offline, {} from anchors not in the policy (not checked)",
            num(report.receipts_checked),
            num(report.receipts_unchecked)
        );
    }
    for a in &report.anchors {
        println!("  {}", output::anchor_status(a));
    }
}

/// Runs a future to completion on a small runtime of its own (one-shot commands).
fn run_async<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::backend(format!("cannot start an async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

pub fn anchor(s: &Settings) -> Result<u8> {
    let ledger = open_ledger(s, 0)?;
    let policy = s.load_policy()?;
    let anchors = crate::plugins::anchors::selected(&s.anchors, policy.as_deref(), &s.home)?;
    if anchors.is_empty() {
        return Err(Error::config(
            "no anchor to submit to: declare anchors in the policy (`anchor KIND URL KEY`) and \
             pass --policy FILE (or put it at HOME/policy.txt)",
        ));
    }
    let outcomes = run_async(anchor_pending(&ledger, &anchors, true))??;
    let failed = outcomes.iter().any(|o| o.result == "failed");
    if s.json {
        output::json(&json!({"ok": !failed, "outcomes": outcomes}));
    } else if outcomes.is_empty() {
        println!("✓ Nothing to anchor: the ledger has no checkpoint yet");
    } else {
        for o in &outcomes {
            match o.result {
                "anchored" => println!(
                    "✓ checkpoint {} anchored by {} {}",
                    num(o.size),
                    o.kind,
                    o.target
                ),
                "already" => println!(
                    "✓ checkpoint {} already anchored by {} {}",
                    num(o.size),
                    o.kind,
                    o.target
                ),
                _ => println!(
                    "✗ checkpoint {} not anchored by {} {}: {}",
                    num(o.size),
                    o.kind,
                    o.target,
                    o.detail.as_deref().unwrap_or("?")
                ),
            }
        }
    }
    Ok(if failed { 3 } else { 0 })
}

/// A writer that hashes what passes through, for the audit_exports record.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn export(s: &Settings, a: ExportArgs) -> Result<u8> {
    let format = ExportFormat::parse(&a.format)?;
    let (store, ledger) = open_store_and_ledger(s, 0)?;
    let to_stdout = a.output.as_os_str() == "-";
    let tmp = a.output.with_extension("partial");
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(&tmp).map_err(|e| {
            Error::invalid(format!("cannot write {}", a.output.display())).with_source(e)
        })?)
    };
    let mut w = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, sink),
        hasher: Default::default(),
    };
    let total = ledger.store().latest_checkpoint()?.map_or(0, |c| c.size);
    let pb = output::progress(s.json || to_stdout, total, "exporting");
    // Sealed facts' contents and salts ride beside their entries, so an auditor checks the
    // commitments offline.
    let openings =
        |e: &cortex_core::EntryRef<'_>| cortex_core::memory::audit::export_opening(&*store, e);
    let result = write_export_with(
        &ledger,
        format,
        a.from,
        a.to,
        &mut w,
        &|n| pb.set_position(n),
        &openings,
    );
    pb.finish_and_clear();
    let summary = match result {
        Ok(x) => x,
        Err(e) => {
            drop(w);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    w.flush()?;
    let digest = hex::encode(sha2::Digest::finalize(w.hasher.clone()));
    drop(w);
    if !to_stdout {
        std::fs::rename(&tmp, &a.output)?;
    }
    ledger.store().record_export(&AuditExport {
        export_type: format.name().into(),
        filename: a.output.display().to_string(),
        file_hash: digest.clone(),
        start: summary.from,
        end: summary.to,
        exported_at: cortex_core::ledger::entry::now_timestamp(),
        exported_by: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    })?;
    if s.json {
        output::json(&json!({"ok": true, "file": a.output, "sha256": digest, "summary": summary}));
    } else if !to_stdout {
        println!(
            "✓ Exported {} entries ({}–{}) to {} ({}, checkpoint {} entries, sha256 {})",
            num(summary.count),
            num(summary.from),
            num(summary.to),
            a.output.display(),
            summary.format,
            num(summary.tree_size),
            &digest[..16]
        );
    }
    Ok(0)
}

pub fn verify_external(s: &Settings, a: VerifyExternalArgs) -> Result<u8> {
    let policy = s.load_policy()?;
    if a.vkey.is_empty() && policy.is_none() {
        return Err(Error::config(
            "no verifier key: pass --vkey (the log's .vkey) or --policy FILE",
        ));
    }
    let keys: Vec<Box<dyn Verifier>> = a
        .vkey
        .iter()
        .map(|v| Ok(Box::new(config::load_verifier(v)?) as Box<dyn Verifier>))
        .collect::<Result<_>>()?;
    let mut refs: Vec<&dyn Verifier> = keys.iter().map(|k| &**k).collect();
    if let Some(p) = &policy {
        refs.extend(p.note_verifiers());
    }
    let anchors = crate::plugins::anchors::to_check(policy.as_deref(), &s.home)?;
    let file = std::fs::File::open(&a.file)
        .map_err(|e| Error::invalid(format!("cannot read {}", a.file.display())).with_source(e))?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let lead = input.fill_buf().map_err(Error::from)?;
    if lead.starts_with(cortex_core::ledger::proof_file::PROOF_HEADER.as_bytes()) {
        if a.full {
            return Err(Error::invalid(format!(
                "--full applies to exports; {} is a tlog-proof file (one entry)",
                a.file.display()
            )));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut input, &mut text).map_err(|e| {
            Error::invalid(format!("{} is not UTF-8 text", a.file.display())).with_source(e)
        })?;
        let proof = ProofFile::parse(&text)?;
        return match proof.verify(&refs) {
            Ok((entry, cp)) => {
                if s.json {
                    output::json(
                        &json!({"ok": true, "valid": true, "kind": "tlog-proof", "index": entry.index, "tree_size": cp.size, "origin": cp.origin, "entry": entry}),
                    );
                } else {
                    println!(
                        "✓ Proof valid: entry {} is in checkpoint {} of {}",
                        num(entry.index),
                        num(cp.size),
                        cp.origin
                    );
                    println!("  {} {} {}", entry.timestamp, entry.project, entry.action);
                }
                Ok(0)
            }
            Err(e) => {
                if s.json {
                    output::json(
                        &json!({"ok": true, "valid": false, "kind": "tlog-proof", "error": e.to_string()}),
                    );
                } else {
                    println!("✗ Proof invalid: {e}");
                }
                Ok(1)
            }
        };
    }
    let size = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    let pb = output::progress(s.json, size / 200, "verifying");
    let options = ExportVerifyOptions {
        full: a.full,
        policy: policy.as_deref(),
        anchors: &anchors,
    };
    let report = verify_export_with(&mut input, &refs, &options, &|n| pb.set_position(n))?;
    pb.finish_and_clear();
    if s.json {
        output::json(&serde_json::to_value(&report).map_err(|e| Error::backend(e.to_string()))?);
    } else if report.valid {
        println!(
            "✓ Export valid: {} entries ({}–{}) match checkpoint {} of {}",
            num(report.entries_checked),
            num(report.from),
            num(report.to),
            num(report.tree_size),
            report.origin
        );
        if report.from > 0 || report.to.saturating_add(1) < report.tree_size {
            println!(
                "  a partial export: it says nothing of entries outside {}–{}, and its range is \
                 not signed (--full requires all {} entries)",
                num(report.from),
                num(report.to),
                num(report.tree_size)
            );
        }
    } else {
        println!(
            "✗ Export invalid: {} violations",
            num(report.violation_count)
        );
        for v in report.violations.iter().take(20) {
            println!("  {}", output::violation(v));
        }
    }
    Ok(if report.valid { 0 } else { 1 })
}

/// The tlog-proof file for `index` against the latest checkpoint, and that checkpoint's size.
pub fn proof_text(ledger: &Ledger, index: u64) -> Result<(ProofFile, u64)> {
    let (file, cp) = ledger.proof_file(index)?;
    Ok((file, cp.size))
}

pub fn proof(s: &Settings, a: ProofArgs) -> Result<u8> {
    let ledger = open_ledger(s, 0)?;
    let (file, size) = proof_text(&ledger, a.index)?;
    let text = file.to_text();
    let path = a
        .output
        .unwrap_or_else(|| PathBuf::from(format!("entry-{}.tlog-proof", a.index)));
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(0);
    }
    write_file(&path, text.as_bytes())?;
    if s.json {
        output::json(
            &json!({"ok": true, "file": path, "index": a.index, "tree_size": size, "proof_hashes": file.proof.len()}),
        );
    } else {
        println!(
            "✓ Wrote inclusion proof of entry {} in checkpoint {} to {} ({} hashes)",
            num(a.index),
            num(size),
            path.display(),
            file.proof.len()
        );
    }
    Ok(0)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::invalid(format!("cannot write {}", path.display())).with_source(e))
}

pub fn status(s: &Settings) -> Result<u8> {
    let ledger = open_ledger(s, 0)?;
    let anchors = s.load_policy()?.map(|p| p.anchor_ids()).unwrap_or_default();
    let st = cortex_core::ledger::status::read_status(&ledger, &anchors)?;
    if s.json {
        let mut v = serde_json::to_value(&st)
            .map_err(|e| Error::backend(format!("cannot encode the status: {e}")))?;
        v["ok"] = json!(true);
        v["db"] = json!(s.db);
        output::json(&v);
    } else {
        println!(
            "Ledger {} ({} hasher, origin {})",
            s.db,
            st.hasher,
            st.origin.as_deref().unwrap_or("not set yet")
        );
        println!("  entries:    {}", num(st.size));
        match &st.latest_checkpoint {
            Some(c) => println!(
                "  checkpoint: {} entries at {}, root {}",
                num(c.size),
                c.created_at,
                c.root
            ),
            None => println!("  checkpoint: none yet"),
        }
        if let Some(c) = &st.last_verify {
            println!("  last verify: {} at {}", c.status, c.completed_at);
        }
        for a in &st.anchors {
            println!("  anchor:     {}", output::anchor_status(a));
        }
    }
    Ok(0)
}

/// Timer helper shared with the benchmark.
pub fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64().max(1e-9)
}
