//! A read-only [`c2sp.org/tlog-tiles`](https://c2sp.org/tlog-tiles) HTTP view of a CORTEX ledger,
//! so that existing transparency-log tooling can audit it:
//!
//! - `GET /checkpoint`: the latest signed checkpoint note (`text/plain; charset=utf-8`,
//!   `Cache-Control: no-cache`), or `404` with a text body if the ledger has none yet;
//! - `GET /tile/<L>/<N>[.p/<W>]`: height-8 Merkle tree tiles;
//! - `GET /tile/entries/<N>[.p/<W>]`: entry bundles, each entry as `u16be(len) ‖ canonical bytes`.
//!
//! Tiles and bundles (`application/octet-stream`) are those of the tree the latest *checkpoint*
//! signs, never of the unsigned head: a tile the checkpoint does not cover is `404`, so the view
//! moves only when a checkpoint is made. A tile's bytes never change once served, so they are
//! sent with `Cache-Control: public, max-age=31536000, immutable`. A path that is not canonical
//! tlog-tiles is `400` with a body naming the problem. `HEAD` works on every resource.
//!
//! The bytes come from [`cortex_core::ledger::publication`]; this crate only serves them. Store
//! reads run on tokio's blocking pool. Full tiles and bundles are kept in a small in-memory cache
//! ([`FULL_TILE_CACHE_ENTRIES`]): their bytes never change, and once the latest checkpoint covers
//! one, every later checkpoint does too (the ledger refuses to sign a shorter tree), so a cached
//! one is served without reading the store. A ledger that hashes with BLAKE3 has no tlog-tiles view
//! (the format assumes SHA-256): [`router`] refuses it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex_core::ledger::publication::{PublicTile, read_public_tile, require_sha256};
use cortex_core::{DynLedgerStore, Error, ErrorKind, Ledger, Result};
use quick_cache::sync::Cache;
use std::future::Future;
use std::sync::Arc;

/// `Cache-Control` of tiles and entry bundles: their bytes never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of the checkpoint and of errors: they change when a checkpoint is made.
pub const MUTABLE: &str = "no-cache";

/// Full tiles and entry bundles kept in memory: at most 8 KiB each for hash tiles, about 256
/// entries' canonical bytes for a bundle (some 40 MB at 160-byte entries).
pub const FULL_TILE_CACHE_ENTRIES: usize = 1024;

const TEXT: &str = "text/plain; charset=utf-8";
const OCTETS: &str = "application/octet-stream";

/// The routes `/checkpoint`, `/tile/…` and `/tile/entries/…` over `ledger`'s store, to serve on
/// their own ([`serve`]) or to nest under a prefix in a larger server (`Router::nest`).
///
/// Refuses (`Unsupported`) a ledger that does not hash with SHA-256.
pub fn router(ledger: &Ledger) -> Result<Router> {
    require_sha256(ledger.hasher().algorithm())?;
    Ok(Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .fallback(unknown)
        .with_state(Arc::new(View {
            store: ledger.store().clone(),
            full_tiles: Cache::new(FULL_TILE_CACHE_ENTRIES),
        })))
}

/// What the handlers share: the store and the cache of full tiles.
struct View {
    store: DynLedgerStore,
    full_tiles: Cache<PublicTile, Bytes>,
}

/// Binds `host:port` (port 0 picks a free one), with an error naming the address.
pub async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener> {
    let address = format!("{host}:{port}");
    tokio::net::TcpListener::bind(&address).await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot listen on {address}"),
        )
        .with_context("address", &address)
        .with_source(e)
    })
}

/// Serves the view of `ledger` on `listener` until `shutdown` resolves, then lets open requests
/// finish. What `cortex tiles serve` runs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ledger: &Ledger,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(ledger)?)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, "the tiles server failed").with_source(e))
}

async fn checkpoint(State(view): State<Arc<View>>) -> Response {
    let store = view.store.clone();
    match blocking(move || latest_note(&*store)).await {
        Ok(note) => reply(StatusCode::OK, TEXT, MUTABLE, note.into_bytes()),
        Err(e) => error_reply(&e),
    }
}

async fn tile(State(view): State<Arc<View>>, uri: Uri) -> Response {
    // The raw path (not the percent-decoded parameter): only the canonical spelling is a tile.
    let path = uri.path().trim_start_matches('/');
    let tile = match PublicTile::parse(path) {
        Ok(t) => t,
        Err(e) => return error_reply(&e),
    };
    if let Some(bytes) = view.full_tiles.get(&tile) {
        return reply(StatusCode::OK, OCTETS, IMMUTABLE, bytes);
    }
    let store = view.store.clone();
    let read = blocking(move || {
        let size = latest_size(&*store)?;
        read_public_tile(&*store, size, &tile)
    });
    match read.await {
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            if tile.is_full() {
                view.full_tiles.insert(tile, bytes.clone());
            }
            reply(StatusCode::OK, OCTETS, IMMUTABLE, bytes)
        }
        Err(e) => error_reply(&e),
    }
}

async fn unknown(uri: Uri) -> Response {
    text_reply(
        StatusCode::NOT_FOUND,
        format!(
            "no resource at {}: this tlog-tiles view serves /checkpoint, /tile/<L>/<N>[.p/<W>] \
             and /tile/entries/<N>[.p/<W>]",
            uri.path()
        ),
    )
}

fn latest_note(store: &dyn cortex_core::LedgerStore) -> Result<String> {
    store
        .latest_checkpoint()?
        .map(|c| c.note)
        .ok_or_else(no_checkpoint)
}

fn latest_size(store: &dyn cortex_core::LedgerStore) -> Result<u64> {
    store
        .latest_checkpoint()?
        .map(|c| c.size)
        .ok_or_else(no_checkpoint)
}

fn no_checkpoint() -> Error {
    Error::not_found(
        "this ledger has no checkpoint yet, so it publishes no tiles: make one with `cortex \
         ledger checkpoint`",
    )
}

/// Runs a store read on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::backend("a tiles request's store read failed").with_source(e))?
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body.into(),
    )
        .into_response()
}

fn text_reply(status: StatusCode, message: String) -> Response {
    reply(status, TEXT, MUTABLE, format!("{message}\n").into_bytes())
}

/// Client mistakes are 400/404; only the server's own failures are 5xx.
fn error_reply(e: &Error) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text_reply(status, e.to_string())
}
