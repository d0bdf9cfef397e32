//! The agent memory over MCP: `cortex_store` (one fact or a batch), `cortex_search`,
//! `cortex_recall`, `cortex_vote`, `cortex_deprecate`, `cortex_forget`, `cortex_history`.
//! Bodies are thin: the rules (validation, consensus, erasure, atomic ledger entries) live in
//! [`AgentMemory`]. Every write records its author: the client's declared name and the
//! transport ([`Caller`]).
//!
//! Search and recall results are cached by the server ([`crate::cache`]) under their normalized
//! arguments and the memory version; the resource template `cortex://projects/{project}/facts`
//! and the prompt `cortex_project_briefing` read a project's recalled facts.
//!
//! Writes (store, vote, deprecate, forget) end in a durable commit (an fsync) and run on their own
//! thread ([`Exec::Thread`]); reads (search, recall, history) take microseconds and run inline.

use crate::McpServerBuilder;
use crate::cache::CacheKey;
use crate::registry::{Caller, Exec, Prompt, PromptArgument, ResourceTemplate, Tool};
use cortex_core::access::Role;
use cortex_core::error::{Error, Result};
use cortex_core::memory::fact::{Author, Fact, NewFact, parse_timestamp};
use cortex_core::memory::{
    AgentMemory, DEFAULT_RECALL_LIMIT, DEFAULT_TOP_K, RecallQuery, SearchMode, SearchQuery,
    check_limit,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// URI template of a project's current facts.
pub const PROJECT_FACTS_TEMPLATE: &str = "cortex://projects/{project}/facts";
/// Facts read by the project resource and the briefing prompt.
pub const BRIEFING_FACTS: usize = 50;

/// Adds the memory tools, the query cache's keys and version, the project facts resource
/// template, the project briefing prompt and a database health check.
pub fn register(builder: McpServerBuilder, memory: Arc<AgentMemory>) -> McpServerBuilder {
    let builder = register_tools(builder, memory.clone());
    let default_mode = memory.mode();
    let (m1, m2, m3, m4) = (memory.clone(), memory.clone(), memory.clone(), memory);
    builder
        .memory_version(Arc::new(move || m1.version()))
        .health_check(Arc::new(move || {
            m2.version()
                .map(|_| ())
                .map_err(|e| format!("database unreachable: {e}"))
        }))
        .cached(
            "cortex_search",
            Arc::new(move |args: &Map<String, Value>| search_key(args, default_mode)),
        )
        .cached("cortex_recall", Arc::new(recall_key))
        .resource_template(ResourceTemplate {
            uri_template: PROJECT_FACTS_TEMPLATE.into(),
            name: "project-facts".into(),
            title: "A project's facts".into(),
            description: format!(
                "The current facts of one project (valid now, not deprecated), by consensus \
                 then recency, at most {BRIEFING_FACTS}, as JSON."
            ),
            mime_type: "application/json".into(),
            read: Arc::new(move |vars| {
                let project = vars.get("project").map(String::as_str).unwrap_or("");
                let facts = m3.recall(&RecallQuery {
                    limit: Some(BRIEFING_FACTS),
                    ..RecallQuery::new(project)
                })?;
                Ok(json!({"project": project, "facts": to_value(&facts)?,
                    "count": facts.len()})
                .to_string())
            }),
        })
        .prompt(Prompt {
            name: "cortex_project_briefing".into(),
            title: "Project briefing".into(),
            description: "A briefing on one project built from its recalled facts (valid now, \
                          by consensus then recency), for an agent starting work on it."
                .into(),
            arguments: vec![PromptArgument {
                name: "project".into(),
                description: "The project to brief on.".into(),
                required: true,
            }],
            get: Arc::new(move |args| {
                let project = args.get("project").and_then(Value::as_str).unwrap_or("");
                if project.trim().is_empty() {
                    return Err(Error::invalid("project must not be empty"));
                }
                let facts = m4.recall(&RecallQuery {
                    limit: Some(BRIEFING_FACTS),
                    ..RecallQuery::new(project)
                })?;
                Ok(vec![("user", briefing(project, &facts))])
            }),
        })
}

/// The text of `cortex_project_briefing`.
fn briefing(project: &str, facts: &[Fact]) -> String {
    use std::fmt::Write as _;
    let mut text = format!("You are starting work on the project \"{project}\". ");
    if facts.is_empty() {
        text.push_str(
            "The agent memory holds no current facts about it yet. Record what you learn with \
             cortex_store.",
        );
        return text;
    }
    let _ = writeln!(
        text,
        "The agent memory holds these {} current facts about it, by consensus then recency:\n",
        facts.len()
    );
    for f in facts {
        let tags = if f.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", f.tags.join(", "))
        };
        let by = f
            .author
            .as_deref()
            .map_or(String::new(), |a| format!(", by {a}"));
        let _ = writeln!(
            text,
            "- #{} ({}, confidence {:.2}, consensus {:+.2}{by}){tags}: {}",
            f.id, f.fact_type, f.confidence, f.consensus, f.content
        );
    }
    text.push_str(
        "\nTreat low-consensus facts with care. Use cortex_search for more, cortex_vote to \
         confirm or dispute a fact (cite its #id), cortex_deprecate to retire one that is no \
         longer true and cortex_store to record new ones.",
    );
    text
}

