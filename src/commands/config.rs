//! `cortex config show`: every effective setting, where it came from, passwords hidden.

use crate::config::Settings;
use crate::config_file::{ConfigFile, redact_url, source};
use crate::output;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use cortex_core::{Error, Result};
use serde_json::{Value, json};
use std::path::Path;

pub fn show(s: &Settings, m: &ArgMatches, path: Option<&Path>, file: &ConfigFile) -> Result<u8> {
    let home_source = if m.value_source("home") == Some(clap::parser::ValueSource::CommandLine) {
        "flag"
    } else if m.value_source("home") == Some(clap::parser::ValueSource::EnvVariable) {
        "env"
    } else {
        "default"
    };
    let mut rows: Vec<(String, Value, &'static str)> = vec![
        (
            "config".into(),
            json!(path.map(|p| p.display().to_string())),
            source(m, "config", false).name(),
        ),
        (
            "home".into(),
            json!(s.home.display().to_string()),
            home_source,
        ),
        (
            "db".into(),
            json!(redact_url(&s.db)),
            source(m, "db", file.db.is_some()).name(),
        ),
        (
            "hasher".into(),
            json!(s.hasher.map(|h| h.name())),
            source(m, "hasher", file.hasher.is_some()).name(),
        ),
        (
            "key".into(),
            json!(s.key.display().to_string()),
            source(m, "key", file.key.is_some()).name(),
        ),
        (
            "agent".into(),
            json!(s.agent),
            source(m, "agent", file.agent.is_some()).name(),
        ),
        (
            "policy".into(),
            json!(s.policy_path().map(|p| p.display().to_string())),
            source(m, "policy", file.policy.is_some()).name(),
        ),
        (
            "signers".into(),
            json!(s.signers),
            source(m, "signer", file.signers.is_some()).name(),
        ),
        (
            "anchors".into(),
            json!(s.anchors),
            source(m, "anchor", file.anchors.is_some()).name(),
        ),
    ];
    // `cortex serve`'s settings as a `cortex serve` started now would have them.
    let serve_matches = crate::Cli::command()
        .try_get_matches_from(["cortex", "serve"])
        .map_err(|e| Error::config(format!("cannot read serve's settings: {e}")))?;
    let sm = serve_matches
        .subcommand_matches("serve")
        .ok_or_else(|| Error::config("cannot read serve's settings"))?;
    let mut serve = crate::commands::serve::ServeArgs::from_arg_matches(sm)
        .map_err(|e| Error::config(format!("cannot read serve's settings: {e}")))?;
    if let Some(f) = &file.serve {
        serve.apply_file(f, sm)?;
    }
    rows.extend(serve.describe(sm, file.serve.as_ref()));
    if s.json {
        let settings: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(k, v, src)| (k.clone(), json!({"value": v, "source": src})))
            .collect();
        output::json(&json!({"ok": true, "settings": settings}));
    } else {
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (k, v, src) in &rows {
            let shown = match v {
                Value::String(t) => t.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("{k:<width$}  {shown}  ({src})");
        }
        println!(
            "\nPrecedence: flag > environment > config file > default. API keys and key files' contents are never shown."
        );
    }
    Ok(0)
}
