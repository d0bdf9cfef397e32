//! One cargo feature per plugin crate: `cargo build --no-default-features --features sqlite`
//! gives a working SQLite-only `cortex`, which names the feature that brings back each plugin it
//! lacks. The build goes to a target directory of its own under `target/` (the default
//! binary the other tests run stays untouched), with dependencies unoptimized to keep it quick.

mod common;

use common::Sandbox;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the SQLite-only binary (once per target directory; later runs only relink).
fn sqlite_only_binary() -> PathBuf {
    let target = Path::new(common::BIN)
        .ancestors()
        .nth(2)
        .expect("the binary lives in target/<profile>/")
        .join("sqlite-only");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--quiet",
            "--bin",
            "cortex",
            "--no-default-features",
        ])
        .args(["--features", "sqlite"])
        .args(["--config", "profile.dev.package.\"*\".opt-level=0"])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --no-default-features --features sqlite failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join("cortex")
}

#[test]
fn a_sqlite_only_binary_works_and_names_what_is_compiled_out() {
    let bin = sqlite_only_binary();
    let sb = Sandbox::new();
    let home = &sb.home();
    let run = |args: &[&str]| sb.run_bin(&bin, args);

    // The whole ledger and memory flow on the embedded default.
    run(&["migrate"]).ok();
    run(&[
        "ledger",
        "append",
        "--project",
        "p",
        "--action",
        "a",
        "--detail",
        "{}",
    ])
    .ok();
    run(&[
        "store",
        "--project",
        "p",
        "--content",
        "the deploy runs on fridays",
    ])
    .ok();
    run(&["ledger", "checkpoint"]).ok();
    run(&["ledger", "verify"]).ok().out_has("Chain valid");
    run(&["search", "deploy fridays", "--project", "p"])
        .ok()
        .out_has("the deploy runs on fridays");

    // What is compiled out is named with the feature that brings it back.
    let redb = format!("redb://{}/x.redb", home.display());
    for (db, feature) in [
        (redb.as_str(), "--features redb"),
        ("postgres://u@127.0.0.1/db", "--features postgres"),
        ("postgresql://u@127.0.0.1/db", "--features postgres"),
    ] {
        run(&["--db", db, "ledger", "status"])
            .code(2)
            .err_has("is not compiled into this binary")
            .err_has(feature)
            .err_has("compiled in: sqlite");
    }
    run(&["--db", "mongodb://x/y", "ledger", "status"])
        .code(2)
        .err_has("unknown or unavailable store scheme \"mongodb\"")
        .err_has("available: sqlite");
    for (transport, feature) in [
        ("stdio", "--features stdio"),
        ("http", "--features http"),
        ("sse", "--features http"),
        ("ws", "--features websocket"),
    ] {
        run(&["mcp", "start", "--transport", transport, "--port", "0"])
            .code(2)
            .err_has(&format!("the {transport} transport is not compiled into"))
            .err_has(feature);
    }
    run(&["tiles", "serve", "--port", "0"])
        .code(2)
        .err_has("tlog-tiles view is not compiled into this binary")
        .err_has("--features tiles");
    run(&["benchmark", "--backend", "redb", "--entries", "10000"])
        .code(2)
        .err_has("--features redb");
}