/// Normalized key of a search: its words as the ranking sees them, the resolved project,
/// `top_k`, canonical `as_of` (or "now"), the deprecated flag and the author and consensus
/// filters. `None` (not cached) if the
/// query is invalid: the tool reports the error.
fn search_key(args: &Map<String, Value>, default_mode: SearchMode) -> Option<CacheKey> {
    let q: SearchQuery = serde_json::from_value(Value::Object(args.clone())).ok()?;
    let terms = cortex_core::memory::bm25::query_terms(&q.query);
    if terms.is_empty() {
        return None;
    }
    let project = q.project.filter(|p| !p.trim().is_empty());
    let as_of = match &q.as_of {
        Some(t) => Some(parse_timestamp("as_of", t).ok()?),
        None => None,
    };
    // Keyword ranking sees only the terms; a semantic one sees the whole text.
    let mode = q.mode.unwrap_or(default_mode);
    let text = (mode != SearchMode::Keyword).then_some(&q.query);
    let key = json!([
        terms,
        mode,
        text,
        project,
        q.top_k.unwrap_or(DEFAULT_TOP_K),
        as_of,
        q.include_deprecated,
        q.author.filter(|a| !a.trim().is_empty()),
        q.min_consensus
    ])
    .to_string();
    Some(CacheKey {
        key,
        now_relative: as_of.is_none(),
    })
}

/// Key of a recall: project, limit and filters (recall is always "as of now").
fn recall_key(args: &Map<String, Value>) -> Option<CacheKey> {
    let q: RecallQuery = serde_json::from_value(Value::Object(args.clone())).ok()?;
    q.resolve().ok()?;
    Some(CacheKey {
        key: json!([
            q.project,
            q.limit.unwrap_or(DEFAULT_RECALL_LIMIT),
            q.author.filter(|a| !a.trim().is_empty()),
            q.min_consensus
        ])
        .to_string(),
        now_relative: true,
    })
}

