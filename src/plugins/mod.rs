//! The plugins compiled into this binary (one cargo feature per plugin crate), chosen by URL
//! scheme or name. A choice whose plugin is compiled out is an error naming the feature that
//! brings it; an unknown one lists what is available.

use cortex_core::{DynStore, Error, Result};
use std::path::Path;
use std::sync::Arc;

#[cfg(not(any(feature = "sqlite", feature = "redb", feature = "postgres")))]
compile_error!("cortex needs at least one store: enable the sqlite, redb or postgres feature");

/// A store plugin compiled into this binary.
struct StorePlugin {
    /// The URL scheme, as the backend crate exports it.
    scheme: &'static str,
    open: fn(&str) -> Result<DynStore>,
}

const STORES: &[StorePlugin] = &[
    #[cfg(feature = "sqlite")]
    StorePlugin {
        scheme: cortex_sqlite::SCHEME,
        open: |url| Ok(Arc::new(cortex_sqlite::SqliteStore::open_url(url)?)),
    },
    #[cfg(feature = "redb")]
    StorePlugin {
        scheme: cortex_redb::SCHEME,
        open: |url| Ok(Arc::new(cortex_redb::RedbStore::open_url(url)?)),
    },
    #[cfg(feature = "postgres")]
    StorePlugin {
        scheme: cortex_postgres::SCHEME,
        open: |url| Ok(Arc::new(cortex_postgres::PostgresStore::open_url(url)?)),
    },
];

/// Every store scheme this binary knows of, compiled in or not, with the cargo feature that
/// brings it (`postgresql://` is the same plugin as `postgres://`).
const STORE_FEATURES: &[(&str, &str)] = &[
    ("sqlite", "sqlite"),
    ("redb", "redb"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
];

/// The store schemes compiled into this binary.
pub fn store_schemes() -> Vec<&'static str> {
    STORES.iter().map(|p| p.scheme).collect()
}

fn compiled_out(what: &str, feature: &str, available: &[&str]) -> Error {
    Error::config(format!(
        "{what} is not compiled into this binary: rebuild with `--features {feature}` \
         (compiled in: {})",
        if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        }
    ))
}

/// The scheme of a store URL, or `None` for a plain path (a SQLite file).
fn scheme_of(url: &str) -> Option<&str> {
    url.split_once("://")
        .map(|(s, _)| s)
        .or_else(|| url.strip_prefix("sqlite:").map(|_| "sqlite"))
        .or_else(|| url.strip_prefix("redb:").map(|_| "redb"))
        // `C:\…` is a path, not a scheme.
        .filter(|s| s.len() > 1)
}

/// Opens a store from a URL (`sqlite:///path`, `redb:///path`, `postgres://…`) or a plain path
/// (SQLite).
pub fn open_store(url: &str) -> Result<DynStore> {
    if url.is_empty() {
        return Err(Error::config("the database path is empty"));
    }
    let scheme = scheme_of(url);
    #[cfg(feature = "sqlite")]
    if scheme.is_none() {
        return Ok(Arc::new(cortex_sqlite::SqliteStore::open(
            Path::new(url),
            Default::default(),
        )?));
    }
    let wanted = match scheme {
        Some("postgresql") => "postgres",
        Some(s) => s,
        None => "sqlite",
    };
    if let Some(p) = STORES.iter().find(|p| p.scheme == wanted) {
        return (p.open)(url);
    }
    let available = store_schemes();
    match (scheme, STORE_FEATURES.iter().find(|(s, _)| *s == wanted)) {
        (None, _) => Err(compiled_out(
            &format!("{url:?} is a plain path, which names a SQLite database, and SQLite"),
            "sqlite",
            &available,
        )),
        (Some(s), Some((_, feature))) => Err(compiled_out(
            &format!("the store scheme {s:?} (in {url:?})"),
            feature,
            &available,
        )),
        (Some(s), None) => Err(Error::config(format!(
            "unknown or unavailable store scheme {s:?} in {url:?}; available: {}",
            available.join(", ")
        ))),
    }
}

/// The MCP transports, by the name `--transport` takes.
pub mod transports {
    use super::compiled_out;
    use cortex_core::Result;
    use cortex_mcp::Transport;

    /// Where a network transport binds and what it records into.
    #[allow(dead_code)] // unused when only stdio is compiled in
    pub struct Network {
        /// Interface.
        pub host: String,
        /// Port (0 picks a free one).
        pub port: u16,
        /// Shared with the MCP server, so `/metrics` shows both layers.
        pub metrics: std::sync::Arc<cortex_mcp::Metrics>,
    }

