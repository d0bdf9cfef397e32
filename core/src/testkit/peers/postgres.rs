//! The PostgreSQL peer: [`postgres_url`] and the throwaway cluster behind it (finding the
//! server programs, the user and directory it runs as, `initdb`, start and stop on a free port,
//! and the watchdog that stops it when idle).

use super::{lock, mkdir, note, peers_dir, remove, run};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Minutes without a caller of [`postgres_url`] (and without client connections) after which
/// the watchdog stops the throwaway cluster; override with [`IDLE_MINUTES_VAR`].
pub const DEFAULT_IDLE_MINUTES: u64 = 15;

/// The variable overriding [`DEFAULT_IDLE_MINUTES`] (read when the watchdog starts).
pub const IDLE_MINUTES_VAR: &str = "CORTEX_TEST_POSTGRES_IDLE_MINUTES";

/// The database the throwaway cluster's URL names (tests make their own schemas in it).
pub const DATABASE: &str = "cortex_test";

/// The name of the watchdog's script, also how a live watchdog is recognised.
const WATCHDOG_NAME: &str = "cortex-test-postgres-watchdog";

/// The PostgreSQL server the tests use: `CORTEX_TEST_POSTGRES_URL` when set, else the URL of
/// the throwaway cluster (started first if it is not running), e.g.
/// `postgres://postgres@127.0.0.1:PORT/cortex_test`.
pub fn postgres_url() -> Result<String, String> {
    match std::env::var(crate::testkit::POSTGRES_URL_VAR) {
        Ok(u) if !u.is_empty() => Ok(u),
        _ => throwaway_postgres().map_err(|e| {
            format!(
                "no throwaway PostgreSQL cluster: {e} (or set {} to a server of yours)",
                crate::testkit::POSTGRES_URL_VAR
            )
        }),
    }
}

/// Starts (or finds running) the throwaway cluster and returns its URL.
fn throwaway_postgres() -> Result<String, String> {
    let peers = peers_dir()?;
    let lock_path = peers.join("postgres.lock");
    let _lock = lock(&lock_path, false, Duration::from_secs(300))?;
    let bin = postgres_bindir()?;
    let user = server_user()?;
    let dir = cluster_dir(&peers, user.as_deref())?;
    let data = dir.join("data");
    let stamp = dir.join("initialized");
    let url = |port: u16| format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}");
    let began = Instant::now();
    touch(&dir.join("last-used"))?;
    if stamp.exists()
        && let Some(port) = running_port(&data)
    {
        watchdog(&dir, &bin, &lock_path)?;
        return Ok(url(port));
    }
    if !stamp.exists() {
        // Nothing, or what an interrupted first start left: begin again.
        stop(&data)?;
        remove(&data)?;
        run(
            server_command(user.as_deref(), &bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync")
                .current_dir(&dir),
            &format!("initdb -D {}", data.display()),
            Duration::from_secs(120),
        )?;
        // A throwaway cluster: fsync and full-page writes off make it fast, and cost nothing
        // here because the crash tests (`kill -9`) kill client processes, never this server.
        append(
            &data.join("postgresql.conf"),
            "\n# The throwaway cluster of CORTEX's tests (core/src/testkit/peers/).\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = ''\n\
             max_connections = 200\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
        )?;
    }
    let made = !stamp.exists();
    let port = match running_port(&data) {
        Some(port) => port,
        None => start(user.as_deref(), &bin, &dir)?,
    };
    if !stamp.exists() {
        run(
            Command::new(bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .arg(DATABASE),
            &format!("createdb {DATABASE}"),
            Duration::from_secs(60),
        )?;
        fs::write(&stamp, "").map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    watchdog(&dir, &bin, &lock_path)?;
    touch(&dir.join("last-used"))?;
    let done = if made { "made and started" } else { "started" };
    note(
        &format!(
            "{done} the PostgreSQL cluster {} on port {port}",
            data.display()
        ),
        began,
    );
    Ok(url(port))
}

/// The directory of the PostgreSQL server programs: that of an `initdb` on `PATH`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian, Ubuntu) or `/usr/pgsql-*/bin` (RHEL).
fn postgres_bindir() -> Result<PathBuf, String> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "createdb"]
            .iter()
            .all(|p| d.join(p).exists())
    };
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if let Ok(real) = fs::canonicalize(d.join("initdb"))
                && let Some(dir) = real.parent().filter(|d| has_all(d))
            {
                return Ok(dir.to_owned());
            }
        }
    }
    let mut found: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    for (parent, prefix) in [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")] {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix(prefix) else {
                continue;
            };
            let key: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
            let bin = e.path().join("bin");
            if let Some(key) = key
                && has_all(&bin)
            {
                found.push((key, bin));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "PostgreSQL's server programs (initdb, pg_ctl, createdb) are neither on PATH nor in \
         /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin; install the PostgreSQL server \
         (e.g. apt-get install postgresql)"
            .to_owned()
    })
}

