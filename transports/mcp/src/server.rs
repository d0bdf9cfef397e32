//! The server: one dispatch for every transport and both protocol eras. A JSON-RPC message
//! in, an optional reply out; no I/O.

use crate::blocking;
use crate::cache::{CacheKeyFn, QueryCache, VersionFn};
use crate::metrics::Metrics;
use crate::protocol::{
    LEGACY_VERSIONS, META_CAPS, META_SERVER_INFO, META_VERSION, MODERN_VERSIONS, MirroredHeaders,
    RpcError, check_mirrored_headers, codes, json_type, supported_versions,
};
use crate::registry::{Exec, Prompt, Resource, ResourceTemplate, Tool};
use crate::schema;
use crate::transport::{Incoming, MessageHandler, Outbound};
use crate::{HealthFn, METRICS_LABEL, protocol};
use cortex_core::BoxFuture;
use cortex_core::error::ErrorKind;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A request's result: a JSON value, or the result's text as it is sent (a query-cache hit,
/// or a result just cached), which is spliced into the reply without being parsed again.
enum Answer {
    Value(Value),
    Text(Arc<str>),
}

/// Which era a request is served in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Era {
    Legacy(String),
    Modern(String),
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
    pub(crate) sessions: Mutex<HashMap<Option<String>, String>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cache: Option<QueryCache>,
    pub(crate) cache_keys: BTreeMap<String, CacheKeyFn>,
    pub(crate) memory_version: Option<VersionFn>,
    pub(crate) health: Option<HealthFn>,
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

    /// Runs the health check: `Err` names what is unreachable.
    pub fn check_health(&self) -> std::result::Result<(), String> {
        match &self.health {
            Some(check) => check(),
            None => Ok(()),
        }
    }

    /// Every protocol version this server accepts, modern first.
    pub fn supported_versions() -> Vec<&'static str> {
        supported_versions()
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
                    json_type(other)
                )));
            }
        };
        // The transport's headers (Streamable HTTP relays them) must mirror the body wherever
        // the request is stateless: the one rule, shared with the HTTP transport.
        let header_stateless = incoming
            .protocol_version
            .as_deref()
            .is_some_and(protocol::is_stateless);
        if body_version.is_some() || header_stateless {
            let headers = MirroredHeaders {
                version: incoming.protocol_version.as_deref(),
                method: incoming.mcp_method.as_deref(),
                name: incoming.mcp_name.as_deref(),
                required: false,
            };
            check_mirrored_headers(&headers, method, Some(params))?;
        }
        let Some(version) = body_version else {
            if header_stateless {
                let h = incoming.protocol_version.as_deref().unwrap_or_default();
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: MCP-Protocol-Version is {h} but the request has no \
                     _meta[\"{META_VERSION}\"]"
                )));
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
                        json_type(other)
                    )));
                }
            }
            Ok(Era::Modern(version))
        } else if LEGACY_VERSIONS.contains(&version.as_str()) {
            Ok(Era::Legacy(version))
        } else {
            Err(RpcError::unsupported_version(&version))
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
    ) -> Result<Answer, RpcError> {
        if method == "initialize" {
            return self.initialize(&params, incoming).map(Answer::Value);
        }
        let era = self.era(method, &params, incoming)?;
        let modern = matches!(era, Era::Modern(_));
        let (mut result, ttl) = match method {
            "server/discover" => (
                json!({
                    "supportedVersions": supported_versions(),
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
            // Decorated for its era inside, so that a cached result is sent as it is.
            "tools/call" => return self.call_tool(params, modern).await,
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
            self.decorate(&mut result, ttl);
        }
        Ok(Answer::Value(result))
    }

    /// What every stateless (2026-07-28) result carries: `resultType`, the server's identity
    /// in `_meta`, and for cacheable results `ttlMs` and `cacheScope`.
    fn decorate(&self, result: &mut Value, ttl: Option<u64>) {
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
                    json_type(other)
                )));
            }
            None => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: initialize requires params.protocolVersion (this server \
                     speaks {})",
                    supported_versions().join(", ")
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

    /// `tools/call`: validates, answers from the query cache when it can, runs the tool
    /// otherwise; the result is decorated for the era (`modern`) before it is cached, so a hit
    /// is the reply's result text as it is sent.
    async fn call_tool(
        &self,
        params: Map<String, Value>,
        modern: bool,
    ) -> Result<Answer, RpcError> {
        let name = match params.get("name") {
            Some(Value::String(n)) => n,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: tools/call params.name must be a string, got {}",
                    json_type(other)
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
                let mut r = tool_error(&format!(
                    "invalid arguments for {name}: arguments must be a JSON object, got {}",
                    json_type(other)
                ));
                if modern {
                    self.decorate(&mut r, None);
                }
                return Ok(Answer::Value(r));
            }
        };
        let problems = schema::validate(&tool.input_schema, &Value::Object(args.clone()));
        if !problems.is_empty() {
            let mut r = tool_error(&format!(
                "invalid arguments for {name}: {}",
                problems.join("; ")
            ));
            if modern {
                self.decorate(&mut r, None);
            }
            return Ok(Answer::Value(r));
        }
        // The query cache: the version is read before the query, so a result is only ever
        // served to a request that read the same version (see `cache`).
        let cached = match (&self.cache, self.cache_keys.get(name), &self.memory_version) {
            (Some(cache), Some(key_fn), Some(version)) => match (key_fn(&args), version()) {
                (Some(k), Ok(v)) => {
                    let era = if modern { "modern" } else { "legacy" };
                    let key = format!("{name}\u{0}{era}\u{0}{}", k.key);
                    Some((cache, key, k.now_relative, v))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((cache, key, _, version)) = &cached {
            let hit = cache.get_text(key, *version);
            self.metrics.record_cache(hit.is_some());
            if let Some(result) = hit {
                return Ok(Answer::Text(result));
            }
        }
        let mut result = self.run_tool(name, tool, args).await?;
        if modern {
            self.decorate(&mut result, None);
        }
        match cached {
            Some((cache, key, now_relative, version))
                if result.get("isError") == Some(&Value::Bool(false)) =>
            {
                Ok(Answer::Text(cache.insert(
                    key,
                    version,
                    now_relative,
                    result,
                )))
            }
            _ => Ok(Answer::Value(result)),
        }
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
