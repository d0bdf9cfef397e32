//! The OpenAPI 3.1 document of `cortex serve`, built from [`crate::routes::ROUTES`] and, for
//! each route that runs an MCP tool, that tool's own input and output JSON Schemas (OpenAPI 3.1
//! schemas are JSON Schema 2020-12, so they are embedded as they are). The REST API and its
//! description therefore cannot drift apart from the MCP tools, which are the one place where
//! each operation's arguments are defined.

use crate::routes::{MAX_ENTRIES, Op, ROUTES, ReadOp, Route};
use cortex_mcp::McpServer;
use serde_json::{Map, Value, json};

fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["kind", "message"], "properties": {
            "kind": {"type": "string", "description": "invalid_input, not_found, conflict, \
                unauthorized, forbidden, unavailable, …"},
            "message": {"type": "string"}}}}})
}

fn errors(codes: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for code in codes {
        let what = match *code {
            "400" => "Bad input (the message names it)",
            "401" => "No API key, or a malformed, unknown, wrong or revoked one",
            "403" => "The key's role does not allow this",
            "404" => "Not found",
            "408" => "The request took too long",
            "409" => "Conflict with the current state",
            "413" => "The body is too large",
            "429" => "The key's rate limit is reached (see Retry-After)",
            "503" => "The database is unreachable",
            _ => "Server error",
        };
        m.insert(
            (*code).into(),
            json!({"description": what, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    m
}

fn param(name: &str, place: &str, required: bool, schema: Value) -> Value {
    json!({"name": name, "in": place, "required": required, "schema": schema})
}

fn integer(min: u64) -> Value {
    json!({"type": "integer", "minimum": min})
}

fn read_params(op: ReadOp) -> Vec<Value> {
    match op {
        ReadOp::Entries => vec![
            param("from", "query", false, integer(0)),
            param(
                "limit",
                "query",
                false,
                json!({"type": "integer", "minimum": 1, "maximum": MAX_ENTRIES}),
            ),
        ],
        ReadOp::Consistency => vec![
            param("old", "query", true, integer(0)),
            param("new", "query", false, integer(0)),
        ],
        ReadOp::Export => vec![
            param(
                "format",
                "query",
                false,
                json!({"type": "string", "enum": ["jsonl", "json", "csv"]}),
            ),
            param("from", "query", false, integer(0)),
            param("to", "query", false, integer(0)),
        ],
        _ => Vec::new(),
    }
}

/// The body of `cortex_store`'s routes: one fact, or a batch (`facts` alone), never both. The
/// tool's input schema lists every field as optional in one flat object (what MCP clients
/// take); the tool refuses the mixes, so the document states the two shapes, one fact's being
/// the schema of a batch's item. `batch` keeps the batch shape alone.
fn store_body(input: &Value, batch: bool) -> Value {
    let facts = input["properties"]["facts"].clone();
    let one = facts["items"].clone();
    let many = json!({"type": "object", "additionalProperties": false, "required": ["facts"],
        "properties": {"facts": facts}});
    if batch {
        many
    } else {
        json!({"oneOf": [one, many]})
    }
}

fn operation(route: &Route, mcp: &McpServer) -> Value {
    let path_params = route.path_params();
    let mut parameters = Vec::new();
    let mut body = None;
    let mut out = json!({"type": "object"});
    let mut description = route.summary.to_owned();
    match route.op {
        Op::Tool { name } => {
            let tool = mcp.tools().find(|t| t.name == name);
            let input = tool.map_or(json!({"type": "object"}), |t| t.input_schema.clone());
            if let Some(t) = tool {
                out = t.output_schema.clone();
                description = format!(
                    "{}\n\nRuns the MCP tool `{name}` (needs the {} role).",
                    t.description, t.access
                );
            }
            let props = input["properties"].as_object().cloned().unwrap_or_default();
            let required: Vec<&str> = input["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for p in &path_params {
                let schema = props.get(*p).cloned().unwrap_or(json!({"type": "string"}));
                parameters.push(param(p, "path", true, schema));
            }
            // cortex_history takes exactly one of fact_id or project: the path gives one, so the
            // other (and, for a fact, the project listing's limit) is no parameter of the route.
            let unused: &[&str] = match (name, path_params.first()) {
                ("cortex_history", Some(&"fact_id")) => &["project", "limit"],
                ("cortex_history", Some(&"project")) => &["fact_id"],
                _ => &[],
            };
            if route.method == "GET" {
                for (k, schema) in &props {
                    if !path_params.contains(&k.as_str()) && !unused.contains(&k.as_str()) {
                        parameters.push(param(
                            k,
                            "query",
                            required.contains(&k.as_str()),
                            schema.clone(),
                        ));
                    }
                }
            } else {
                let mut schema = input.clone();
                if let Some(p) = schema["properties"].as_object_mut() {
                    p.retain(|k, _| !path_params.contains(&k.as_str()));
                }
                if let Some(r) = schema["required"].as_array_mut() {
                    r.retain(|k| !k.as_str().is_some_and(|k| path_params.contains(&k)));
                }
                if name == "cortex_store" {
                    schema = store_body(&schema, route.id == "storeFactBatch");
                }
                // Required when the body must name something the path does not give.
                let needed = schema.get("oneOf").is_some()
                    || schema["required"].as_array().is_some_and(|r| !r.is_empty());
                body = Some(json!({"required": needed, "content": {
                    "application/json": {"schema": schema}}}));
            }
        }
        Op::Read(op) => {
            for p in &path_params {
                let schema = if *p == "fact_id" {
                    integer(0)
                } else {
                    json!({"type": "string"})
                };
                parameters.push(param(p, "path", true, schema));
            }
            parameters.extend(read_params(op));
            description.push_str("\n\nNeeds the read role.");
        }
    }
    let ok_content = if matches!(route.op, Op::Read(ReadOp::Export)) {
        json!({"application/jsonl": {"schema": {"type": "string"}},
               "application/json": {"schema": {"type": "object",
                   "required": ["format", "entries"]}},
               "text/csv": {"schema": {"type": "string"}}})
    } else {
        json!({"application/json": {"schema": out}})
    };
    let mut responses = errors(&[
        "400", "401", "403", "404", "408", "409", "413", "429", "500", "503",
    ]);
    responses.insert(
        route.status.to_string(),
        json!({"description": "Success", "content": ok_content}),
    );
    let mut op = json!({
        "operationId": route.id,
        "summary": route.summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": []}],
    });
    if let Some(b) = body {
        op["requestBody"] = b;
    }
    op
}

/// The document served at `/openapi.json`.
pub fn document(mcp: &McpServer) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(route, mcp);
    }
    let open = |id: &str, summary: &str, content: Value| {
        json!({"get": {"operationId": id, "summary": summary, "security": [],
            "responses": {"200": {"description": "OK", "content": content}}}})
    };
    paths.insert(
        "/health".into(),
        open(
            "health",
            "Liveness: the process serves requests",
            json!({"application/json": {"schema": {"type": "object", "required": ["status"]}}}),
        ),
    );
    let mut ready = open(
        "ready",
        "Readiness: the database is reachable and its migrations are current",
        json!({"application/json": {"schema": {"type": "object", "required": ["status"]}}}),
    );
    ready["get"]["responses"]["503"] = json!({"description": "Not ready (the message says why)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    paths.insert("/ready".into(), ready);
    paths.insert(
        "/metrics".into(),
        open(
            "metrics",
            "Prometheus metrics",
            json!({"text/plain": {"schema": {"type": "string"}}}),
        ),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CORTEX",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An agent memory on a tamper-evident audit ledger. Every write is a \
                ledger entry; checkpoints are signed C2SP notes. Send an API key as \
                `Authorization: Bearer cortex_…` (`cortex keys api create`). MCP over HTTP is \
                served at /mcp (Streamable HTTP) and /sse + /messages (legacy), behind the same \
                keys.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": error_schema()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "An API key: cortex_<12 hex>_<43 base64url>"}},
        },
    })
}
