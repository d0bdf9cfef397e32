//! `cortex store|search|recall|vote|deprecate|forget|history|memory rebuild`: the agent memory
//! from the command line. Input is checked before anything is opened, so refused input writes
//! nothing. Every write records its author: `--agent` / `CORTEX_AGENT`, on the surface `cli`.

use crate::commands::ledger::{attach_signer, open_store_and_ledger};
use crate::config::Settings;
use crate::output::{self, num};
use clap::{ArgGroup, Args};
use cortex_core::ledger::DEFAULT_CHECKPOINT_EVERY;
use cortex_core::memory::fact::{Author, EraseDetail, StoreRecord};
use cortex_core::memory::{
    AgentMemory, DEFAULT_RECALL_LIMIT, DEFAULT_TOP_K, RecallQuery, check_limit,
};
use cortex_core::{AppendOutcome, DynStore, Error, Fact, NewFact, Result, SearchQuery, Vote};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Project of the fact (for a stdin batch: the project of lines that name none).
    #[arg(long)]
    project: Option<String>,
    /// The fact's text. Omit it to read facts as JSON Lines from stdin, one transaction for all:
    /// {"project", "content", "fact_type", "tags": [..], "confidence", "source", "valid_from",
    /// "valid_until"}.
    #[arg(long, requires = "project")]
    content: Option<String>,
    /// Kind of fact [default: knowledge].
    #[arg(long = "type", value_name = "TYPE", requires = "content")]
    fact_type: Option<String>,
    /// Tags, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "content")]
    tags: Vec<String>,
    /// Confidence in 0..=1 [default: 1].
    #[arg(long, requires = "content", allow_negative_numbers = true)]
    confidence: Option<f64>,
    /// Where the fact comes from (URL, file, agent).
    #[arg(long, requires = "content")]
    source: Option<String>,
    /// Start of validity: RFC 3339 or YYYY-MM-DD [default: now].
    #[arg(long, requires = "content")]
    valid_from: Option<String>,
    /// End of validity (exclusive): RFC 3339 or YYYY-MM-DD [default: never].
    #[arg(long, requires = "content")]
    valid_until: Option<String>,
    /// Make a checkpoint whenever the ledger crosses a multiple of this many entries (0 = never).
    #[arg(long, env = "CORTEX_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// What to look for: words (keyword mode) or a question or statement (semantic, hybrid).
    query: String,
    /// keyword (BM25 over the words), semantic (closest in meaning, needs `cortex models
    /// install`) or hybrid (both, fused) [default: hybrid with a model installed, else keyword].
    #[arg(long)]
    mode: Option<String>,
    /// Only this project's facts.
    #[arg(long)]
    project: Option<String>,
    /// Only facts valid at this time: RFC 3339 or YYYY-MM-DD [default: now].
    #[arg(long)]
    as_of: Option<String>,
    /// Number of results (1 to 1000).
    #[arg(long, default_value_t = DEFAULT_TOP_K)]
    top_k: usize,
    /// Include deprecated facts.
    #[arg(long)]
    include_deprecated: bool,
    /// Only facts stored by this agent.
    #[arg(long)]
    author: Option<String>,
    /// Only facts whose consensus is at least this (-1 to 1), to keep out facts others voted down.
    #[arg(long, allow_negative_numbers = true)]
    min_consensus: Option<f64>,
}