fn register_tools(builder: McpServerBuilder, memory: Arc<AgentMemory>) -> McpServerBuilder {
    let m = |f: fn(&AgentMemory, &Map<String, Value>, &Caller) -> Result<Value>| {
        let memory = memory.clone();
        Arc::new(move |args: Map<String, Value>, caller: &Caller| {
            let writer = memory.as_author(author_of(caller)).map_err(|e| {
                Error::invalid(format!(
                    "the client's declared name (clientInfo.name) cannot be recorded as the \
                     author: {}",
                    e.message()
                ))
            })?;
            f(&writer, &args, caller)
        })
    };
    let tool = |name: &str, title: &str, description: &str, input: Value, output: Value| Tool {
        name: name.into(),
        title: title.into(),
        description: description.into(),
        input_schema: input,
        output_schema: output,
        read_only: true,
        idempotent: true,
        exec: Exec::Inline,
        access: Role::Read,
        run: Arc::new(|_, _| Err(Error::invalid("unset"))),
    };
    let facts_out = json!({"type": "object", "required": ["facts", "count"], "properties": {
        "facts": {"type": "array", "items": fact_schema()}, "count": {"type": "integer"}}});
    builder
        .tool(Tool {
            read_only: false,
            idempotent: false,
            exec: Exec::Thread,
            access: Role::Write,
            run: m(store),
            ..tool(
                "cortex_store",
                "Store facts",
                "Stores one fact (project, content and optional fields) or a batch (`facts`: a \
                 list of such objects) in the agent memory. Each fact becomes a ledger entry in \
                 the same atomic transaction; a bad fact in a batch stores nothing.",
                store_input(),
                json!({"type": "object", "required": ["facts", "count", "first_index"],
                    "properties": {"facts": {"type": "array", "items": fact_schema()},
                        "count": {"type": "integer"}, "first_index": {"type": "integer"},
                        "ledger_size": {"type": "integer"}}}),
            )
        })
        .tool(Tool {
            run: m(search),
            ..tool(
                "cortex_search",
                "Search facts",
                "Ranked search over facts: by words (keyword, BM25), by meaning (semantic, with \
                 the server's embedding model) or both fused (hybrid, the default when the \
                 server has a model); optionally within one project, as of a point in time, by \
                 one author, or above a minimum consensus (to keep out facts other agents voted \
                 down).",
                json!({"type": "object", "additionalProperties": false, "required": ["query"],
                    "properties": {
                        "query": {"type": "string", "minLength": 1},
                        "mode": {"type": "string", "enum": ["keyword", "semantic", "hybrid"],
                            "description": "default hybrid when the server has an embedding model, else keyword"},
                        "project": {"type": "string"},
                        "as_of": {"type": "string", "description": "RFC 3339 time or YYYY-MM-DD; default now"},
                        "top_k": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "include_deprecated": {"type": "boolean"},
                        "author": {"type": "string", "description": "only facts stored by this agent"},
                        "min_consensus": {"type": "number", "minimum": -1, "maximum": 1,
                            "description": "only facts whose consensus is at least this"}}}),
                json!({"type": "object", "required": ["hits", "count"], "properties": {
                    "hits": {"type": "array", "items": {"type": "object",
                        "required": ["fact", "score"],
                        "properties": {"fact": fact_schema(), "score": {"type": "number"}}}},
                    "count": {"type": "integer"}}}),
            )
        })
        .tool(Tool {
            run: m(recall),
            ..tool(
                "cortex_recall",
                "Recall a project",
                "The facts of one project that are valid now, by consensus then recency, \
                 optionally only one author's or those above a minimum consensus.",
                json!({"type": "object", "additionalProperties": false, "required": ["project"],
                    "properties": {"project": {"type": "string", "minLength": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
                        "author": {"type": "string", "description": "only facts stored by this agent"},
                        "min_consensus": {"type": "number", "minimum": -1, "maximum": 1,
                            "description": "only facts whose consensus is at least this"}}}),
                facts_out.clone(),
            )
        })
        .tool(Tool {
            read_only: false,
            idempotent: false,
            exec: Exec::Thread,
            access: Role::Write,
            run: m(vote),
            ..tool(
                "cortex_vote",
                "Vote on a fact",
                "An agent votes +1 (agree) or -1 (disagree) on a fact, with an optional reason. \
                 Returns the fact's reputation-weighted consensus and the agent's reputation. \
                 Called with an API key, the voter is the key's identity (an `agent` argument \
                 must then be that identity or absent); without one, `agent` is required.",
                json!({"type": "object", "additionalProperties": false,
                    "required": ["fact_id", "vote"], "properties": {
                        "fact_id": {"type": "integer", "minimum": 0},
                        "agent": {"type": "string", "minLength": 1,
                            "description": "the voting agent; with an API key, its identity"},
                        "vote": {"type": "integer", "enum": [1, -1]},
                        "reason": {"type": "string"}}}),
                json!({"type": "object", "required": ["vote", "consensus", "agent"],
                    "properties": {"vote": {"type": "object"}, "consensus": {"type": "number"},
                        "agent": {"type": "object"}, "replaced": {"type": ["object", "null"]}}}),
            )
        })
        .tool(Tool {
            read_only: false,
            exec: Exec::Thread,
            access: Role::Write,
            run: m(deprecate),
            ..tool(
                "cortex_deprecate",
                "Deprecate a fact",
                "Marks a fact deprecated (it stays in history and in the ledger), with an \
                 optional reason.",
                json!({"type": "object", "additionalProperties": false, "required": ["fact_id"],
                    "properties": {"fact_id": {"type": "integer", "minimum": 0},
                        "reason": {"type": "string"}}}),
                json!({"type": "object", "required": ["fact"], "properties": {
                    "fact": fact_schema(), "entry_index": {"type": "integer"}}}),
            )
        })
        .tool(Tool {
            read_only: false,
            exec: Exec::Thread,
            access: Role::Admin,
            run: m(forget),
            ..tool(
                "cortex_forget",
                "Forget a fact",
                "Erases a fact's content, tags and source for good (the right to be \
                 forgotten) and records a fact.erase entry with the reason. The ledger only \
                 ever held a salted commitment to them, so every proof and checkpoint stays \
                 valid; search, recall and history never show the content again.",
                json!({"type": "object", "additionalProperties": false,
                    "required": ["fact_id", "reason"], "properties": {
                        "fact_id": {"type": "integer", "minimum": 0},
                        "reason": {"type": "string", "minLength": 1}}}),
                json!({"type": "object", "required": ["fact", "entry_index"], "properties": {
                    "fact": fact_schema(), "entry_index": {"type": "integer"}}}),
            )
        })
        .tool(Tool {
            run: m(history),
            ..tool(
                "cortex_history",
                "Fact or project history",
                "With fact_id: the fact, its current votes and its ledger entries in order. \
                 With project: the project's facts, deprecated ones included, newest first.",
                json!({"type": "object", "additionalProperties": false, "properties": {
                    "fact_id": {"type": "integer", "minimum": 0},
                    "project": {"type": "string", "minLength": 1},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100000}}}),
                json!({"type": "object", "properties": {
                    "fact": fact_schema(), "votes": {"type": "array"},
                    "entries": {"type": "array"},
                    "facts": {"type": "array", "items": fact_schema()},
                    "count": {"type": "integer"}}}),
            )
        })
}

