//! Server processes: spawned pinned to their core (`taskset`), found by the banner on their
//! first stdout line, drained afterwards (a server must never block on a full pipe), and
//! killed on drop. Start-up is timed from the spawn to the first 200 from `/health`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where processes run.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    /// Servers run on this core, the generator on another (None: unpinned).
    pub server_core: Option<usize>,
}

/// A running server.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id (the program's own: `taskset` execs it).
    pub pid: u32,
    log: PathBuf,
    /// The banner's lines after the first, as they come (proxied.rs reads the proxy's).
    banner: mpsc::Receiver<String>,
}

/// True when `taskset` (util-linux) can be run.
pub fn has_taskset() -> bool {
    Command::new("taskset").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Pins this process (its current threads; threads made later inherit it) to `core`.
pub fn pin_self(core: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("taskset -p failed: {status}")) }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Server {
    /// Starts `program args…`, pinned, stderr to `log`; waits for the banner.
    pub fn start(program: &Path, args: &[OsString], pinning: Pinning, log: &Path) -> Result<Server, String> {
        Server::start_env(program, args, pinning, log, None)
    }

    /// [`Server::start`] with one more environment variable.
    pub fn start_with_env(
        program: &Path,
        args: &[OsString],
        pinning: Pinning,
        log: &Path,
        var: (&str, &str),
    ) -> Result<Server, String> {
        Server::start_env(program, args, pinning, log, Some(var))
    }

    fn start_env(
        program: &Path,
        args: &[OsString],
        pinning: Pinning,
        log: &Path,
        var: Option<(&str, &str)>,
    ) -> Result<Server, String> {
        let mut cmd = match pinning.server_core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        };
        let err = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        // Request log lines are on by default (issue 16); the workloads measure the server
        // without them unless a variant turns them on (`REQUEST_LOGS`).
        if std::env::var_os("ENROLLGRAPH_LOG").is_none() {
            cmd.env("ENROLLGRAPH_LOG", "enrollgraph=info,enrollgraph::request=off,warn");
        }
        if let Some((name, value)) = var {
            cmd.env(name, value);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Every line, so the server never writes to a full or closed pipe; the banner
            // is all a server prints on stdout.
            let mut out = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                if !matches!(out.read_line(&mut line), Ok(1..)) || tx.send(line).is_err() {
                    break;
                }
            }
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let pid = child.id();
        let line = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_default();
        let mut server =
            Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), pid, log: log.to_owned(), banner: rx };
        let url = line.trim().rsplit(' ').next().unwrap_or_default();
        // `serve --tls` names `https://localhost:PORT`.
        let tls_port = url.strip_prefix("https://localhost:").and_then(|p| p.parse::<u16>().ok());
        let plain = url.strip_prefix("http://").and_then(|a| a.parse().ok());
        server.addr = plain.or(tls_port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)))).ok_or_else(|| {
            format!(
                "{} did not start (first line {:?}); its stderr ends:\n{}",
                program.display(),
                line.trim(),
                tail(&server.log)
            )
        })?;
        Ok(server)
    }

    /// The value of the banner line `  {label}: value…` (its first word), waiting for it.
    pub fn banner_value(&self, label: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self.banner.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(rest) = line.trim().strip_prefix(label).and_then(|r| r.strip_prefix(':')) {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    }

    /// Peak resident set size (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Fails (with the server's last log lines) when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("the server exited ({status}); its stderr ends:\n{}", tail(&self.log))),
            _ => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One blocking `GET /health`: true on a 200.
fn health_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Time from spawning `program args…` to its first answered `GET /health`, milliseconds.
pub fn startup_ms(program: &Path, args: &[OsString], pinning: Pinning, log: &Path) -> Result<f64, String> {
    let t0 = Instant::now();
    let server = Server::start(program, args, pinning, log)?;
    loop {
        if health_ok(server.addr) {
            return Ok(t0.elapsed().as_secs_f64() * 1000.0);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!("{} never answered /health", program.display()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
