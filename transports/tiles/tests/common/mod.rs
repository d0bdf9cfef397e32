//! A served ledger and a plain HTTP client for the tests.

#![allow(dead_code)]

use cortex_core::{DynLedgerStore, Ledger, LedgerOptions};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The checkpoint origin (and key name) of test ledgers.
pub const ORIGIN: &str = "example.com/cortex/tiles-test";

/// A SQLite ledger with an Ed25519 checkpoint key, in a temporary directory.
pub struct TestLedger {
    pub ledger: Arc<Ledger>,
    pub vkey: String,
    _dir: tempfile::TempDir,
}

impl TestLedger {
    pub fn new() -> TestLedger {
        let dir = tempfile::tempdir().unwrap();
        let store: DynLedgerStore = Arc::new(
            SqliteStore::open(&dir.path().join("cortex.db"), SqliteOptions::default()).unwrap(),
        );
        let options = LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        };
        let mut ledger = Ledger::open(store, options).unwrap();
        let signer = Ed25519Signer::generate(ORIGIN).unwrap();
        let vkey = signer.to_vkey();
        ledger.add_signer(Arc::new(signer)).unwrap();
        TestLedger {
            ledger: Arc::new(ledger),
            vkey,
            _dir: dir,
        }
    }

    /// Appends `n` entries in batches of at most 10,000.
    pub fn append(&self, n: usize) {
        let mut left = n;
        while left > 0 {
            let batch = left.min(10_000);
            let entries = cortex_core::testkit::sample_entries(batch);
            self.ledger.append(&entries).unwrap();
            left -= batch;
        }
    }
}

/// A tiles server on 127.0.0.1:0 with its own runtime; requests block the calling thread.
pub struct Served {
    runtime: Runtime,
    pub base: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A response as the tests look at it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    /// The body as text (binary bodies are shown lossily, for assertion messages).
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(300).collect()
    }
}

impl Served {
    pub fn start(ledger: Arc<Ledger>) -> Served {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(cortex_tiles::bind("127.0.0.1", 0))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            cortex_tiles::serve(listener, &ledger, shutdown)
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Served {
            runtime,
            base,
            client,
            _stop: stop,
        }
    }

    /// `method` on `path` (which starts with `/`).
    pub fn request(&self, method: reqwest::Method, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let r = self.client.request(method, &url).send().await.unwrap();
            Reply {
                status: r.status(),
                headers: r.headers().clone(),
                body: r.bytes().await.unwrap().to_vec(),
            }
        })
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request(reqwest::Method::GET, path)
    }
}
