//! The configuration file (TOML) and the precedence of settings: a flag beats its environment
//! variable, which beats the file, which beats the built-in default. The file is `--config` /
//! `CORTEX_CONFIG`, else `HOME/config.toml` when it exists. Unknown keys are refused by name.
//! `cortex config show` prints every effective setting with where it came from, secrets hidden.

use clap::ArgMatches;
use clap::parser::ValueSource;
use cortex_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file's top level: the global settings, and `[serve]`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Database URL or path.
    pub db: Option<String>,
    /// Hasher of a new ledger.
    pub hasher: Option<String>,
    /// Checkpoint signing key.
    pub key: Option<PathBuf>,
    /// Author of memory writes.
    pub agent: Option<String>,
    /// Ledger policy file.
    pub policy: Option<PathBuf>,
    /// Extra signers, KIND:PATH.
    pub signers: Option<Vec<String>>,
    /// Anchors, KIND+URL.
    pub anchors: Option<Vec<String>>,
    /// `cortex serve`'s settings.
    pub serve: Option<ServeFile>,
}

/// `[serve]`: the flags of `cortex serve`, by their long names with `_`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub rate_limit: Option<u32>,
    pub allowed_origins: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub max_sessions: Option<usize>,
    pub session_idle_secs: Option<u64>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub no_auth: Option<bool>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// Whether argument `id` of `m` was given by a flag or its environment variable.
pub fn given(m: &ArgMatches, id: &str) -> Option<Source> {
    match m.try_get_raw(id).ok().flatten().and(m.value_source(id)) {
        Some(ValueSource::CommandLine) => Some(Source::Flag),
        Some(ValueSource::EnvVariable) => Some(Source::Env),
        _ => None,
    }
}

/// The source of argument `id`: flag or env if given so, else the file if `in_file`, else the
/// default.
pub fn source(m: &ArgMatches, id: &str, in_file: bool) -> Source {
    given(m, id).unwrap_or(if in_file {
        Source::File
    } else {
        Source::Default
    })
}

impl ConfigFile {
    /// Reads the file named by `--config`/`CORTEX_CONFIG`, else `home/config.toml` if it
    /// exists; `(None, default)` if there is none.
    pub fn load(explicit: Option<&Path>, home: &Path) -> Result<(Option<PathBuf>, ConfigFile)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = home.join("config.toml");
                if !p.is_file() {
                    return Ok((None, ConfigFile::default()));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::config(format!("cannot read the config file {}", path.display())).with_source(e)
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            Error::config(format!(
                "the config file {} is not valid: {}",
                path.display(),
                e.message()
            ))
        })?;
        Ok((Some(path), file))
    }
}

/// `db` with any password hidden (`user:***@`, `password=***`).
pub fn redact_url(db: &str) -> String {
    let mut out = db.to_owned();
    if let Some((scheme, rest)) = db.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        out = format!("{scheme}://{user}:***@{host}");
    }
    if let Some(i) = out.find("password=") {
        let end = out[i..].find('&').map_or(out.len(), |j| i + j);
        out.replace_range(i + "password=".len()..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:s3cret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://u@db/x?password=s3cret&sslmode=off"),
            "postgres://u@db/x?password=***&sslmode=off"
        );
        assert_eq!(redact_url("/var/lib/cortex.db"), "/var/lib/cortex.db");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = toml::from_str::<ConfigFile>("dbb = \"x\"").unwrap_err();
        assert!(e.message().contains("dbb"), "{e}");
        let e = toml::from_str::<ConfigFile>("[serve]\nport = \"x\"").unwrap_err();
        assert!(e.message().contains("invalid type"), "{e}");
    }
}
