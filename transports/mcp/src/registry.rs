//! What an MCP server offers: tools, resources and prompts. Each feature area (the ledger now,
//! the memory engine next) registers its items on a [`crate::McpServerBuilder`]; the
//! protocol layer never names a tool.

use cortex_core::access::{Principal, Role};
use cortex_core::error::Result;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The body of a tool: validated arguments and who is calling in, the structured result out.
/// An `Err` becomes a tool result with `isError: true` carrying the error's message (the model
/// can read it and correct itself); it is never a JSON-RPC error.
pub type ToolFn = Arc<dyn Fn(Map<String, Value>, &Caller) -> Result<Value> + Send + Sync>;

/// Who made a tool call, as far as the protocol says: recorded as the author of what a call
/// writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The client's declared name: `clientInfo.name` of the session's `initialize` (handshake
    /// era) or of the request's `_meta` (stateless era); `None` if it declared none.
    pub client: Option<String>,
    /// The surface: `mcp-` and the transport's name (`mcp-stdio`, `mcp-http`, `mcp-sse`,
    /// `mcp-ws`), `rest`, or `mcp` when the transport did not say.
    pub surface: String,
    /// The API key the call was made with, where the surface checks keys (`cortex serve`); its
    /// identity is then the author of what the call writes and the voter of its votes, and its
    /// role must reach each tool's [`Tool::access`]. `None` on surfaces without keys (stdio).
    pub principal: Option<Principal>,
}

impl Caller {
    /// The agent the call acts as: the key's identity where there is a key, else the client's
    /// declared name.
    pub fn agent(&self) -> Option<&str> {
        match &self.principal {
            Some(p) => Some(&p.identity),
            None => self.client.as_deref(),
        }
    }

    /// `Ok` if the caller may run `tool` (always, without a key).
    pub fn may_run(&self, tool: &Tool) -> Result<()> {
        match &self.principal {
            Some(p) => p.require(tool.access, &tool.name),
            None => Ok(()),
        }
    }
}

/// Where a tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// On the caller's thread (the transport's async executor). For calls that take
    /// microseconds to a few milliseconds: a SQLite read, a proof, a single-row write.
    Inline,
    /// On a dedicated OS thread, awaited without blocking the executor. For calls whose time
    /// grows with the ledger (a full verify).
    Thread,
}

/// A tool: its description for `tools/list` and its body.
#[derive(Clone)]
pub struct Tool {
    /// Unique name (`cortex_…`).
    pub name: String,
    /// Display name.
    pub title: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments (`type: object` at the root).
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`.
    pub output_schema: Value,
    /// True if the tool changes nothing.
    pub read_only: bool,
    /// True if calling it twice with the same arguments has no further effect.
    pub idempotent: bool,
    /// Where it runs.
    pub exec: Exec,
    /// The role an API key needs to run it (read for reads, write for writes, admin for
    /// erasure).
    pub access: Role,
    /// The body.
    pub run: ToolFn,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool").field("name", &self.name).finish()
    }
}

impl Tool {
    /// The `tools/list` entry.
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": false,
                "idempotentHint": self.idempotent,
                "openWorldHint": false,
            },
        })
    }
}

/// Reads a resource's current text.
pub type ResourceFn = Arc<dyn Fn() -> Result<String> + Send + Sync>;

/// A resource with a fixed URI.
#[derive(Clone)]
pub struct Resource {
    /// `cortex://…`
    pub uri: String,
    /// Short name.
    pub name: String,
    /// Display name.
    pub title: String,
    /// What it holds.
    pub description: String,
    /// MIME type of the text.
    pub mime_type: String,
    /// Reads the current text; a `NotFound` error is reported as "resource not found".
    pub read: ResourceFn,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource").field("uri", &self.uri).finish()
    }
}

impl Resource {
    /// The `resources/list` entry.
    pub fn describe(&self) -> Value {
        json!({"uri": self.uri, "name": self.name, "title": self.title,
               "description": self.description, "mimeType": self.mime_type})
    }
}

/// One argument of a prompt template.
#[derive(Debug, Clone)]
pub struct PromptArgument {
    /// Name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Whether it must be given.
    pub required: bool,
}

/// Builds a prompt's messages (role, text) from its string arguments.
pub type PromptFn =
    Arc<dyn Fn(&Map<String, Value>) -> Result<Vec<(&'static str, String)>> + Send + Sync>;

/// A prompt template.
#[derive(Clone)]
pub struct Prompt {
    /// Name.
    pub name: String,
    /// Display name.
    pub title: String,
    /// What it is for.
    pub description: String,
    /// Its arguments.
    pub arguments: Vec<PromptArgument>,
    /// Builds the messages.
    pub get: PromptFn,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt").field("name", &self.name).finish()
    }
}

impl Prompt {
    /// The `prompts/list` entry.
    pub fn describe(&self) -> Value {
        let args: Vec<Value> = self
            .arguments
            .iter()
            .map(|a| json!({"name": a.name, "description": a.description, "required": a.required}))
            .collect();
        json!({"name": self.name, "title": self.title, "description": self.description,
               "arguments": args})
    }
}

/// Reads a templated resource from the variables matched in its URI (percent-decoded).
pub type TemplateFn =
    Arc<dyn Fn(&std::collections::BTreeMap<String, String>) -> Result<String> + Send + Sync>;

/// A resource template (RFC 6570 level 1: `{name}` variables, each matching one non-empty path
/// segment), listed by `resources/templates/list` and read through `resources/read`.
#[derive(Clone)]
pub struct ResourceTemplate {
    /// `cortex://projects/{project}/facts`
    pub uri_template: String,
    /// Short name.
    pub name: String,
    /// Display name.
    pub title: String,
    /// What it holds.
    pub description: String,
    /// MIME type of the text.
    pub mime_type: String,
    /// Reads the text for the matched variables; `NotFound` is reported as "resource not found".
    pub read: TemplateFn,
}

impl std::fmt::Debug for ResourceTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceTemplate")
            .field("uri_template", &self.uri_template)
            .finish()
    }
}

impl ResourceTemplate {
    /// The `resources/templates/list` entry.
    pub fn describe(&self) -> Value {
        json!({"uriTemplate": self.uri_template, "name": self.name, "title": self.title,
               "description": self.description, "mimeType": self.mime_type})
    }

    /// The variables if `uri` matches the template, percent-decoded; `None` otherwise.
    pub fn matches(&self, uri: &str) -> Option<std::collections::BTreeMap<String, String>> {
        let mut vars = std::collections::BTreeMap::new();
        let mut rest = uri;
        let mut tpl = self.uri_template.as_str();
        while !tpl.is_empty() {
            if let Some(after_brace) = tpl.strip_prefix('{') {
                let (name, after) = after_brace.split_once('}')?;
                // The variable runs to the next literal (or the end) and stays in one segment.
                let next_literal = after.split('{').next().unwrap_or("");
                let end = if next_literal.is_empty() {
                    rest.len()
                } else {
                    rest.find(next_literal)?
                };
                let raw = &rest[..end];
                if raw.is_empty() || raw.contains('/') {
                    return None;
                }
                vars.insert(name.to_owned(), percent_decode(raw)?);
                rest = &rest[end..];
                tpl = after;
            } else {
                let literal_end = tpl.find('{').unwrap_or(tpl.len());
                rest = rest.strip_prefix(&tpl[..literal_end])?;
                tpl = &tpl[literal_end..];
            }
        }
        rest.is_empty().then_some(vars)
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