/// The user the server programs must run as: `None` for ourselves, `Some("postgres")` when we
/// are root (initdb and postgres refuse to run as root).
fn server_user() -> Result<Option<String>, String> {
    let uid = run(
        Command::new("id").arg("-u"),
        "id -u",
        Duration::from_secs(10),
    )?;
    if uid.trim() != "0" {
        return Ok(None);
    }
    if run(
        Command::new("id").arg("postgres"),
        "id postgres",
        Duration::from_secs(10),
    )
    .is_err()
    {
        return Err(
            "initdb refuses to run as root, and there is no `postgres` user to run it as".into(),
        );
    }
    Ok(Some("postgres".into()))
}

/// `program` run as `user` (through `runuser`), or as ourselves.
fn server_command(user: Option<&str>, program: &Path) -> Command {
    match user {
        None => Command::new(program),
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
    }
}

/// The cluster's directory (it holds `data/`, the server log, the watchdog's files): owned by
/// `user` when there is one, in the target directory if `user` can write there, else in `/tmp`.
fn cluster_dir(peers: &Path, user: Option<&str>) -> Result<PathBuf, String> {
    let in_target = peers.join("postgres");
    mkdir(&in_target)?;
    let Some(user) = user else {
        return Ok(in_target);
    };
    let fallback = std::env::temp_dir().join(format!(
        "cortex-test-peers-{:016x}",
        fnv1a(peers.as_os_str().as_encoded_bytes())
    ));
    let mut why = Vec::new();
    for dir in [in_target, fallback.join("postgres")] {
        mkdir(&dir)?;
        let given = give_to(&dir, user).and_then(|()| {
            run(
                server_command(Some(user), Path::new("test")).args([
                    "-w".as_ref(),
                    dir.as_os_str(),
                    "-a".as_ref(),
                    "-x".as_ref(),
                    dir.as_os_str(),
                ]),
                &format!("the {user} user's access to {}", dir.display()),
                Duration::from_secs(10),
            )
            .map(drop)
        });
        match given {
            Ok(()) => return Ok(dir),
            Err(e) => why.push(e),
        }
    }
    Err(format!(
        "no directory for the cluster that the {user} user can use: {}",
        why.join("; ")
    ))
}

