//! MCP transports move JSON-RPC messages between peers and a handler; they know nothing of
//! tools or the ledger (as in rmcp). stdio, Streamable HTTP, legacy HTTP+SSE and WebSocket each
//! implement [`Transport`] in their own crate.

use cortex_core::error::{Error, Result};
use cortex_core::ledger::anchor::BoxFuture;
use std::fmt;
use std::sync::{Arc, Mutex};

/// One message received from a peer, with what the transport knows about it.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// The JSON-RPC message text (one object or a batch).
    pub message: String,
    /// Session the peer belongs to, where the transport has sessions.
    pub session_id: Option<String>,
    /// `MCP-Protocol-Version` header or negotiated version, where known.
    pub protocol_version: Option<String>,
    /// HTTP `Origin` header, where there is one (already validated by the transport).
    pub origin: Option<String>,
    /// HTTP `Mcp-Method` header (2026-07-28 Streamable HTTP), checked against the body's method.
    pub mcp_method: Option<String>,
    /// HTTP `Mcp-Name` header (2026-07-28), checked against `params.name` / `params.uri`.
    pub mcp_name: Option<String>,
    /// The transport's [`Transport::name`] (`stdio`, `http`, `sse`, `ws`); empty if unknown.
    pub transport: &'static str,
    /// The API key the message came with, where the surface checks keys.
    pub principal: Option<cortex_core::access::Principal>,
}

/// The way back to one peer, for messages that are not direct replies (notifications, SSE).
pub trait Outbound: Send + Sync {
    /// Queues `message` for the peer; an error if the peer is gone.
    fn send(&self, message: String) -> Result<()>;
}

/// Handles messages; implemented by the MCP server.
pub trait MessageHandler: Send + Sync {
    /// Handles one message and returns the reply, if the message warrants one.
    fn handle<'a>(
        &'a self,
        incoming: Incoming,
        outbound: Arc<dyn Outbound>,
    ) -> BoxFuture<'a, Option<String>>;

    /// Checks what the handler depends on (for `/health`): `Err` names what is unreachable.
    /// The default has no dependency to check.
    fn health(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Forgets session `id` (the transport ended it: deleted, or idle too long). The default
    /// keeps nothing per session.
    fn end_session(&self, _id: &str) {}
}

/// A way of carrying MCP messages.
pub trait Transport: Send + Sync + fmt::Debug {
    /// `stdio`, `http`, `sse`, `ws`, …
    fn name(&self) -> &'static str;
    /// Serves until `shutdown` resolves or the peer goes away.
    fn serve(
        self: Box<Self>,
        handler: Arc<dyn MessageHandler>,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<()>>;
}

/// An in-memory transport for tests: feeds a fixed list of messages to the handler and collects
/// every reply and outbound message in order.
#[derive(Debug, Default)]
pub struct InMemoryTransport {
    inbox: Vec<String>,
    outbox: Arc<Mutex<Vec<String>>>,
}

impl InMemoryTransport {
    /// A transport that will deliver `messages`.
    pub fn new(messages: Vec<String>) -> Self {
        InMemoryTransport {
            inbox: messages,
            outbox: Arc::default(),
        }
    }
    /// Shared view of what the handler sent back.
    pub fn outbox(&self) -> Arc<Mutex<Vec<String>>> {
        self.outbox.clone()
    }
}

struct Collect(Arc<Mutex<Vec<String>>>);

impl Outbound for Collect {
    fn send(&self, message: String) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| Error::backend("outbox poisoned"))?
            .push(message);
        Ok(())
    }
}

impl Transport for InMemoryTransport {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn serve(
        self: Box<Self>,
        handler: Arc<dyn MessageHandler>,
        _shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let out: Arc<dyn Outbound> = Arc::new(Collect(self.outbox.clone()));
            for m in self.inbox {
                let incoming = Incoming {
                    message: m,
                    ..Incoming::default()
                };
                if let Some(reply) = handler.handle(incoming, out.clone()).await {
                    out.send(reply)?;
                }
            }
            Ok(())
        })
    }
}
