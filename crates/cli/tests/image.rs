//! The container image (issue 16): built with podman from the binary these tests run
//! (scripts/build-image.sh, FROM scratch), its filesystem exported and the binary run from
//! it with chroot as the image's user (podman cannot run containers in this sandbox: crun
//! cannot set rlimits). It must start, answer `/health` and its own HEALTHCHECK command,
//! and serve a Graph request with a token. Skipped only outside CI when podman is absent.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)]
mod common;

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEV_CLIENT_ID, TENANT, Value};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cmd` to completion within `limit`, returning its stdout; panics on failure.
fn run(cmd: &mut Command, limit: Duration) -> String {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Removes the image, the container and the exported filesystem, also when the test fails.
struct Cleanup {
    tag: String,
    container: Option<String>,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &self.container {
            let _ = Command::new("podman").args(["rm", "-f", c]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ =
            Command::new("podman").args(["rmi", "-f", &self.tag]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn podman_present() -> bool {
    Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_image_starts_as_its_user_and_serves_graph_with_a_token() {
    if !podman_present() {
        assert!(std::env::var_os("CI").is_none_or(|v| v.is_empty()), "CI needs podman (.ci/run installs it)");
        eprintln!("image test skipped: podman is not installed");
        return;
    }
    let tag = format!("localhost/enrollgraph-test:{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("enrollgraph-image-{}", std::process::id()));
    let mut cleanup = Cleanup { tag: tag.clone(), container: None, dir: dir.clone() };
    run(
        Command::new(repo_root().join("scripts/build-image.sh")).args([env!("CARGO_BIN_EXE_enrollgraph"), &tag]),
        Duration::from_secs(300),
    );
    // The image's configuration: a numeric non-root user, the data volume, the listen
    // address for a container, the health check.
    let inspect: Value =
        serde_json::from_str(&run(Command::new("podman").args(["image", "inspect", &tag]), Duration::from_secs(60)))
            .unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "10001:10001");
    assert!(config["Volumes"].get("/data").is_some(), "{config}");
    let env: Vec<String> = config["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert!(env.contains(&"ENROLLGRAPH_ADDRESS=0.0.0.0".to_owned()), "{env:?}");
    let health: Vec<&str> =
        inspect[0]["Healthcheck"]["Test"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(&health[..3], ["CMD", "/enrollgraph", "health"], "{health:?}");
    // Its filesystem, exported.
    let container = run(Command::new("podman").args(["create", &tag]), Duration::from_secs(60)).trim().to_owned();
    cleanup.container = Some(container.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.with_extension("tar");
    run(Command::new("podman").args(["export", "-o"]).arg(&tar).arg(&container), Duration::from_secs(120));
    run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&dir), Duration::from_secs(120));
    let _ = std::fs::remove_file(&tar);
    let passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("enrollgraph:x:10001:10001:")), "{passwd}");
    let data = std::fs::metadata(dir.join("data")).unwrap();
    assert_eq!((data.uid(), data.gid(), data.mode() & 0o777), (10001, 10001, 0o700));
    // Exactly the binary, its libraries, the loader and the user's files.
    let mut files = Vec::new();
    collect(&dir, &dir, &mut files);
    for f in &files {
        assert!(
            f == "enrollgraph" || f.starts_with("lib") || f.starts_with("etc/") || f == "data" || f == "tmp",
            "unexpected file in the image: {f}"
        );
    }
    // Started from that filesystem as the image's user, with the image's environment.
    let mut server = Command::new("chroot")
        .arg("--userspec=10001:10001")
        .arg(&dir)
        .args(["/enrollgraph", "serve", "--port", "0"])
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let (mut port, mut secret) = (String::new(), String::new());
    let mut line = String::new();
    while secret.is_empty() && out.read_line(&mut line).unwrap() > 0 {
        if let Some(url) = line.trim().strip_prefix("enrollgraph listening on http://0.0.0.0:") {
            port = url.to_owned();
        }
        // Off loopback the development app gets a random secret, shown once.
        if let Some(s) = line.trim().strip_prefix("client secret: ") {
            secret = s.split_whitespace().next().unwrap_or_default().to_owned();
        }
        line.clear();
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(!port.is_empty() && !secret.is_empty(), "the banner names the port and the client secret");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_owned();
    assert!(uid.split_whitespace().skip(1).all(|u| u == "10001"), "runs as 10001: {uid}");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let health = http.get(format!("{base}/health")).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().unwrap(), "ok");
    // The image's HEALTHCHECK command, from the image's filesystem as its user.
    let probe = Command::new("chroot")
        .arg("--userspec=10001:10001")
        .arg(&dir)
        .args(["/enrollgraph", "health", "--url", &format!("{base}/health")])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .status()
        .unwrap();
    assert!(probe.success(), "the health check command");
    // Auth stays on: a Graph request without a token is refused, with one it is served.
    let path = "/beta/deviceManagement/deviceEnrollmentConfigurations";
    assert_eq!(http.get(format!("{base}{path}")).send().unwrap().status(), 401);
    let token: Value = http
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEV_CLIENT_ID),
            ("client_secret", secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let listed = http.get(format!("{base}{path}")).bearer_auth(token).send().unwrap();
    assert_eq!(listed.status(), 200);
    assert!(listed.json::<Value>().unwrap()["value"].as_array().is_some());
    assert!(dir.join("data/enrollgraph.sqlite").exists(), "the database is in the data volume");
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}

/// Every path under `dir` (relative), descending only into `etc` and the library dirs.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if path.is_dir() && rel != "data" && rel != "tmp" {
            collect(root, &path, out);
        } else {
            out.push(rel);
        }
    }
}
