//! The deployment files, run for real on this machine:
//!
//! - systemd: `systemd-analyze verify` (no warning allowed) and `security --offline` of
//!   `deploy/systemd/cortex.service`, then the unit started by a real systemd booted in a
//!   container, so its sandbox is applied to the binary and the server answers through it;
//! - Kubernetes: `deploy/k8s/` rendered offline by `kubectl kustomize`, validated by
//!   `kubernetes-validate --strict` (PyPI, the Kubernetes JSON schemas bundled) against an older
//!   and the newest schema, then checked for what schemas cannot see (selectors, probes, secrets);
//! - the image: the Dockerfile's `prebuilt` target built around the binary cargo built for these
//!   tests (a debug build, debug info stripped), run as the Kubernetes pod runs it (read-only
//!   root, no capabilities, the signing key mounted read-only), then /health, /ready, the health
//!   check, a key made inside the container, a fact stored and found through the REST API, a
//!   checkpoint signed with the mounted key, a graceful stop and a restart on the same volume;
//! - the build context: what `.dockerignore` lets into the Dockerfile's `builder` stage;
//! - compose: `deploy/docker-compose.yml` up with PostgreSQL and Prometheus, a key, a fact stored
//!   and found, the rows in PostgreSQL, the metric in Prometheus, a stop and start, then down.
//!
//! The Dockerfile's `builder` stage (cargo in `rust:1.95-bookworm`) is not built here: no
//! registry is reachable. The images start from `cortex-test-base:bookworm`, a Debian 12 minbase
//! made by `tests/deploy/base-image.sh` (debootstrap once per machine, cached in /var/tmp).
//!
//! Peers: a Docker daemon, docker-compose, debootstrap (until the base image exists), kubectl,
//! systemd-analyze, Python with PyPI. A missing one skips its test with the cause on stderr, and
//! fails it under `CI=true` ([`cortex_core::testkit::skip`]).

mod common;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_cortex");
const BASE_IMAGE: &str = "cortex-test-base:bookworm";
const APP_IMAGE: &str = "cortex-deploy-test:latest";
const SYSTEMD_IMAGE: &str = "cortex-test-systemd:bookworm";
/// Put on the images these tests build, so that older builds of the same tag are pruned.
const TEST_LABEL: &str = "org.cortex.deploy-test=1";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest and the newest Kubernetes the manifests are validated against.
const KUBERNETES_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "deploy: {line}");
}

// ---------------------------------------------------------------------------------------------
// Commands with a timeout.

