//! The ledger over MCP: tools `cortex_ledger_checkpoint`, `cortex_ledger_verify`,
//! `cortex_ledger_proof`, the resource `cortex://ledger/checkpoint` (the latest signed
//! checkpoint) and the prompt `cortex_audit_briefing`.

use crate::McpServerBuilder;
use crate::registry::{Exec, Prompt, Resource, Tool};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::access::Role;
use cortex_core::error::{Error, Result};
use cortex_core::ledger::Ledger;
use cortex_core::ledger::anchor::Anchor;
use cortex_core::ledger::policy::Policy;
use cortex_core::ledger::signer::{SignatureScheme, Verifier};
use cortex_core::ledger::verify::{VerifyOptions, verify_store};
use cortex_core::memory::AgentMemory;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// URI of the latest signed checkpoint.
pub const CHECKPOINT_URI: &str = "cortex://ledger/checkpoint";

/// What the verify tool trusts: the keys that sign checkpoints (never keys read from the
/// store), or the ledger's policy with the anchors whose receipts it checks.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Keys trusted to have signed checkpoints (used when there is no policy).
    pub verifiers: Vec<Arc<dyn Verifier>>,
    /// The ledger policy: signers with their validity, quorum, and anchors.
    pub policy: Option<Arc<Policy>>,
    /// The anchors whose receipts to check.
    pub anchors: Vec<Arc<dyn Anchor>>,
}

impl Trust {
    /// Trust in these keys alone.
    pub fn keys(verifiers: Vec<Arc<dyn Verifier>>) -> Trust {
        Trust {
            verifiers,
            ..Trust::default()
        }
    }
}

/// Adds the ledger tools, resource and prompt. `trust` says which keys (or which policy) the
/// verify tool checks signatures against.
/// With the agent `memory` kept beside the ledger, verify also replays the memory entries and
/// compares every stored memory row with them ([`cortex_core::memory::audit`]).
pub fn register(
    builder: McpServerBuilder,
    ledger: Arc<Ledger>,
    trust: Trust,
    memory: Option<Arc<AgentMemory>>,
) -> McpServerBuilder {
    let l1 = ledger.clone();
    let l2 = ledger.clone();
    let l3 = ledger.clone();
    let l4 = ledger.clone();
    let l5 = ledger;
    builder
        .tool(Tool {
            name: "cortex_ledger_checkpoint".into(),
            title: "Sign a ledger checkpoint".into(),
            description: "Signs a C2SP checkpoint covering every committed ledger entry (or \
                          returns the latest one if it already covers them all)."
                .into(),
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output_schema: checkpoint_schema(),
            read_only: false,
            idempotent: true,
            exec: Exec::Inline,
            access: Role::Write,
            run: Arc::new(move |_args, _| checkpoint(&l1)),
        })
        .tool(Tool {
            name: "cortex_ledger_verify".into(),
            title: "Verify the ledger".into(),
            description: "Verifies every entry, the hash chain, the Merkle tiles, every \
                          checkpoint signature and, where the server keeps an agent memory, \
                          every memory row against the replay of the ledger (each fact's \
                          content against its commitment); reports each integrity violation \
                          with its kind and index (and, for the memory, the fact or agent and \
                          the column). Records the run in the ledger's integrity checks."
                .into(),
            input_schema: json!({"type": "object", "additionalProperties": false, "properties": {
                "max_violations": {"type": "integer", "minimum": 0, "maximum": 1000,
                    "description": "How many violations to list (default 20); counts cover all."}
            }}),
            output_schema: verify_schema(),
            read_only: false,
            idempotent: true,
            exec: Exec::Thread,
            access: Role::Read,
            run: Arc::new(move |args, _| verify(&l2, memory.as_deref(), &trust, &args)),
        })
        .tool(Tool {
            name: "cortex_ledger_proof".into(),
            title: "Prove an entry's inclusion".into(),
            description: "Returns a c2sp.org/tlog-proof@v1 inclusion proof of one entry against \
                          the latest signed checkpoint: the file text and its fields."
                .into(),
            input_schema: json!({"type": "object", "additionalProperties": false,
                "required": ["index"], "properties": {
                "index": {"type": "integer", "minimum": 0, "description": "Entry index (0-based)."}
            }}),
            output_schema: proof_schema(),
            read_only: true,
            idempotent: true,
            exec: Exec::Inline,
            access: Role::Read,
            run: Arc::new(move |args, _| proof(&l3, &args)),
        })
        .resource(Resource {
            uri: CHECKPOINT_URI.into(),
            name: "ledger-checkpoint".into(),
            title: "Latest signed checkpoint".into(),
            description: "The ledger's latest C2SP signed checkpoint note (origin, size, root \
                          hash, signatures)."
                .into(),
            mime_type: "text/plain".into(),
            read: Arc::new(move || {
                l4.store()
                    .latest_checkpoint()?
                    .map(|c| c.note)
                    .ok_or_else(|| Error::not_found("the ledger has no checkpoint yet"))
            }),
        })
        .prompt(Prompt {
            name: "cortex_audit_briefing".into(),
            title: "Audit briefing".into(),
            description: "A briefing for auditing this ledger: its head, latest checkpoint and \
                          the tools to verify and prove entries."
                .into(),
            arguments: vec![],
            get: Arc::new(move |_args| {
                let head = l5.head()?;
                let cp = l5.store().latest_checkpoint()?;
                let cp_text = match cp {
                    Some(c) => format!(
                        "The latest signed checkpoint covers {} entries with root {}.",
                        c.size,
                        c.root.to_base64()
                    ),
                    None => "No checkpoint has been signed yet.".to_owned(),
                };
                Ok(vec![(
                    "user",
                    format!(
                        "You are auditing the CORTEX ledger {} ({} entries, {} hasher). {cp_text} \
                         Call cortex_ledger_verify to check every entry and signature, \
                         cortex_ledger_checkpoint to sign the current head, and \
                         cortex_ledger_proof with an index to obtain an inclusion proof; report \
                         any violation with its kind and index.",
                        l5.origin().unwrap_or("(origin not set)"),
                        head.size,
                        l5.hasher().algorithm().name()
                    ),
                )])
            }),
        })
}

