//! `cortex benchmark --suite rest`: `cortex serve` under `wrk -t2 -c32` on loopback (the bar of
//! PRODUCT.md §7: REST store and search, 32 connections, with API-key auth, at least 10,000
//! requests/s), and what each layer costs: the same runs without keys, with the per-key rate
//! limit on (set far above the load, so it only costs its bookkeeping), and with every request
//! logged as JSON. Prints the figures, never asserts timings.
//!
//! The server is the `cortex` binary that runs the suite, started as
//! `cortex --home DIR --db DIR/cortex.db serve --port P …` on a database seeded beforehand
//! through the library (`AgentMemory::store_facts` in batches of 10k), with one write key.
//! Workloads: the same search again and again (answered from the query cache), a different
//! search each request, and a store of one new fact per request (each a durable commit).

use crate::client::free_port;
use crate::mcp_suite::{OpenHome, find_on_path, seed, wrk_figures};
use crate::workload::{TOPICS, WARM_QUERY, WORDS};
use crate::{Cleanup, Report, cores, num};
use cortex_core::access::{ApiKeys, Role};
use cortex_core::{Error, Result};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the REST suite runs on.
pub struct RestSuite<'a> {
    /// Facts seeded in the agent memory.
    pub facts: u64,
    /// Seconds of each `wrk` run.
    pub duration: u64,
    /// Where the scratch directory goes (removed at the end).
    pub dir: PathBuf,
    /// The `cortex` executable to start as the server.
    pub server: PathBuf,
    /// Opens a home's ledger for seeding.
    pub open_home: OpenHome<'a>,
}

const CONNECTIONS: usize = 32;

struct Serve {
    child: Child,
    port: u16,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(exe: &Path, home: &Path, log: &Path, extra: &[&str]) -> Result<Serve> {
    let port = free_port()?;
    let child = Command::new(exe)
        .arg("--home")
        .arg(home)
        .arg("--db")
        .arg(home.join("cortex.db"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(extra)
        .env_remove("CORTEX_SIGNING_KEY")
        .env_remove("CORTEX_CONFIG")
        .env_remove("CORTEX_RATE_LIMIT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let mut s = Serve { child, port };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = s.child.try_wait()? {
            return Err(Error::backend(format!(
                "benchmark: cortex serve exited ({status}); see {}",
                log.display()
            )));
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(Error::backend(
                "benchmark: cortex serve did not listen in 60 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(s)
}

/// A wrk Lua script: every request carries `token` (if any); `body` builds the request from a
/// per-thread counter `n` (distinct across wrk's threads).
fn script(token: Option<&str>, request: &str) -> String {
    let auth = token.map_or(String::new(), |t| {
        format!("wrk.headers[\"Authorization\"] = \"Bearer {t}\"\n")
    });
    format!(
        "{auth}wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         local threads = 0\n\
         function setup(thread) thread:set(\"base\", threads * 100000000); threads = threads + 1 end\n\
         n = 0\n\
         function request()\n  n = n + 1\n  local k = base + n\n  {request}\nend\n"
    )
}

struct Run {
    rps: f64,
    p99_ms: f64,
    detail: String,
}

fn millis(v: &str) -> Option<f64> {
    let v = v.trim();
    if let Some(x) = v.strip_suffix("us") {
        x.parse::<f64>().ok().map(|x| x / 1e3)
    } else if let Some(x) = v.strip_suffix("ms") {
        x.parse().ok()
    } else if let Some(x) = v.strip_suffix('s') {
        x.parse::<f64>().ok().map(|x| x * 1e3)
    } else {
        None
    }
}

fn wrk(wrk: &Path, dir: &Path, port: u16, secs: u64, lua: &str, name: &str) -> Result<Run> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, lua)?;
    let out = Command::new(wrk)
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{secs}s"),
            "--latency",
        ])
        .arg("-s")
        .arg(&path)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (rps, non2xx) = wrk_figures(&text)?;
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(millis)
        .unwrap_or(f64::NAN);
    Ok(Run {
        rps,
        p99_ms,
        detail: format!("wrk -t2 -c{CONNECTIONS} -d{secs}s, non-2xx {non2xx}"),
    })
}

/// Runs the suite, recording every figure in `b`.
pub fn run(a: &RestSuite<'_>, b: &mut Report) -> Result<()> {
    if a.facts < 1000 || a.duration == 0 {
        return Err(Error::invalid(
            "--facts must be at least 1000 and --duration at least 1 (rest suite)",
        ));
    }
    let Some(wrk_exe) = find_on_path("wrk") else {
        return Err(Error::invalid(
            "the rest suite drives the server with wrk, which is not on PATH (apt-get install wrk)",
        ));
    };
    let dir = a
        .dir
        .join(format!("cortex-bench-rest-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    let _cleanup = Cleanup(dir.clone());
    b.note(&format!(
        "CORTEX REST benchmark: cortex serve under wrk, loopback, {} cores, {} facts",
        cores(),
        num(a.facts)
    ));
    seed(a.open_home, &home, 0, a.facts)?;
    let token = {
        let (_, ledger) = (a.open_home)(&home)?;
        ApiKeys::new(Arc::new(ledger))
            .create("bench", Role::Write)?
            .token
    };
    let warm = format!(
        "return wrk.format(\"GET\", \"/v1/search?query={}\")",
        WARM_QUERY.replace(' ', "+")
    );
    let uncached = format!(
        "return wrk.format(\"GET\", \"/v1/search?query=topic\" .. (k % {TOPICS}) .. \"+w\" .. ((k * 7919) % {WORDS}) .. \"+w\" .. ((k * 104729) % {WORDS}))"
    );
    let store = "return wrk.format(\"POST\", \"/v1/facts\", nil, \
                 '{\"project\": \"bench\", \"content\": \"stored over rest ' .. k .. '\"}')"
        .to_owned();
    let workloads = [
        ("search, same query (cached)", warm),
        ("search, new query each time", uncached),
        ("store one fact (durable commit)", store),
    ];
    let configs: [(&str, Vec<&str>, Option<&str>); 4] = [
        (
            "API key",
            vec!["--rate-limit", "0", "--log-level", "warn"],
            Some(&token),
        ),
        (
            "no auth",
            vec!["--no-auth", "--rate-limit", "0", "--log-level", "warn"],
            None,
        ),
        (
            "API key + rate limit",
            vec!["--rate-limit", "1000000000", "--log-level", "warn"],
            Some(&token),
        ),
        (
            "API key + JSON request log",
            vec!["--rate-limit", "0", "--log-format", "json"],
            Some(&token),
        ),
    ];
    for (config, args, key) in &configs {
        let log = dir.join("server.log");
        let server = start(&a.server, &home, &log, args)?;
        for (i, (what, request)) in workloads.iter().enumerate() {
            let lua = script(*key, request);
            let r = wrk(
                &wrk_exe,
                &dir,
                server.port,
                a.duration,
                &lua,
                &format!("w{i}"),
            )?;
            let _ = i;
            let bar = if *config == "API key" {
                "≥ 10,000/s"
            } else {
                "-"
            };
            let met = (bar != "-").then_some(r.rps >= 10_000.0);
            b.report(
                &format!("{what}, {config}"),
                r.rps,
                "req/s",
                bar,
                met,
                format!("p99 {:.2} ms; {}", r.p99_ms, r.detail),
            );
        }
        drop(server);
    }
    Ok(())
}
