//! The protocol's rules, in one place for the server and every transport: the revisions spoken
//! and their eras, JSON-RPC and MCP error codes, the `_meta` keys of the stateless revision, and
//! the 2026-07-28 rule that Streamable HTTP headers mirror the body.
//!
//! Read from the modelcontextprotocol schemas (`2025-11-25/schema.ts`, `2026-07-28/schema.ts`)
//! and the 2026-07-28 `basic/versioning.mdx` and `transports/streamable-http.mdx`.

use serde_json::{Map, Value, json};

/// The stateless revision this server speaks.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// Handshake revisions this server negotiates, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The revision Streamable HTTP assumes when a client sends no `MCP-Protocol-Version` header
/// (as the 2025-06-18 transport specification says).
pub const HTTP_DEFAULT_VERSION: &str = "2025-03-26";

/// `_meta` key of a stateless request's protocol version.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of a stateless request's client capabilities.
pub const META_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of a stateless request's client identity (`{"name", "version"}`).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the server's identity in a stateless result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Every protocol version this server accepts, modern first.
pub fn supported_versions() -> Vec<&'static str> {
    MODERN_VERSIONS
        .iter()
        .chain(LEGACY_VERSIONS)
        .copied()
        .collect()
}

/// True if this server speaks `version` (either era).
pub fn is_supported(version: &str) -> bool {
    MODERN_VERSIONS.contains(&version) || LEGACY_VERSIONS.contains(&version)
}

/// True if `version` is a stateless revision: no `initialize`, no sessions, headers mirror the
/// body.
pub fn is_stateless(version: &str) -> bool {
    MODERN_VERSIONS.contains(&version)
}

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
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    /// The same error with structured `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    /// `-32602`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }
    /// `-32020`.
    pub fn header_mismatch(message: impl Into<String>) -> Self {
        Self::new(codes::HEADER_MISMATCH, message)
    }
    /// `-32022` for a version this server does not speak, listing the ones it does.
    pub fn unsupported_version(requested: &str) -> Self {
        Self::new(
            codes::UNSUPPORTED_PROTOCOL_VERSION,
            format!(
                "Unsupported protocol version {requested:?}; supported: {}",
                supported_versions().join(", ")
            ),
        )
        .with_data(json!({"supported": supported_versions(), "requested": requested}))
    }
    /// The JSON-RPC error response for request `id` (`null` when unknown).
    pub fn to_response(&self, id: Value) -> Value {
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            err["data"] = d.clone();
        }
        json!({"jsonrpc": "2.0", "id": id, "error": err})
    }
}

/// The HTTP status of a stateless (2026-07-28) Streamable HTTP reply whose error has `code`:
/// `400` for the header and version errors, `404` for an unknown method, `200` otherwise (the
/// error travels in the body).
pub fn http_status(code: i64) -> u16 {
    match code {
        codes::HEADER_MISMATCH
        | codes::MISSING_REQUIRED_CLIENT_CAPABILITY
        | codes::UNSUPPORTED_PROTOCOL_VERSION => 400,
        codes::METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

/// The error reply, as text, to a frame that carries no request to answer (not JSON, too
/// large, not UTF-8): JSON-RPC says its id is `null`.
pub fn frame_error(code: i64, message: impl Into<String>) -> String {
    RpcError::new(code, message)
        .to_response(Value::Null)
        .to_string()
}

/// The error code of a reply to one request, or `None` for a result (and for a batch, which
/// is an array). Skims the reply without building it (results can be large: a search's hits).
pub fn reply_error_code(reply: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    // Unknown fields (`result`, `id`, `jsonrpc`) are skipped, not built.
    #[derive(serde::Deserialize)]
    struct Reply {
        error: Option<Code>,
    }
    serde_json::from_str::<Reply>(reply)
        .ok()?
        .error
        .map(|e| e.code)
}

/// "a string", "an object", … for error messages about a JSON value's type.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes an `Mcp-Name` header value: names that are not plain ASCII arrive as
/// `=?base64?…?=`. `None` if the sentinel form does not hold base64 of UTF-8.
pub fn decode_name_header(value: &str) -> Option<String> {
    use base64::Engine as _;
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(value.to_owned()),
    }
}

/// The request field an `Mcp-Name` header mirrors for `method`, if any.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The headers a 2026-07-28 Streamable HTTP request carries about its body, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct MirroredHeaders<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`, possibly in its `=?base64?…?=` form.
    pub name: Option<&'a str>,
    /// Whether `Mcp-Method` (and `Mcp-Name` where it applies) must be present: true where the
    /// transport is Streamable HTTP, false where the headers were relayed and may be absent.
    pub required: bool,
}