#[derive(Args, Debug)]
pub struct RecallArgs {
    /// The project.
    #[arg(long)]
    project: String,
    /// Number of facts.
    #[arg(long, default_value_t = DEFAULT_RECALL_LIMIT)]
    limit: usize,
    /// Only facts stored by this agent.
    #[arg(long)]
    author: Option<String>,
    /// Only facts whose consensus is at least this (-1 to 1).
    #[arg(long, allow_negative_numbers = true)]
    min_consensus: Option<f64>,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Id of the fact.
    fact_id: u64,
    /// Why (required; recorded in the fact.erase entry, so it must not repeat the content).
    #[arg(long)]
    reason: String,
    /// Make a checkpoint whenever the ledger crosses a multiple of this many entries (0 = never).
    #[arg(long, env = "CORTEX_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
pub struct RebuildArgs {
    /// Print what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("direction").required(true).args(["up", "down"])))]
pub struct VoteArgs {
    /// Id of the fact (the ledger index of its fact.store entry).
    fact_id: u64,
    /// Who votes (and, as for every memory write, the author of the entry); re-voting by the
    /// same agent replaces its earlier vote on this fact.
    #[arg(long)]
    agent: String,
    /// Vote +1 (the fact is right).
    #[arg(long)]
    up: bool,
    /// Vote -1 (the fact is wrong).
    #[arg(long)]
    down: bool,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
    /// Make a checkpoint whenever the ledger crosses a multiple of this many entries (0 = never).
    #[arg(long, env = "CORTEX_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
pub struct DeprecateArgs {
    /// Id of the fact.
    fact_id: u64,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
    /// Make a checkpoint whenever the ledger crosses a multiple of this many entries (0 = never).
    #[arg(long, env = "CORTEX_CHECKPOINT_EVERY", default_value_t = DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("subject").required(true).args(["project", "fact"])))]
pub struct HistoryArgs {
    /// Every fact of this project, deprecated ones too, newest first.
    #[arg(long)]
    project: Option<String>,
    /// One fact: its votes and every ledger entry about it, in order.
    #[arg(long)]
    fact: Option<u64>,
    /// With --project: number of facts.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Opens the memory for reading (no signer, no checkpoints), with the embedding model if one
/// is installed.
fn open_reader(s: &Settings) -> Result<AgentMemory> {
    let (store, ledger) = open_store_and_ledger(s, 0)?;
    with_model(s, AgentMemory::new(store, Arc::new(ledger))?)
}

/// `memory` with the installed embedding model (facts stored get vectors; semantic and hybrid
/// search work), if there is one.
fn with_model(s: &Settings, memory: AgentMemory) -> Result<AgentMemory> {
    Ok(match crate::plugins::embedders::installed(&s.home) {
        Some(e) => memory.with_embedder(e),
        None => memory,
    })
}

/// Who this command writes as.
fn cli_author(s: &Settings) -> Result<Author> {
    let a = Author::new(s.agent.as_deref(), "cli");
    a.check()
        .map_err(|e| Error::invalid(format!("--agent / CORTEX_AGENT: {}", e.message())))?;
    Ok(a)
}

/// Opens the memory for writing as [`cli_author`]; `precheck` runs on the store before the
/// signing key is loaded (or created), so a refused operation leaves no key behind either.
fn open_writer(
    s: &Settings,
    checkpoint_every: u64,
    precheck: impl FnOnce(&DynStore) -> Result<()>,
) -> Result<AgentMemory> {
    let author = cli_author(s)?;
    let (store, mut ledger) = open_store_and_ledger(s, checkpoint_every)?;
    precheck(&store)?;
    if checkpoint_every > 0 {
        attach_signer(s, &mut ledger)?;
    }
    with_model(s, AgentMemory::new(store, Arc::new(ledger))?)?.as_author(author)
}

fn fact_exists(store: &DynStore, id: u64) -> Result<()> {
    match store.fact(id)? {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!(
            "no fact with id {id} (fact ids are the ledger indices printed by `cortex store`)"
        ))),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::backend(e.to_string()))
}

/// The first line of `text`, at most `max` characters.
fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if out.len() < line.len() || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

fn entries(n: u64) -> String {
    format!("{} {}", num(n), if n == 1 { "entry" } else { "entries" })
}

fn signed(x: f64) -> String {
    format!("{x:+.2}")
}

fn print_checkpoints(out: &AppendOutcome) {
    output::checkpoint_warning(out.checkpoint_error.as_deref());
    if let Some(c) = &out.checkpoint {
        println!(
            "✓ Checkpoint signed at {} entries (root {})",
            num(c.size),
            c.root.to_base64()
        );
    }
}

fn checkpoint_json(out: &AppendOutcome) -> Value {
    output::checkpoint_warning(out.checkpoint_error.as_deref());
    out.checkpoint.as_ref().map_or(
        Value::Null,
        |c| json!({"size": c.size, "root": c.root.to_base64()}),
    )
}

/// Facts from JSON Lines on stdin; errors name the line.
fn read_stdin_facts(default_project: Option<&str>) -> Result<Vec<NewFact>> {
    super::read_stdin_lines(
        "nothing to store: give --project and --content, or facts as JSON Lines on stdin",
        |n, line| {
            let bad = |e: &dyn std::fmt::Display| {
                Error::invalid(format!(
                    "stdin line {n}: expected a JSON fact {{\"project\": …, \"content\": …}}: {e}"
                ))
            };
            let mut v: Value = serde_json::from_str(line).map_err(|e| bad(&e))?;
            if let (Some(obj), Some(p)) = (v.as_object_mut(), default_project)
                && !obj.contains_key("project")
            {
                obj.insert("project".into(), Value::String(p.to_owned()));
            }
            let f: NewFact = serde_json::from_value(v).map_err(|e| bad(&e))?;
            f.check().map_err(|e| e.with_context("stdin line", n))?;
            Ok(f)
        },
    )
}

pub fn store(s: &Settings, a: StoreArgs) -> Result<u8> {
    let facts = match (a.project, a.content) {
        (Some(project), Some(content)) => {
            let f = NewFact {
                project,
                content,
                fact_type: a.fact_type,
                tags: a.tags,
                confidence: a.confidence,
                source: a.source,
                valid_from: a.valid_from,
                valid_until: a.valid_until,
            };
            f.check()?;
            vec![f]
        }
        (project, _) => read_stdin_facts(project.as_deref())?,
    };
    let memory = open_writer(s, a.checkpoint_every, |_| Ok(()))?;
    let out = memory.store_facts(&facts)?;
    let head = out.append.head;
    if s.json {
        let mut v = json!({
            "ok": true,
            "ids": out.facts.iter().map(|f| f.id).collect::<Vec<_>>(),
            "count": out.facts.len(),
            "size": head.size,
            "checkpoint": checkpoint_json(&out.append),
        });
        if let [f] = out.facts.as_slice() {
            v["fact"] = to_json(f)?;
        }
        output::json(&v);
    } else {
        match out.facts.as_slice() {
            [f] => println!(
                "✓ Stored fact {} in {} (ledger now holds {})",
                num(f.id),
                f.project,
                entries(head.size)
            ),
            fs => println!(
                "✓ Stored {} facts ({}–{}; ledger now holds {})",
                num(fs.len() as u64),
                num(out.append.first_index),
                num(head.size - 1),
                entries(head.size)
            ),
        }
        print_checkpoints(&out.append);
    }
    Ok(0)
}

/// "by alice via cli", "via mcp-http", or "" for facts stored before authors were recorded.
fn by_line(agent: Option<&str>, surface: Option<&str>) -> String {
    match (agent, surface) {
        (Some(a), Some(s)) => format!("by {a} via {s}"),
        (Some(a), None) => format!("by {a}"),
        (None, Some(s)) => format!("via {s}"),
        (None, None) => String::new(),
    }
}

fn fact_line(f: &Fact, lead: &str) {
    let mut tags = String::new();
    if !f.tags.is_empty() {
        tags = format!(" · tags {}", f.tags.join(", "));
    }
    let by = by_line(f.author.as_deref(), f.surface.as_deref());
    let by = if by.is_empty() {
        by
    } else {
        format!(" · {by}")
    };
    println!(
        "  [{}] {lead}{} · {} · confidence {} · consensus {}{by}{tags}",
        f.id,
        f.project,
        f.fact_type,
        f.confidence,
        signed(f.consensus)
    );
    match &f.erased_at {
        Some(at) => println!("       (erased {at}: its content is gone)"),
        None => println!("       {}", short(&f.content, 100)),
    }
    if let Some(d) = &f.deprecated_at {
        println!(
            "       deprecated {d}{}",
            f.deprecation_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
}

pub fn search(s: &Settings, a: SearchArgs) -> Result<u8> {
    let q = SearchQuery {
        query: a.query,
        mode: a.mode.as_deref().map(str::parse).transpose()?,
        project: a.project,
        as_of: a.as_of,
        top_k: Some(a.top_k),
        include_deprecated: a.include_deprecated,
        author: a.author,
        min_consensus: a.min_consensus,
    };
    let resolved = q.resolve()?;
    let memory = open_reader(s)?;
    let mode = q.mode.unwrap_or(memory.mode());
    let hits = memory.search(&q)?;
    if s.json {
        output::json(&json!({
            "ok": true, "query": q.query, "mode": mode, "terms": resolved.terms,
            "as_of": resolved.as_of, "count": hits.len(), "results": to_json(&hits)?,
        }));
        return Ok(0);
    }
    if hits.is_empty() {
        println!("✓ No facts match {:?}", q.query);
        return Ok(0);
    }
    println!(
        "✓ {} {} match {:?} ({} search)",
        num(hits.len() as u64),
        if hits.len() == 1 { "fact" } else { "facts" },
        q.query,
        mode.as_str()
    );
    for h in &hits {
        fact_line(&h.fact, &format!("score {:.3} · ", h.score));
    }
    Ok(0)
}

pub fn recall(s: &Settings, a: RecallArgs) -> Result<u8> {
    let q = RecallQuery {
        project: a.project.clone(),
        limit: Some(a.limit),
        author: a.author,
        min_consensus: a.min_consensus,
    };
    q.resolve()?;
    let facts = open_reader(s)?.recall(&q)?;
    if s.json {
        output::json(&json!({
            "ok": true, "project": a.project, "count": facts.len(), "facts": to_json(&facts)?,
        }));
        return Ok(0);
    }
    if facts.is_empty() {
        println!("✓ No current facts in {}", a.project);
        return Ok(0);
    }
    println!(
        "✓ {} current {} in {} (by consensus, then newest)",
        num(facts.len() as u64),
        if facts.len() == 1 { "fact" } else { "facts" },
        a.project
    );
    for f in &facts {
        fact_line(f, "");
    }
    Ok(0)
}

pub fn vote(s: &Settings, a: VoteArgs) -> Result<u8> {
    let v: i8 = if a.up { 1 } else { -1 };
    cortex_core::memory::fact::check_agent(&a.agent)?;
    cortex_core::memory::fact::normalize_reason(a.reason.as_deref())?;
    let memory = open_writer(s, a.checkpoint_every, |l| fact_exists(l, a.fact_id))?;
    let out = memory.vote(a.fact_id, &a.agent, v, a.reason.as_deref())?;
    if s.json {
        output::json(&json!({
            "ok": true, "fact_id": a.fact_id, "agent": a.agent, "vote": v,
            "entry_index": out.append.first_index, "consensus": out.consensus,
            "weight": out.vote.weight, "agreed": out.vote.agreed,
            "replaced": out.replaced.as_ref().map(|r| r.vote),
            "reputation": to_json(&out.agent)?, "size": out.append.head.size,
            "checkpoint": checkpoint_json(&out.append),
        }));
    } else {
        println!(
            "✓ Vote {} by {} on fact {} recorded (ledger entry {}){}",
            if v > 0 { "+1" } else { "-1" },
            a.agent,
            num(a.fact_id),
            num(out.append.first_index),
            match &out.replaced {
                Some(r) if r.vote != v => format!(", replacing its earlier {:+}", r.vote),
                Some(_) => ", replacing its earlier vote".to_owned(),
                None => String::new(),
            }
        );
        println!(
            "  consensus now {}; {}'s reputation {:.2} ({} judged, {} agreed)",
            signed(out.consensus),
            a.agent,
            out.agent.reputation,
            num(out.agent.judged),
            num(out.agent.agreed)
        );
        print_checkpoints(&out.append);
    }
    Ok(0)
}

pub fn deprecate(s: &Settings, a: DeprecateArgs) -> Result<u8> {
    cortex_core::memory::fact::normalize_reason(a.reason.as_deref())?;
    let memory = open_writer(s, a.checkpoint_every, |l| {
        fact_exists(l, a.fact_id)?;
        match l.fact(a.fact_id)? {
            Some(f) if f.is_deprecated() => Err(Error::new(
                cortex_core::ErrorKind::Conflict,
                format!(
                    "fact {} was already deprecated at {}",
                    a.fact_id,
                    f.deprecated_at.unwrap_or_default()
                ),
            )),
            _ => Ok(()),
        }
    })?;
    let out = memory.deprecate(a.fact_id, a.reason.as_deref())?;
    if s.json {
        output::json(&json!({
            "ok": true, "fact": to_json(&out.fact)?, "entry_index": out.append.first_index,
            "size": out.append.head.size, "checkpoint": checkpoint_json(&out.append),
        }));
    } else {
        println!(
            "✓ Deprecated fact {} in {} (ledger entry {})",
            num(a.fact_id),
            out.fact.project,
            num(out.append.first_index)
        );
        print_checkpoints(&out.append);
    }
    Ok(0)
}

fn vote_text(v: &Vote) -> String {
    format!(
        "{} {:+} (weight {:.2}{}){}",
        v.agent,
        v.vote,
        v.weight,
        match v.agreed {
            Some(true) => ", agreed",
            Some(false) => ", disagreed",
            None => "",
        },
        v.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )
}

pub fn history(s: &Settings, a: HistoryArgs) -> Result<u8> {
    if let Some(id) = a.fact {
        let h = open_reader(s)?.fact_history(id)?;
        if s.json {
            output::json(&json!({"ok": true, "history": to_json(&h)?}));
            return Ok(0);
        }
        let f = &h.fact;
        println!(
            "Fact {} in {} ({}, confidence {}, consensus {})",
            num(f.id),
            f.project,
            f.fact_type,
            f.confidence,
            signed(f.consensus)
        );
        if f.is_erased() {
            println!("  (content erased)");
        } else {
            println!("  {}", short(&f.content, 200));
        }
        println!(
            "  valid from {}{}; stored {}",
            f.valid_from,
            f.valid_until
                .as_deref()
                .map(|u| format!(" until {u}"))
                .unwrap_or_default(),
            f.created_at
        );
        let by = by_line(f.author.as_deref(), f.surface.as_deref());
        if !by.is_empty() {
            println!("  stored {by}");
        }
        if let Some(at) = &f.erased_at {
            println!("  erased {at}: its content, tags and source are gone");
        }
        if let Some(d) = &f.deprecated_at {
            println!(
                "  deprecated {d}{}",
                f.deprecation_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
        if !h.votes.is_empty() {
            println!("  votes:");
            for v in &h.votes {
                println!("    {}", vote_text(v));
            }
        }
        println!("  ledger entries:");
        for e in &h.entries {
            println!(
                "    {:>8}  {}  {:<15} {}",
                e.index,
                e.timestamp,
                e.action,
                entry_summary(e)
            );
        }
        return Ok(0);
    }
    let project = a.project.unwrap_or_default();
    check_limit(a.limit)?;
    let facts = open_reader(s)?.project_history(&project, a.limit)?;
    if s.json {
        output::json(&json!({
            "ok": true, "project": project, "count": facts.len(), "facts": to_json(&facts)?,
        }));
        return Ok(0);
    }
    println!(
        "Project {project}: {} {} (deprecated ones included, newest first)",
        num(facts.len() as u64),
        if facts.len() == 1 { "fact" } else { "facts" }
    );
    for f in &facts {
        fact_line(f, "");
    }
    Ok(0)
}

/// One line about a memory entry for `history`: who wrote it and what it says (a `fact.store`
/// entry holds only a commitment; its content is shown above, if not erased).
fn entry_summary(e: &cortex_core::Entry) -> String {
    let v: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let author = v.get("author");
    let by = by_line(
        author.and_then(|a| a.get("agent")).and_then(Value::as_str),
        author
            .and_then(|a| a.get("surface"))
            .and_then(Value::as_str),
    );
    let what = match e.action.as_str() {
        "fact.store" => match StoreRecord::parse(&e.detail) {
            // The detail is as stored (perhaps tampered): never slice it blindly.
            Ok(StoreRecord::Sealed(d)) => format!("commitment {}", short(&d.commitment, 16)),
            Ok(StoreRecord::Plain(_)) => {
                "content in the entry (stored before erasure existed)".into()
            }
            Err(_) => short(&e.detail, 80),
        },
        "fact.vote" => format!(
            "{} {:+}{}",
            v["agent"].as_str().unwrap_or("?"),
            v["vote"].as_i64().unwrap_or(0),
            v["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        "fact.deprecate" | "fact.erase" => v["reason"]
            .as_str()
            .map(|r| format!("reason: {r}"))
            .unwrap_or_default(),
        _ => short(&e.detail, 80),
    };
    match (by.is_empty(), what.is_empty()) {
        (true, _) => what,
        (false, true) => by,
        (false, false) => format!("{by} · {what}"),
    }
}

pub fn forget(s: &Settings, a: ForgetArgs) -> Result<u8> {
    if a.reason.trim().is_empty() {
        return Err(Error::invalid("--reason must not be empty"));
    }
    cortex_core::memory::fact::normalize_reason(Some(&a.reason))?;
    let memory = open_writer(s, a.checkpoint_every, |l| fact_exists(l, a.fact_id))?;
    let out = memory.forget(a.fact_id, &a.reason)?;
    let detail: Option<EraseDetail> = memory
        .ledger()
        .entry(out.append.first_index)
        .ok()
        .and_then(|e| serde_json::from_str(&e.entry.detail).ok());
    if s.json {
        output::json(&json!({
            "ok": true, "fact": to_json(&out.fact)?, "entry_index": out.append.first_index,
            "erase": to_json(&detail)?, "size": out.append.head.size,
            "checkpoint": checkpoint_json(&out.append),
        }));
    } else {
        println!(
            "✓ Forgot fact {} in {}: its content, tags, source and salt are deleted (fact.erase at \
             ledger entry {})",
            num(a.fact_id),
            out.fact.project,
            num(out.append.first_index)
        );
        println!(
            "  entry {} keeps only its commitment, so every proof and checkpoint stays valid",
            num(a.fact_id)
        );
        print_checkpoints(&out.append);
    }
    Ok(0)
}

pub fn rebuild(s: &Settings, a: RebuildArgs) -> Result<u8> {
    let (store, ledger) = open_store_and_ledger(s, 0)?;
    let r = cortex_core::memory::audit::rebuild(&*store, ledger.hasher(), a.dry_run)?;
    // The vectors are a derived index too: every fact without one gets it (with a model).
    let embedded = if a.dry_run {
        0
    } else {
        let memory = with_model(s, AgentMemory::new(store, Arc::new(ledger))?)?;
        let mut bar = None;
        let n = memory.embed_missing(&mut |done, total| {
            bar.get_or_insert_with(|| output::progress_over(s.json, total, 256, "embedding facts"))
                .set_position(done);
        })?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        n
    };
    if s.json {
        output::json(&json!({"ok": true, "rebuild": to_json(&r)?, "embedded": embedded}));
        return Ok(0);
    }
    if embedded > 0 {
        println!("✓ {} facts embedded for semantic search", num(embedded));
    }
    let what = format!(
        "{} facts ({} erased), {} votes, {} agents from {} ledger entries",
        num(r.facts),
        num(r.facts_erased),
        num(r.votes),
        num(r.agents),
        num(r.tree_size)
    );
    match (a.dry_run, r.change_count) {
        (true, 0) => {
            println!("✓ The memory matches the ledger: a rebuild would change nothing ({what})")
        }
        (true, n) => println!(
            "Dry run: a rebuild would change {} things ({what}); nothing written",
            num(n)
        ),
        (false, 0) => println!("✓ Memory rebuilt: {what}; nothing had changed"),
        (false, n) => println!("✓ Memory rebuilt: {what}; {} differences put right", num(n)),
    }
    for c in r.changes.iter().take(20) {
        println!("  {}", output::violation(c));
    }
    if r.change_count > 20 {
        println!(
            "  … and {} more (use --json for the list)",
            num(r.change_count - 20)
        );
    }
    Ok(0)
}
