//! `cortex serve` as a child process for the tests: an API key made with the CLI, a server on
//! a free loopback port (its address read from its startup log line), and one-shot HTTP calls.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// An HTTP answer: status, headers (lowercase names) and body as JSON (Null if not JSON).
pub type Answer = (u16, Vec<(String, String)>, Value);

/// The binary in `home`, with every setting that could lead it elsewhere cleared.
pub fn cortex(home: &Path) -> Command {
    super::cortex_in(
        home,
        &[
            "CORTEX_RATE_LIMIT",
            "CORTEX_ALLOWED_ORIGINS",
            "CORTEX_POLICY",
            "CORTEX_CONFIG",
        ],
    )
}

/// Runs `cortex args` in `home`, asserts it succeeded, and returns its stdout, trimmed.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = cortex(home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cortex {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Creates an API key and returns its token.
pub fn key(home: &Path, name: &str, role: &str) -> String {
    ok(
        home,
        &["keys", "api", "create", "--name", name, "--role", role],
    )
}

/// A running `cortex serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(home: &Path, args: &[&str]) -> Server {
    let mut child = cortex(home)
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("cortex serve ended before listening:\n{seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some((_, rest)) = line.split_once("cortex serve on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: format!("http://{addr}"),
        addr,
    }
}

/// One HTTP request: status, headers (lowercase names) and body as JSON (Null if not JSON).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    call_with(method, url, token, body, &[])
}

/// [`call`] with extra request headers.
pub fn call_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut r = client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    })
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
