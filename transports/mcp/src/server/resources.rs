//! `resources/read` (fixed resources and URI templates) and `prompts/get`.

use super::McpServer;
use super::dispatch::Era;
use crate::protocol::{RpcError, codes};
use cortex_core::error::ErrorKind;
use serde_json::{Map, Value, json};

impl McpServer {
    pub(super) async fn read_resource(
        &self,
        params: &Map<String, Value>,
        era: &Era,
    ) -> Result<Value, RpcError> {
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
                let read = t.read.clone();
                return match self.read(move || read(&vars)).await {
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
        let read = r.read.clone();
        match self.read(move || read()).await {
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

    pub(super) async fn get_prompt(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
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
        let get = prompt.get.clone();
        let owned = args.clone();
        let messages = match self.read(move || get(&owned)).await {
            Ok(m) => m,
            Err(_) => {
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("Internal error building prompt {name}"),
                ));
            }
        };
        let messages = messages.map_err(|e| match e.kind() {
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
