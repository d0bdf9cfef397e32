//! What every test binary of this crate shares: the server (`CORTEX_TEST_POSTGRES_URL`, else
//! the tests' own throwaway cluster from `cortex_core::testkit::peers`; without one the tests
//! are skipped with the cause, except under `CI=true`, where they fail) and a fresh schema per
//! store, dropped at the end.

#![allow(dead_code)] // each test binary uses a part

use cortex_core::{Ledger, LedgerOptions};
use cortex_postgres::PostgresStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server URL, or `None` (with a message, once per test binary) when the tests should be
/// skipped. Asked anew by every test: the throwaway cluster may have been stopped meanwhile.
pub fn server_url() -> Option<String> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let what = "the cortex-postgres tests";
    match cortex_core::testkit::peers::postgres_url() {
        Ok(url) => Some(url),
        // Panics under CI=true; otherwise says so once per test binary.
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            cortex_core::testkit::skip(what, &why);
            None
        }
        Err(why) => {
            ONCE.call_once(|| cortex_core::testkit::skip(what, &why));
            None
        }
    }
}

/// The URL of a fresh schema holding an empty, migrated ledger (processes then share it).
pub fn created(schemas: &Schemas, url: &str, tag: &str) -> String {
    let u = with_schema(url, &schemas.fresh(tag));
    let store = Arc::new(PostgresStore::open_url(&u).unwrap());
    drop(Ledger::open(store, LedgerOptions::default()).unwrap());
    u
}

/// A unique schema name for this process.
pub fn fresh_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "cortex_{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Drops the schemas it was given when dropped (also when a test panics).
pub struct Schemas {
    url: String,
    names: std::sync::Mutex<Vec<String>>,
}

impl Schemas {
    pub fn new(url: &str) -> Self {
        Schemas {
            url: url.to_owned(),
            names: Default::default(),
        }
    }
    pub fn fresh(&self, tag: &str) -> String {
        let s = fresh_schema(tag);
        self.names.lock().unwrap().push(s.clone());
        s
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        if std::env::var("CORTEX_TEST_KEEP_SCHEMAS").is_ok() {
            return;
        }
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            for s in self.names.lock().unwrap().iter() {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"));
            }
        }
    }
}
