//! [`McpServerBuilder`]: the server's identity, then the tools, resources and prompts each
//! feature area registers, the metrics, the query cache and the health check.

use crate::cache::{self, CacheKeyFn, QueryCache, VersionFn};
use crate::metrics::Metrics;
use crate::registry::{Prompt, Resource, ResourceTemplate, Tool};
use crate::server::McpServer;
use crate::{HealthFn, tools};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    offload: bool,
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
        self.tool(tools::metrics_tool(m))
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
    /// Runs every store read (inline tools, the cache's version, resources, prompts) on the
    /// blocking pool instead of the executor: for a store whose client blocks on a runtime of
    /// its own (the `postgres` crate), which must never run on an async worker.
    pub fn blocking_store(mut self, yes: bool) -> Self {
        self.offload = yes;
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
            offload: self.offload,
        }
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
}