/// Makes `user` the owner of `dir`.
#[cfg(unix)]
fn give_to(dir: &Path, user: &str) -> Result<(), String> {
    let id = |flag: &str| -> Result<u32, String> {
        run(
            Command::new("id").args([flag, user]),
            &format!("id {flag} {user}"),
            Duration::from_secs(10),
        )?
        .trim()
        .parse()
        .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    std::os::unix::fs::chown(dir, Some(id("-u")?), Some(id("-g")?))
        .map_err(|e| format!("cannot give {} to {user}: {e}", dir.display()))
}

#[cfg(not(unix))]
fn give_to(dir: &Path, user: &str) -> Result<(), String> {
    Err(format!(
        "cannot give {} to {user} on this platform",
        dir.display()
    ))
}

/// The port of the server running on `data` if it accepts connections.
fn running_port(data: &Path) -> Option<u16> {
    // postmaster.pid: pid, data directory, start time, port, socket directory, listen address,
    // shared memory key, status.
    let pidfile = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = pidfile.lines().collect();
    let (pid, port) = (lines.first()?.trim(), lines.get(3)?.trim().parse().ok()?);
    if lines.get(7).map(|s| s.trim()) != Some("ready") || !alive(pid) {
        return None;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    Some(port)
}

/// Starts the server on a free port and waits (at most 30 s) until it accepts connections.
fn start(user: Option<&str>, bin: &Path, dir: &Path) -> Result<u16, String> {
    let data = dir.join("data");
    let log = dir.join("server.log");
    let mut last = String::new();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?
            .port();
        let started = run(
            server_command(user, &bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "30", "-o", &format!("-p {port}"), "start"])
                .current_dir(dir),
            &format!("pg_ctl start -D {}", data.display()),
            Duration::from_secs(60),
        );
        match started {
            Ok(_) => {
                return running_port(&data).filter(|p| *p == port).ok_or_else(|| {
                    format!(
                        "pg_ctl started the server in {}, but it does not accept connections \
                         on port {port}",
                        data.display()
                    )
                });
            }
            Err(e) => last = e,
        }
        // Another process may have taken the port meanwhile: try another one.
        if !tail(&log, 5).contains("could not bind") {
            break;
        }
    }
    Err(format!(
        "{last}\nserver log {}:\n{}\n(remove {} to make the cluster anew)",
        log.display(),
        tail(&log, 20),
        dir.display()
    ))
}

