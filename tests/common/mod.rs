//! The harness shared by the integration tests of the `cortex` binary: the binary's path, the
//! environment scrubbed from every run, what one run produced ([`Run`]), and a temporary
//! CORTEX_HOME sandbox ([`Sandbox`]) to run it in. Each test file extends [`Sandbox`] with its
//! own helpers in an `impl Sandbox` block.
//!
//! Not every test file uses every item, hence the module-wide `dead_code` allowance.
#![allow(dead_code)]

pub mod serve;
pub mod stdio;

use assert_cmd::Command;
use rusqlite::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_cortex");

/// Environment that would redirect the binary away from the sandbox.
pub const CLEARED_ENV: &[&str] = &[
    "CORTEX_DB",
    "CORTEX_SIGNING_KEY",
    "CORTEX_HASHER",
    "CORTEX_CHECKPOINT_EVERY",
    "CORTEX_CHECKPOINT_INTERVAL",
    "CORTEX_HOME",
];

/// The binary as a plain `std` command (for long-running children such as MCP servers) with
/// [`CLEARED_ENV`] and `also_clear` removed and `--home home`.
pub fn cortex_in(home: &Path, also_clear: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    for v in CLEARED_ENV.iter().chain(also_clear) {
        c.env_remove(v);
    }
    c.arg("--home").arg(home);
    c
}

/// A child process, killed (and reaped) when dropped, so a failing test leaves no server behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A `cortex mcp start` on a network transport, listening on `port`.
pub struct NetworkServer {
    pub child: KillOnDrop,
    pub port: u16,
}

/// Spawns `command` (a `cortex … mcp start --transport T` told to listen on `port`) and waits
/// until the port accepts connections; fails the test if the server exits or is silent for 20 s.
pub fn listening(mut command: std::process::Command, port: u16) -> NetworkServer {
    let mut child = KillOnDrop(command.spawn().expect("spawn cortex mcp start"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("cortex mcp start exited before listening on {port}: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not listen on {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    NetworkServer { child, port }
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The exit code and the UTF-8 output of a finished process.
    #[track_caller]
    pub fn from_output(out: std::process::Output) -> Run {
        Run {
            code: out
                .status
                .code()
                .expect("exit code (not killed by a signal)"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    #[track_caller]
    pub fn code(self, want: i32) -> Run {
        assert_eq!(self.code, want, "unexpected exit code; run: {self:#?}");
        self
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }
    #[track_caller]
    pub fn out_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}; run: {self:#?}"
        );
        self
    }
    #[track_caller]
    pub fn err_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}; run: {self:#?}"
        );
        self
    }
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); run: {self:#?}"))
    }
}

/// A temporary directory holding CORTEX_HOME (`home/`), a fake HOME and the working directory.
pub struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(tmp.path().join("user-home")).unwrap();
        Sandbox { tmp }
    }
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }
    pub fn db(&self) -> PathBuf {
        self.home().join("cortex.db")
    }
    pub fn skey(&self) -> PathBuf {
        self.home().join("keys").join("ledger.skey")
    }
    pub fn vkey(&self) -> String {
        self.home()
            .join("keys")
            .join("ledger.vkey")
            .display()
            .to_string()
    }
    /// The binary with the environment scrubbed, run in the sandbox.
    pub fn std_command(&self) -> std::process::Command {
        self.std_command_of(Path::new(BIN))
    }
    /// Another build of the binary (`bin`), likewise.
    pub fn std_command_of(&self, bin: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(bin);
        for v in CLEARED_ENV {
            c.env_remove(v);
        }
        c.env("CORTEX_HOME", self.home())
            .env("HOME", self.path("user-home"))
            .current_dir(self.root());
        c
    }
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_bin_with_stdin(Path::new(BIN), args, stdin)
    }
    /// Runs another build of the binary (`bin`) in the sandbox.
    pub fn run_bin(&self, bin: &Path, args: &[&str]) -> Run {
        self.run_bin_with_stdin(bin, args, "")
    }
    fn run_bin_with_stdin(&self, bin: &Path, args: &[&str], stdin: &str) -> Run {
        let out = Command::from_std(self.std_command_of(bin))
            .args(args)
            .write_stdin(stdin)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run cortex");
        Run::from_output(out)
    }
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }
    pub fn conn(&self) -> Connection {
        assert!(self.db().exists(), "no database at {}", self.db().display());
        Connection::open(self.db()).expect("open the database")
    }
}

/// The official MCP Python SDK the stdio and network tests drive the server with.
pub const MCP_SDK: &[&str] = &["mcp==2.3.0"];
/// The SDK release that still has the WebSocket client (`mcp.client.websocket`).
pub const MCP_SDK_WS: &[&str] = &["mcp[ws]==1.30.0"];
/// What the independent verifier (`tests/independent/cortex_verify.py`) imports.
pub const VERIFIER_PACKAGES: &[&str] = &["cryptography==50.0.2", "blake3==1.0.11"];

/// The interpreter of the venv `name` holding `requirements` (made under `target/test-peers/`
/// on first use), or `None` after [`cortex_core::testkit::skip`] says why there is none.
pub fn python_or_skip(
    what: &str,
    name: &str,
    requirements: &[&str],
    imports: &[&str],
) -> Option<PathBuf> {
    cortex_core::testkit::peers::python_env(name, requirements, imports)
        .map_err(|why| cortex_core::testkit::skip(what, &why))
        .ok()
}

/// Splits CSV text into rows of fields by the reading rules of FORMATS.md 9.5 (enough for the
/// files the writer makes: quoted fields may hold `,`, `"`, CR and LF).
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        row.is_empty() && field.is_empty(),
        "the writer ends every row in \\n"
    );
    rows
}

/// Rows as CSV text: every field quoted if `quote_all`, else as the writer quotes (9.5); `eol`
/// after each row.
pub fn csv_text(rows: &[Vec<String>], quote_all: bool, eol: &str) -> String {
    let mut out = String::new();
    for r in rows {
        let fields: Vec<String> = r
            .iter()
            .map(|f| {
                if quote_all || f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str(eol);
    }
    out
}
