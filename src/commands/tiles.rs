//! `cortex tiles serve`: the read-only tlog-tiles view of the ledger over HTTP. Wiring only: the
//! view is `cortex_tiles` (bytes from `cortex_core::ledger::publication`).

use crate::config::Settings;
use clap::Args;
use cortex_core::Result;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Interface to bind; loopback by default.
    #[arg(long, env = "CORTEX_TILES_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one (the address is printed on stderr).
    #[arg(long, env = "CORTEX_TILES_PORT", default_value_t = 8090)]
    port: u16,
}

/// Serves `/checkpoint`, `/tile/…` and `/tile/entries/…` for the latest checkpoint until Ctrl-C.
#[cfg(feature = "tiles")]
pub fn serve(s: &Settings, a: ServeArgs) -> Result<u8> {
    use cortex_core::Error;
    let ledger = crate::commands::ledger::open_ledger(s, 0)?;
    // Refuse a BLAKE3 ledger before binding anything.
    cortex_core::ledger::publication::require_sha256(ledger.hasher().algorithm())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the async runtime").with_source(e))?;
    let served = runtime.block_on(async {
        let listener = cortex_tiles::bind(&a.host, a.port).await?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::backend("the listener has no address").with_source(e))?;
        eprintln!("cortex tlog-tiles view on http://{address} (follows the latest checkpoint)");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        cortex_tiles::serve(listener, &ledger, shutdown).await
    });
    // The ledger (and its store's clients) is dropped after the runtime, as in `mcp start`.
    drop(runtime);
    drop(ledger);
    served?;
    Ok(0)
}

/// Without the `tiles` feature: an error naming it.
#[cfg(not(feature = "tiles"))]
pub fn serve(_: &Settings, _: ServeArgs) -> Result<u8> {
    Err(cortex_core::Error::new(
        cortex_core::ErrorKind::Unsupported,
        "the tlog-tiles view is not compiled into this binary: rebuild with `--features tiles`",
    ))
}
