//! The server: one dispatch for every transport and both protocol eras. A JSON-RPC message
//! in, an optional reply out; no I/O.
//!
//! This module holds [`McpServer`] and the message layer (JSON-RPC validation, batches,
//! notifications, metrics, the reply envelope); `dispatch` serves a request in its era,
//! `tool_call` runs `tools/call`, and `resources` answers `resources/read` and `prompts/get`.

mod dispatch;
mod resources;
mod tool_call;

use crate::cache::{CacheKeyFn, QueryCache, VersionFn};
use crate::metrics::Metrics;
use crate::protocol::{RpcError, codes, json_type};
use crate::registry::{Prompt, Resource, ResourceTemplate, Tool};
use crate::transport::{Incoming, MessageHandler, Outbound};
use crate::{HealthFn, METRICS_LABEL};
use cortex_core::BoxFuture;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tool_call::Answer;

/// What a handshake-era session negotiated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// The protocol version.
    pub(crate) version: String,
    /// `clientInfo.name` from `initialize`, if given.
    pub(crate) client: Option<String>,
}

/// The MCP server: one dispatch for every transport and both protocol eras.
pub struct McpServer {
    pub(crate) server_info: Value,
    pub(crate) instructions: String,
    pub(crate) tool_list: Vec<Value>,
    pub(crate) tools: BTreeMap<String, Tool>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) templates: Vec<ResourceTemplate>,
    pub(crate) prompts: Vec<Prompt>,
    /// Legacy era: the version negotiated by `initialize`, per session (None = stdio process).
    pub(crate) sessions: Mutex<HashMap<Option<String>, Session>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cache: Option<QueryCache>,
    pub(crate) cache_keys: BTreeMap<String, CacheKeyFn>,
    pub(crate) memory_version: Option<VersionFn>,
    pub(crate) health: Option<HealthFn>,
    /// Store reads go to the blocking pool ([`crate::McpServerBuilder::blocking_store`]).
    pub(crate) offload: bool,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpServer {
    /// Where this server records its requests (shared with the transport when the builder
    /// was given one).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The query cache, if one is configured.
    pub fn query_cache(&self) -> Option<&QueryCache> {
        self.cache.as_ref()
    }

    /// Runs `f`, a store read, inline or on the blocking pool as the store requires; `Err` if it
    /// panicked.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::Result<T> {
        if self.offload {
            crate::blocking::run(f).await
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        }
    }

    /// The memory version, read as the store requires (`None` without one or on failure).
    pub(crate) async fn current_version(&self) -> Option<u64> {
        let version = self.memory_version.clone()?;
        self.read(move || version().ok()).await.ok().flatten()
    }

    /// The input schema of tool `name`, if the server has it.
    pub fn tool_input_schema(&self, name: &str) -> Option<&Value> {
        self.tools.get(name).map(|t| &t.input_schema)
    }

    /// Every tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &crate::registry::Tool> {
        self.tools.values()
    }

    /// Runs the health check: `Err` names what is unreachable.
    pub fn check_health(&self) -> std::result::Result<(), String> {
        match &self.health {
            Some(check) => check(),
            None => Ok(()),
        }
    }

    /// Forgets the legacy session `id` (an HTTP session that was deleted or timed out).
    pub fn end_session(&self, id: Option<&str>) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&id.map(str::to_owned));
        }
    }

    /// Handles one transport message (a JSON-RPC object or batch); `None` if nothing is owed.
    pub async fn handle_message(&self, incoming: &Incoming) -> Option<String> {
        let value: Value = match serde_json::from_str(&incoming.message) {
            Ok(v) => v,
            Err(e) => {
                return Some(error_response(
                    Value::Null,
                    &RpcError::new(
                        codes::PARSE_ERROR,
                        format!("Parse error: the message is not valid JSON ({e})"),
                    ),
                ));
            }
        };
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Some(error_response(
                        Value::Null,
                        &RpcError::new(codes::INVALID_REQUEST, "Invalid Request: an empty batch"),
                    ));
                }
                let mut replies = Vec::new();
                for item in items {
                    if let Some(r) = self.handle_value(item, incoming).await {
                        replies.push(r);
                    }
                }
                (!replies.is_empty()).then(|| format!("[{}]", replies.join(",")))
            }
            v => self.handle_value(v, incoming).await,
        }
    }

    /// Handles one JSON-RPC message; the reply as text, if one is owed.
    async fn handle_value(&self, value: Value, incoming: &Incoming) -> Option<String> {
        let Value::Object(mut msg) = value else {
            return Some(error_response(
                Value::Null,
                &RpcError::new(
                    codes::INVALID_REQUEST,
                    format!(
                        "Invalid Request: a message must be a JSON object, got {}",
                        json_type(&value)
                    ),
                ),
            ));
        };
        // Responses from the client: we send no requests, so there is nothing to match.
        if !msg.contains_key("method") && (msg.contains_key("result") || msg.contains_key("error"))
        {
            return None;
        }
        let id = match msg.remove("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
            Some(other) => {
                return Some(error_response(
                    Value::Null,
                    &RpcError::new(
                        codes::INVALID_REQUEST,
                        format!(
                            "Invalid Request: id must be a string or a number, got {}",
                            json_type(&other)
                        ),
                    ),
                ));
            }
        };
        let reply_id = id.clone().unwrap_or(Value::Null);
        let fail = |e: RpcError| id.as_ref().map(|_| error_response(reply_id.clone(), &e));
        if msg.get("jsonrpc") != Some(&Value::String("2.0".into())) {
            return fail(RpcError::new(
                codes::INVALID_REQUEST,
                "Invalid Request: \"jsonrpc\" must be \"2.0\"",
            ));
        }
        let method = match msg.remove("method") {
            Some(Value::String(m)) => m,
            Some(other) => {
                return fail(RpcError::new(
                    codes::INVALID_REQUEST,
                    format!(
                        "Invalid Request: method must be a string, got {}",
                        json_type(&other)
                    ),
                ));
            }
            None => {
                return fail(RpcError::new(
                    codes::INVALID_REQUEST,
                    "Invalid Request: the message has no method",
                ));
            }
        };
        let params = match msg.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p,
            Some(other) => {
                return fail(RpcError::invalid_params(format!(
                    "Invalid params: params of {method} must be an object, got {}",
                    json_type(&other)
                )));
            }
        };
        let Some(id) = id else {
            self.notification(&method, &params, incoming);
            return None;
        };
        let label = self.metrics_label(&method, &params);
        let started = Instant::now();
        let outcome = self.request(&method, params, incoming).await;
        let ok = match &outcome {
            Ok(Answer::Value(r)) => r.get("isError") != Some(&Value::Bool(true)),
            // Only successful results are cached.
            Ok(Answer::Text(_)) => true,
            Err(_) => false,
        };
        self.metrics
            .record_request(METRICS_LABEL, &label, started.elapsed(), ok);
        Some(match outcome {
            Ok(Answer::Value(result)) => envelope(&id, &result.to_string()),
            Ok(Answer::Text(result)) => envelope(&id, &result),
            Err(e) => error_response(id, &e),
        })
    }

    /// The metrics label of a request: the tool name for a call to a registered tool, the
    /// method for a known method, `other` otherwise (labels stay bounded whatever clients send).
    fn metrics_label(&self, method: &str, params: &Map<String, Value>) -> String {
        const KNOWN: &[&str] = &[
            "initialize",
            "ping",
            "server/discover",
            "tools/list",
            "tools/call",
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "prompts/list",
            "prompts/get",
        ];
        if method == "tools/call"
            && let Some(name) = params.get("name").and_then(Value::as_str)
            && self.tools.contains_key(name)
        {
            return name.to_owned();
        }
        if KNOWN.contains(&method) {
            method.to_owned()
        } else {
            "other".to_owned()
        }
    }

    fn notification(&self, method: &str, _params: &Map<String, Value>, _incoming: &Incoming) {
        // `notifications/initialized` completes the legacy handshake; `notifications/cancelled`
        // may arrive after the reply was sent (our calls are not interruptible). Unknown
        // notifications are ignored, as JSON-RPC requires (a notification never gets a reply).
        let _ = method;
    }
}

impl MessageHandler for McpServer {
    fn handle<'a>(
        &'a self,
        incoming: Incoming,
        _outbound: Arc<dyn Outbound>,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move { self.handle_message(&incoming).await })
    }

    fn health(&self) -> std::result::Result<(), String> {
        self.check_health()
    }

    fn end_session(&self, id: &str) {
        McpServer::end_session(self, Some(id));
    }
}

fn error_response(id: Value, e: &RpcError) -> String {
    e.to_response(id).to_string()
}

/// The reply to request `id` whose result is the JSON text `result`: the same bytes
/// `serde_json` writes for `{"jsonrpc": "2.0", "id": id, "result": result}` (keys in order).
fn envelope(id: &Value, result: &str) -> String {
    let id = id.to_string();
    let mut out = String::with_capacity(result.len() + id.len() + 32);
    out.push_str("{\"id\":");
    out.push_str(&id);
    out.push_str(",\"jsonrpc\":\"2.0\",\"result\":");
    out.push_str(result);
    out.push('}');
    out
}
