//! The Model Context Protocol server, as pure code: a JSON-RPC 2.0 message in, an optional reply
//! out ([`McpServer`] implements [`MessageHandler`]). No I/O: the transports in `transports/`
//! move the bytes; this module validates, dispatches and answers.
//!
//! Both protocol eras are served by one dispatch (see docs/ARCHITECTURE.md, "MCP"):
//! - **legacy** (2024-11-05 … 2025-11-25): the `initialize` handshake negotiates a version per
//!   session (per stdio process, per HTTP session id); `notifications/initialized`, `ping`.
//! - **modern** (2026-07-28): stateless; every request carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"]` and `…/clientCapabilities`;
//!   `server/discover` advertises versions and capabilities; results carry `resultType`; the
//!   transport's `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers must match the body
//!   (`-32020`), unknown versions get `-32022` listing the supported ones.

mod blocking;
pub mod cache;
pub mod ledger_tools;
pub mod memory_tools;
pub mod registry;
pub mod schema;

pub use cache::{CacheKey, CacheKeyFn, QueryCache, VersionFn};
pub use registry::{Exec, Prompt, PromptArgument, Resource, ResourceTemplate, Tool, ToolFn};

use crate::anchor::BoxFuture;
use crate::error::ErrorKind;
use crate::metrics::Metrics;
use crate::transport::{Incoming, MessageHandler, Outbound};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The transport label under which the MCP server records its requests in [`Metrics`]
/// (the transports record theirs under `http`, `ws`, …).
pub const METRICS_LABEL: &str = "mcp";

/// Checks what the server depends on (the database); `Err` names what is unreachable.
pub type HealthFn = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// The stateless revision this server speaks.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// Handshake revisions this server negotiates, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC and MCP error codes.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method (or a capability we do not offer).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters, unknown tool, unknown resource (modern era).
    pub const INVALID_PARAMS: i64 = -32602;
    /// A bug or an unexpected failure in the server.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Unknown resource in the legacy era (2025-11-25 and earlier).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// HTTP headers do not match the body (2026-07-28); HTTP 400.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// A required client capability was not declared (2026-07-28); HTTP 400.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// Unsupported protocol version (2026-07-28); HTTP 400.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// A JSON-RPC error: code, a message naming the problem, optional data.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Error code (see [`codes`]).
    pub code: i64,
    /// One sentence naming the problem.
    pub message: String,
    /// Structured detail.
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }
}

/// Which era a request is served in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Era {
    Legacy(String),
    Modern(String),
}

/// Builds an [`McpServer`]: identity, then tools, resources and prompts from each feature area.
#[derive(Default)]
pub struct McpServerBuilder {
    name: String,
    title: String,
    version: String,
    instructions: String,
    tools: Vec<Tool>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: Vec<Prompt>,
    metrics: Option<Arc<Metrics>>,
    cached: BTreeMap<String, CacheKeyFn>,
    memory_version: Option<VersionFn>,
    cache_capacity: usize,
    cache_now_ttl: Duration,
    health: Option<HealthFn>,
}

impl std::fmt::Debug for McpServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerBuilder")
            .field("name", &self.name)
            .field("tools", &self.tool_names())
            .field("cached", &self.cached.keys().collect::<Vec<_>>())
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

