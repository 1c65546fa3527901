//! `serve --proxy` for the tests (issue 14): the Graph listener, the proxy and the CA from
//! the banner. Included with `#[path]` next to `mod common;`.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::{TENANT, Value, bin, keys_file};

pub const ADMIN_KEY: &str = "egadm_proxy_test_key_0123456789abcdef";

/// `serve --proxy` on free ports, with the journal on; killed and removed on drop.
pub struct ProxyServer {
    child: Child,
    /// `http://127.0.0.1:PORT`: the Graph listener.
    pub base: String,
    /// `http://127.0.0.1:PORT`: the proxy.
    pub proxy: String,
    /// The CA to trust.
    pub ca: PathBuf,
    pub data_dir: PathBuf,
    database: Option<String>,
}

impl ProxyServer {
    pub fn start(extra: &[&str]) -> ProxyServer {
        // Once: on PostgreSQL each call makes a new database.
        let database = crate::common::test_database();
        let data_dir = std::env::temp_dir().join(format!("enrollgraph-proxy-{}", uuid_like()));
        let mut child = Command::new(bin())
            .args(["serve", "--port", "0", "--proxy", "--proxy-port", "0", "--journal", "on", "--data-dir"])
            .arg(&data_dir)
            .arg("--signing-keys-file")
            .arg(keys_file())
            .args(["--admin-key", ADMIN_KEY])
            .args(extra)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut base, mut proxy, mut ca, mut banner) = (String::new(), String::new(), PathBuf::new(), String::new());
        for _ in 0..40 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            banner.push_str(&line);
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("enrollgraph listening on ") {
                base = rest.to_owned();
            } else if let Some(rest) = line.strip_prefix("proxy:") {
                proxy = rest.split_whitespace().next().unwrap().to_owned();
            } else if let Some(rest) = line.strip_prefix("trust this CA:") {
                ca = PathBuf::from(rest.trim());
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        assert!(proxy.starts_with("http://127.0.0.1:") && ca.is_file(), "unexpected banner: {banner}");
        ProxyServer { child, base, proxy, ca, data_dir, database }
    }

    /// The proxy's `host:port`.
    pub fn proxy_addr(&self) -> String {
        self.proxy.trim_start_matches("http://").to_owned()
    }

    /// Runs the CLI against this server's data dir and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("ENROLLGRAPH_DATABASE")
            .envs(self.database.iter().map(|d| ("ENROLLGRAPH_DATABASE", d)))
            .output()
            .unwrap();
        assert!(out.status.success(), "enrollgraph {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The journal entries of the default tenant.
    pub fn journal(&self) -> Vec<Value> {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/_enrollgraph/journal?tenant={TENANT}", self.base))
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().unwrap()["value"].as_array().unwrap().clone()
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn uuid_like() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{t}", std::process::id())
}
