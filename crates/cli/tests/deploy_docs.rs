//! The deployment examples in docs/ (issue 16): the compose file and the Kubernetes
//! manifest parse as YAML, have the shape the README promises (replicas over PostgreSQL,
//! probes, secrets), and every `serve` flag and `ENROLLGRAPH_*` variable they use, and
//! those the Containerfile sets, exists in `enrollgraph serve --help`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_yaml::Value;

fn repo_file(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn serve_help() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_enrollgraph")).args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Checks a variable name and a command line against the help text.
fn check(help: &str, envs: &[String], args: &[String], what: &str) {
    assert!(!envs.is_empty() && !args.is_empty(), "{what}: nothing found to check");
    for name in envs {
        assert!(name.starts_with("ENROLLGRAPH_"), "{what}: {name}");
        // ENROLLGRAPH_LOG is a filter, named in --log-format's help, not a flag of its own.
        assert!(
            help.contains(&format!("[env: {name}="))
                || help.contains(&format!("[env: {name}]"))
                || help.contains(&format!("`{name}`")),
            "{what}: {name} is not in `serve --help`"
        );
    }
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{what}: {args:?}");
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        assert!(help.contains(&format!("  {flag} ")), "{what}: {flag} is not in `serve --help`");
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[test]
fn the_kubernetes_manifest_uses_real_flags_probes_and_secrets() {
    let text = repo_file("docs/kubernetes.yaml");
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("a Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2, "N replicas");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(10001));
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    let env = container["env"].as_sequence().unwrap();
    let names: Vec<String> = env.iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect();
    // The database URL and the admin key come from a Secret, never a literal.
    for secret in ["ENROLLGRAPH_DATABASE", "ENROLLGRAPH_ADMIN_KEY"] {
        let e = env.iter().find(|e| e["name"] == secret).unwrap_or_else(|| panic!("{secret} set"));
        assert!(e["valueFrom"]["secretKeyRef"]["name"].is_string(), "{secret} from a secret");
        assert!(e.get("value").is_none(), "{secret} is no literal");
    }
    // The signing keys: a file from a Secret volume, mounted where the variable says.
    let keys = env.iter().find(|e| e["name"] == "ENROLLGRAPH_SIGNING_KEYS_FILE").unwrap()["value"].as_str().unwrap();
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| keys.starts_with(m["mountPath"].as_str().unwrap()))
        .expect("the signing keys are mounted");
    let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == mount["name"]).expect("its volume");
    assert!(volume["secret"]["secretName"].is_string(), "the signing keys come from a Secret");
    // Probes and metrics on ports the container declares.
    let ports: Vec<&str> =
        container["ports"].as_sequence().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(ports.contains(&"graph") && ports.contains(&"metrics"), "{ports:?}");
    check(&serve_help(), &names, &strings(&container["args"]), "docs/kubernetes.yaml");
}

#[test]
fn the_compose_file_uses_real_flags_and_variables() {
    let doc: Value = serde_yaml::from_str(&repo_file("docs/compose.yaml")).unwrap();
    let services = &doc["services"];
    assert!(services["postgres"]["image"].as_str().unwrap().contains("postgres"));
    let eg = &services["enrollgraph"];
    assert!(eg["deploy"]["replicas"].as_u64().unwrap() >= 2, "replicas over PostgreSQL");
    let names: Vec<String> =
        eg["environment"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"ENROLLGRAPH_SIGNING_KEYS_FILE".to_owned()));
    assert!(strings(&eg["secrets"]).iter().all(|s| doc["secrets"].get(s.as_str()).is_some()), "declared secrets");
    assert!(strings(&eg["env_file"]).len() == 1, "the admin key and database URL come from an env file");
    check(&serve_help(), &names, &strings(&eg["command"]), "docs/compose.yaml");
}

#[test]
fn the_containerfile_sets_real_variables() {
    let text = repo_file("Containerfile");
    let mut names = Vec::new();
    let mut in_env = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ENV ") {
            in_env = true;
            names.extend(rest.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.to_owned()));
        } else if in_env && line.contains('=') {
            names.extend(line.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.to_owned()));
        }
        in_env = in_env && line.ends_with('\\');
    }
    assert!(names.contains(&"ENROLLGRAPH_ADDRESS".to_owned()), "{names:?}");
    let cmd = text.lines().find_map(|l| l.strip_prefix("CMD ")).unwrap();
    let args: Vec<String> = serde_json::from_str(cmd).unwrap();
    check(&serve_help(), &names, &args, "Containerfile");
}