impl McpServerBuilder {
    /// Sets the text of `instructions` (initialize and server/discover).
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = text.into();
        self
    }
    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.retain(|t| t.name != tool.name);
        self.tools.push(tool);
        self
    }
    /// Adds a resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.retain(|r| r.uri != resource.uri);
        self.resources.push(resource);
        self
    }
    /// Adds a prompt template.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompts.retain(|p| p.name != prompt.name);
        self.prompts.push(prompt);
        self
    }
    /// Adds a resource template (read through `resources/read` when a URI matches it).
    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.templates
            .retain(|t| t.uri_template != template.uri_template);
        self.templates.push(template);
        self
    }
    /// Records requests, latencies, errors and cache lookups into `metrics` (share the same
    /// `Arc` with the transport so `/metrics` shows them) and adds the `cortex_metrics` tool.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        let m = metrics.clone();
        self.metrics = Some(metrics);
        self.tool(metrics_tool(m))
    }
    /// Caches the results of tool `name` under the key `key` computes from its arguments
    /// (see [`cache`]); needs [`McpServerBuilder::memory_version`].
    pub fn cached(mut self, name: &str, key: CacheKeyFn) -> Self {
        self.cached.insert(name.to_owned(), key);
        self
    }
    /// The store's memory version, read before every cached call: entries cached under
    /// another version are never served.
    pub fn memory_version(mut self, version: VersionFn) -> Self {
        self.memory_version = Some(version);
        self
    }
    /// Sizes the query cache (entries; 0 turns it off) and how long results computed "as of
    /// now" may be served.
    pub fn query_cache(mut self, capacity: usize, now_ttl: Duration) -> Self {
        self.cache_capacity = capacity;
        self.cache_now_ttl = now_ttl;
        self
    }
    /// What `/health` checks (the database).
    pub fn health_check(mut self, check: HealthFn) -> Self {
        self.health = Some(check);
        self
    }
    /// Names of the tools registered so far.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_str()).collect()
    }
    /// The server.
    pub fn build(self) -> McpServer {
        let tool_list = self.tools.iter().map(Tool::describe).collect();
        let cache =
            (self.cache_capacity > 0 && self.memory_version.is_some() && !self.cached.is_empty())
                .then(|| QueryCache::new(self.cache_capacity, self.cache_now_ttl));
        McpServer {
            server_info: json!({"name": self.name, "title": self.title, "version": self.version}),
            instructions: self.instructions,
            tool_list,
            tools: self
                .tools
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect(),
            resources: self.resources,
            templates: self.templates,
            prompts: self.prompts,
            sessions: Mutex::default(),
            metrics: self.metrics.unwrap_or_default(),
            cache,
            cache_keys: self.cached,
            memory_version: self.memory_version,
            health: self.health,
        }
    }
}

