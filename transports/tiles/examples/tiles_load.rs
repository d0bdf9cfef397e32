//! Serves the tlog-tiles view of a large SQLite ledger for a load test with `wrk`.
//!
//! ```text
//! cargo run --release -p cortex-tiles --example tiles_load -- /tmp/tiles-bench 1000000 8089
//! wrk -t2 -c32 -d20s -s /tmp/tiles-bench/hash-tiles.lua http://127.0.0.1:8089
//! wrk -t2 -c32 -d20s -s /tmp/tiles-bench/entry-bundles.lua http://127.0.0.1:8089
//! wrk -t2 -c32 -d20s -s /tmp/tiles-bench/checkpoint.lua http://127.0.0.1:8089
//! ```
//!
//! Arguments: a directory (the database `cortex.db` is created there once and reused), the number
//! of entries, the port. It checkpoints the ledger, writes the wrk scripts (each cycles through a
//! fixed list of 512 URLs spread over the tree, the same on every run) and serves until killed.

use cortex_core::ledger::publication::{PublicTile, width_in_tree};
use cortex_core::{DynLedgerStore, Ledger, LedgerOptions, NewEntry};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, entries, port] = &args[..] else {
        eprintln!("usage: tiles_load <dir> <entries> <port>");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let entries: u64 = entries.parse().expect("entries: a number");
    let port: u16 = port.parse().expect("port: a number");
    let ledger = open_ledger(dir, entries);
    let size = ledger.checkpoint().expect("checkpoint").record.size;
    write_scripts(dir, size);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = cortex_tiles::bind("127.0.0.1", port).await.expect("bind");
        println!(
            "serving {size} entries on http://{}",
            listener.local_addr().expect("address")
        );
        cortex_tiles::serve(listener, &ledger, std::future::pending())
            .await
            .expect("serve");
    });
}

/// Opens the ledger in `dir`, appending entries until it holds `entries`.
fn open_ledger(dir: &Path, entries: u64) -> Ledger {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let store: DynLedgerStore =
        Arc::new(SqliteStore::open(&dir.join("cortex.db"), options).expect("open the database"));
    let key_path = dir.join("bench.skey");
    let signer = match std::fs::read_to_string(&key_path) {
        Ok(text) => Ed25519Signer::from_skey(text.trim()).expect("key"),
        Err(_) => {
            let s = Ed25519Signer::generate("example.com/cortex/tiles-bench").expect("key");
            std::fs::write(&key_path, s.to_skey()).expect("write the key");
            s
        }
    };
    let options = LedgerOptions {
        hasher: None,
        checkpoint_every: 0,
    };
    let mut ledger = Ledger::open(store, options).expect("open the ledger");
    ledger.add_signer(Arc::new(signer)).expect("signer");
    let start = Instant::now();
    let mut size = ledger.head().expect("head").size;
    let appended = entries.saturating_sub(size);
    while size < entries {
        let batch: Vec<NewEntry> = (size..entries.min(size + 10_000))
            .map(|i| {
                NewEntry::new(
                    format!("project-{}", i % 7),
                    "tool.call",
                    format!("{{\"i\":{i},\"tool\":\"search\",\"query\":\"how are tiles served\"}}"),
                )
            })
            .collect();
        size = ledger.append(&batch).expect("append").head.size;
    }
    if appended > 0 {
        println!("appended {appended} entries in {:.1?}", start.elapsed());
    }
    ledger
}

/// Writes `hash-tiles.lua`, `entry-bundles.lua` and `checkpoint.lua` into `dir`.
fn write_scripts(dir: &Path, size: u64) {
    let full_level0 = size / 256;
    // A fixed spread: tile k of 512 is at 1/512 of the way through the tree, plus the edge tiles.
    let spread = |k: u64| full_level0.saturating_sub(1) * k / 511;
    let mut tiles: Vec<String> = (0..500)
        .map(|k| PublicTile::hashes(0, spread(k), 256).path())
        .collect();
    for level in 0..4u8 {
        let index = (size >> (8 * u32::from(level))) / 256;
        let width = width_in_tree(size, level, index);
        if width > 0 {
            tiles.push(PublicTile::hashes(level, index, width).path());
        }
        if index > 0 {
            tiles.push(PublicTile::hashes(level, index - 1, 256).path());
        }
    }
    let bundles: Vec<String> = (0..512)
        .map(|k| PublicTile::entries(spread(k), 256).path())
        .collect();
    write_script(&dir.join("hash-tiles.lua"), &tiles);
    write_script(&dir.join("entry-bundles.lua"), &bundles);
    write_script(&dir.join("checkpoint.lua"), &["checkpoint".to_owned()]);
}

fn write_script(path: &Path, paths: &[String]) {
    let list: Vec<String> = paths.iter().map(|p| format!("  \"/{p}\",")).collect();
    let script = format!(
        "-- {} tlog-tiles URLs, requested in turn.\npaths = {{\n{}\n}}\ncounter = 0\n\
         request = function()\n  counter = counter + 1\n  \
         return wrk.format(\"GET\", paths[(counter % #paths) + 1])\nend\n",
        paths.len(),
        list.join("\n")
    );
    std::fs::write(path, script).expect("write the wrk script");
}
