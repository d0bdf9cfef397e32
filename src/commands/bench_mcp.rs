//! `cortex benchmark --suite mcp`: measures the MCP server against the bars of PRODUCT.md §7 with
//! a lean client (raw JSON-RPC over a child's stdin/stdout, or hand-written HTTP/1.1 over one
//! keep-alive `TcpStream` per connection; no SDK), on loopback. Prints the figures, never
//! asserts timings.
//!
//! The server is this very binary (`std::env::current_exe()`), started as
//! `cortex --home DIR --db DIR/cortex.db mcp start --transport stdio|http` on a database seeded
//! beforehand through the library (`Ledger::append` in batches of 50k, then
//! `AgentMemory::store_facts` in batches of 10k). Requests use the 2026-07-28 envelope
//! (`_meta` with the protocol version and client capabilities), which needs no `initialize`
//! round trip on either transport.

use super::bench::{Bench, BenchArgs, Cleanup, percentile};
use super::ledger::{open_store_and_ledger, rate};
use crate::config::Settings;
use crate::output::{self, num};
use cortex_core::{AgentMemory, Error, NewEntry, NewFact, Result};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The protocol revision of every request: stateless, no handshake.
const VERSION: &str = "2026-07-28";
/// Concurrent connections of the throughput run (the bar's figure).
const CONNECTIONS: usize = 32;
/// Distinct topic words; each is in about 1/50 of the facts.
const TOPICS: u64 = 50;
/// Distinct rarer words; each fact has six of them.
const WORDS: u64 = 5000;
/// The query repeated for the warm (cached) runs and the throughput runs.
const WARM_QUERY: &str = "topic7 w42";

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(super) fn fact_text(i: u64) -> String {
    let x = mix(i);
    let mut s = format!("agent note {i} about topic{}", x % TOPICS);
    for k in 0..6u64 {
        s.push_str(&format!(" w{}", mix(x ^ k) % WORDS));
    }
    s
}

/// A search no earlier request asked (for `n` below `WORDS`, with `offset` keeping runs apart).
pub(super) fn uncached_query(n: u64) -> String {
    format!("topic{} w{}", n % TOPICS, (n * 7919) % WORDS)
}

