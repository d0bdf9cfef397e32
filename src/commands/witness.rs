//! `cortex witness serve`: a C2SP tlog-witness for other logs (another CORTEX ledger, or any
//! C2SP log whose key is in the logs file).

use crate::output;
use clap::Args;
use cortex_core::{Error, Result};
use cortex_witness::{KnownLogs, WitnessServer, WitnessSigner, WitnessState};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `cortex witness serve` flags. The witness's key and state have flags of their own: the global
/// `--key`/`--db` (and `CORTEX_SIGNING_KEY`/`CORTEX_DB`) name the ledger's, which must never serve
/// as the witness's.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The witness's signing key (cosignature/v1). Default: HOME/witness.skey.
    #[arg(long, env = "CORTEX_WITNESS_KEY")]
    witness_key: Option<PathBuf>,
    /// The witness's state file (SQLite). Default: HOME/witness.db.
    #[arg(long, env = "CORTEX_WITNESS_STATE")]
    state: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 7380)]
    port: u16,
    /// The logs it witnesses: one log verifier key per line, `<vkey>` (origin = key name) or
    /// `<vkey> <origin>`.
    #[arg(long)]
    logs: PathBuf,
    /// Witness name for a new key, created at the key path if no key is there yet.
    #[arg(long)]
    name: Option<String>,
}

/// Where the witness keeps its key and state: `--witness-key` / `--state` when given, else
/// `HOME/witness.skey` and `HOME/witness.db` (never the ledger's key or database).
struct Paths {
    key: PathBuf,
    db: PathBuf,
}

impl Paths {
    fn new(home: &Path, args: &ServeArgs) -> Paths {
        Paths {
            key: args
                .witness_key
                .clone()
                .unwrap_or_else(|| home.join("witness.skey")),
            db: args
                .state
                .clone()
                .unwrap_or_else(|| home.join("witness.db")),
        }
    }
}

fn signer(key: &Path, name: Option<&str>) -> Result<WitnessSigner> {
    if key.exists() {
        let signer = WitnessSigner::read_file(key)?;
        // Only a key written as a witness key (0x04): the global --key (CORTEX_SIGNING_KEY) may
        // name the ledger's checkpoint key, and one key must not serve both roles.
        let text = std::fs::read_to_string(key).unwrap_or_default();
        if text.trim() != signer.to_skey() {
            return Err(Error::config(format!(
                "{} is an Ed25519 note key, not a witness (cosignature/v1) key: give the \
                 witness its own key file (--key, or none for <home>/witness.skey)",
                key.display()
            )));
        }
        if let Some(n) = name.filter(|n| *n != signer.name()) {
            return Err(Error::config(format!(
                "{} holds the key of witness {:?}, not {n:?}",
                key.display(),
                signer.name()
            )));
        }
        return Ok(signer);
    }
    let name = name.ok_or_else(|| {
        Error::config(format!(
            "no witness key at {}: pass --name <witness name> to create one",
            key.display()
        ))
    })?;
    let signer = WitnessSigner::generate(name)?;
    match signer.create_files(key)? {
        Some(_) => Ok(signer),
        None => WitnessSigner::read_file(key),
    }
}

pub fn serve(json: bool, home: &Path, args: ServeArgs) -> Result<u8> {
    let paths = Paths::new(home, &args);
    let signer = signer(&paths.key, args.name.as_deref())?;
    let logs = KnownLogs::read_file(&args.logs)?;
    if logs.origins().next().is_none() {
        return Err(Error::config(format!(
            "the logs file {} lists no log keys: a witness for no log would refuse everything",
            args.logs.display()
        )));
    }
    let state = WitnessState::open(&paths.db)?;
    let (name, vkey) = (signer.name().to_owned(), signer.to_vkey());
    let origins: Vec<String> = logs.origins().map(str::to_owned).collect();
    let server = Arc::new(WitnessServer::new(signer, logs, state));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the async runtime").with_source(e))?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::config(format!("cannot listen on {addr}")).with_source(e))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| Error::backend("no local address").with_source(e))?
        );
        if json {
            output::json(&serde_json::json!({
                "ok": true, "listening": url, "name": name, "vkey": vkey,
                "logs": origins, "db": paths.db,
            }));
        } else {
            println!("✓ Witness {name:?} listening on {url} (POST {url}/add-checkpoint)");
            println!("  verifier key: {vkey}");
            println!("  logs: {}", origins.join(", "));
            println!("  state: {}", paths.db.display());
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        cortex_witness::server::serve(server, listener, shutdown).await
    })?;
    Ok(0)
}
