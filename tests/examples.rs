//! Runs the integrator examples in `examples/` as a user would, and checks what they print.
//! `cargo test --all-targets` builds the examples before any test runs; they sit beside this
//! test binary's directory (`target/<profile>/examples/`).

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --all-targets`, which builds the examples",
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
