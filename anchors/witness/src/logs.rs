//! The logs a witness serves: each origin and the Ed25519 note keys it trusts for it.
//!
//! The logs file has one key per line: `<vkey>` (the origin is the key's name, as for CORTEX
//! ledgers) or `<vkey> <origin>` when the origin differs from the key name (the origin is the
//! rest of the line and may contain spaces, e.g. `go.sum database tree`). Several lines may
//! name the same origin (key rotation). Blank lines and lines starting with `#` are ignored.

use cortex_core::{Error, Result, Verifier};
use cortex_ed25519::Ed25519Verifier;
use std::collections::BTreeMap;
use std::path::Path;

/// A log's Ed25519 note key (algorithm 0x01): the ledger's own verifier key type.
pub type LogKey = Ed25519Verifier;

/// The known logs: origin → trusted keys.
#[derive(Debug, Clone, Default)]
pub struct KnownLogs {
    logs: BTreeMap<String, Vec<LogKey>>,
}

impl KnownLogs {
    /// No logs.
    pub fn new() -> KnownLogs {
        KnownLogs::default()
    }

    /// Trusts `key` for `origin` (`None`: the key's name).
    pub fn add(&mut self, key: LogKey, origin: Option<&str>) -> Result<()> {
        let origin = origin.unwrap_or(key.key_name()).to_owned();
        if origin.is_empty() || origin.contains('\n') {
            return Err(Error::invalid(format!(
                "origin {origin:?} is empty or has a newline"
            )));
        }
        self.logs.entry(origin).or_default().push(key);
        Ok(())
    }

    /// Parses a logs file's text (see the module doc); errors name the line.
    pub fn parse(text: &str) -> Result<KnownLogs> {
        let mut logs = KnownLogs::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (vkey, origin) = match line.split_once(' ') {
                Some((v, o)) => (v, Some(o.trim())),
                None => (line, None),
            };
            LogKey::from_vkey(vkey)
                .and_then(|k| logs.add(k, origin))
                .map_err(|e| e.with_context("line", n + 1))?;
        }
        Ok(logs)
    }

    /// Reads a logs file; errors name the file and line.
    pub fn read_file(path: &Path) -> Result<KnownLogs> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read the logs file {}", path.display())).with_source(e)
        })?;
        Self::parse(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// The keys trusted for `origin`, if it is known.
    pub fn keys(&self, origin: &str) -> Option<Vec<&dyn Verifier>> {
        self.logs
            .get(origin)
            .map(|ks| ks.iter().map(|k| k as &dyn Verifier).collect())
    }

    /// The known origins.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.logs.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_with_and_without_an_origin() {
        let logs = KnownLogs::parse(
            "# logs\n\nexample.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx\n\
             sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8 go.sum database tree\n",
        )
        .unwrap();
        assert_eq!(
            logs.origins().collect::<Vec<_>>(),
            ["example.com/log/testdata", "go.sum database tree"]
        );
        assert_eq!(
            logs.keys("go.sum database tree").unwrap()[0].key_name(),
            "sum.golang.org"
        );
        assert!(logs.keys("sum.golang.org").is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = KnownLogs::parse("\nnot-a-key\n").unwrap_err();
        assert!(format!("{e:?}").contains("line"), "{e:?}");
    }
}
