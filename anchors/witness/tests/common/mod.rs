//! Shared by the integration tests: a real witness server on 127.0.0.1:0.

#![allow(dead_code)]

use cortex_witness::{KnownLogs, WitnessServer, WitnessSigner, WitnessState};
use std::path::Path;
use std::sync::Arc;

/// A witness server running on loopback.
pub struct Running {
    /// `http://127.0.0.1:<port>`: the submission prefix.
    pub url: String,
    /// The server, to inspect its state.
    pub server: Arc<WitnessServer>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the listener (the state file stays).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts a witness with `signer`, `logs` and its state at `db`.
pub async fn start(signer: WitnessSigner, logs: KnownLogs, db: &Path) -> Running {
    let state = WitnessState::open(db).unwrap();
    let server = Arc::new(WitnessServer::new(signer, logs, state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn({
        let server = server.clone();
        async move {
            let _ = cortex_witness::server::serve(server, listener, std::future::pending()).await;
        }
    });
    Running { url, server, task }
}

/// POSTs `body` to `<url>/add-checkpoint`: status, content type, body.
pub async fn post(url: &str, body: &str) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

/// The shared test vectors.
pub fn vectors() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}