    /// The transports compiled in, by name.
    pub fn names() -> Vec<&'static str> {
        [
            cfg!(feature = "stdio").then_some("stdio"),
            cfg!(feature = "http").then_some("http"),
            cfg!(feature = "http").then_some("sse"),
            cfg!(feature = "websocket").then_some("ws"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The transport named `name` (`stdio`, `http`, `sse`, `ws`).
    #[allow(unused_variables)] // `net` is unused when only stdio is compiled in
    pub fn open(name: &str, net: Network) -> Result<Box<dyn Transport>> {
        #[cfg(any(feature = "http", feature = "websocket"))]
        let http = |legacy_sse_primary| cortex_http::HttpConfig {
            host: net.host.clone(),
            port: net.port,
            legacy_sse_primary,
            metrics: net.metrics.clone(),
            ..cortex_http::HttpConfig::from_env()
        };
        match name {
            #[cfg(feature = "stdio")]
            "stdio" => Ok(Box::new(cortex_stdio::StdioTransport::new())),
            #[cfg(feature = "http")]
            "http" => Ok(Box::new(cortex_http::HttpTransport::new(http(false)))),
            #[cfg(feature = "http")]
            "sse" => Ok(Box::new(cortex_http::HttpTransport::new(http(true)))),
            #[cfg(feature = "websocket")]
            "ws" => Ok(Box::new(cortex_websocket::WebSocketTransport::new(http(
                false,
            )))),
            other => {
                let feature = match other {
                    "stdio" => "stdio",
                    "http" | "sse" => "http",
                    "ws" => "websocket",
                    _ => {
                        return Err(cortex_core::Error::config(format!(
                            "unknown transport {other:?}; available: {}",
                            names().join(", ")
                        )));
                    }
                };
                Err(compiled_out(
                    &format!("the {other} transport"),
                    feature,
                    &names(),
                ))
            }
        }
    }
}

/// Where the ledger suite of `cortex benchmark` keeps its ledgers: one file per ledger (SQLite,
/// redb) or one schema per ledger on a Postgres server, dropped when this is dropped.
pub struct BenchStores {
    kind: BenchKind,
    dir: std::path::PathBuf,
}

enum BenchKind {
    #[cfg(feature = "sqlite")]
    Sqlite(cortex_sqlite::Synchronous, String),
    #[cfg(feature = "redb")]
    Redb,
    #[cfg(feature = "postgres")]
    Postgres(
        String,
        std::sync::Mutex<Vec<Arc<cortex_postgres::PostgresStore>>>,
    ),
}

impl BenchStores {
    /// The stores of `--backend backend` (with `--synchronous` for SQLite and the server URL in
    /// `--db` for Postgres), under `dir`.
    pub fn new(backend: &str, synchronous: &str, db: &str, dir: &Path) -> Result<Self> {
        let _ = (synchronous, db);
        let kind = match backend {
            #[cfg(feature = "sqlite")]
            "sqlite" => BenchKind::Sqlite(
                match synchronous {
                    "full" => cortex_sqlite::Synchronous::Full,
                    "normal" => cortex_sqlite::Synchronous::Normal,
                    x => {
                        return Err(Error::invalid(format!(
                            "--synchronous {x:?}: expected full or normal"
                        )));
                    }
                },
                synchronous.to_owned(),
            ),
            #[cfg(feature = "redb")]
            "redb" => BenchKind::Redb,
            #[cfg(feature = "postgres")]
            "postgres" if db.starts_with("postgres://") || db.starts_with("postgresql://") => {
                BenchKind::Postgres(db.to_owned(), Default::default())
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                return Err(Error::invalid(
                    "--backend postgres needs the server: --db postgres://user@host:port/dbname \
                     (each benchmark ledger gets a schema of its own, dropped at the end)",
                ));
            }
            x => {
                let available = store_schemes();
                return Err(match STORE_FEATURES.iter().find(|(s, _)| *s == x) {
                    Some((_, feature)) => {
                        compiled_out(&format!("the {x} backend"), feature, &available)
                    }
                    None => Error::invalid(format!(
                        "--backend {x:?}: available: {}",
                        available.join(", ")
                    )),
                });
            }
        };
        Ok(BenchStores {
            kind,
            dir: dir.to_owned(),
        })
    }

    /// The backend, as the suite's header line names it.
    pub fn describe(&self) -> String {
        match &self.kind {
            #[cfg(feature = "sqlite")]
            BenchKind::Sqlite(_, mode) => format!("sqlite (synchronous={mode})"),
            #[cfg(feature = "redb")]
            BenchKind::Redb => "redb".to_owned(),
            #[cfg(feature = "postgres")]
            BenchKind::Postgres(..) => "postgres".to_owned(),
        }
    }

    /// Opens (creating) the store of the ledger `name`.
    pub fn open(&self, name: &str) -> Result<DynStore> {
        let _ = name;
        Ok(match &self.kind {
            #[cfg(feature = "sqlite")]
            BenchKind::Sqlite(sync, _) => Arc::new(cortex_sqlite::SqliteStore::open(
                &self.dir.join(format!("{name}.db")),
                cortex_sqlite::SqliteOptions {
                    synchronous: *sync,
                    ..Default::default()
                },
            )?),
            #[cfg(feature = "redb")]
            BenchKind::Redb => Arc::new(cortex_redb::RedbStore::open(
                &self.dir.join(format!("{name}.redb")),
            )?),
            #[cfg(feature = "postgres")]
            BenchKind::Postgres(url, stores) => {
                let mut c = cortex_postgres::PostgresConfig::from_url(url)?;
                c.schema = Some(format!("cortex_bench_{}_{name}", std::process::id()));
                c.pool_size = c.pool_size.max(4);
                let store = Arc::new(cortex_postgres::PostgresStore::open(c)?);
                stores
                    .lock()
                    .map_err(|_| Error::backend("lock poisoned"))?
                    .push(store.clone());
                store
            }
        })
    }
}

impl Drop for BenchStores {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let BenchKind::Postgres(_, stores) = &self.kind
            && let Ok(stores) = stores.lock()
        {
            for s in stores.iter() {
                let _ = s.drop_schema();
            }
        }
    }
}

pub mod anchors;
pub mod embedders;
pub mod signers;
