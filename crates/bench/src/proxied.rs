//! W2 through `serve --proxy` (issue 14): one enrollgraph with `--tls --proxy --auth off`,
//! W2 over TLS keep-alive connections to it directly (`https://localhost:PORT`) and through
//! its proxy (`CONNECT graph.microsoft.com:443`, then TLS with the leaf the proxy issues),
//! alternating in slices like the other workloads. Target: the proxy adds at most 15 %
//! (req/s through it ≥ 1 / 1.15 of direct).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Spec, Target, Tls};
use crate::report::Measured;
use crate::seed::Seeded;
use crate::server::{Pinning, Server};
use crate::workloads::{self, W2};

/// The server names of the two runs.
pub const DIRECT: &str = "eg-tls";
/// …
pub const PROXIED: &str = "eg-tls-proxy";
/// The intercepted host the proxied run names.
const GRAPH: &str = "graph.microsoft.com";

/// What the two runs take.
pub struct Settings<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub enrollgraph: &'a Path,
    pub data: &'a Path,
    pub pinning: Pinning,
    pub scratch: &'a Path,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
}

fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        roots.add(cert.map_err(|e| format!("{}: {e}", ca.display()))?).map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Runs W2 directly over TLS and through the proxy; the two measurements.
pub fn run(s: &Settings<'_>, seeded: &Seeded) -> Result<Vec<Measured>, String> {
    let args: Vec<OsString> =
        ["serve", "--port", "0", "--tls", "--proxy", "--proxy-port", "0", "--auth", "off", "--data-dir"]
            .iter()
            .map(OsString::from)
            .chain([s.data.as_os_str().to_owned()])
            .collect();
    let mut server = Server::start(s.enrollgraph, &args, s.pinning, &s.scratch.join("tls-proxy.log"))?;
    let proxy = server.banner_value("proxy").ok_or("no proxy line in the banner")?;
    let ca = server.banner_value("trust this CA").ok_or("no CA line in the banner")?;
    let proxy_addr =
        proxy.strip_prefix("http://").and_then(|a| a.parse().ok()).ok_or("the proxy line is no address")?;
    let config = client_config(Path::new(&ca))?;
    let name = |n: &str| rustls::pki_types::ServerName::try_from(n.to_owned()).map_err(|e| e.to_string());
    let direct = Target {
        addr: server.addr,
        tls: Some(Arc::new(Tls { config: config.clone(), name: name("localhost")?, connect: None })),
    };
    let proxied = Target {
        addr: proxy_addr,
        tls: Some(Arc::new(Tls { config, name: name(GRAPH)?, connect: Some(format!("{GRAPH}:443")) })),
    };
    let runs = [
        (DIRECT, direct, workloads::make(W2, &load::head(&format!("localhost:{}", server.addr.port()), None), seeded)),
        (PROXIED, proxied, workloads::make(W2, &load::head(GRAPH, None), seeded)),
    ];
    let rounds = s.rounds.max(1);
    let slices = u32::try_from(rounds).unwrap_or(1);
    let mut merged: Vec<Option<load::Outcome>> = vec![None, None];
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (_, target, make) = &runs[i];
            let spec = Spec {
                conns: W2.conns,
                warmup: (s.warmup / slices).max(Duration::from_millis(200)),
                duration: s.duration / slices,
                make: make.clone(),
            };
            let outcome = s.runtime.block_on(load::run_on(target, &spec, server.pid));
            server.check_alive()?;
            merged[i] = Some(match merged[i].take() {
                Some(m) => m.merge(outcome),
                None => outcome,
            });
        }
    }
    let mut out = Vec::new();
    for ((label, _, _), outcome) in runs.iter().zip(merged) {
        let outcome = outcome.ok_or("a run did not happen")?;
        let m = Measured::new(label, W2.id, format!("{} (TLS)", W2.title), W2.conns, &outcome);
        println!("{}  server cpu {:.2}", m.summary(), m.server_cpu);
        out.push(m);
    }
    Ok(out)
}