/// The 2026-07-28 rule that the headers mirror the body: `Mcp-Method` equals `method`,
/// `Mcp-Name` equals `params.name` (`params.uri` for `resources/read`), and the version header
/// equals `_meta[META_VERSION]` where the body has one (a stateless version header on a body
/// without `_meta` is the server's to refuse: it decides the era). A `-32020` error names the
/// first header that disagrees.
pub fn check_mirrored_headers(
    headers: &MirroredHeaders<'_>,
    method: &str,
    params: Option<&Map<String, Value>>,
) -> Result<(), RpcError> {
    match headers.method {
        None if headers.required => {
            return Err(RpcError::header_mismatch(
                "Header mismatch: Mcp-Method header is missing",
            ));
        }
        Some(h) if h != method => {
            return Err(RpcError::header_mismatch(format!(
                "Header mismatch: Mcp-Method header value '{h}' does not match body value \
                 '{method}'"
            )));
        }
        _ => {}
    }
    if let Some(field) = name_field(method) {
        let body = params
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match headers.name.map(decode_name_header) {
            None if headers.required => {
                return Err(RpcError::header_mismatch(
                    "Header mismatch: Mcp-Name header is missing",
                ));
            }
            None => {}
            Some(None) => {
                return Err(RpcError::header_mismatch(
                    "Header mismatch: Mcp-Name header is not valid base64",
                ));
            }
            Some(Some(h)) if h != body => {
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{h}' does not match body value \
                     '{body}'"
                )));
            }
            Some(Some(_)) => {}
        }
    }
    let body_version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_VERSION))
        .and_then(Value::as_str);
    match (headers.version, body_version) {
        (Some(h), Some(b)) if h != b => Err(RpcError::header_mismatch(format!(
            "Header mismatch: MCP-Protocol-Version header value '{h}' does not match body value \
             '{b}'"
        ))),
        _ => Ok(()),
    }
}

/// Whether a message (one object or a batch) holds at least one request, which is owed a
/// reply: a `method` and an `id` (notifications and responses are not).
pub fn has_request(message: &Value) -> bool {
    let is_request = |m: &Value| m.get("method").is_some() && m.get("id").is_some();
    match message {
        Value::Array(items) => items.iter().any(is_request),
        other => is_request(other),
    }
}

/// A JSON-RPC message is an object or a non-empty array of objects (`-32600` otherwise).
pub fn check_shape(message: &Value) -> Result<(), RpcError> {
    let ok = match message {
        Value::Object(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_object),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request: expected a JSON-RPC object or a non-empty batch of objects",
        ))
    }
}

/// Checks one message of a stateless (2026-07-28) Streamable HTTP request against its headers:
/// a batch is refused (`-32600`: the revision has none), and a request's headers must mirror
/// its body ([`check_mirrored_headers`], `required`). Messages without a method pass.
pub fn check_stateless_message(
    headers: &MirroredHeaders<'_>,
    message: &Value,
) -> Result<(), RpcError> {
    let Value::Object(object) = message else {
        return Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Invalid Request: batches are not part of this protocol revision",
        ));
    };
    match object.get("method").and_then(Value::as_str) {
        Some(method) => check_mirrored_headers(
            headers,
            method,
            object.get("params").and_then(Value::as_object),
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn versions_and_eras() {
        assert_eq!(supported_versions()[0], "2026-07-28");
        assert!(is_supported("2024-11-05") && is_supported("2026-07-28"));
        assert!(!is_supported("1999-01-01"));
        assert!(is_stateless("2026-07-28") && !is_stateless("2025-11-25"));
        let e = RpcError::unsupported_version("1999-01-01");
        assert_eq!(e.code, codes::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(e.data.unwrap()["requested"], "1999-01-01");
    }

    #[test]
    fn mirrored_headers_must_match_the_body() {
        let p = params(json!({"name": "cortex_search",
            "_meta": {META_VERSION: "2026-07-28"}}));
        let h = MirroredHeaders {
            version: Some("2026-07-28"),
            method: Some("tools/call"),
            name: Some("=?base64?Y29ydGV4X3NlYXJjaA==?="),
            required: true,
        };
        check_mirrored_headers(&h, "tools/call", Some(&p)).unwrap();
        let cases = [
            (
                MirroredHeaders { method: None, ..h },
                "Mcp-Method header is missing",
            ),
            (
                MirroredHeaders {
                    method: Some("tools/list"),
                    ..h
                },
                "Mcp-Method header value",
            ),
            (
                MirroredHeaders { name: None, ..h },
                "Mcp-Name header is missing",
            ),
            (
                MirroredHeaders {
                    name: Some("=?base64?%%?="),
                    ..h
                },
                "not valid base64",
            ),
            (
                MirroredHeaders {
                    name: Some("other"),
                    ..h
                },
                "Mcp-Name header value 'other'",
            ),
            (
                MirroredHeaders {
                    version: Some("2025-11-25"),
                    ..h
                },
                "MCP-Protocol-Version",
            ),
        ];
        for (bad, want) in cases {
            let e = check_mirrored_headers(&bad, "tools/call", Some(&p)).unwrap_err();
            assert_eq!(e.code, codes::HEADER_MISMATCH);
            assert!(e.message.contains(want), "{} lacks {want:?}", e.message);
        }
        // Relayed headers may be absent.
        let relayed = MirroredHeaders {
            required: false,
            ..MirroredHeaders::default()
        };
        check_mirrored_headers(&relayed, "tools/call", Some(&p)).unwrap();
    }

    #[test]
    fn http_statuses() {
        assert_eq!(http_status(codes::HEADER_MISMATCH), 400);
        assert_eq!(http_status(codes::METHOD_NOT_FOUND), 404);
        assert_eq!(http_status(codes::INVALID_PARAMS), 200);
        let err = RpcError::new(codes::METHOD_NOT_FOUND, "x").to_response(json!(7));
        assert_eq!(reply_error_code(&err.to_string()), Some(-32601));
        let ok = r#"{"id":7,"jsonrpc":"2.0","result":{"content":[{"text":"{\"error\":1}"}]}}"#;
        assert_eq!(reply_error_code(ok), None);
        assert_eq!(reply_error_code("[{\"id\":1}]"), None);
    }
}
