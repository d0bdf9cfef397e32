//! Request dispatch: which era a request is served in (the body's `_meta` version, the
//! transport's mirrored headers, or the legacy session's negotiated version), the `initialize`
//! handshake, the capabilities, and the method table that answers each request and decorates
//! stateless results.

use super::McpServer;
use super::tool_call::Answer;
use crate::protocol::{
    self, LEGACY_VERSIONS, META_CAPS, META_SERVER_INFO, META_VERSION, MODERN_VERSIONS,
    MirroredHeaders, RpcError, check_mirrored_headers, codes, json_type, supported_versions,
};
use crate::registry::{Prompt, Resource, ResourceTemplate};
use crate::transport::Incoming;
use serde_json::{Map, Value, json};

/// Which era a request is served in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Era {
    Legacy(String),
    Modern(String),
}

impl McpServer {
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
                .and_then(|s| s.get(&incoming.session_id).map(|s| s.version.clone()));
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

    /// Who is calling: the client's declared name (the request's `_meta` in the stateless era,
    /// the session's `initialize` otherwise) and the transport.
    fn caller(
        &self,
        params: &Map<String, Value>,
        incoming: &Incoming,
        modern: bool,
    ) -> crate::registry::Caller {
        let client = if modern {
            params
                .get("_meta")
                .and_then(|m| m.get(protocol::META_CLIENT_INFO))
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        } else {
            self.sessions
                .lock()
                .ok()
                .and_then(|s| s.get(&incoming.session_id).and_then(|s| s.client.clone()))
        };
        crate::registry::Caller {
            client: client.filter(|c| !c.trim().is_empty()),
            principal: incoming.principal.clone(),
            surface: if incoming.transport.is_empty() {
                "mcp".to_owned()
            } else {
                format!("mcp-{}", incoming.transport)
            },
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

    pub(super) async fn request(
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
            "tools/call" => {
                let caller = self.caller(&params, incoming, modern);
                return self.call_tool(params, modern, &caller).await;
            }
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
                (self.read_resource(&params, &era).await?, Some(0))
            }
            "prompts/list" if !self.prompts.is_empty() => {
                no_cursor(&params)?;
                let list: Vec<Value> = self.prompts.iter().map(Prompt::describe).collect();
                (json!({"prompts": list}), Some(0))
            }
            "prompts/get" if !self.prompts.is_empty() => (self.get_prompt(&params).await?, None),
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
    pub(super) fn decorate(&self, result: &mut Value, ttl: Option<u64>) {
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
        let client = params
            .get("clientInfo")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(
                incoming.session_id.clone(),
                super::Session {
                    version: version.to_owned(),
                    client,
                },
            );
        }
        Ok(json!({
            "protocolVersion": version,
            "capabilities": self.capabilities(),
            "serverInfo": self.server_info,
            "instructions": self.instructions,
        }))
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
