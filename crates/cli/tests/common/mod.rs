//! The test harness: the real `enrollgraph` binary on a random loopback port with a
//! fresh data directory, driven over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use reqwest::blocking::Response;
pub use serde_json::{Value, json};

/// The tenant the server provisions by default.
pub const TENANT: &str = "d7c5e0a4-6f1b-4c3e-9a2d-5b8e7f0c1a93";

/// A running server; killed (and its data dir removed) on drop.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    extra: Vec<String>,
    client: reqwest::blocking::Client,
}

fn temp_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!("enrollgraph-it-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            base: String::new(),
            data_dir: temp_dir(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            client: reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_enrollgraph"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        // Keep draining, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://"), "unexpected banner: {line}");
        self.base = url;
        self.child = Some(child);
    }

    /// Stops the server with SIGKILL (no graceful shutdown) and starts it again on the same data.
    pub fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    pub fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().unwrap()
    }

    pub fn send(&self, method: &str, path: &str, body: &Value) -> Response {
        self.client
            .request(method.parse().unwrap(), self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.send("POST", path, body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Response {
        self.send("PATCH", path, body)
    }

    pub fn raw(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Creates an entity and returns its body (asserting 201).
    pub fn create(&self, path: &str, body: &Value) -> Value {
        let r = self.post(path, body);
        assert_eq!(r.status(), 201, "POST {path}: {}", r.text().unwrap_or_default());
        r.json().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Reads an example body from the reference (`../shared/reference/examples`).
pub fn example(name: &str) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()))).unwrap()
}

/// The error code of a Graph error body.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Drops `@odata.context`, server-made ids and times, and the `#` of `@odata.type`, so a
/// response can be compared with a doc example (rulings.md 4: compare modulo `#`).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "@odata.context" | "id" | "createdDateTime" | "lastModifiedDateTime"))
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("@odata.type", Value::String(s)) => Value::String(s.trim_start_matches('#').to_owned()),
                        _ => normalize(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}