/// The MCP server: one dispatch for every transport and both protocol eras.
pub struct McpServer {
    server_info: Value,
    instructions: String,
    tool_list: Vec<Value>,
    tools: BTreeMap<String, Tool>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplate>,
    prompts: Vec<Prompt>,
    /// Legacy era: the version negotiated by `initialize`, per session (None = stdio process).
    sessions: Mutex<HashMap<Option<String>, String>>,
    metrics: Arc<Metrics>,
    cache: Option<QueryCache>,
    cache_keys: BTreeMap<String, CacheKeyFn>,
    memory_version: Option<VersionFn>,
    health: Option<HealthFn>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpServer {
    /// A builder for a server named `name` (serverInfo.name) at `version`.
    pub fn builder(name: &str, title: &str, version: &str) -> McpServerBuilder {
        McpServerBuilder {
            name: name.into(),
            title: title.into(),
            version: version.into(),
            cache_capacity: cache::DEFAULT_CAPACITY,
            cache_now_ttl: cache::DEFAULT_NOW_TTL,
            ..Default::default()
        }
    }

    /// Where this server records its requests (shared with the transport when the builder
    /// was given one).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The query cache, if one is configured.
    pub fn query_cache(&self) -> Option<&QueryCache> {
        self.cache.as_ref()
    }

    /// Runs the health check: `Err` names what is unreachable.
    pub fn check_health(&self) -> std::result::Result<(), String> {
        match &self.health {
            Some(check) => check(),
            None => Ok(()),
        }
    }

    /// Every protocol version this server accepts, modern first.
    pub fn supported_versions() -> Vec<&'static str> {
        MODERN_VERSIONS
            .iter()
            .chain(LEGACY_VERSIONS)
            .copied()
            .collect()
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
                return Some(
                    error_response(
                        Value::Null,
                        &RpcError::new(
                            codes::PARSE_ERROR,
                            format!("Parse error: the message is not valid JSON ({e})"),
                        ),
                    )
                    .to_string(),
                );
            }
        };
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Some(
                        error_response(
                            Value::Null,
                            &RpcError::new(
                                codes::INVALID_REQUEST,
                                "Invalid Request: an empty batch",
                            ),
                        )
                        .to_string(),
                    );
                }
                let mut replies = Vec::new();
                for item in items {
                    if let Some(r) = self.handle_value(item, incoming).await {
                        replies.push(r);
                    }
                }
                (!replies.is_empty()).then(|| Value::Array(replies).to_string())
            }
            v => self.handle_value(v, incoming).await.map(|r| r.to_string()),
        }
    }

    async fn handle_value(&self, value: Value, incoming: &Incoming) -> Option<Value> {
        let Value::Object(mut msg) = value else {
            return Some(error_response(
                Value::Null,
                &RpcError::new(
                    codes::INVALID_REQUEST,
                    format!(
                        "Invalid Request: a message must be a JSON object, got {}",
                        schema_type(&value)
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
                            schema_type(&other)
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
                        schema_type(&other)
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
                    schema_type(&other)
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
            Ok(r) => r.get("isError") != Some(&Value::Bool(true)),
            Err(_) => false,
        };
        self.metrics
            .record_request(METRICS_LABEL, &label, started.elapsed(), ok);
        Some(match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
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

    fn era(
        &self,
        method: &str,
        params: &Map<String, Value>,
        incoming: &Incoming,
    ) -> Result<Era, RpcError> {
        let meta = params.get("_meta").and_then(Value::as_object);
        let body_version = match meta.and_then(|m| m.get(META_VERSION)) {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: _meta[\"{META_VERSION}\"] must be a string, got {}",
                    schema_type(other)
                )));
            }
        };
        let Some(version) = body_version else {
            if let Some(h) = &incoming.protocol_version
                && MODERN_VERSIONS.contains(&h.as_str())
            {
                return Err(RpcError::new(
                    codes::HEADER_MISMATCH,
                    format!(
                        "Header mismatch: MCP-Protocol-Version is {h} but the request has no \
                         _meta[\"{META_VERSION}\"]"
                    ),
                ));
            }
            let negotiated = self
                .sessions
                .lock()
                .ok()
                .and_then(|s| s.get(&incoming.session_id).cloned());
            return Ok(Era::Legacy(
                negotiated
                    .or_else(|| incoming.protocol_version.clone())
                    .unwrap_or_else(|| LEGACY_VERSIONS[0].to_owned()),
            ));
        };
        // Modern envelope: the transport's headers must agree with the body.
        if let Some(h) = &incoming.protocol_version
            && *h != version
        {
            return Err(RpcError::new(
                codes::HEADER_MISMATCH,
                format!(
                    "Header mismatch: MCP-Protocol-Version is {h} but _meta[\"{META_VERSION}\"] \
                     is {version}"
                ),
            ));
        }
        if let Some(h) = &incoming.mcp_method
            && h != method
        {
            return Err(RpcError::new(
                codes::HEADER_MISMATCH,
                format!("Header mismatch: Mcp-Method is {h} but the body's method is {method}"),
            ));
        }
        if matches!(method, "tools/call" | "resources/read" | "prompts/get") {
            let key = if method == "resources/read" {
                "uri"
            } else {
                "name"
            };
            let body = params.get(key).and_then(Value::as_str);
            if let (Some(h), Some(b)) = (&incoming.mcp_name, body)
                && decode_header(h) != b
            {
                return Err(RpcError::new(
                    codes::HEADER_MISMATCH,
                    format!("Header mismatch: Mcp-Name is {h} but params.{key} is {b}"),
                ));
            }
        }
        if MODERN_VERSIONS.contains(&version.as_str()) {
            match meta.and_then(|m| m.get(META_CAPS)) {
                Some(Value::Object(_)) => {}
                None => {
                    return Err(RpcError::invalid_params(format!(
                        "Invalid params: _meta[\"{META_CAPS}\"] is required in protocol version \
                         {version}"
                    )));
                }
                Some(other) => {
                    return Err(RpcError::invalid_params(format!(
                        "Invalid params: _meta[\"{META_CAPS}\"] must be an object, got {}",
                        schema_type(other)
                    )));
                }
            }
            Ok(Era::Modern(version))
        } else if LEGACY_VERSIONS.contains(&version.as_str()) {
            Ok(Era::Legacy(version))
        } else {
            Err(RpcError::new(
                codes::UNSUPPORTED_PROTOCOL_VERSION,
                format!(
                    "Unsupported protocol version {version:?}; supported: {}",
                    Self::supported_versions().join(", ")
                ),
            )
            .with_data(json!({"supported": Self::supported_versions(), "requested": version})))
        }
    }

    fn has_resources(&self) -> bool {
        !self.resources.is_empty() || !self.templates.is_empty()
    }

    fn capabilities(&self) -> Value {
        let mut caps = json!({"tools": {"listChanged": false}});
        if self.has_resources() {
            caps["resources"] = json!({"subscribe": false, "listChanged": false});
        }
        if !self.prompts.is_empty() {
            caps["prompts"] = json!({"listChanged": false});
        }
        caps
    }

    async fn request(
        &self,
        method: &str,
        params: Map<String, Value>,
        incoming: &Incoming,
    ) -> Result<Value, RpcError> {
        if method == "initialize" {
            return self.initialize(&params, incoming);
        }
        let era = self.era(method, &params, incoming)?;
        let modern = matches!(era, Era::Modern(_));
        let (mut result, ttl) = match method {
            "server/discover" => (
                json!({
                    "supportedVersions": Self::supported_versions(),
                    "capabilities": self.capabilities(),
                    "instructions": self.instructions,
                    "serverInfo": self.server_info,
                }),
                Some(3_600_000),
            ),
            "ping" if !modern => (json!({}), None),
            "tools/list" => {
                no_cursor(&params)?;
                (json!({"tools": self.tool_list}), Some(0))
            }
            "tools/call" => (self.call_tool(params).await?, None),
            "resources/list" if self.has_resources() => {
                no_cursor(&params)?;
                let list: Vec<Value> = self.resources.iter().map(Resource::describe).collect();
                (json!({"resources": list}), Some(0))
            }
            "resources/templates/list" if self.has_resources() => {
                no_cursor(&params)?;
                let list: Vec<Value> = self
                    .templates
                    .iter()
                    .map(ResourceTemplate::describe)
                    .collect();
                (json!({"resourceTemplates": list}), Some(0))
            }
            "resources/read" if self.has_resources() => {
                (self.read_resource(&params, &era)?, Some(0))
            }
            "prompts/list" if !self.prompts.is_empty() => {
                no_cursor(&params)?;
                let list: Vec<Value> = self.prompts.iter().map(Prompt::describe).collect();
                (json!({"prompts": list}), Some(0))
            }
            "prompts/get" if !self.prompts.is_empty() => (self.get_prompt(&params)?, None),
            _ => {
                let why = if method == "ping" {
                    " (ping was removed in protocol version 2026-07-28)"
                } else {
                    ""
                };
                return Err(RpcError::new(
                    codes::METHOD_NOT_FOUND,
                    format!("Method not found: {method}{why}"),
                ));
            }
        };
        if modern {
            let r = result.as_object_mut().expect("results are objects");
            r.insert("resultType".into(), json!("complete"));
            r.insert(
                "_meta".into(),
                json!({ META_SERVER_INFO: self.server_info }),
            );
            if let Some(ttl) = ttl {
                r.insert("ttlMs".into(), json!(ttl));
                r.insert("cacheScope".into(), json!("public"));
            }
        }
        Ok(result)
    }

    fn initialize(
        &self,
        params: &Map<String, Value>,
        incoming: &Incoming,
    ) -> Result<Value, RpcError> {
        let requested = match params.get("protocolVersion") {
            Some(Value::String(v)) => v.as_str(),
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: initialize params.protocolVersion must be a string, got {}",
                    schema_type(other)
                )));
            }
            None => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: initialize requires params.protocolVersion (this server \
                     speaks {})",
                    Self::supported_versions().join(", ")
                )));
            }
        };
        if let Some(c) = params.get("capabilities")
            && !c.is_object()
        {
            return Err(RpcError::invalid_params(
                "Invalid params: initialize params.capabilities must be an object",
            ));
        }
        // Version negotiation: echo a version we speak, otherwise offer our latest handshake one.
        let version = if LEGACY_VERSIONS.contains(&requested) {
            requested
        } else {
            LEGACY_VERSIONS[0]
        };
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(incoming.session_id.clone(), version.to_owned());
        }
        Ok(json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": self.server_info,
            "instructions": self.instructions,
        }))
    }

    async fn call_tool(&self, params: Map<String, Value>) -> Result<Value, RpcError> {
        let name = match params.get("name") {
            Some(Value::String(n)) => n,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: tools/call params.name must be a string, got {}",
                    schema_type(other)
                )));
            }
            None => {
                return Err(RpcError::invalid_params(
                    "Invalid params: tools/call requires params.name",
                ));
            }
        };
        let Some(tool) = self.tools.get(name) else {
            return Err(RpcError::invalid_params(format!(
                "Unknown tool: {name} (available: {})",
                self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
            .with_data(json!({"name": name})));
        };
        let args = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(other) => {
                return Ok(tool_error(&format!(
                    "invalid arguments for {name}: arguments must be a JSON object, got {}",
                    schema_type(other)
                )));
            }
        };
        let problems = schema::validate(&tool.input_schema, &Value::Object(args.clone()));
        if !problems.is_empty() {
            return Ok(tool_error(&format!(
                "invalid arguments for {name}: {}",
                problems.join("; ")
            )));
        }
        // The query cache: the version is read before the query, so a result is only ever
        // served to a request that read the same version (see `cache`).
        let cached = match (&self.cache, self.cache_keys.get(name), &self.memory_version) {
            (Some(cache), Some(key_fn), Some(version)) => match (key_fn(&args), version()) {
                (Some(k), Ok(v)) => {
                    Some((cache, format!("{name}\u{0}{}", k.key), k.now_relative, v))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((cache, key, _, version)) = &cached {
            let hit = cache.get(key, *version);
            self.metrics.record_cache(hit.is_some());
            if let Some(result) = hit {
                return Ok(result);
            }
        }
        let result = self.run_tool(name, tool, args).await?;
        if let Some((cache, key, now_relative, version)) = cached
            && result.get("isError") == Some(&Value::Bool(false))
        {
            cache.insert(key, version, now_relative, result.clone());
        }
        Ok(result)
    }

    async fn run_tool(
        &self,
        name: &str,
        tool: &Tool,
        args: Map<String, Value>,
    ) -> Result<Value, RpcError> {
        let run = tool.run.clone();
        let outcome = match tool.exec {
            Exec::Inline => catch_unwind(AssertUnwindSafe(|| run(args))),
            Exec::Thread => blocking::run(move || run(args)).await,
        };
        match outcome {
            Ok(Ok(structured)) => Ok(json!({
                "content": [{"type": "text", "text": structured.to_string()}],
                "structuredContent": structured,
                "isError": false,
            })),
            Ok(Err(e)) => Ok(tool_error(&format!("{}: {e}", e.kind().as_str()))),
            Err(_) => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("Internal error: tool {name} failed unexpectedly"),
            )),
        }
    }

    fn read_resource(&self, params: &Map<String, Value>, era: &Era) -> Result<Value, RpcError> {
        let uri = match params.get("uri") {
            Some(Value::String(u)) => u,
            _ => {
                return Err(RpcError::invalid_params(
                    "Invalid params: resources/read requires params.uri (a string)",
                ));
            }
        };
        let not_found = |why: String| {
            let code = match era {
                Era::Modern(_) => codes::INVALID_PARAMS,
                Era::Legacy(_) => codes::RESOURCE_NOT_FOUND,
            };
            RpcError::new(code, why).with_data(json!({"uri": uri}))
        };
        let Some(r) = self.resources.iter().find(|r| &r.uri == uri) else {
            if let Some((t, vars)) = self
                .templates
                .iter()
                .find_map(|t| t.matches(uri).map(|v| (t, v)))
            {
                return match catch_unwind(AssertUnwindSafe(|| (t.read)(&vars))) {
                    Ok(Ok(text)) => Ok(json!({"contents": [
                        {"uri": uri, "mimeType": t.mime_type, "text": text}
                    ]})),
                    Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {
                        Err(not_found(format!("Resource not found: {uri}: {e}")))
                    }
                    Ok(Err(e)) if e.kind() == ErrorKind::InvalidInput => Err(
                        RpcError::invalid_params(format!("Invalid params: {uri}: {e}"))
                            .with_data(json!({"uri": uri})),
                    ),
                    Ok(Err(e)) => Err(RpcError::new(
                        codes::INTERNAL_ERROR,
                        format!("Internal error reading {uri}: {e}"),
                    )),
                    Err(_) => Err(RpcError::new(
                        codes::INTERNAL_ERROR,
                        format!("Internal error reading {uri}"),
                    )),
                };
            }
            return Err(not_found(format!(
                "Resource not found: {uri} (available: {})",
                self.resources
                    .iter()
                    .map(|r| r.uri.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        match catch_unwind(AssertUnwindSafe(|| (r.read)())) {
            Ok(Ok(text)) => Ok(json!({"contents": [
                {"uri": r.uri, "mimeType": r.mime_type, "text": text}
            ]})),
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {
                Err(not_found(format!("Resource not found: {uri}: {e}")))
            }
            Ok(Err(e)) => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("Internal error reading {uri}: {e}"),
            )),
            Err(_) => Err(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("Internal error reading {uri}"),
            )),
        }
    }

    fn get_prompt(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let name = params.get("name").and_then(Value::as_str).ok_or_else(|| {
            RpcError::invalid_params("Invalid params: prompts/get requires params.name (a string)")
        })?;
        let prompt = self
            .prompts
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| RpcError::invalid_params(format!("Unknown prompt: {name}")))?;
        let args = match params.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(a)) if a.values().all(Value::is_string) => a.clone(),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid params: prompt arguments must be an object of strings",
                ));
            }
        };
        for a in prompt.arguments.iter().filter(|a| a.required) {
            if !args.contains_key(&a.name) {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: prompt {name} requires argument {}",
                    a.name
                )));
            }
        }
        let messages = (prompt.get)(&args).map_err(|e| match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::NotFound => {
                RpcError::invalid_params(format!("Invalid params: prompt {name}: {e}"))
            }
            _ => RpcError::new(
                codes::INTERNAL_ERROR,
                format!("Internal error building prompt {name}: {e}"),
            ),
        })?;
        let messages: Vec<Value> = messages
            .into_iter()
            .map(|(role, text)| json!({"role": role, "content": {"type": "text", "text": text}}))
            .collect();
        Ok(json!({"description": prompt.description, "messages": messages}))
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
}

