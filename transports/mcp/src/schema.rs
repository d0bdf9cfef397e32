//! A small JSON Schema checker for the subset of keywords our tool schemas use: `type` (one or a
//! list), `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`. Unknown keywords are ignored.
//! Tool input is checked before a tool runs, so a bad argument never reaches the store.

use serde_json::Value;

/// Checks `value` against `schema`; returns one sentence per problem, naming the path.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "arguments", &mut errors);
    errors
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(want: &str, v: &Value) -> bool {
    let got = type_name(v);
    got == want || (want == "number" && got == "integer")
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(w) => matches_type(w, value),
            Value::Array(ws) => ws
                .iter()
                .filter_map(Value::as_str)
                .any(|w| matches_type(w, value)),
            _ => true,
        };
        if !ok {
            let want = match t {
                Value::Array(ws) => ws
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" or "),
                other => other.as_str().unwrap_or("?").to_owned(),
            };
            errors.push(format!(
                "{path} must be {want}, got {} ({})",
                type_name(value),
                short(value)
            ));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum")
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        errors.push(format!(
            "{path} must be one of {}, got {}",
            list.join(", "),
            short(value)
        ));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                errors.push(format!("{path} must be at least {min}, got {n}"));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                errors.push(format!("{path} must be at most {max}, got {n}"));
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errors.push(format!(
                    "{path} must be at least {min} characters long, got {len}"
                ));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errors.push(format!(
                    "{path} must be at most {max} characters long, got {len}"
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                errors.push(format!("{path} must hold at least {min} items, got {n}"));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                errors.push(format!("{path} must hold at most {max} items, got {n}"));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(req)) = s.get("required") {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errors.push(format!("{path}.{r} is required"));
                    }
                }
            }
            for (k, v) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(ps, v, &format!("{path}.{k}"), errors),
                    None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let known: Vec<&str> = props
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        errors.push(format!(
                            "{path}.{k} is not a known argument (known: {})",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_types_required_and_unknown_keys() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "required": ["index"],
            "properties": {"index": {"type": "integer", "minimum": 0},
                           "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}});
        assert!(validate(&schema, &json!({"index": 3})).is_empty());
        assert_eq!(
            validate(&schema, &json!({})),
            ["arguments.index is required"]
        );
        assert!(validate(&schema, &json!({"index": "3"}))[0].contains("must be integer"));
        assert!(validate(&schema, &json!({"index": 1.5}))[0].contains("must be integer"));
        assert!(validate(&schema, &json!({"index": -1}))[0].contains("at least 0"));
        assert!(validate(&schema, &json!({"index": 1, "x": 1}))[0].contains("not a known"));
        assert!(validate(&schema, &json!({"index": 1, "tags": [1]}))[0].contains("tags[0]"));
        assert!(
            validate(&schema, &json!({"index": 1, "tags": ["a", "b", "c"]}))[0]
                .contains("at most 2 items")
        );
    }
}
