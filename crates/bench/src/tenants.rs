//! Tenants on demand (issue 9): how long the admin API takes to create a tenant (its
//! defaults and a ready app registration, credentials returned) and to reset one to its
//! defaults, each a durable commit, measured one at a time over loopback HTTP against
//! its own `enrollgraph serve` (fresh data dir, pinned like the other servers).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::server::{Pinning, Server};

const KEY: &str = "egadm_bench-admin-key";

/// One request on a fresh connection; returns the status.
fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&out[..out.len().min(12)]).into_owned();
    head.get(9..12).and_then(|c| c.parse().ok()).ok_or_else(|| format!("no status in {head:?}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(what: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} (admin API over loopback, one at a time, durable)",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or_default(),
        ms.len()
    )
}

/// Creates `n` tenants, then resets each once; returns one line per operation.
pub fn run(enrollgraph: &Path, pinning: Pinning, scratch: &Path, n: usize) -> Result<Vec<String>, String> {
    let data = scratch.join("tenants-data");
    let args: Vec<OsString> = ["serve", "--port", "0", "--auth", "off", "--admin-key", KEY, "--data-dir"]
        .iter()
        .map(OsString::from)
        .chain([data.into_os_string()])
        .collect();
    let server = Server::start(enrollgraph, &args, pinning, &scratch.join("tenants.log"))?;
    let (mut create, mut reset) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t0 = Instant::now();
        let status = call(server.addr, "POST", "/_enrollgraph/tenants", &format!(r#"{{"id":"bench-{i}.example"}}"#))?;
        create.push(t0.elapsed().as_secs_f64() * 1000.0);
        if status != 201 {
            return Err(format!("tenant create {i} answered {status}"));
        }
    }
    for i in 0..n {
        let t0 = Instant::now();
        let status = call(server.addr, "POST", &format!("/_enrollgraph/tenants/bench-{i}.example/reset"), "")?;
        reset.push(t0.elapsed().as_secs_f64() * 1000.0);
        if status != 204 {
            return Err(format!("tenant reset {i} answered {status}"));
        }
    }
    Ok(vec![summary("tenant create", create), summary("tenant reset", reset)])
}