fn fact_input_properties() -> Map<String, Value> {
    json!({
        "project": {"type": "string", "minLength": 1},
        "content": {"type": "string", "minLength": 1},
        "fact_type": {"type": "string", "description": "knowledge (default), decision, …"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "source": {"type": "string"},
        "valid_from": {"type": "string", "description": "RFC 3339 time or YYYY-MM-DD"},
        "valid_until": {"type": "string", "description": "RFC 3339 time or YYYY-MM-DD (exclusive)"}
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn store_input() -> Value {
    let one = fact_input_properties();
    let mut props = one.clone();
    props.insert(
        "facts".into(),
        json!({"type": "array", "minItems": 1, "maxItems": 100000, "items": {
            "type": "object", "additionalProperties": false, "required": ["project", "content"],
            "properties": one}}),
    );
    json!({"type": "object", "additionalProperties": false, "properties": props})
}

fn fact_schema() -> Value {
    json!({"type": "object", "required": ["id", "project", "content", "fact_type", "tags",
        "confidence", "valid_from", "created_at", "consensus"], "properties": {
        "id": {"type": "integer"}, "project": {"type": "string"}, "content": {"type": "string"},
        "fact_type": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "confidence": {"type": "number"}, "source": {"type": ["string", "null"]},
        "valid_from": {"type": "string"}, "valid_until": {"type": ["string", "null"]},
        "created_at": {"type": "string"}, "deprecated_at": {"type": ["string", "null"]},
        "deprecation_reason": {"type": ["string", "null"]}, "consensus": {"type": "number"},
        "author": {"type": ["string", "null"], "description": "the agent that stored it"},
        "surface": {"type": ["string", "null"], "description": "cli, mcp-stdio, mcp-http, …"},
        "erased_at": {"type": ["string", "null"],
            "description": "set when forgotten: content, tags and source are gone"}}})
}

/// The author a call writes as.
fn author_of(caller: &Caller) -> Author {
    Author::new(caller.agent(), caller.surface.clone())
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::backend(format!("cannot encode a result: {e}")))
}

fn from_value<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::invalid(format!("{what}: {e}")))
}

fn facts_result(facts: &[Fact]) -> Result<Value> {
    Ok(json!({"facts": to_value(&facts)?, "count": facts.len()}))
}

fn store(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    let facts: Vec<NewFact> = match args.get("facts") {
        Some(list) => {
            if args.len() > 1 {
                return Err(Error::invalid(
                    "give either one fact (project, content, …) or `facts`, not both",
                ));
            }
            from_value("facts", list.clone())?
        }
        None => vec![from_value("fact", Value::Object(args.clone()))?],
    };
    let stored = memory.store_facts(&facts)?;
    Ok(json!({
        "facts": to_value(&stored.facts)?,
        "count": stored.facts.len(),
        "first_index": stored.append.first_index,
        "ledger_size": stored.append.head.size,
    }))
}

fn search(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    let q: SearchQuery = from_value("search", Value::Object(args.clone()))?;
    let hits = memory.search(&q)?;
    Ok(json!({"hits": to_value(&hits)?, "count": hits.len()}))
}

fn forget(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    let id = fact_id(args).ok_or_else(|| Error::invalid("fact_id is required"))?;
    let reason = args.get("reason").and_then(Value::as_str).unwrap_or("");
    let f = memory.forget(id, reason)?;
    Ok(json!({"fact": to_value(&f.fact)?, "entry_index": f.append.first_index}))
}

fn limit(args: &Map<String, Value>) -> Result<usize> {
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_RECALL_LIMIT, |l| l as usize);
    check_limit(limit)?;
    Ok(limit)
}