/// The `cortex_metrics` tool: a snapshot of `metrics`.
fn metrics_tool(metrics: Arc<Metrics>) -> Tool {
    let counts = json!({"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": {"type": "integer"}}});
    Tool {
        name: "cortex_metrics".into(),
        title: "Server metrics".into(),
        description: "This server's metrics: requests and errors per transport and method or \
                      tool, open connections, the request latency histogram, and query cache \
                      hits, misses and hit rate."
            .into(),
        input_schema: json!({"type": "object", "additionalProperties": false, "properties": {}}),
        output_schema: json!({"type": "object", "required": ["requests", "errors",
            "active_connections", "latency_count", "latency_sum_seconds", "latency_buckets",
            "cache_hits", "cache_misses", "cache_hit_rate"], "properties": {
            "requests": counts, "errors": counts,
            "active_connections": {"type": "object",
                "additionalProperties": {"type": "integer"}},
            "latency_count": {"type": "integer", "minimum": 0},
            "latency_sum_seconds": {"type": "number", "minimum": 0},
            "latency_buckets": {"type": "array", "description": "cumulative counts per upper \
                bound in seconds", "items": {"type": "object", "required": ["le", "count"],
                "properties": {"le": {"type": "number"}, "count": {"type": "integer"}}}},
            "cache_hits": {"type": "integer", "minimum": 0},
            "cache_misses": {"type": "integer", "minimum": 0},
            "cache_hit_rate": {"type": "number", "minimum": 0, "maximum": 1}}}),
        read_only: true,
        idempotent: false,
        exec: Exec::Inline,
        run: Arc::new(move |_| {
            serde_json::to_value(metrics.snapshot()).map_err(|e| {
                crate::error::Error::backend(format!("cannot encode the metrics: {e}"))
            })
        }),
    }
}

fn no_cursor(params: &Map<String, Value>) -> Result<(), RpcError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(()),
        Some(c) => Err(RpcError::invalid_params(format!(
            "Invalid params: unknown cursor {c} (every list fits in one page)"
        ))),
    }
}

fn tool_error(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}

fn error_response(id: Value, e: &RpcError) -> Value {
    let mut err = json!({"code": e.code, "message": e.message});
    if let Some(d) = &e.data {
        err["data"] = d.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

fn schema_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `Mcp-Name` values that are not plain ASCII arrive as `=?base64?…?=`.
fn decode_header(h: &str) -> String {
    use base64::Engine;
    if let Some(inner) = h
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(inner)
        && let Ok(s) = String::from_utf8(bytes)
    {
        return s;
    }
    h.to_owned()
}

#[cfg(test)]
mod tests;