fn checkpoint(ledger: &Ledger) -> Result<Value> {
    let o = ledger.checkpoint()?;
    let r = &o.record;
    Ok(json!({
        "created": o.created, "size": r.size, "root": r.root.to_base64(),
        "range": {"start": r.range_start, "end": r.range_end(), "count": r.range_count},
        "created_at": r.created_at, "note": r.note,
    }))
}

/// Lets one trusted key be handed to many verify runs.
#[derive(Debug)]
struct Shared(Arc<dyn Verifier>);

impl Verifier for Shared {
    fn scheme(&self) -> SignatureScheme {
        self.0.scheme()
    }
    fn key_name(&self) -> &str {
        self.0.key_name()
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        self.0.note_key_id()
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        self.0.verify(message, signature)
    }
}

fn verify(
    ledger: &Ledger,
    memory: Option<&AgentMemory>,
    trust: &Trust,
    args: &Map<String, Value>,
) -> Result<Value> {
    let max = args
        .get("max_violations")
        .and_then(Value::as_u64)
        .unwrap_or(20) as usize;
    let opts = VerifyOptions {
        verifiers: trust
            .verifiers
            .iter()
            .map(|v| Box::new(Shared(v.clone())) as Box<dyn Verifier>)
            .collect(),
        policy: trust.policy.clone(),
        anchors: trust.anchors.clone(),
        record: true,
        ..Default::default()
    };
    let report = match memory {
        Some(m) => m.verify(&opts)?,
        None => verify_store(&**ledger.store(), ledger.hasher(), ledger.origin(), &opts)?,
    };
    let mut v = serde_json::to_value(&report).map_err(|e| Error::backend(e.to_string()))?;
    if let Some(list) = v.get_mut("violations").and_then(Value::as_array_mut) {
        list.truncate(max);
    }
    Ok(v)
}

fn proof(ledger: &Ledger, args: &Map<String, Value>) -> Result<Value> {
    let index = args
        .get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::invalid("index must be a non-negative integer"))?;
    let (file, cp) = ledger.proof_file(index)?;
    let canonical = file.extra.clone().unwrap_or_default();
    Ok(json!({
        "index": index,
        "tree_size": cp.size,
        "root": cp.root.to_base64(),
        "entry": B64.encode(&canonical),
        "proof": file.proof.iter().map(|h| h.to_base64()).collect::<Vec<_>>(),
        "checkpoint": cp.note,
        "proof_text": file.to_text(),
    }))
}

fn checkpoint_schema() -> Value {
    json!({"type": "object", "required": ["created", "size", "root", "range", "note"],
    "properties": {
        "created": {"type": "boolean", "description": "false if the latest checkpoint already covered the ledger"},
        "size": {"type": "integer", "minimum": 0},
        "root": {"type": "string", "description": "base64 Merkle root"},
        "range": {"type": "object", "required": ["start", "count"], "properties": {
            "start": {"type": "integer"}, "end": {"type": ["integer", "null"]},
            "count": {"type": "integer"}}},
        "created_at": {"type": "string"},
        "note": {"type": "string", "description": "the C2SP signed note"}
    }})
}

fn verify_schema() -> Value {
    json!({"type": "object",
    "required": ["valid", "tree_size", "entries_checked", "checkpoints_checked", "violations",
                 "violation_counts", "hasher", "elapsed_ms"],
    "properties": {
        "valid": {"type": "boolean"},
        "tree_size": {"type": "integer"},
        "entries_checked": {"type": "integer"},
        "checkpoints_checked": {"type": "integer"},
        "receipts_checked": {"type": "integer"},
        "receipts_unchecked": {"type": "integer"},
        "violations": {"type": "array", "items": {"type": "object",
            "required": ["kind", "message"], "properties": {
                "kind": {"type": "string"}, "index": {"type": "integer"},
                "checkpoint": {"type": "integer"}, "message": {"type": "string"},
                "table": {"type": "string"}, "fact_id": {"type": "integer"},
                "agent": {"type": "string"}, "column": {"type": "string"}}}},
        "violation_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "hasher": {"type": "string"},
        "origin": {"type": ["string", "null"]},
        "elapsed_ms": {"type": "number"},
        "memory": {"type": "object", "description": "what was checked of the agent memory",
            "properties": {
                "entries_replayed": {"type": "integer"}, "facts": {"type": "integer"},
                "facts_erased": {"type": "integer"},
                "commitments_checked": {"type": "integer"}, "votes": {"type": "integer"},
                "agents": {"type": "integer"}}}
    }})
}

fn proof_schema() -> Value {
    json!({"type": "object",
    "required": ["index", "tree_size", "root", "entry", "proof", "checkpoint", "proof_text"],
    "properties": {
        "index": {"type": "integer"},
        "tree_size": {"type": "integer"},
        "root": {"type": "string", "description": "base64 root of the checkpoint"},
        "entry": {"type": "string", "description": "base64 canonical entry bytes"},
        "proof": {"type": "array", "items": {"type": "string"}, "description": "base64 hashes, leaf sibling first"},
        "checkpoint": {"type": "string", "description": "the signed checkpoint note"},
        "proof_text": {"type": "string", "description": "the c2sp.org/tlog-proof@v1 file"}
    }})
}