/// Stops a server left running on `data` (fast shutdown), waiting at most 30 s.
fn stop(data: &Path) -> Result<(), String> {
    let Ok(pidfile) = fs::read_to_string(data.join("postmaster.pid")) else {
        return Ok(());
    };
    let pid = pidfile.lines().next().unwrap_or_default().trim().to_owned();
    if pid.is_empty() || !alive(&pid) {
        return Ok(());
    }
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(&pid) {
        if Instant::now() > deadline {
            return Err(format!(
                "the server {pid} on {} did not stop",
                data.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether process `pid` exists.
fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The watchdog's script (run by `sh`): every 20 s, once the cluster is gone it exits; once
/// `last-used` is older than the idle time and no client is connected, it stops the cluster
/// (holding the provisioning lock, so no caller is handed a server about to stop) and exits.
const WATCHDOG: &str = r#"
# The watchdog of CORTEX's throwaway test cluster (written by core/src/testkit/peers/).
data=$1 used=$2 idle=$3 psql=$4 lock=$5
have_flock=; command -v flock >/dev/null 2>&1 && have_flock=1
exec 9>>"$lock"
stop_if_idle() {
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || exit 0
  { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } || exit 0
  age=$(( $(date +%s) - $(stat -c %Y "$used" 2>/dev/null || echo 0) ))
  [ "$age" -ge "$idle" ] || return 0
  if [ -x "$psql" ]; then
    port=$(sed -n 4p "$data/postmaster.pid")
    n=$("$psql" -XAt -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()" 2>/dev/null) || n=0
    [ "$n" = 0 ] || return 0
  fi
  kill -INT "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
  exit 0
}
while sleep 20; do
  if [ -n "$have_flock" ]; then flock -w 60 9 || continue; fi
  stop_if_idle
  if [ -n "$have_flock" ]; then flock -u 9; fi
done
"#;

/// Starts the cluster's watchdog unless one is running.
fn watchdog(dir: &Path, bin: &Path, lock_path: &Path) -> Result<(), String> {
    let pidfile = dir.join("watchdog.pid");
    if let Ok(pid) = fs::read_to_string(&pidfile) {
        let pid = pid.trim();
        let running = match fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) => {
                let name = WATCHDOG_NAME.as_bytes();
                cmdline.windows(name.len()).any(|w| w == name)
            }
            Err(_) => !Path::new("/proc/self").exists() && !pid.is_empty() && alive(pid),
        };
        if running {
            return Ok(());
        }
    }
    let minutes = std::env::var(IDLE_MINUTES_VAR)
        .ok()
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(DEFAULT_IDLE_MINUTES);
    // Written aside and renamed: a shell still reading an older copy keeps reading that one.
    let script = dir.join(format!("{WATCHDOG_NAME}.sh"));
    let new = dir.join(format!("{WATCHDOG_NAME}.sh.new"));
    fs::write(&new, WATCHDOG.trim_start())
        .and_then(|()| fs::rename(&new, &script))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let mut c = Command::new("sh");
    c.arg(&script)
        .arg(dir.join("data"))
        .arg(dir.join("last-used"))
        .arg((minutes * 60).to_string())
        .arg(bin.join("psql"))
        .arg(lock_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: an interrupted test run (Ctrl-C) leaves it watching.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let child = c
        .spawn()
        .map_err(|e| format!("cannot start the cluster's watchdog (sh): {e}"))?;
    fs::write(&pidfile, child.id().to_string())
        .map_err(|e| format!("cannot write {}: {e}", pidfile.display()))
}

/// Sets `path`'s modification time to now (creating it).
fn touch(path: &Path) -> Result<(), String> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .map_err(|e| format!("cannot touch {}: {e}", path.display()))
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    File::options()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The last `n` lines of a text file (empty if it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// FNV-1a, to name the `/tmp` fallback after the target directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A PostgreSQL cluster of one test's own (not the shared throwaway one), which the test may
/// crash and restart: `restart_immediately` stops it the way a crash would (`pg_ctl stop -m
/// immediate`: no checkpoint, recovery from the WAL at the next start) and starts it again on
/// the same port, so clients' URLs stay valid. Unlike the shared cluster it keeps `fsync` on.
/// Stopped and removed when dropped.
#[derive(Debug)]
pub struct OwnCluster {
    dir: PathBuf,
    user: Option<String>,
    bin: PathBuf,
    port: u16,
}

impl OwnCluster {
    /// Makes and starts a cluster named `name` (a directory beside the shared cluster's).
    pub fn create(name: &str) -> Result<OwnCluster, String> {
        let peers = peers_dir()?;
        let bin = postgres_bindir()?;
        let user = server_user()?;
        let base = cluster_dir(&peers, user.as_deref())?;
        let dir = base
            .parent()
            .unwrap_or(&base)
            .join(format!("postgres-{name}-{}", std::process::id()));
        remove(&dir)?;
        mkdir(&dir)?;
        if let Some(u) = &user {
            give_to(&dir, u)?;
        }
        let data = dir.join("data");
        run(
            server_command(user.as_deref(), &bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                .current_dir(&dir),
            &format!("initdb -D {}", data.display()),
            Duration::from_secs(120),
        )?;
        append(
            &data.join("postgresql.conf"),
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n",
        )?;
        let port = start(user.as_deref(), &bin, &dir)?;
        run(
            Command::new(bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .arg(DATABASE),
            &format!("createdb {DATABASE}"),
            Duration::from_secs(60),
        )?;
        Ok(OwnCluster {
            dir,
            user,
            bin,
            port,
        })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Crashes the server (immediate stop) and starts it again on the same port; returns once
    /// it accepts connections.
    pub fn restart_immediately(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        run(
            server_command(self.user.as_deref(), &self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .current_dir(&self.dir),
            "pg_ctl stop -m immediate",
            Duration::from_secs(60),
        )?;
        run(
            server_command(self.user.as_deref(), &self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args([
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &format!("-p {}", self.port),
                    "start",
                ])
                .current_dir(&self.dir),
            "pg_ctl start (after the crash)",
            Duration::from_secs(90),
        )?;
        running_port(&data)
            .filter(|p| *p == self.port)
            .map(drop)
            .ok_or_else(|| {
                format!(
                    "the restarted server does not accept connections on {}",
                    self.port
                )
            })
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = stop(&self.dir.join("data"));
        let _ = remove(&self.dir);
    }
}
