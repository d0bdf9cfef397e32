//! The `postgres://` URL: parsing it into a [`PostgresConfig`] (our `schema` and `pool_size`
//! options, the rest for the client) and showing it with the password hidden.

use cortex_core::{Error, Result};
use std::str::FromStr;
use std::time::Duration;

/// URL scheme of this backend.
pub const SCHEME: &str = "postgres";

/// How to connect: parsed from a `postgres://` URL. `Debug` never shows the password.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) client: postgres::Config,
    /// Schema holding the tables (`None`: the server's default search path).
    pub schema: Option<String>,
    /// Most connections the pool opens.
    pub pool_size: u32,
    /// How long to wait for a pooled connection.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `url` with any password replaced by `***` (in the userinfo and in a `password=` option).
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let auth_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..auth_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

impl PostgresConfig {
    /// Parses `postgres://…` or `postgresql://…`; `schema` and `pool_size` are ours, other
    /// query options go to the client.
    pub fn from_url(url: &str) -> Result<PostgresConfig> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::config(format!(
                "{:?} is not a postgres:// URL",
                redact(url)
            )));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = None;
        let mut pool_size = 16;
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("schema", s)) => {
                    if s.is_empty()
                        || s.len() > 63
                        || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || s.starts_with(|c: char| c.is_ascii_digit())
                    {
                        return Err(Error::config(format!(
                            "schema {s:?}: use letters, digits and _ (at most 63, not starting with a digit)"
                        )));
                    }
                    schema = Some(s.to_owned());
                }
                Some(("pool_size", n)) => {
                    pool_size = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::config(format!("pool_size {n:?} is not a positive number"))
                    })?;
                }
                _ => rest.push(kv),
            }
        }
        let client_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let client = postgres::Config::from_str(&client_url).map_err(|e| {
            Error::config(format!("bad Postgres URL {:?}", redact(url))).with_source(e)
        })?;
        Ok(PostgresConfig {
            url: url.to_owned(),
            client,
            schema,
            pool_size,
            connect_timeout: Duration::from_secs(30),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::ErrorKind;

    #[test]
    fn debug_and_errors_hide_the_password() {
        let c = PostgresConfig::from_url(
            "postgres://alice:s3cret@db.example:5433/ledger?schema=t1&pool_size=4&password=other",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(shown.contains("alice:***@db.example"), "{shown}");
        assert_eq!(c.schema.as_deref(), Some("t1"));
        assert_eq!(c.pool_size, 4);
        let e = PostgresConfig::from_url("postgres://a:pw@h/d?schema=x;drop").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = PostgresConfig::from_url("mysql://a:pw@h/d").unwrap_err();
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
}
