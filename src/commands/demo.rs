//! `cortex demo`: the whole product on a fresh ledger, so a new user sees every part work: the
//! signed ledger, the agent memory on it (store, search, votes), verify catching a fact altered
//! behind the ledger's back and `memory rebuild` putting it right, forgetting a fact while every
//! proof stays valid, and offline proofs and exports.

use super::ledger::{open_store_and_ledger, proof_text};
use crate::config::{self, Settings};
use crate::output::num;
use clap::Args;
use cortex_core::ledger::export::{ExportFormat, verify_export, write_export_with};
use cortex_core::ledger::merkle::{verify_consistency, verify_inclusion};
use cortex_core::memory::fact::Author;
use cortex_core::{
    AgentMemory, Error, NewEntry, NewFact, Result, SearchQuery, Signer, Verifier, VerifyOptions,
    VerifyReport,
};
use cortex_ed25519::Ed25519Signer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for the demo ledger (default: a new directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many audit entries to append before the agent memory's facts.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
}

/// Audit entries: what agents did (tool calls), as an application would log them.
fn audit_entries(from: u64, n: u64) -> Vec<NewEntry> {
    const TOOLS: [&str; 4] = ["read_file", "run_tests", "open_pr", "deploy"];
    (from..from + n)
        .map(|i| {
            NewEntry::new(
                format!("project-{}", i % 7),
                "tool.call",
                format!(
                    r#"{{"agent":"agent-{}","tool":"{}","call":{i},"ok":true}}"#,
                    i % 5,
                    TOOLS[(i % 4) as usize]
                ),
            )
        })
        .collect()
}

/// What three agents learn about one project.
const FACTS: [(&str, &str, &[&str]); 5] = [
    (
        "alice",
        "the payments service deploys with blue-green switches",
        &["deploy"],
    ),
    (
        "bob",
        "the database migrations run before each deploy",
        &["deploy", "db"],
    ),
    (
        "alice",
        "on-call escalates to carol (phone 555-0142) after 10 minutes",
        &["people"],
    ),
    ("carol", "staging mirrors production data nightly", &["db"]),
    (
        "bob",
        "the deploy pipeline skips tests on fridays",
        &["deploy"],
    ),
];

fn verified(m: &AgentMemory, opts: &VerifyOptions) -> Result<VerifyReport> {
    m.verify(opts)
}

fn memory_summary(r: &VerifyReport) -> String {
    r.memory.as_ref().map_or(String::new(), |m| {
        format!(
            "; agent memory matches the ledger ({} facts, {} erased, {} votes, {} agents)",
            num(m.facts),
            num(m.facts_erased),
            num(m.votes),
            num(m.agents)
        )
    })
}

/// Rewrites one fact's text in the facts table through a separate connection, as someone with
/// write access to the database file could.
#[cfg(feature = "sqlite")]
fn alter_behind_the_ledger(db: &Path, id: u64, text: &str) -> Result<()> {
    let c = rusqlite::Connection::open(db).map_err(|e| Error::backend(e.to_string()))?;
    c.execute(
        "UPDATE facts SET content = ?1 WHERE id = ?2",
        rusqlite::params![text, id as i64],
    )
    .map_err(|e| Error::backend(e.to_string()))?;
    Ok(())
}

#[cfg(not(feature = "sqlite"))]
fn alter_behind_the_ledger(_: &Path, _: u64, _: &str) -> Result<()> {
    Err(Error::config(
        "the demo's tampering step needs the sqlite feature",
    ))
}

