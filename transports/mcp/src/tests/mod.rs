//! Protocol-layer tests: JSON-RPC validation, both eras, batches, notifications, tools.
//!
//! Split by topic: `protocol` (JSON-RPC and the two eras), `tools` (the ledger and memory tools),
//! `cache` (the query cache and metrics) and `resources` (resource templates and prompts); the
//! helpers they share (a fake signing key, a minimal executor, servers and request helpers) are
//! here.

mod cache;
mod protocol;
mod resources;
mod tools;

use super::*;
use crate::protocol::codes;
use crate::tools::{ledger as ledger_tools, memory as memory_tools};
use cortex_core::error::Result;
use cortex_core::in_memory::InMemoryStore;
use cortex_core::ledger::signer::{SignatureScheme, Signer, Verifier};
use cortex_core::ledger::{Ledger, LedgerOptions};
use cortex_core::{AgentMemory, DynStore, NewEntry, ProofFile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

const ORIGIN: &str = "example.com/mcp-test";

/// A deterministic stand-in for Ed25519 (core cannot depend on the signer crate).
#[derive(Debug)]
struct FakeKey;

fn fake_sig(message: &[u8]) -> Vec<u8> {
    let h = Sha256::digest(message);
    [h.as_slice(), h.as_slice()].concat()
}

impl Signer for FakeKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        ORIGIN
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some([1, 2, 3, 4])
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(fake_sig(message))
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(FakeKey)
    }
}

impl Verifier for FakeKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        ORIGIN
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some([1, 2, 3, 4])
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature == fake_sig(message) {
            Ok(())
        } else {
            Err(cortex_core::Error::integrity("bad fake signature"))
        }
    }
}

struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn ledger(signed: bool) -> Arc<Ledger> {
    let mut l = Ledger::open(
        Arc::new(InMemoryStore::new()),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    if signed {
        l.add_signer(Arc::new(FakeKey)).unwrap();
    }
    Arc::new(l)
}

fn server_for(l: &Arc<Ledger>) -> McpServer {
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test").instructions("test server");
    ledger_tools::register(
        b,
        l.clone(),
        ledger_tools::Trust::keys(vec![Arc::new(FakeKey)]),
        None,
    )
    .tool(Tool {
        name: "boom".into(),
        title: "panics".into(),
        description: "a tool that panics".into(),
        input_schema: json!({"type": "object"}),
        output_schema: json!({"type": "object"}),
        read_only: true,
        idempotent: true,
        exec: Exec::Inline,
        access: cortex_core::access::Role::Read,
        run: Arc::new(|_, _| panic!("boom")),
    })
    .build()
}

fn send_with(s: &McpServer, incoming: Incoming) -> Option<Value> {
    block_on(s.handle_message(&incoming)).map(|t| serde_json::from_str(&t).expect("reply is JSON"))
}

fn send(s: &McpServer, text: &str) -> Option<Value> {
    send_with(
        s,
        Incoming {
            message: text.into(),
            ..Default::default()
        },
    )
}

fn call(s: &McpServer, v: Value) -> Value {
    send(s, &v.to_string()).expect("a reply")
}

fn err_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}})
}

fn tool_call(s: &McpServer, name: &str, args: Value) -> Value {
    let r = call(
        s,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": args}}),
    );
    r["result"].clone()
}

/// A memory server over `store` recording into `metrics`, with the query cache on.
fn cached_server(store: &Arc<InMemoryStore>, metrics: &Arc<Metrics>) -> McpServer {
    let l = Arc::new(
        Ledger::open(
            store.clone(),
            LedgerOptions {
                hasher: None,
                checkpoint_every: 0,
            },
        )
        .unwrap(),
    );
    let memory = Arc::new(AgentMemory::new(store.clone(), l.clone()).unwrap());
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test").metrics(metrics.clone());
    let with_ledger = ledger_tools::register(b, l, Default::default(), Some(memory.clone()));
    memory_tools::register(with_ledger, memory).build()
}