/// A 2026-07-28 request body.
fn request(id: u64, method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn search(id: u64, query: &str) -> String {
    request(
        id,
        "tools/call",
        json!({"name": "cortex_search", "arguments": {"query": query}}),
    )
}

/// Fails unless `reply` is a successful JSON-RPC result (and not a tool error).
fn check_reply(reply: &str) -> Result<()> {
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
trait Client {
    fn call(&mut self, method: &str, name: &str, body: &str) -> Result<String>;
}

/// The server as a child process; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_command(home: &Path, transport: &str, port: u16, log: &Path) -> Result<Command> {
    let exe = std::env::current_exe()?;
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

struct StdioClient {
    _server: Server,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    line: String,
}

impl StdioClient {
    fn start(home: &Path, log: &Path) -> Result<StdioClient> {
        let mut child = server_command(home, "stdio", 0, log)?
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
struct HttpClient {
    port: u16,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    buf: Vec<u8>,
}

impl HttpClient {
    fn connect(port: u16) -> Result<HttpClient> {
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
    fn exchange(&mut self, req: &[u8]) -> Result<(u16, String)> {
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

fn http_request(port: u16, method: &str, name: &str, body: &str) -> Vec<u8> {
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn start_http(home: &Path, log: &Path) -> Result<Server> {
    let port = free_port()?;
    let child = server_command(home, "http", port, log)?
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

/// Milliseconds per call of `bodies` (one call each), checking the first reply.
fn latencies(c: &mut dyn Client, bodies: &[String]) -> Result<Vec<f64>> {
    timed(c, "tools/call", "cortex_search", bodies)
}

fn timed(c: &mut dyn Client, method: &str, name: &str, bodies: &[String]) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(bodies.len());
    for (i, b) in bodies.iter().enumerate() {
        let t = Instant::now();
        let reply = c.call(method, name, b)?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            check_reply(&reply)?;
        }
    }
    Ok(out)
}

struct Figures {
    p50: f64,
    p99: f64,
    n: usize,
}

fn figures(mut v: Vec<f64>) -> Figures {
    let n = v.len();
    Figures {
        p50: percentile(&mut v, 0.5),
        p99: percentile(&mut v, 0.99),
        n,
    }
}

/// Round trips of a `tools/list` (no search): the transport and dispatch floor.
fn list_runs(c: &mut dyn Client, n: usize) -> Result<Figures> {
    let bodies: Vec<String> = (1..=n as u64 + 200)
        .map(|i| request(i, "tools/list", json!({})))
        .collect();
    let mut v = timed(c, "tools/list", "", &bodies)?;
    v.drain(..200);
    Ok(figures(v))
}

/// Warm: the same search, repeated after a warm-up; uncached: `count` searches never asked.
fn search_runs(
    c: &mut dyn Client,
    warm: usize,
    uncached: usize,
    offset: u64,
) -> Result<(Figures, Figures)> {
    let ids = 1u64..;
    let warm_bodies: Vec<String> = ids
        .take(warm + 200)
        .map(|i| search(i, WARM_QUERY))
        .collect();
    let mut w = latencies(c, &warm_bodies)?;
    w.drain(..200);
    let cold: Vec<String> = (0..uncached as u64)
        .map(|i| search(i + 1, &uncached_query(offset + i)))
        .collect();
    Ok((figures(w), figures(latencies(c, &cold)?)))
}

/// Completed tools/call requests per second over `conns` keep-alive connections.
fn throughput(port: u16, conns: usize, secs: u64) -> Result<(f64, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let body = search(1, WARM_QUERY);
    let req = Arc::new(http_request(port, "tools/call", "cortex_search", &body));
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(HttpClient::connect(port)?);
    }
    let t = Instant::now();
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let (stop, done, failed, req) =
                (stop.clone(), done.clone(), failed.clone(), req.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match c.exchange(&req) {
                        Ok((200, _)) => n += 1,
                        Ok(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        let _ = th.join();
    }
    let n = done.load(Ordering::Relaxed);
    Ok((rate(n, t), failed.load(Ordering::Relaxed)))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// `wrk -t2 -c32` posting the warm search; its Requests/sec and non-2xx count.
fn run_wrk(wrk: &Path, dir: &Path, port: u16, secs: u64) -> Result<(f64, String)> {
    let body = search(1, WARM_QUERY);
    let script = dir.join("mcp.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [[{body}]]\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n\
             wrk.headers[\"MCP-Protocol-Version\"] = \"{VERSION}\"\n\
             wrk.headers[\"Mcp-Method\"] = \"tools/call\"\n\
             wrk.headers[\"Mcp-Name\"] = \"cortex_search\"\n"
        ),
    )?;
    let out = Command::new(wrk)
        .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{secs}s")])
        .arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| Error::backend(format!("benchmark: no Requests/sec from wrk: {text}")))?;
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or_else(|| "0".to_owned(), |v| v.trim().to_owned());
    Ok((
        rps,
        format!("wrk -t2 -c{CONNECTIONS} -d{secs}s, non-2xx {non2xx}"),
    ))
}

/// VmRSS and VmHWM of `pid`, in MB.
fn rss_mb(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(r), Some(h)) => Ok((r, h)),
        _ => Err(Error::backend("benchmark: no VmRSS in /proc")),
    }
}

/// Seeds `home`'s database: `entries` plain ledger entries, then `facts` facts.
fn seed(home: &Path, entries: u64, facts: u64) -> Result<(f64, f64)> {
    let settings = Settings {
        db: home.join("cortex.db").display().to_string(),
        hasher: None,
        key: Settings::default_key(home),
        key_explicit: false,
        json: true,
    };
    let (store, mut ledger) =
        open_store_and_ledger(&settings, cortex_core::ledger::DEFAULT_CHECKPOINT_EVERY)?;
    // The key the server will load from its home, written here quietly.
    let origin = crate::config::default_origin(ledger.hasher().algorithm())?;
    let signer = cortex_ed25519::Ed25519Signer::generate(&origin)?;
    crate::config::write_keypair(&signer, &settings.key, false)?;
    ledger.add_signer(Arc::new(signer))?;
    let ledger = Arc::new(ledger);
    let t = Instant::now();
    let mut done = 0;
    while done < entries {
        let k = 50_000.min(entries - done);
        let batch: Vec<NewEntry> = (done..done + k)
            .map(|i| {
                NewEntry::new(
                    "bench",
                    "audit.event",
                    format!(r#"{{"event":{i},"detail":"benchmark ledger entry {i}"}}"#),
                )
            })
            .collect();
        ledger.append(&batch)?;
        done += k;
    }
    let entry_rate = rate(entries, t);
    let memory = AgentMemory::new(store, ledger.clone())?;
    let t = Instant::now();
    let mut done = 0;
    while done < facts {
        let k = 10_000.min(facts - done);
        let batch: Vec<NewFact> = (done..done + k)
            .map(|i| NewFact::new(format!("project{}", i % 10), fact_text(i)))
            .collect();
        memory.store_facts(&batch)?;
        done += k;
    }
    let fact_rate = rate(facts, t);
    ledger.checkpoint()?;
    Ok((entry_rate, fact_rate))
}

/// Process start → first MCP answer (a tools/list) over stdio: times of `runs` fresh starts.
fn start_times(home: &Path, log: &Path, runs: usize) -> Result<Vec<f64>> {
    let body = request(1, "tools/list", json!({}));
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let mut c = StdioClient::start(home, log)?;
        let reply = c.call("tools/list", "", &body)?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        check_reply(&reply)?;
        drop(c);
    }
    Ok(out)
}

pub fn run(s: &Settings, a: &BenchArgs) -> Result<u8> {
    if a.facts < 1000 || a.duration == 0 {
        return Err(Error::invalid(
            "--facts must be at least 1000 and --duration at least 1 (mcp suite)",
        ));
    }
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("cortex-bench-mcp-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let _cleanup = Cleanup(dir.clone());
    let log = dir.join("server.log");
    let mut b = Bench {
        rows: Vec::new(),
        json: s.json,
    };
    let facts = num(a.facts);
    if !s.json {
        println!(
            "CORTEX MCP benchmark: lean raw JSON-RPC client ({VERSION}), loopback, {} cores, \
             {} ledger entries + {facts} facts",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            num(a.entries)
        );
    }
    let (er, fr) = seed(&home, a.entries, a.facts)?;
    b.report(
        "seed: ledger append, 50k per batch",
        er,
        "entries/s",
        "-",
        None,
        format!("{} entries", num(a.entries)),
    );
    b.report(
        "seed: store_facts, 10k per batch",
        fr,
        "facts/s",
        "-",
        None,
        format!("{facts} facts"),
    );

    // Uncached queries are distinct across both transports: stdio takes the first half.
    let uncached = 1000usize.min(WORDS as usize / 2);
    let warm = if a.facts < 10_000 { 1000 } else { 5000 };
    let (ws, us, ls) = {
        let mut c = StdioClient::start(&home, &log)?;
        let (w, u) = search_runs(&mut c, warm, uncached, 0)?;
        (w, u, list_runs(&mut c, warm)?)
    };
    let server = start_http(&home, &log)?;
    let (wh, uh, lh) = {
        let mut c = HttpClient::connect(server.port)?;
        let (w, u) = search_runs(&mut c, warm, uncached, uncached as u64)?;
        (w, u, list_runs(&mut c, warm)?)
    };
    for (name, f) in [
        ("tools/list round trip, stdio (p50)", &ls),
        ("tools/list round trip, Streamable HTTP (p50)", &lh),
    ] {
        b.report(
            name,
            f.p50,
            "ms",
            "-",
            None,
            format!("p99 {:.3} ms; transport + dispatch, no search", f.p99),
        );
    }
    for (name, f) in [
        ("warm search, stdio (p50)", &ws),
        ("warm search, Streamable HTTP (p50)", &wh),
    ] {
        b.report(
            name,
            f.p50,
            "ms",
            "< 0.2 ms",
            Some(f.p50 < 0.2),
            format!("p99 {:.3} ms, {} calls", f.p99, f.n),
        );
    }
    for (name, f) in [
        ("uncached search, stdio (p99)", &us),
        ("uncached search, Streamable HTTP (p99)", &uh),
    ] {
        b.report(
            name,
            f.p99,
            "ms",
            "< 10 ms",
            Some(f.p99 < 10.0),
            format!(
                "p50 {:.3} ms, {} distinct queries, {facts} facts",
                f.p50, f.n
            ),
        );
    }

    let (rps, failed) = throughput(server.port, CONNECTIONS, a.duration)?;
    b.report(
        "throughput, Streamable HTTP, 32 connections",
        rps,
        "req/s",
        ">= 20,000",
        Some(rps >= 20_000.0),
        format!("std threads, keep-alive, {} s, {failed} failed", a.duration),
    );
    match find_on_path("wrk") {
        Some(wrk) => {
            let (rps, detail) = run_wrk(&wrk, &dir, server.port, a.duration)?;
            b.report(
                "throughput, wrk, 32 connections",
                rps,
                "req/s",
                ">= 20,000",
                Some(rps >= 20_000.0),
                detail,
            );
        }
        None => b.report(
            "throughput, wrk, 32 connections",
            0.0,
            "req/s",
            ">= 20,000",
            None,
            "skipped: wrk is not on PATH".into(),
        ),
    }
    let (rss, hwm) = rss_mb(server.child.id())?;
    b.report(
        "RSS while serving (after throughput)",
        rss,
        "MB",
        "< 100 MB",
        Some(rss < 100.0),
        format!(
            "peak {hwm:.1} MB, {} entries + {facts} facts",
            num(a.entries)
        ),
    );
    drop(server);

    let mut starts = start_times(&home, &log, 20)?;
    let median = percentile(&mut starts, 0.5);
    let max = percentile(&mut starts, 1.0);
    b.report(
        "process start → first MCP answer (median)",
        median,
        "ms",
        "< 50 ms",
        Some(median < 50.0),
        format!("stdio tools/list, 20 runs, max {max:.1} ms"),
    );
    if s.json {
        output::json(&json!({
            "suite": "mcp", "entries": a.entries, "facts": a.facts,
            "duration_s": a.duration, "protocol": VERSION, "results": b.rows
        }));
    }
    Ok(0)
}