/// What one command printed, and how it ended.
#[derive(Debug)]
struct Out {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The last lines of both streams, for a message.
    fn tail(&self) -> String {
        let both = format!("{}{}", self.stdout, self.stderr);
        let lines: Vec<&str> = both.trim_end().lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// Runs `cmd` (stdin from `input`) within `timeout`; `Err` only when it cannot start
/// (`NotFound` is told apart by the caller through [`missing`]) or runs too long (then its
/// process group is killed).
fn exec(cmd: &mut Command, input: Option<&str>, timeout: Duration) -> std::io::Result<Out> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut child = cmd.spawn()?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let text = text.to_owned();
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        });
    }
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
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "did not finish within {} s and was killed",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Out {
        success: status.success(),
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cmd`'s stdout when it succeeds; else why not (its output's end), as an `Err`.
fn try_run(cmd: &mut Command, input: Option<&str>, timeout: Duration) -> Result<String, String> {
    let what = describe(cmd);
    match exec(cmd, input, timeout) {
        Ok(out) if out.success => Ok(out.stdout),
        Ok(out) => Err(format!("`{what}` failed ({:?}):\n{}", out.code, out.tail())),
        Err(e) => Err(format!("`{what}`: {e}")),
    }
}

/// `cmd`'s stdout; the test fails when it does not succeed.
#[track_caller]
fn run(cmd: &mut Command, timeout: Duration) -> String {
    try_run(cmd, None, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `program` can be started at all (it exists on PATH).
fn missing(program: &str) -> bool {
    matches!(
        Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    )
}

fn docker() -> Command {
    Command::new("docker")
}

const MIN: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The peers: the Docker daemon, the base image, the image under test, compose.

fn skip(what: &str, why: &str) {
    cortex_core::testkit::skip(what, why)
}

/// A Docker daemon answering, or why there is none.
fn docker_daemon() -> Result<(), String> {
    static DAEMON: OnceLock<Result<(), String>> = OnceLock::new();
    DAEMON
        .get_or_init(|| {
            if missing("docker") {
                return Err(
                    "the docker client is not installed (apt-get install docker.io)".into(),
                );
            }
            let out = exec(
                docker().args(["info", "--format", "{{.ServerVersion}}"]),
                None,
                Duration::from_secs(30),
            )
            .map_err(|e| format!("docker info: {e}"))?;
            if !out.success {
                return Err(format!(
                    "no Docker daemon answers ({}); start one as .ci/run does: \
                     dockerd >/tmp/dockerd.log 2>&1 &",
                    out.stderr.trim()
                ));
            }
            note(&format!("Docker daemon {}", out.stdout.trim()));
            sweep_leftovers();
            Ok(())
        })
        .clone()
}

/// The pid in a name made by [`unique`] (`PREFIX<pid>x<nanos>`), if it has one of `prefixes`.
fn owner_pid(name: &str, prefixes: &[&str]) -> Option<u32> {
    let rest = prefixes.iter().find_map(|p| name.strip_prefix(p))?;
    rest.split('x').next()?.parse().ok()
}

/// Removes what an earlier run left when it was killed before its guards ran (containers,
/// compose projects with their volumes and networks): every one named by a process that is
/// gone. A compose container's `restart: unless-stopped` would otherwise bring it back with
/// the daemon.
fn sweep_leftovers() {
    let gone = |name: &str| {
        owner_pid(
            name,
            &[
                "cortexdeploy",
                "cortex-deploy-image-",
                "cortex-deploy-systemd-",
                "cortex-deploy-data-",
            ],
        )
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let list = |args: &[&str]| {
        exec(docker().args(args), None, MIN)
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    let containers = list(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Names}} {{.Label \"com.docker.compose.project\"}}",
    ]);
    for line in containers.lines() {
        let mut words = line.split_whitespace();
        let (Some(id), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        if gone(name) || words.next().is_some_and(gone) {
            note(&format!(
                "removing the container {name}, left by an earlier run"
            ));
            let _ = exec(docker().args(["rm", "-f", "-v", id]), None, MIN);
        }
    }
    for volume in list(&["volume", "ls", "-q"]).lines().filter(|v| gone(v)) {
        let _ = exec(docker().args(["volume", "rm", "-f", volume]), None, MIN);
    }
    let networks = list(&["network", "ls", "--format", "{{.Name}}"]);
    for network in networks.lines().filter(|n| gone(n)) {
        let _ = exec(docker().args(["network", "rm", network]), None, MIN);
    }
}

/// `cortex-test-base:bookworm`, made by tests/deploy/base-image.sh when missing.
fn base_image() -> Result<(), String> {
    static BASE: OnceLock<Result<(), String>> = OnceLock::new();
    BASE.get_or_init(|| {
        docker_daemon()?;
        let began = Instant::now();
        let script = root().join("tests/deploy/base-image.sh");
        let out = exec(
            Command::new("bash")
                .arg(&script)
                .env("CORTEX_TEST_BASE_IMAGE", BASE_IMAGE),
            None,
            15 * MIN,
        )
        .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.success {
            return Err(format!(
                "no base image {BASE_IMAGE} ({} exited with {:?}):\n{}",
                script.display(),
                out.code,
                out.tail()
            ));
        }
        if !out.stderr.trim().is_empty() {
            note(&format!(
                "{} ({:.0} s)",
                out.stderr.trim().replace('\n', "; "),
                began.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    })
    .clone()
}

/// The directory the image's binary is staged in: `<target>/test-peers/deploy/`.
fn staging() -> PathBuf {
    let dir = cortex_core::testkit::peers::peers_dir()
        .expect("the test peers' directory")
        .join("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary these tests were built with, debug info stripped (45 MB instead of 350), staged
/// alone in a directory that is the image's build context: one per test process (another may
/// be building from its own), the ones of processes that are gone removed.
fn staged_binary() -> &'static Path {
    static STAGED: OnceLock<PathBuf> = OnceLock::new();
    STAGED
        .get_or_init(|| {
            let parent = staging();
            for old in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                let name = old.file_name().to_string_lossy().into_owned();
                if owner_pid(&name, &["context-"])
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                {
                    let _ = std::fs::remove_dir_all(old.path());
                }
            }
            let dir = parent.join(unique("context-"));
            std::fs::create_dir_all(&dir).unwrap();
            let staged = dir.join("cortex");
            let stripped = exec(
                Command::new("strip")
                    .args(["--strip-debug", "-o"])
                    .arg(&staged)
                    .arg(BIN),
                None,
                MIN,
            );
            if !matches!(stripped, Ok(ref out) if out.success) {
                // No binutils: the whole binary then, only larger.
                std::fs::copy(BIN, &staged).unwrap();
            }
            staged
        })
        .as_path()
}

/// `cortex-deploy-test:latest`: the Dockerfile's `prebuilt` target around [`staged_binary`], on
/// the base image. Built once per test process; the image of an earlier run is pruned.
fn app_image() -> Result<(), String> {
    static APP: OnceLock<Result<(), String>> = OnceLock::new();
    APP.get_or_init(|| {
        base_image()?;
        let began = Instant::now();
        let context = staged_binary().parent().unwrap();
        // The Dockerfile is outside this context: the client sends it along.
        try_run(
            docker()
                .args(["build", "--force-rm", "--target", "prebuilt"])
                .args(["--build-arg", &format!("RUNTIME_IMAGE={BASE_IMAGE}")])
                .args(["--build-arg", "CORTEX_BINARY=cortex"])
                .args(["--label", TEST_LABEL, "-t", APP_IMAGE, "-f"])
                .arg(root().join("Dockerfile"))
                .arg(context),
            None,
            10 * MIN,
        )
        .map_err(|e| format!("docker build --target prebuilt failed: {e}"))?;
        let _ = exec(
            docker().args([
                "image",
                "prune",
                "--force",
                "--filter",
                &format!("label={TEST_LABEL}"),
            ]),
            None,
            MIN,
        );
        note(&format!(
            "built {APP_IMAGE} in {:.0} s",
            began.elapsed().as_secs_f64()
        ));
        Ok(())
    })
    .clone()
}

/// The compose command: docker-compose (1.29 in Debian 12), else the `docker compose` plugin.
fn compose_program() -> Result<Vec<&'static str>, String> {
    let works = |c: &mut Command| matches!(exec(c, None, MIN), Ok(out) if out.success);
    if works(Command::new("docker-compose").arg("version")) {
        Ok(vec!["docker-compose"])
    } else if works(docker().args(["compose", "version"])) {
        Ok(vec!["docker", "compose"])
    } else {
        Err(
            "docker-compose is not installed (apt-get install docker-compose), \
             and docker has no compose plugin"
                .into(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Things a test started, removed when it ends however it ends.

/// A container, removed with its anonymous volumes when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = exec(docker().args(["rm", "-f", "-v", &self.0]), None, MIN);
    }
}

impl Container {
    fn logs(&self) -> String {
        exec(docker().args(["logs", "--tail", "40", &self.0]), None, MIN)
            .map(|o| o.tail())
            .unwrap_or_default()
    }
    fn exec(&self, args: &[&str]) -> Out {
        exec(docker().arg("exec").arg(&self.0).args(args), None, MIN)
            .unwrap_or_else(|e| panic!("docker exec {args:?}: {e}"))
    }
    #[track_caller]
    fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.success, "docker exec {args:?} failed:\n{}", out.tail());
        out.stdout
    }
    fn inspect(&self, format: &str) -> String {
        run(docker().args(["inspect", "-f", format, &self.0]), MIN)
            .trim()
            .to_owned()
    }
}

/// A named volume, removed when dropped.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = exec(docker().args(["volume", "rm", "-f", &self.0]), None, MIN);
    }
}

/// A name no other run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// One request: status and body as JSON (`Null` when it is not JSON); `Err` when no answer came.
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, Value), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        let mut r = client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = r.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    })
}

#[track_caller]
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    http(method, url, token, body).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `url` until it answers 200, for at most `within`; on failure the message has
/// `diagnose()` (logs).
#[track_caller]
fn wait_ok(url: &str, within: Duration, diagnose: &dyn Fn() -> String) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let last = match http("GET", url, None, None) {
            Ok((200, body)) => return body,
            Ok((s, body)) => format!("{s} {body}"),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200 within {} s (last: {last})\n{}",
            within.as_secs(),
            diagnose()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Stores a fact with `token` through `base` and finds it by search; returns its id.
#[track_caller]
fn store_and_search(base: &str, token: &str, word: &str) -> u64 {
    let body =
        format!(r#"{{"project": "deploy", "content": "the {word} deployment stores facts"}}"#);
    let (s, stored) = call(
        "POST",
        &format!("{base}/v1/facts"),
        Some(token),
        Some(&body),
    );
    assert_eq!(s, 201, "store through {base}: {stored}");
    let id = stored["facts"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no fact id in {stored}"));
    assert_search_finds(base, token, word, id);
    id
}

#[track_caller]
fn assert_search_finds(base: &str, token: &str, word: &str, id: u64) {
    let url = format!("{base}/v1/search?query={word}&project=deploy");
    let (s, found) = call("GET", &url, Some(token), None);
    assert_eq!(s, 200, "search through {base}: {found}");
    assert_eq!(found["count"], 1, "search for {word}: {found}");
    assert_eq!(found["hits"][0]["fact"]["id"], id, "{found}");
}

/// A token from `cortex keys api create` output (stdout: the token alone).
#[track_caller]
fn token_of(stdout: &str) -> String {
    let token = stdout.trim().to_owned();
    assert!(
        token.starts_with("cortex_") && !token.contains(char::is_whitespace),
        "not a token: {stdout:?}"
    );
    token
}

// ---------------------------------------------------------------------------------------------
// systemd.

fn unit_text() -> String {
    std::fs::read_to_string(root().join("deploy/systemd/cortex.service")).unwrap()
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify_and_security() {
    let what = "systemd-analyze verify of deploy/systemd/cortex.service";
    if missing("systemd-analyze") {
        return skip(
            what,
            "systemd-analyze is not installed (apt-get install systemd)",
        );
    }
    let unit = unit_text();
    // The hardening the unit promises, by line, so that none is dropped unnoticed.
    for line in [
        "User=cortex",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "ReadWritePaths=/var/lib/cortex",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "LockPersonality=yes",
        "KillSignal=SIGTERM",
        "ExecStart=/usr/local/bin/cortex serve",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == line),
            "cortex.service lacks `{line}`"
        );
    }
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("cortex.service");
    std::fs::write(
        &copy,
        unit.replace(
            "ExecStart=/usr/local/bin/cortex ",
            &format!("ExecStart={BIN} "),
        ),
    )
    .unwrap();
    let out = exec(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        None,
        MIN,
    )
    .unwrap();
    // verify exits 0 on unknown keys and bad values too, with a warning: none is allowed.
    assert!(
        out.success && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "systemd-analyze verify ({:?}):\n{}",
        out.code,
        out.tail()
    );
    // The exposure score of the sandbox, 0 (locked down) to 10 (none); fails above 2.0.
    let out = exec(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
            .arg(&copy),
        None,
        MIN,
    )
    .unwrap();
    let overall = out
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        out.success,
        "systemd-analyze security --threshold=20: {overall}\n{}",
        out.tail()
    );
    note(&format!("systemd-analyze security: {overall}"));
}

/// The flags that let systemd boot in a container: every capability this machine has (the
/// container runtime refuses one the host lacks, as `--privileged` asks for), no seccomp
/// filter of Docker's own, the cgroup tree, tmpfs /run.
fn systemd_container_flags() -> Vec<String> {
    // Linux's capabilities by number, 0 to 40.
    const CAPS: &str = "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP \
        LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER \
        SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE \
        SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP \
        MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF \
        CHECKPOINT_RESTORE";
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    let mut flags: Vec<String> = [
        "--cap-add",
        "ALL",
        "--security-opt",
        "seccomp=unconfined",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
    ]
    .map(String::from)
    .to_vec();
    for (bit, cap) in CAPS.split_whitespace().enumerate() {
        if bounding & (1u64 << bit) == 0 {
            flags.extend(["--cap-drop".into(), cap.into()]);
        }
    }
    // The cgroup tree, writable (this machine has cgroup v1; on v2 the usual recipe adds the
    // host's cgroup namespace, untested here).
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        flags.push("--cgroupns=host".into());
    }
    flags.extend(["-v".into(), "/sys/fs/cgroup:/sys/fs/cgroup:rw".into()]);
    flags
}

#[test]
fn systemd_unit_runs_the_server_under_its_sandbox() {
    let what = "deploy/systemd/cortex.service under a real systemd (in a container)";
    if let Err(why) = base_image() {
        return skip(what, &why);
    }
    run(
        docker()
            .args(["build", "-q", "--force-rm", "--label", TEST_LABEL])
            .args(["--build-arg", &format!("BASE_IMAGE={BASE_IMAGE}")])
            .args(["-t", SYSTEMD_IMAGE, "-f"])
            .arg(root().join("tests/deploy/systemd.Dockerfile"))
            .arg(root().join("tests/deploy")),
        10 * MIN,
    );
    let port = common::free_port();
    let name = unique("cortex-deploy-systemd-");
    let id = run(
        docker()
            .args(["run", "-d", "--name", &name])
            .args(systemd_container_flags())
            .args(["-p", &format!("127.0.0.1:{port}:8484"), SYSTEMD_IMAGE]),
        MIN,
    );
    let c = Container(id.trim().to_owned());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = c.exec(&["systemctl", "is-system-running"]).stdout;
        if matches!(state.trim(), "running" | "degraded") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "systemd did not boot in the container (state {state:?}):\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let unit = root().join("deploy/systemd/cortex.service");
    let cp = |from: &Path, to: &str| {
        run(
            docker().arg("cp").arg(from).arg(format!("{}:{to}", c.0)),
            5 * MIN,
        )
    };
    cp(staged_binary(), "/usr/local/bin/cortex");
    cp(&unit, "/etc/systemd/system/cortex.service");
    // The EnvironmentFile the unit reads: listen beyond the container's loopback, for the
    // published port.
    c.exec_ok(&[
        "bash",
        "-c",
        "install -d -m 0750 /etc/cortex && echo CORTEX_HOST=0.0.0.0 >/etc/cortex/cortex.env \
         && systemctl daemon-reload && systemctl start cortex",
    ]);
    let journal = || {
        c.exec(&["journalctl", "-u", "cortex", "--no-pager", "-n", "40"])
            .tail()
    };
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/health"), Duration::from_secs(60), &journal);
    // The sandbox is on the running process: no capabilities, no new privileges, a seccomp
    // filter, the cortex user.
    let pid = c.exec_ok(&["systemctl", "show", "-p", "MainPID", "--value", "cortex"]);
    let status = c.exec_ok(&["cat", &format!("/proc/{}/status", pid.trim())]);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000000000", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    let uid = c.exec_ok(&["id", "-u", "cortex"]);
    assert_eq!(
        field("Uid:").split_whitespace().next(),
        Some(uid.trim()),
        "not the cortex user: {status}"
    );
    // A key made as the service's user in its state directory, then a fact through the server.
    let token = token_of(&c.exec_ok(&[
        "runuser",
        "-u",
        "cortex",
        "--",
        "env",
        "CORTEX_HOME=/var/lib/cortex",
        "cortex",
        "keys",
        "api",
        "create",
        "--name",
        "systemd-ci",
        "--role",
        "write",
    ]));
    store_and_search(&base, &token, "systemd");
    let (s, cp) = call(
        "POST",
        &format!("{base}/v1/ledger/checkpoint"),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "checkpoint under the sandbox: {cp}\n{}", journal());
    // SIGTERM ends it cleanly.
    c.exec_ok(&["systemctl", "stop", "cortex"]);
    let result = c.exec_ok(&["systemctl", "show", "-p", "Result", "--value", "cortex"]);
    assert_eq!(result.trim(), "success", "{}", journal());
}

// ---------------------------------------------------------------------------------------------
// Kubernetes.

/// Every document of a YAML stream, as JSON, read by PyYAML in `python`'s venv.
fn yaml_documents(python: &Path, yaml: &str) -> Vec<Value> {
    let json = try_run(
        Command::new(python).args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        ]),
        Some(yaml),
        MIN,
    )
    .unwrap_or_else(|e| panic!("the manifests are not YAML: {e}"));
    serde_json::from_str::<Vec<Value>>(&json).unwrap()
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let what = "the Kubernetes manifests (kubernetes-validate)";
    if missing("kubectl") {
        return skip(
            what,
            "kubectl is not installed (it renders deploy/k8s offline with `kubectl kustomize`)",
        );
    }
    let Some(python) = common::python_or_skip(
        what,
        "kubernetes-validate",
        &[KUBERNETES_VALIDATE],
        &["kubernetes_validate", "yaml"],
    ) else {
        return;
    };
    let k8s = root().join("deploy/k8s");
    // kustomize builds offline; `kubectl apply --dry-run=client` would need an API server
    // (it reads the server's resource list even for a client-side dry run).
    let rendered = run(Command::new("kubectl").arg("kustomize").arg(&k8s), 2 * MIN);
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("cortex.yaml");
    std::fs::write(&stream, &rendered).unwrap();
    let validator = python.with_file_name("kubernetes-validate");
    for version in KUBERNETES_VERSIONS {
        let out = exec(
            Command::new(&validator)
                .args(["--strict", "--kubernetes-version", version])
                .arg(&stream)
                .arg(k8s.join("secrets.example.yaml")),
            None,
            2 * MIN,
        )
        .unwrap();
        // It prints INFO lines for valid documents, WARN for unknown kinds, ERROR for invalid.
        assert!(
            out.success && !out.stdout.contains("ERROR") && !out.stdout.contains("WARN"),
            "kubernetes-validate --strict -k {version}:\n{}",
            out.tail()
        );
    }

    let docs = yaml_documents(&python, &rendered);
    let secrets = yaml_documents(
        &python,
        &std::fs::read_to_string(k8s.join("secrets.example.yaml")).unwrap(),
    );
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceAccount",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert!(
        !kinds.contains(&"Secret"),
        "secrets are made by hand, not applied"
    );
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();
    let deployment = of("Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    let selects = |selector: &Value, what: &str| {
        let selector = selector.as_object().unwrap_or_else(|| panic!("{what}"));
        assert!(!selector.is_empty(), "{what} selects everything");
        for (k, v) in selector {
            assert_eq!(&labels[k], v, "{what} does not select the pods ({k})");
        }
    };
    selects(
        &spec["selector"]["matchLabels"],
        "the Deployment's selector",
    );
    selects(&of("Service")["spec"]["selector"], "the Service");
    selects(
        &of("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "the PodDisruptionBudget",
    );
    let pdb = &of("PodDisruptionBudget")["spec"];
    assert!(
        pdb["minAvailable"]
            .as_u64()
            .is_some_and(|n| (1..3).contains(&n))
            || pdb["maxUnavailable"].as_u64() == Some(1),
        "the PodDisruptionBudget must let a drain proceed and keep replicas: {pdb}"
    );
    assert_eq!(
        pod["serviceAccountName"],
        of("ServiceAccount")["metadata"]["name"]
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    // The image's user (Dockerfile: USER 10001:10001).
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8484);
    assert_eq!(of("Service")["spec"]["ports"][0]["targetPort"], "http");
    for r in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(c["resources"][r][res].is_string(), "no {r}.{res}");
        }
    }
    // The grace period covers the preStop pause and the server's 30 s drain.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 35);
    // Volumes: /tmp writable on a read-only root, the signing key from a Secret as a file.
    let mounts = c["volumeMounts"].as_array().unwrap();
    let volume = |path: &str| {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}"));
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("no volume {}", m["name"]))
            .clone()
    };
    assert!(volume("/tmp")["emptyDir"].is_object());
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in the container's env"))
            .clone()
    };
    let key_path = env("CORTEX_SIGNING_KEY")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_dir, key_file) = key_path.rsplit_once('/').unwrap();
    let key_volume = volume(key_dir);
    let secret_name = key_volume["secret"]["secretName"].as_str().unwrap();
    let secret_of = |name: &str| {
        secrets
            .iter()
            .find(|s| s["kind"] == "Secret" && s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("secrets.example.yaml has no Secret {name}"))
            .clone()
    };
    let key_item = key_volume["secret"]["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["path"] == key_file))
        .unwrap_or_else(|| panic!("the key volume does not project {key_file}"));
    let key_secret = secret_of(secret_name);
    assert!(
        key_secret["stringData"][key_item["key"].as_str().unwrap()].is_string(),
        "{key_secret}"
    );
    // Readable by the pod's group (fsGroup), by no one else.
    assert_eq!(key_volume["secret"]["defaultMode"], 0o440);
    assert_eq!(pod["securityContext"]["fsGroup"], 10001);
    let db = env("CORTEX_DB");
    let db_ref = &db["valueFrom"]["secretKeyRef"];
    let db_secret = secret_of(db_ref["name"].as_str().unwrap());
    let url = db_secret["stringData"][db_ref["key"].as_str().unwrap()]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with("postgres://"),
        "replicas need PostgreSQL: {url}"
    );
    assert_eq!(env("CORTEX_HOST")["value"], "0.0.0.0");
}

// ---------------------------------------------------------------------------------------------
// The image.

#[test]
fn image_serves_health_keys_and_facts_as_the_kubernetes_pod_runs_it() {
    let what = "the Docker image (prebuilt target, debug binary)";
    if let Err(why) = app_image() {
        return skip(what, &why);
    }
    // The signing key, as a Secret mounted read-only: root-owned, readable by the image's
    // group (Kubernetes: defaultMode 0440 + fsGroup 10001).
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("signing");
    let out = Command::new(BIN)
        .env("CORTEX_HOME", tmp.path().join("home"))
        .env_remove("CORTEX_DB")
        .env_remove("CORTEX_SIGNING_KEY")
        .args([
            "keys",
            "generate",
            "--name",
            "deploy.test/container",
            "--out",
        ])
        .arg(keys.join("ledger.skey"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let skey = keys.join("ledger.skey");
        // Group 10001 when the tests may give it (root); else readable by all, in a temp dir.
        let mode = if std::os::unix::fs::chown(&skey, Some(0), Some(10001)).is_ok() {
            0o440
        } else {
            0o444
        };
        std::fs::set_permissions(&skey, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let volume = Volume(unique("cortex-deploy-data-"));
    run(docker().args(["volume", "create", &volume.0]), MIN);
    let start = |port: u16| {
        let id = run(
            docker()
                .args(["run", "-d", "--name", &unique("cortex-deploy-image-")])
                // The pod's securityContext: read-only root with a writable /tmp, no
                // capabilities, no privilege escalation; the image's own non-root user.
                .args(["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"])
                .args(["--security-opt", "no-new-privileges"])
                .args(["--health-interval", "1s", "--health-start-period", "1s"])
                .args(["-v", &format!("{}:/var/lib/cortex", volume.0)])
                .arg("-v")
                .arg(format!("{}:/etc/cortex/signing:ro", keys.display()))
                .args(["-e", "CORTEX_SIGNING_KEY=/etc/cortex/signing/ledger.skey"])
                .args(["-p", &format!("127.0.0.1:{port}:8484"), APP_IMAGE]),
            MIN,
        );
        Container(id.trim().to_owned())
    };
    let port = common::free_port();
    let c = start(port);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/health"), Duration::from_secs(60), &|| {
        c.logs()
    });
    let ready = wait_ok(&format!("{base}/ready"), Duration::from_secs(30), &|| {
        c.logs()
    });
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        c.exec_ok(&["id", "-u"]).trim(),
        "10001",
        "the image runs as its own user"
    );
    let (s, body) = call("GET", &format!("{base}/v1/ledger/status"), None, None);
    assert_eq!(s, 401, "no key, no API: {body}");

    // A key made inside the container (same CORTEX_HOME, same database), then a fact stored and
    // found through the REST API, and a checkpoint signed with the mounted key.
    let token = token_of(&c.exec_ok(&[
        "cortex",
        "keys",
        "api",
        "create",
        "--name",
        "deploy-ci",
        "--role",
        "write",
    ]));
    let id = store_and_search(&base, &token, "container");
    let (s, cp) = call(
        "POST",
        &format!("{base}/v1/ledger/checkpoint"),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{cp}\n{}", c.logs());
    assert!(
        cp["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("deploy.test/container\n")),
        "not signed with the mounted key: {cp}"
    );

    // The image's HEALTHCHECK: healthy, and its probe does fail when nothing answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = c.inspect("{{.State.Health.Status}}");
        if health == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container is {health}, not healthy: {}",
            c.inspect("{{json .State.Health}}")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let probe: Vec<String> =
        serde_json::from_str(&c.inspect("{{json .Config.Healthcheck.Test}}")).unwrap();
    assert_eq!(probe[0], "CMD", "{probe:?}");
    let probe: Vec<&str> = probe[1..].iter().map(String::as_str).collect();
    let wrong_port = exec(
        docker()
            .args(["exec", "-e", "CORTEX_PORT=1", &c.0])
            .args(&probe),
        None,
        MIN,
    )
    .unwrap();
    assert!(
        !wrong_port.success,
        "the health check passes with nothing listening"
    );

    // docker stop sends SIGTERM: the server exits 0, well within the grace period.
    let began = Instant::now();
    run(docker().args(["stop", "-t", "35", &c.0]), MIN);
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "docker stop took {:?}",
        began.elapsed()
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0", "{}", c.logs());
    drop(c);

    // A new container on the same volume has the key and the fact.
    let port = common::free_port();
    let c = start(port);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/ready"), Duration::from_secs(60), &|| {
        c.logs()
    });
    assert_search_finds(&base, &token, "container", id);
}

#[test]
fn build_context_holds_the_workspace_and_no_build_output() {
    let what = "the Docker build context (.dockerignore)";
    if let Err(why) = base_image() {
        return skip(what, &why);
    }
    // Every workspace member's manifest, the lock file and the dashboard assets the `builder`
    // stage compiles in; no target/ output (but the prebuilt binary), no .git, no keys.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split('"')
        .skip(1)
        .step_by(2)
        .collect();
    assert!(members.len() > 5, "{members:?}");
    let mut checks = vec![
        "test -f Cargo.toml".to_owned(),
        "test -f Cargo.lock".into(),
        "test -f src/main.rs".into(),
        "test -f transports/rest/assets/index.html".into(),
        "test ! -e .git".into(),
        "test ! -e target/debug".into(),
        "test -z \"$(find . -name '*.skey' -o -name '*.db')\"".into(),
        "test \"$(find target -type f 2>/dev/null | grep -v '^target/release/cortex$' | wc -l)\" = 0"
            .into(),
    ];
    checks.extend(members.iter().map(|m| format!("test -f {m}/Cargo.toml")));
    let dockerfile = format!(
        "FROM {BASE_IMAGE}\nCOPY . /ctx\nWORKDIR /ctx\nRUN set -ex; {}\n",
        checks.join("; ")
    );
    let tmp = tempfile::tempdir().unwrap();
    let iid = tmp.path().join("iid");
    try_run(
        docker()
            .args(["build", "--force-rm", "--label", TEST_LABEL, "--iidfile"])
            .arg(&iid)
            .args(["-f", "-"])
            .arg(root()),
        Some(&dockerfile),
        5 * MIN,
    )
    .unwrap_or_else(|e| panic!("the build context lacks what the builder needs: {e}"));
    let image = std::fs::read_to_string(&iid).unwrap();
    let _ = exec(docker().args(["rmi", image.trim()]), None, MIN);
}

// ---------------------------------------------------------------------------------------------
// Compose.

/// A compose project, taken down with its volumes when dropped.
struct Compose {
    program: Vec<&'static str>,
    project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    fn cmd(&self) -> Command {
        let mut c = Command::new(self.program[0]);
        c.args(&self.program[1..])
            .arg("-f")
            .arg(root().join("deploy/docker-compose.yml"))
            .args(["-p", &self.project])
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        // The variables of the stack this test does not set stay at their defaults.
        for var in ["CORTEX_BUILD_TARGET", "CORTEX_LOG_FORMAT", "COMPOSE_FILE"] {
            c.env_remove(var);
        }
        c
    }
    #[track_caller]
    fn run(&self, args: &[&str], timeout: Duration) -> String {
        let out = exec(self.cmd().args(args), None, timeout)
            .unwrap_or_else(|e| panic!("compose {args:?}: {e}"));
        assert!(
            out.success,
            "compose {args:?} failed:\n{}\n{}",
            out.tail(),
            self.logs()
        );
        out.stdout
    }
    fn logs(&self) -> String {
        exec(
            self.cmd().args(["logs", "--no-color", "--tail", "30"]),
            None,
            MIN,
        )
        .map(|o| o.tail())
        .unwrap_or_default()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = exec(
            self.cmd()
                .args(["down", "-v", "--remove-orphans", "--timeout", "40"]),
            None,
            3 * MIN,
        );
    }
}

#[test]
fn compose_stack_runs_on_postgres_with_prometheus() {
    let what = "deploy/docker-compose.yml (PostgreSQL, Prometheus)";
    let program = match compose_program() {
        Ok(p) => p,
        Err(why) => return skip(what, &why),
    };
    if let Err(why) = app_image() {
        return skip(what, &why);
    }
    let (port, prometheus_port) = (common::free_port(), common::free_port());
    let password = unique("pw");
    let stack = Compose {
        program,
        project: unique("cortexdeploy"),
        env: [
            ("CORTEX_BASE_IMAGE", BASE_IMAGE.to_owned()),
            ("CORTEX_IMAGE", APP_IMAGE.to_owned()),
            ("CORTEX_PUBLISH_PORT", port.to_string()),
            ("PROMETHEUS_PUBLISH_PORT", prometheus_port.to_string()),
            ("POSTGRES_PASSWORD", password),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec(),
    };
    stack.run(&["config", "-q"], MIN);
    let began = Instant::now();
    // PostgreSQL and Prometheus from Debian's packages (cached as layers after the first run);
    // cortex is the image built above, not rebuilt.
    stack.run(&["build", "--force-rm", "postgres", "prometheus"], 10 * MIN);
    note(&format!(
        "compose build postgres prometheus: {:.0} s",
        began.elapsed().as_secs_f64()
    ));
    stack.run(&["up", "-d", "--no-build"], 5 * MIN);
    let base = format!("http://127.0.0.1:{port}");
    wait_ok(&format!("{base}/health"), Duration::from_secs(120), &|| {
        stack.logs()
    });
    let ready = wait_ok(&format!("{base}/ready"), Duration::from_secs(60), &|| {
        stack.logs()
    });
    assert_eq!(ready["status"], "ready", "{ready}");

    let token = token_of(&stack.run(
        &[
            "exec",
            "-T",
            "cortex",
            "cortex",
            "keys",
            "api",
            "create",
            "--name",
            "compose-ci",
            "--role",
            "write",
        ],
        MIN,
    ));
    let id = store_and_search(&base, &token, "compose");
    // The fact is in PostgreSQL, not in a SQLite file in the cortex volume.
    let rows = stack.run(
        &[
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "cortex",
            "-d",
            "cortex",
            "-tAc",
            "SELECT count(*) FROM facts",
        ],
        MIN,
    );
    assert_eq!(rows.trim(), "1", "facts in PostgreSQL");
    stack.run(
        &[
            "exec",
            "-T",
            "cortex",
            "test",
            "!",
            "-e",
            "/var/lib/cortex/cortex.db",
        ],
        MIN,
    );

    // Prometheus scrapes /metrics: it sees the key's entry and the fact's.
    let query =
        format!("http://127.0.0.1:{prometheus_port}/api/v1/query?query=cortex_ledger_entries");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen = http("GET", &query, None, None).ok().and_then(|(_, v)| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_owned)
        });
        if seen.as_deref() == Some("2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape cortex_ledger_entries = 2 (last: {seen:?})\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // A stop (SIGTERM, exit 0) and a start: the key and the fact are still there.
    let container = stack.run(&["ps", "-q", "cortex"], MIN).trim().to_owned();
    stack.run(&["stop", "cortex"], 2 * MIN);
    let code = run(
        docker().args(["inspect", "-f", "{{.State.ExitCode}}", &container]),
        MIN,
    );
    assert_eq!(
        code.trim(),
        "0",
        "cortex did not stop cleanly\n{}",
        stack.logs()
    );
    stack.run(&["start", "cortex"], 2 * MIN);
    wait_ok(&format!("{base}/ready"), Duration::from_secs(60), &|| {
        stack.logs()
    });
    assert_search_finds(&base, &token, "compose", id);
}
