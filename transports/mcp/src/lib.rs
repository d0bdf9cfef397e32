//! `cortex-mcp`: the Model Context Protocol for CORTEX, as pure code: a JSON-RPC 2.0 message
//! in, an optional reply out ([`McpServer`] implements [`MessageHandler`]). The transports
//! (`cortex-stdio`, `cortex-http`, `cortex-websocket`) implement [`Transport`] and only move
//! messages; every protocol rule lives here, once:
//!
//! - [`protocol`]: revisions and eras, error codes, `_meta` keys, the header rules;
//! - [`server`] and [`builder`]: validation and dispatch ([`McpServer`]);
//! - [`registry`] and [`schema`]: tools, resources, prompts and their JSON schemas;
//! - [`tools`]: the ledger and agent-memory tools, built on `cortex-core`;
//! - [`cache`]: the exact query cache; [`metrics`]: the server metrics (Prometheus text);
//! - [`transport`]: the [`Transport`] and [`MessageHandler`] traits.
//!
//! Both protocol eras are served by one dispatch (see docs/ARCHITECTURE.md, "MCP"):
//! - **legacy** (2024-11-05 … 2025-11-25): the `initialize` handshake negotiates a version per
//!   session (per stdio process, per HTTP session id); `notifications/initialized`, `ping`.
//! - **modern** (2026-07-28): stateless; every request carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"]` and `…/clientCapabilities`;
//!   `server/discover` advertises versions and capabilities; results carry `resultType`; the
//!   transport's `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers must match the body
//!   (`-32020`), unknown versions get `-32022` listing the supported ones.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
pub mod builder;
pub mod cache;
pub mod metrics;
pub mod protocol;
pub mod registry;
pub mod schema;
pub mod server;
pub mod tools;
pub mod transport;

pub use builder::McpServerBuilder;
pub use cache::{CacheKey, CacheKeyFn, QueryCache, VersionFn};
pub use metrics::Metrics;
pub use protocol::{LEGACY_VERSIONS, MODERN_VERSIONS, RpcError, codes};
pub use registry::{Exec, Prompt, PromptArgument, Resource, ResourceTemplate, Tool, ToolFn};
pub use server::McpServer;
pub use transport::{InMemoryTransport, Incoming, MessageHandler, Outbound, Transport};

use std::sync::Arc;

/// The transport label under which the MCP server records its requests in [`Metrics`]
/// (the transports record theirs under `http`, `ws`, …).
pub const METRICS_LABEL: &str = "mcp";

/// Checks what the server depends on (the database); `Err` names what is unreachable.
pub type HealthFn = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

#[cfg(test)]
mod tests;
