//! `cortex benchmark --suite mcp`: measures the MCP server against the bars of PRODUCT.md §7 with
//! the lean clients of [`crate::client`] (raw JSON-RPC over a child's stdin/stdout, or
//! hand-written HTTP/1.1 over one keep-alive `TcpStream` per connection; no SDK), on loopback.
//! Prints the figures, never asserts timings.
//!
//! The server is the `cortex` binary that runs the suite ([`McpSuite::server`]), started as
//! `cortex --home DIR --db DIR/cortex.db mcp start --transport stdio|http` on a database seeded
//! beforehand through the library (`Ledger::append` in batches of 50k, then
//! `AgentMemory::store_facts` in batches of 10k). Requests use the 2026-07-28 envelope
//! (`_meta` with the protocol version and client capabilities), which needs no `initialize`
//! round trip on either transport.

use crate::client::{
    Client, HttpClient, StdioClient, VERSION, check_reply, http_request, request, search,
    start_http,
};
use crate::workload::{WARM_QUERY, WORDS, audit_entries, store_facts, uncached_query};
use crate::{Cleanup, Report, cores, num, percentile, rate};
use cortex_core::{AgentMemory, DynStore, Error, Ledger, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Opens the ledger in a server home (`HOME/cortex.db`) for seeding, with the signing key the
/// server will load from that home attached (the caller writes it there).
pub type OpenHome<'a> = &'a dyn Fn(&Path) -> Result<(DynStore, Ledger)>;

/// What the MCP suite runs on.
pub struct McpSuite<'a> {
    /// Plain ledger entries seeded behind the server.
    pub entries: u64,
    /// Facts seeded in the agent memory (at least 1000).
    pub facts: u64,
    /// Seconds of each throughput run (at least 1).
    pub duration: u64,
    /// Where the scratch directory goes (it is removed at the end).
    pub dir: PathBuf,
    /// The `cortex` executable to start as the server.
    pub server: PathBuf,
    /// Opens a home's ledger for seeding.
    pub open_home: OpenHome<'a>,
}

/// Concurrent connections of the throughput run (the bar's figure).
const CONNECTIONS: usize = 32;

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

/// The first executable `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
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
    let (rps, non2xx) = wrk_figures(&String::from_utf8_lossy(&out.stdout))?;
    Ok((
        rps,
        format!("wrk -t2 -c{CONNECTIONS} -d{secs}s, non-2xx {non2xx}"),
    ))
}

/// wrk's Requests/sec and its count of non-2xx answers (`"0"` when it reports none).
pub fn wrk_figures(text: &str) -> Result<(f64, String)> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| Error::backend(format!("benchmark: no Requests/sec from wrk: {text}")))?;
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or_else(|| "0".to_owned(), |v| v.trim().to_owned());
    Ok((rps, non2xx))
}

/// VmRSS and VmHWM of `pid`, in MB.
pub fn rss_mb(pid: u32) -> Result<(f64, f64)> {
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
pub fn seed(open_home: OpenHome<'_>, home: &Path, entries: u64, facts: u64) -> Result<(f64, f64)> {
    let (store, ledger) = open_home(home)?;
    let ledger = Arc::new(ledger);
    let t = Instant::now();
    let mut done = 0;
    while done < entries {
        let k = 50_000.min(entries - done);
        ledger.append(&audit_entries(done, k))?;
        done += k;
    }
    let entry_rate = rate(entries, t);
    let memory = AgentMemory::new(store, ledger.clone())?;
    let t = Instant::now();
    store_facts(&memory, facts)?;
    let fact_rate = rate(facts, t);
    ledger.checkpoint()?;
    Ok((entry_rate, fact_rate))
}

/// Process start → first MCP answer (a tools/list) over stdio: times of `runs` fresh starts.
fn start_times(exe: &Path, home: &Path, log: &Path, runs: usize) -> Result<Vec<f64>> {
    let body = request(1, "tools/list", json!({}));
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let mut c = StdioClient::start(exe, home, log)?;
        let reply = c.call("tools/list", "", &body)?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
        check_reply(&reply)?;
        drop(c);
    }
    Ok(out)
}

/// Runs the suite, recording every figure in `b`.
pub fn run(a: &McpSuite<'_>, b: &mut Report) -> Result<()> {
    if a.facts < 1000 || a.duration == 0 {
        return Err(Error::invalid(
            "--facts must be at least 1000 and --duration at least 1 (mcp suite)",
        ));
    }
    let dir = a
        .dir
        .join(format!("cortex-bench-mcp-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let _cleanup = Cleanup(dir.clone());
    let log = dir.join("server.log");
    let facts = num(a.facts);
    b.note(&format!(
        "CORTEX MCP benchmark: lean raw JSON-RPC client ({VERSION}), loopback, {} cores, {} \
         ledger entries + {facts} facts",
        cores(),
        num(a.entries)
    ));
    let exe = a.server.as_path();
    let (er, fr) = seed(a.open_home, &home, a.entries, a.facts)?;
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
        let mut c = StdioClient::start(exe, &home, &log)?;
        let (w, u) = search_runs(&mut c, warm, uncached, 0)?;
        (w, u, list_runs(&mut c, warm)?)
    };
    let server = start_http(exe, &home, &log)?;
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

    let mut starts = start_times(exe, &home, &log, 20)?;
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
    Ok(())
}
