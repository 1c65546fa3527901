//! Running the real-client conformance scripts (`tests/clients/`) from the Rust tests:
//! where the project-local environments live, the skip-or-fail rule when they are missing,
//! and running a script with a deadline. Included with `#[path]` by `clients_*.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when env `CI` is set to something other than empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `path` when it exists; otherwise fails under CI (where `.ci/run` must have made it) and
/// returns `None` elsewhere, after printing a skip line that says how to make it.
pub fn required(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(!in_ci(), "{} is missing; CI must create it: {how}", path.display());
    eprintln!("skipping: {} is missing (run .ci/run, or: {how})", path.display());
    None
}

/// The venv's Python (`.venv`, made from tests/clients/requirements.txt).
pub fn python() -> Option<PathBuf> {
    required(
        repo().join(".venv/bin/python"),
        "python3 -m venv .venv && .venv/bin/pip install -r tests/clients/requirements.txt",
    )
}

/// `node` plus the project-local `tests/clients/js/node_modules`.
pub fn node_modules() -> Option<PathBuf> {
    required(
        repo().join("tests/clients/js/node_modules/@microsoft/microsoft-graph-client"),
        "npm ci --prefix tests/clients/js",
    )
}

/// What a script printed.
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` in the repository with `envs`, killing it after `limit`; panics with
/// its output (and `context`) unless it exits 0 and prints `all checks passed`.
pub fn run_script(program: &Path, args: &[&str], envs: &[(&str, String)], limit: Duration, context: &str) -> Outcome {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(repo())
        .env("NO_PROXY", "localhost,127.0.0.1,::1")
        .env("no_proxy", "localhost,127.0.0.1,::1")
        .env_remove("AZURE_AUTHORITY_HOST")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    // A watchdog: a hung client must fail the test, not the whole CI run.
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{} {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- {context}",
        program.display(),
        out.status
    );
    Outcome { stdout, stderr }
}