pub fn run(s: &Settings, a: DemoArgs) -> Result<u8> {
    if a.entries == 0 {
        return Err(Error::invalid("--entries must be at least 1"));
    }
    let dir = match a.dir {
        Some(d) => d,
        None => {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).map_err(|e| Error::backend(e.to_string()))?;
            std::env::temp_dir().join(format!("cortex-demo-{}", hex::encode(b)))
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::config(format!("cannot create {}", dir.display())).with_source(e))?;
    let db = dir.join("cortex.db");
    if db.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; pick an empty --dir",
            db.display()
        )));
    }
    let settings = Settings {
        db: db.display().to_string(),
        hasher: s.hasher,
        key: dir.join("ledger.skey"),
        key_explicit: false,
        json: false,
        agent: Some("demo".into()),
        home: dir.to_path_buf(),
        policy: None,
        signers: Vec::new(),
        anchors: Vec::new(),
    };
    let hasher = settings
        .hasher
        .unwrap_or(cortex_core::HashAlgorithm::Sha256);
    let signer = Ed25519Signer::generate(&config::default_origin(hasher)?)?;
    let vkey_path = signer.write_files(&settings.key, false)?;
    let (store, mut ledger) = open_store_and_ledger(&settings, 1000)?;
    ledger.add_signer(Arc::new(Ed25519Signer::from_skey(&signer.to_skey())?))?;
    let ledger = Arc::new(ledger);
    // Semantic search with the embedding model of the user's home, when one is installed.
    let model = crate::plugins::embedders::installed(&s.home);
    let memory = match &model {
        Some(e) => AgentMemory::new(store, ledger.clone())?.with_embedder(e.clone()),
        None => AgentMemory::new(store, ledger.clone())?,
    };
    println!(
        "✓ Created ledger {} ({} leaves, origin {})",
        db.display(),
        hasher.name(),
        signer.key_name()
    );

    let t = Instant::now();
    let mut checkpoints = 0;
    let batch = a.entries.div_ceil(10).max(1);
    let mut done = 0;
    while done < a.entries {
        let n = batch.min(a.entries - done);
        checkpoints += ledger.append(&audit_entries(done, n))?.checkpoint.is_some() as u64;
        done += n;
    }
    println!(
        "✓ Appended {} audit entries in {:.0} ms ({} entries/s)",
        num(done),
        t.elapsed().as_secs_f64() * 1000.0,
        num(super::ledger::rate(done, t) as u64),
    );

    // The agent memory: facts by three agents, each a ledger entry in the same transaction.
    let by = |agent: &str| memory.as_author(Author::new(Some(agent), "demo"));
    let mut ids = Vec::new();
    for (agent, text, tags) in FACTS {
        let mut f = NewFact::new("payments", text);
        f.tags = tags.iter().map(|t| t.to_string()).collect();
        ids.push(by(agent)?.store_fact(&f)?.facts[0].id);
    }
    println!(
        "✓ Stored {} facts by 3 agents (ids {}); the ledger holds only a salted commitment to each text",
        FACTS.len(),
        ids.iter().map(|i| num(*i)).collect::<Vec<_>>().join(", ")
    );
    let hits = memory.search(&SearchQuery::new("deploy database"))?;
    if let Some(h) = hits.first() {
        println!(
            "✓ Search \"deploy database\": {} hits, best #{} by {} (BM25 {:.2}): {}",
            hits.len(),
            h.fact.id,
            h.fact.author.as_deref().unwrap_or("?"),
            h.score,
            h.fact.content
        );
    }
    let question = "how do we ship a new release without downtime";
    if model.is_some() {
        let mut q = SearchQuery::new(question);
        q.mode = Some(cortex_core::memory::SearchMode::Semantic);
        if let Some(h) = memory.search(&q)?.first() {
            println!(
                "✓ Semantic search {question:?} (all-MiniLM-L6-v2, by meaning): best #{} \
                 (cosine {:.2}): {}",
                h.fact.id, h.score, h.fact.content
            );
        }
    } else {
        println!(
            "  (semantic search: install the model with `cortex models install` to see \
             {question:?} find the blue-green deploy fact by meaning)"
        );
    }
    let risky = ids[4];
    by("alice")?.vote(risky, "alice", -1, Some("we never skip tests"))?;
    by("carol")?.vote(risky, "carol", -1, Some("not true since march"))?;
    let v = by("bob")?.vote(ids[1], "bob", 1, Some("checked the pipeline"))?;
    let voted_down = memory.fact(risky)?;
    println!(
        "✓ Votes: #{risky} voted down by alice and carol (consensus {:+.2}); #{} confirmed by bob \
         ({:+.2})",
        voted_down.consensus, ids[1], v.consensus
    );
    let mut trusted = SearchQuery::new("deploy");
    trusted.min_consensus = Some(0.0);
    println!(
        "  search \"deploy\" with --min-consensus 0 keeps #{risky} out: {} of {} hits",
        memory.search(&trusted)?.len(),
        memory.search(&SearchQuery::new("deploy"))?.len()
    );
    let cp = ledger.checkpoint()?;
    checkpoints += cp.created as u64;
    let (old_size, old_root) = (cp.record.size, cp.record.root);

    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        record: true,
        ..Default::default()
    };
    let report = verified(&memory, &opts)?;
    if !report.valid {
        return Err(Error::integrity(format!(
            "fresh ledger failed verification: {:?}",
            report.violations
        )));
    }
    println!(
        "✓ Chain valid ({} transactions, {} checkpoints) in {:.1} ms{}",
        num(report.entries_checked),
        num(checkpoints.max(report.checkpoints_checked)),
        report.elapsed_ms,
        memory_summary(&report)
    );

    // Memory poisoning: someone edits a fact in the database file, behind the ledger's back.
    let poisoned = ids[1];
    alter_behind_the_ledger(&db, poisoned, "the database migrations can be skipped")?;
    println!(
        "✓ Altered fact #{poisoned} through a separate SQLite connection (UPDATE facts SET content = …)"
    );
    let bad = verified(&memory, &opts)?;
    match bad.first_violation() {
        Some(v) if !bad.valid => {
            let col = v.memory.as_ref().and_then(|m| m.column).unwrap_or("?");
            println!(
                "✓ verify caught it: {} at index {} (fact {poisoned}, column {col}): {}",
                v.kind.name(),
                v.index.map_or("?".into(), num),
                v.message
            );
        }
        _ => return Err(Error::integrity("an altered fact was not detected")),
    }
    let rebuilt = cortex_core::memory::audit::rebuild(&**memory.store(), ledger.hasher(), false)?;
    let again = verified(&memory, &opts)?;
    if !again.valid {
        return Err(Error::integrity("the memory rebuild did not restore it"));
    }
    println!(
        "✓ cortex memory rebuild recomputed the memory from the ledger ({} difference put right); \
         verify is clean again",
        num(rebuilt.change_count)
    );

    // The right to be forgotten: carol's phone number goes; every proof stays.
    let personal = ids[2];
    let leaf = ledger
        .entry(personal)?
        .entry
        .as_ref()
        .leaf_hash(ledger.hasher(), &mut Vec::new());
    let old_proof = ledger.inclusion_proof(personal, old_size)?;
    memory
        .as_author(Author::new(Some("alice"), "demo"))?
        .forget(personal, "carol asked to be forgotten")?;
    let new_cp = ledger.checkpoint()?.record;
    let h = ledger.hasher();
    verify_inclusion(h, personal, old_size, &leaf, &old_proof, &old_root)?;
    let new_proof = ledger.inclusion_proof(personal, new_cp.size)?;
    verify_inclusion(h, personal, new_cp.size, &leaf, &new_proof, &new_cp.root)?;
    let c = ledger.consistency_proof(old_size, new_cp.size)?;
    verify_consistency(h, old_size, new_cp.size, &old_root, &new_cp.root, &c)?;
    let found = memory.search(&SearchQuery::new("phone 555"))?.len();
    println!(
        "✓ Forgot fact #{personal} (fact.erase at entry {}): its content and salt are deleted, search \
         for it finds {found}, and its inclusion proofs in checkpoints {} and {} and the \
         consistency proof between them still verify",
        num(new_cp.size - 1),
        num(old_size),
        num(new_cp.size)
    );
    let after = verified(&memory, &opts)?;
    if !after.valid {
        return Err(Error::integrity(format!(
            "the ledger failed verification after an erasure: {:?}",
            after.violations
        )));
    }
    println!(
        "✓ Chain valid after the erasure ({} transactions){}",
        num(after.entries_checked),
        memory_summary(&after)
    );

    let verifier = signer.verifier();
    let keys: [&dyn Verifier; 1] = [&*verifier];
    let index = done / 2;
    let done = ledger.head()?.size;
    let (proof, size) = proof_text(&ledger, index)?;
    let proof_path = dir.join(format!("entry-{index}.tlog-proof"));
    std::fs::write(&proof_path, proof.to_text())?;
    let (entry, _) =
        cortex_core::ProofFile::parse(&std::fs::read_to_string(&proof_path)?)?.verify(&keys)?;
    println!(
        "✓ Inclusion proof of entry {} in checkpoint {} verified offline ({})",
        num(entry.index),
        num(size),
        proof_path.display()
    );

    let export_path = dir.join("export.json");
    let mut buf = Vec::new();
    let store = memory.store().clone();
    let openings =
        |e: &cortex_core::EntryRef<'_>| cortex_core::memory::audit::export_opening(&*store, e);
    write_export_with(
        &ledger,
        ExportFormat::Json,
        None,
        None,
        &mut buf,
        &|_| {},
        &openings,
    )?;
    std::fs::write(&export_path, &buf)?;
    let ext = verify_export(&mut &buf[..], &keys, &|_| {})?;
    if !ext.valid {
        return Err(Error::integrity(format!(
            "fresh export failed verification: {:?}",
            ext.violations
        )));
    }
    println!(
        "✓ Export of {} entries verified offline, with the content and salt of the {} facts not \
         erased beside their commitments ({})",
        num(ext.entries_checked),
        FACTS.len() - 1,
        export_path.display()
    );

    let text = String::from_utf8(buf).map_err(|e| Error::backend(e.to_string()))?;
    // Alter one audit entry inside the export (quotes are escaped in the JSON string).
    let k = (done - 1).min(17);
    let tampered = text.replacen(
        &format!("\\\"call\\\":{k},"),
        &format!("\\\"call\\\":{},", k + 1),
        1,
    );
    let bad = verify_export(&mut tampered.as_bytes(), &keys, &|_| {})?;
    match bad.violations.first() {
        Some(v) if !bad.valid => println!(
            "✓ Tampered export rejected: {}{}",
            v.kind.name(),
            v.index
                .map(|i| format!(" at index {i}"))
                .unwrap_or_default()
        ),
        _ => return Err(Error::integrity("a tampered export was not detected")),
    }
    // Alter a fact's content beside its entry: the entry is intact, its commitment is not met.
    let poisoned_text = text.replacen(
        FACTS[0].1,
        "the payments service deploys straight to prod",
        1,
    );
    let bad = verify_export(&mut poisoned_text.as_bytes(), &keys, &|_| {})?;
    match bad.violations.first() {
        Some(v) if !bad.valid => println!(
            "✓ Export with a fact's content altered rejected: {}{}",
            v.kind.name(),
            v.index
                .map(|i| format!(" at index {i}"))
                .unwrap_or_default()
        ),
        _ => {
            return Err(Error::integrity(
                "an altered content in an export was not detected",
            ));
        }
    }
    println!("\nTry it yourself:");
    println!("  cortex --db {} ledger status", db.display());
    println!(
        "  cortex --db {} search deploy --min-consensus 0",
        db.display()
    );
    println!("  cortex --db {} history --fact {}", db.display(), ids[2]);
    println!(
        "  cortex --db {} --key {} ledger verify",
        db.display(),
        settings.key.display()
    );
    println!(
        "  cortex ledger verify-external {} --vkey {}",
        export_path.display(),
        vkey_path.display()
    );
    Ok(0)
}
