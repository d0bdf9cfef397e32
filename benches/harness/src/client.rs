//! The lean clients of the MCP suite: raw JSON-RPC over a child's stdin/stdout, and
//! hand-written HTTP/1.1 over one keep-alive `TcpStream` per connection, on loopback.
//!
//! Why hand-written and not an HTTP client crate or the MCP SDK: the suite measures the server,
//! so the client must cost as little as possible and the same on every run. A general client
//! (connection pools, header maps, async runtimes, retries) would add its own microseconds to a
//! p50 of tens of microseconds, and on this 2-core machine its threads would compete with the
//! server's for the CPU during the throughput run. The real SDK clients are exercised by the
//! test suite instead (tests/mcp_network.rs, tests/mcp_stdio.rs); `wrk` is the independent
//! load tool where it is installed.

use cortex_core::{Error, Result};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The protocol revision of every request: stateless, no handshake.
pub const VERSION: &str = "2026-07-28";

/// A 2026-07-28 request body.
pub fn request(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// A `cortex_search` call for `query`.
pub fn search(id: u64, query: &str) -> String {
    request(
        id,
        "tools/call",
        json!({"name": "cortex_search", "arguments": {"query": query}}),
    )
}

/// Fails unless `reply` is a successful JSON-RPC result (and not a tool error).
pub fn check_reply(reply: &str) -> Result<()> {
    let v: Value = serde_json::from_str(reply.trim())
        .map_err(|e| Error::backend(format!("benchmark: reply is not JSON ({e}): {reply:.200}")))?;
    if v.get("result").is_none() || v["result"]["isError"] == Value::Bool(true) {
        return Err(Error::backend(format!(
            "benchmark: the server did not answer with a result: {reply:.300}"
        )));
    }
    Ok(())
}

/// A lean JSON-RPC client: sends one request, returns the reply text.
pub trait Client {
    /// Sends one request (`method`, and the tool `name` for the HTTP headers); returns the reply.
    fn call(&mut self, method: &str, name: &str, body: &str) -> Result<String>;
}

/// The server as a child process; killed when dropped.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// Its HTTP port (0 for stdio).
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cortex --home HOME --db HOME/cortex.db mcp start --transport T` with stderr to `log`.
pub fn server_command(
    exe: &Path,
    home: &Path,
    transport: &str,
    port: u16,
    log: &Path,
) -> Result<Command> {
    let mut c = Command::new(exe);
    c.arg("--home")
        .arg(home)
        .arg("--db")
        .arg(home.join("cortex.db"))
        .args(["mcp", "start", "--transport", transport])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env_remove("CORTEX_SIGNING_KEY")
        .env_remove("CORTEX_HASHER")
        .stderr(Stdio::from(std::fs::File::create(log)?));
    Ok(c)
}

/// A server on stdio, and the pipes to it.
pub struct StdioClient {
    _server: Server,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    line: String,
}

impl StdioClient {
    /// Starts the server on stdio.
    pub fn start(exe: &Path, home: &Path, log: &Path) -> Result<StdioClient> {
        let mut child = server_command(exe, home, "stdio", 0, log)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(StdioClient {
            _server: Server { child, port: 0 },
            stdin,
            out,
            line: String::new(),
        })
    }
}

impl Client for StdioClient {
    fn call(&mut self, _method: &str, _name: &str, body: &str) -> Result<String> {
        self.stdin.write_all(body.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        self.line.clear();
        if self.out.read_line(&mut self.line)? == 0 {
            return Err(Error::backend(
                "benchmark: the stdio server closed its output",
            ));
        }
        Ok(std::mem::take(&mut self.line))
    }
}

/// Hand-written HTTP/1.1 over one keep-alive connection to `/mcp`.
pub struct HttpClient {
    port: u16,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    buf: Vec<u8>,
}

impl HttpClient {
    /// Connects to the server on loopback `port`.
    pub fn connect(port: u16) -> Result<HttpClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        Ok(HttpClient {
            port,
            stream,
            reader,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `req` (a whole request), returns the status and body.
    pub fn exchange(&mut self, req: &[u8]) -> Result<(u16, String)> {
        self.stream.write_all(req)?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(Error::backend(
                "benchmark: the HTTP server closed the connection",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::backend(format!("benchmark: bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(Error::backend("benchmark: truncated HTTP headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                }
            }
        }
        self.buf.clear();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| {
                    Error::backend(format!("benchmark: bad chunk size {line:?}"))
                })?;
                let start = self.buf.len();
                self.buf.resize(start + size + 2, 0);
                self.reader.read_exact(&mut self.buf[start..])?;
                self.buf.truncate(start + size);
                if size == 0 {
                    // Trailers end with an empty line; we sent no TE, so there are none.
                    break;
                }
            }
        } else {
            let n =
                length.ok_or_else(|| Error::backend("benchmark: HTTP reply without a length"))?;
            self.buf.resize(n, 0);
            self.reader.read_exact(&mut self.buf)?;
        }
        Ok((status, String::from_utf8_lossy(&self.buf).into_owned()))
    }
}

/// A whole `POST /mcp` request carrying `body` with the 2026-07-28 headers.
pub fn http_request(port: u16, method: &str, name: &str, body: &str) -> Vec<u8> {
    let name_header = if name.is_empty() {
        String::new()
    } else {
        format!("Mcp-Name: {name}\r\n")
    };
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {VERSION}\r\n\
         Mcp-Method: {method}\r\n{name_header}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Client for HttpClient {
    fn call(&mut self, method: &str, name: &str, body: &str) -> Result<String> {
        let req = http_request(self.port, method, name, body);
        let (status, reply) = self.exchange(&req)?;
        if status != 200 {
            return Err(Error::backend(format!(
                "benchmark: HTTP {status} from the server: {reply:.300}"
            )));
        }
        Ok(reply)
    }
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Starts the server on Streamable HTTP and waits until it listens.
pub fn start_http(exe: &Path, home: &Path, log: &Path) -> Result<Server> {
    let port = free_port()?;
    let child = server_command(exe, home, "http", port, log)?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let mut server = Server { child, port };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait()? {
            return Err(Error::backend(format!(
                "benchmark: the HTTP server exited ({status}); see {}",
                log.display()
            )));
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(Error::backend(
                "benchmark: the HTTP server did not listen in 60 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}
