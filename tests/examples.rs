//! Runs the integrator examples in `examples/` as a user would, and checks what they print.
//! `cargo test --all-targets` compiles the examples only as test harnesses, so the first test
//! here builds the real binaries with `cargo build --examples` (same profile and target
//! directory as this test binary; the dependencies are already built, so it only links them).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = built {
        panic!("`cargo build --examples` failed:\n{e}");
    }
    // This binary is <target>/debug/deps/examples-…; the examples are in <target>/debug/examples.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing after the build",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn embedded_blake3_appends_proves_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let out = run(Command::new(example("embedded_blake3")).arg(&db));
    assert!(out.contains("appended 250 entries from index 0"), "{out}");
    assert!(out.contains("example.com/audit/blake3\n250\n"), "{out}");
    assert!(
        out.contains(r#"proof of entry 42 verifies: {"invoice":42,"amount_cents":1042}"#),
        "{out}"
    );
    assert!(
        out.contains("verify: valid=true entries=250 checkpoints=1"),
        "{out}"
    );
    assert!(db.exists(), "the example writes the database it was given");
}

#[test]
fn postgres_blake3_appends_searches_proves_and_verifies() {
    let Some(url) = cortex_core::testkit::postgres_url("the postgres_blake3 example") else {
        return;
    };
    let out = run(Command::new(example("postgres_blake3")).arg(&url));
    assert!(out.contains("appended 10000 entries"), "{out}");
    assert!(out.contains("stored 4 facts (ids 10000..=10003)"), "{out}");
    assert!(
        out.contains("late invoices get a reminder after 14 days"),
        "the search finds the fact: {out}"
    );
    assert!(out.contains("example.com/shared/blake3\n10004\n"), "{out}");
    assert!(
        out.contains(r#"proof of entry 4242 verifies: {"invoice":4242,"amount_cents":5242}"#),
        "{out}"
    );
    assert!(
        out.contains("verify: valid=true entries=10004 checkpoints=11"),
        "{out}"
    );
    assert!(out.contains("dropped the example's schema"), "{out}");
}