fn recall(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    let q: RecallQuery = from_value("recall", Value::Object(args.clone()))?;
    facts_result(&memory.recall(&q)?)
}

fn fact_id(args: &Map<String, Value>) -> Option<u64> {
    args.get("fact_id").and_then(Value::as_u64)
}

fn vote(memory: &AgentMemory, args: &Map<String, Value>, caller: &Caller) -> Result<Value> {
    let id = fact_id(args).ok_or_else(|| Error::invalid("fact_id is required"))?;
    let named = args.get("agent").and_then(Value::as_str);
    let agent = match (&caller.principal, named) {
        (Some(p), Some(a)) if a != p.identity => {
            return Err(Error::forbidden(format!(
                "the API key {} votes as {:?}; it cannot vote as {a:?}",
                p.key_id, p.identity
            )));
        }
        (Some(p), _) => p.identity.as_str(),
        (None, Some(a)) => a,
        (None, None) => {
            return Err(Error::invalid(
                "agent is required: the voting agent (with an API key, the key's identity votes)",
            ));
        }
    };
    let v = args.get("vote").and_then(Value::as_i64).unwrap_or(0);
    let v = i8::try_from(v).map_err(|_| Error::invalid(format!("vote {v} must be 1 or -1")))?;
    let reason = args.get("reason").and_then(Value::as_str);
    let voted = memory.vote(id, agent, v, reason)?;
    Ok(json!({
        "vote": to_value(&voted.vote)?,
        "consensus": voted.consensus,
        "agent": to_value(&voted.agent)?,
        "replaced": to_value(&voted.replaced)?,
    }))
}

fn deprecate(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    let id = fact_id(args).ok_or_else(|| Error::invalid("fact_id is required"))?;
    let reason = args.get("reason").and_then(Value::as_str);
    let d = memory.deprecate(id, reason)?;
    Ok(json!({"fact": to_value(&d.fact)?, "entry_index": d.append.first_index}))
}

fn history(memory: &AgentMemory, args: &Map<String, Value>, _: &Caller) -> Result<Value> {
    match (fact_id(args), args.get("project").and_then(Value::as_str)) {
        (Some(id), None) => to_value(&memory.fact_history(id)?),
        (None, Some(project)) => facts_result(&memory.project_history(project, limit(args)?)?),
        _ => Err(Error::invalid("give exactly one of fact_id or project")),
    }
}
