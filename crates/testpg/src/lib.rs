//! Test-only: a throwaway PostgreSQL cluster from the system's binaries (rulings.md 11).
//!
//! `initdb` into a temp dir, `postgres` on 127.0.0.1 on a free port with its unix socket in
//! that dir, one cluster per process ([`cluster`]) and a fresh database per test or server
//! ([`Cluster::create_database`]). Statics are never dropped, so a watchdog process stops
//! the cluster and removes its dir once this process has gone, however it ended (a panic,
//! `exit`, a kill). PostgreSQL refuses to run as root: as root the cluster runs as the
//! unprivileged `postgres` user that the distribution's package creates.
//!
//! Whether PostgreSQL tests must run: when `ENROLLGRAPH_TEST_BACKEND=postgres` asks for
//! them, or in CI (`CI` set), a missing PostgreSQL fails the test instead of skipping it.
#![allow(clippy::missing_panics_doc)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The superuser the cluster is initialised with (trust authentication on loopback).
pub const USER: &str = "enrollgraph";

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The directory holding its data, socket and log.
    pub dir: PathBuf,
    /// The directory of the PostgreSQL binaries (`psql` is usually there too).
    pub bin: PathBuf,
}

/// True when the tests are asked to run against PostgreSQL (`ENROLLGRAPH_TEST_BACKEND=postgres`).
#[must_use]
pub fn requested() -> bool {
    std::env::var("ENROLLGRAPH_TEST_BACKEND").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// True when a missing PostgreSQL must fail the run rather than skip (CI, or asked for).
#[must_use]
pub fn required() -> bool {
    requested() || std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The directory holding `initdb` and `postgres`: `PATH` first, then the Debian layout
/// `/usr/lib/postgresql/<major>/bin` (newest major first).
#[must_use]
pub fn find_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                // A link on PATH (e.g. /usr/local/bin/initdb): the real dir has psql too.
                return Some(
                    std::fs::canonicalize(dir.join("initdb"))
                        .ok()
                        .and_then(|p| p.parent().map(Path::to_path_buf))
                        .unwrap_or(dir),
                );
            }
        }
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, b)| b)
}

/// This process's cluster, started on first use (durable settings: `fsync` on).
///
/// # Errors
/// When PostgreSQL is not installed or does not start.
pub fn cluster() -> Result<&'static Cluster, String> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(true)).as_ref().map_err(Clone::clone)
}

/// This process's cluster when PostgreSQL is installed; `None` (with a line saying so) when
/// it is not and the tests may skip.
///
/// # Panics
/// When PostgreSQL is missing or broken and [`required`] says the tests must run.
#[must_use]
pub fn cluster_or_skip(what: &str) -> Option<&'static Cluster> {
    match cluster() {
        Ok(c) => Some(c),
        Err(e) if required() => {
            panic!("{what}: PostgreSQL is required here (CI or ENROLLGRAPH_TEST_BACKEND=postgres): {e}")
        }
        Err(e) => {
            eprintln!("{what}: skipped on PostgreSQL: {e}");
            None
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command that runs `program` as `postgres` when we are root (PostgreSQL refuses root).
fn as_postgres(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl Cluster {
    /// Starts a cluster in a fresh temp dir. `durable` false turns `fsync` off (faster, and
    /// still crash-safe for everything but a crash of PostgreSQL itself, which no test does).
    ///
    /// # Errors
    /// When PostgreSQL is missing or does not start.
    pub fn start(durable: bool) -> Result<Cluster, String> {
        let bin = find_bin().ok_or("no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin; install the distribution's `postgresql` package")?;
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "enrollgraph-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let root = running_as_root();
        if root {
            let out =
                Command::new("chown").arg("postgres:postgres").arg(&dir).output().map_err(|e| format!("chown: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "running as root needs the `postgres` user to run PostgreSQL: chown failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let data = dir.join("data");
        let out = as_postgres(root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let log = File::create(dir.join(format!("postgres-{port}.log"))).map_err(|e| e.to_string())?;
            let mut child = as_postgres(root, &bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args(["-c", &format!("fsync={}", if durable { "on" } else { "off" })])
                // Tests start many servers at once, each with a small pool.
                .args(["-c", "max_connections=400", "-c", "shared_buffers=64MB"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("postgres: {e}"))?;
            watchdog(child.id(), &dir);
            let cluster = Cluster { port, dir: dir.clone(), bin: bin.clone() };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "postgres exited ({status}): {}",
                        std::fs::read_to_string(dir.join(format!("postgres-{port}.log"))).unwrap_or_default()
                    );
                    break;
                }
                if cluster.psql("postgres", "SELECT 1").is_ok() {
                    return Ok(cluster);
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    last = "postgres did not accept connections within 60 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err(last)
    }

    /// Stops the cluster (fast shutdown: clients are disconnected) and waits until it is
    /// down, to test what a server does while its database is out of reach.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl(&["stop", "-m", "fast", "-w"])
    }

    /// Starts a stopped cluster again on the same port and waits until it accepts
    /// connections. Its postmaster is then no longer the one the watchdog stops at exit:
    /// a caller that restarts a cluster stops it again when done.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=400 -c shared_buffers=64MB",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join(format!("postgres-{}-again.log", self.port));
        let log = log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-l", &log, "-o", &options])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = as_postgres(running_as_root(), &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// The connection URL of database `db`.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` with `psql` in database `db`; its output (unaligned, tuples only).
    ///
    /// # Errors
    /// psql's error output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let psql = self.bin.join("psql");
        let out = Command::new(if psql.is_file() { psql } else { PathBuf::from("psql") })
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", USER, "-d", db, "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A new, empty database; its URL.
    #[must_use]
    pub fn create_database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        if let Err(e) = self.psql("postgres", &format!("CREATE DATABASE {name}")) {
            panic!("CREATE DATABASE {name}: {e}");
        }
        self.url(&name)
    }
}

/// A detached shell that waits for this process to end, then stops the postmaster (fast
/// shutdown, then SIGKILL) and removes the cluster's dir.
fn watchdog(postmaster: u32, dir: &Path) {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; \
         kill -INT {postmaster} 2>/dev/null; i=0; \
         while kill -0 {postmaster} 2>/dev/null && [ $i -lt 40 ]; do sleep 0.25; i=$((i+1)); done; \
         kill -KILL {postmaster} 2>/dev/null; sleep 0.5; rm -rf '{dir}'",
        parent = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
