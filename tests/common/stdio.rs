//! A `cortex mcp start --transport stdio` child driven line by line: raw JSON-RPC lines for the
//! bad-input tests, and requests matched to their answers by id for everything else.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

/// The server process with its stdin and stdout; killed (and reaped) when dropped.
pub struct StdioMcp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Drop for StdioMcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StdioMcp {
    /// Starts `command` with `mcp start --transport stdio` appended; no handshake is sent.
    /// Its stderr is discarded.
    pub fn spawn(mut command: Command) -> StdioMcp {
        let mut child = command
            .args(["mcp", "start", "--transport", "stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cortex mcp start --transport stdio");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        StdioMcp {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    /// Starts the server and completes the initialize handshake in `protocol`, asserting the
    /// server accepted that version.
    pub fn start(command: Command, protocol: &str, client: &str) -> StdioMcp {
        let mut m = StdioMcp::spawn(command);
        let r = m.request(
            "initialize",
            json!({"protocolVersion": protocol, "capabilities": {},
                   "clientInfo": {"name": client, "version": "0"}}),
        );
        assert_eq!(r["result"]["protocolVersion"], protocol, "{r}");
        m.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        m
    }

    /// Writes one line (a newline is added).
    pub fn send(&mut self, line: &str) {
        let w = self.stdin.as_mut().expect("stdin still open");
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        w.flush().unwrap();
    }

    /// Reads the next line, which must be JSON.
    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed stdout (crashed?)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON on stdout ({e}): {line}"))
    }

    /// Sends one raw line and returns the next line back.
    pub fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.recv()
    }

    /// Sends a request with the next id and returns the answer carrying that id (skipping
    /// any notification the server sends first).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        loop {
            let v = self.recv();
            if v["id"] == id {
                return v;
            }
        }
    }

    /// Calls a tool, returning the whole JSON-RPC answer.
    pub fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// Calls a tool that must succeed, returning its structured result.
    pub fn ok(&mut self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args);
        assert_eq!(r["result"]["isError"], false, "{tool} failed: {r}");
        r["result"]["structuredContent"].clone()
    }

    /// Closes stdin (end of input), then returns whatever else the server wrote on stdout and
    /// its exit status.
    pub fn finish(&mut self) -> (String, ExitStatus) {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (rest, self.child.wait().unwrap())
    }
}
