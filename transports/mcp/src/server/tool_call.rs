//! `tools/call`: argument validation, the query cache, and running a tool (inline or on a
//! blocking thread) into its MCP result.

use super::McpServer;
use crate::blocking;
use crate::protocol::{RpcError, codes, json_type};
use crate::registry::{Caller, Exec, Tool};
use crate::schema;
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// A request's result: a JSON value, or the result's text as it is sent (a query-cache hit,
/// or a result just cached), which is spliced into the reply without being parsed again.
pub(super) enum Answer {
    Value(Value),
    Text(Arc<str>),
}

impl McpServer {
    /// `tools/call`: validates, answers from the query cache when it can, runs the tool
    /// otherwise; the result is decorated for the era (`modern`) before it is cached, so a hit
    /// is the reply's result text as it is sent.
    pub(super) async fn call_tool(
        &self,
        params: Map<String, Value>,
        modern: bool,
        caller: &Caller,
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
        if let Err(e) = caller.may_run(tool) {
            let mut r = tool_error(&format!("{}: {e}", e.kind().as_str()));
            if modern {
                self.decorate(&mut r, None);
            }
            return Ok(Answer::Value(r));
        }
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
        let version = match (&self.cache, self.cache_keys.get(name)) {
            (Some(_), Some(_)) => self.current_version().await,
            _ => None,
        };
        let cached = match (&self.cache, self.cache_keys.get(name), version) {
            (Some(cache), Some(key_fn), Some(v)) => match key_fn(&args) {
                Some(k) => {
                    let era = if modern { "modern" } else { "legacy" };
                    let key = format!("{name}\u{0}{era}\u{0}{}", k.key);
                    Some((cache, key, k.now_relative, v))
                }
                None => None,
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
        let mut result = self.run_tool(name, tool, args, caller.clone()).await?;
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

    /// Runs tool `name` outside JSON-RPC (the REST API): the same argument validation, access
    /// check, query cache and body as `tools/call`, answering the structured result as JSON
    /// text, or the error (`InvalidInput` for arguments the schema refuses, `Forbidden` for a
    /// key whose role is too low, the tool's own error otherwise).
    /// Each call is timed under the transport label `tool` and the tool's name.
    pub async fn invoke(
        &self,
        name: &str,
        args: Map<String, Value>,
        caller: &Caller,
    ) -> cortex_core::Result<Arc<str>> {
        let started = std::time::Instant::now();
        let outcome = self.invoke_untimed(name, args, caller).await;
        self.metrics
            .record_operation("tool", name, started.elapsed(), outcome.is_ok());
        outcome
    }

    async fn invoke_untimed(
        &self,
        name: &str,
        args: Map<String, Value>,
        caller: &Caller,
    ) -> cortex_core::Result<Arc<str>> {
        use cortex_core::Error;
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| Error::not_found(format!("no operation {name}")))?;
        caller.may_run(tool)?;
        let problems = schema::validate(&tool.input_schema, &Value::Object(args.clone()));
        if !problems.is_empty() {
            return Err(Error::invalid(problems.join("; ")));
        }
        let version = match (&self.cache, self.cache_keys.get(name)) {
            (Some(_), Some(_)) => self.current_version().await,
            _ => None,
        };
        let cached = match (&self.cache, self.cache_keys.get(name), version) {
            (Some(cache), Some(key_fn), Some(v)) => {
                key_fn(&args).map(|k| (cache, format!("{name}\u{0}rest\u{0}{}", k.key), k, v))
            }
            _ => None,
        };
        if let Some((cache, key, _, version)) = &cached {
            let hit = cache.get_text(key, *version);
            self.metrics.record_cache(hit.is_some());
            if let Some(text) = hit {
                return Ok(text);
            }
        }
        let value = match self.execute(tool, args, caller.clone()).await {
            Ok(outcome) => outcome?,
            Err(()) => {
                return Err(Error::backend(format!(
                    "operation {name} failed unexpectedly"
                )));
            }
        };
        Ok(match cached {
            Some((cache, key, k, version)) => cache.insert(key, version, k.now_relative, value),
            None => Arc::from(value.to_string()),
        })
    }

    /// Runs a tool's body where it belongs (inline or on its own thread); `Err(())` if it
    /// panicked.
    async fn execute(
        &self,
        tool: &Tool,
        args: Map<String, Value>,
        caller: Caller,
    ) -> Result<cortex_core::Result<Value>, ()> {
        let run = tool.run.clone();
        match tool.exec {
            Exec::Inline if self.offload => {
                self.read(move || run(args, &caller)).await.map_err(|_| ())
            }
            Exec::Inline => catch_unwind(AssertUnwindSafe(|| run(args, &caller))).map_err(|_| ()),
            Exec::Thread => blocking::run(move || run(args, &caller))
                .await
                .map_err(|_| ()),
        }
    }

    async fn run_tool(
        &self,
        name: &str,
        tool: &Tool,
        args: Map<String, Value>,
        caller: Caller,
    ) -> Result<Value, RpcError> {
        let outcome = self.execute(tool, args, caller).await;
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
}

fn tool_error(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}
