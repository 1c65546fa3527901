//! `serve --proxy` (issue 14): curl through the proxy to Graph's and the login host, a
//! refused host, passthrough to a TLS server of the test's own, clients that do not trust
//! the CA failing closed, malformed CONNECTs, and the non-loopback refusal.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // not every re-export of the harness is used here
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[path = "support/proxy_server.rs"]
mod proxy_server;

use common::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, TENANT, TlsServer, Value, bin, keys_file};
use proxy_server::{ProxyServer, uuid_like};

/// What curl did: its exit code, stdout and stderr.
struct Curl {
    code: i32,
    out: String,
    err: String,
}

/// curl with no proxy from the environment: only what `args` say.
fn curl(args: &[&str]) -> Curl {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("curl is needed (Debian: apt-get install curl)");
    Curl {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn token_through(s: &ProxyServer, host: &str) -> String {
    let ca = s.ca.display().to_string();
    let r = curl(&[
        "-x",
        &s.proxy,
        "--cacert",
        &ca,
        &format!("https://{host}/{TENANT}/oauth2/v2.0/token"),
        "-d",
        "grant_type=client_credentials",
        "-d",
        &format!("client_id={DEV_CLIENT_ID}"),
        "-d",
        &format!("client_secret={DEV_CLIENT_SECRET}"),
        "-d",
        "scope=https://graph.microsoft.com/.default",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {}", r.out)).to_owned()
}

/// A raw request to the proxy; the answer's head and as much body as arrives in time.
fn raw(s: &ProxyServer, request: &[u8]) -> String {
    let mut c = TcpStream::connect(s.proxy_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(request);
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn curl_through_the_proxy_is_graph_and_login_with_graph_origins() {
    let s = ProxyServer::start(&["--page-size", "2"]);
    let ca = s.ca.display().to_string();
    let token = token_through(&s, "login.microsoftonline.com");
    let auth = format!("Authorization: Bearer {token}");
    let r = curl(&[
        "-x",
        &s.proxy,
        "--cacert",
        &ca,
        "-H",
        &auth,
        "https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations?$select=id",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let page: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(
        page["@odata.context"],
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations(id)"
    );
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations?"),
        "{next}"
    );
    // The nextLink works as it is, through the proxy.
    let r = curl(&["-x", &s.proxy, "--cacert", &ca, "-H", &auth, next]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(serde_json::from_str::<Value>(&r.out).unwrap()["value"].as_array().unwrap().len(), 2);
    // A create names the Graph host in Location; the object is there on the direct listener too.
    let body = r##"{"@odata.type":"#microsoft.graph.deviceEnrollmentLimitConfiguration","displayName":"through the proxy","limit":2}"##;
    let r = curl(&[
        "-x",
        &s.proxy,
        "--cacert",
        &ca,
        "-i",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data",
        body,
        "https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    // After the proxy's own `200` to the CONNECT, the intercepted answer (HTTP/2 by ALPN).
    assert!(r.out.starts_with("HTTP/1.1 200") && r.out.contains("\nHTTP/2 201"), "{}", r.out);
    let location = r.out.lines().find_map(|l| l.strip_prefix("location: ")).unwrap().trim().to_owned();
    assert!(
        location.starts_with("https://graph.microsoft.com/beta/deviceManagement/deviceEnrollmentConfigurations"),
        "{location}"
    );
    let direct = reqwest::blocking::Client::new()
        .get(format!(
            "{}/beta/deviceManagement/deviceEnrollmentConfigurations?$filter=displayName eq 'through the proxy'",
            s.base
        ))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(direct["value"].as_array().unwrap().len(), 1, "{direct}");
    // The login host and its aliases: OpenID configuration naming the host asked.
    for host in ["login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"] {
        let r = curl(&[
            "-x",
            &s.proxy,
            "--cacert",
            &ca,
            &format!("https://{host}/{TENANT}/v2.0/.well-known/openid-configuration"),
        ]);
        assert_eq!(r.code, 0, "{host}: {}", r.err);
        let v: Value = serde_json::from_str(&r.out).unwrap();
        assert_eq!(v["token_endpoint"], format!("https://{host}/{TENANT}/oauth2/v2.0/token"), "{host}");
    }
    // The journal saw the intercepted requests as Graph requests.
    assert!(s.journal().iter().any(|e| e["method"] == "POST" && e["status"] == 201), "{:?}", s.journal());
}

#[test]
fn plain_http_absolute_form_to_graph_is_served() {
    let s = ProxyServer::start(&[]);
    let token = token_through(&s, "login.microsoftonline.com");
    let r = curl(&[
        "-x",
        &s.proxy,
        "-H",
        &format!("Authorization: Bearer {token}"),
        "http://graph.microsoft.com/v1.0/deviceManagement",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["@odata.context"], "http://graph.microsoft.com/v1.0/$metadata#deviceManagement/$entity");
    // Plain HTTP to any other host: refused, not fetched.
    let r = curl(&["-x", &s.proxy, "-w", "%{http_code}", "http://example.com/"]);
    assert!(r.out.ends_with("403"), "{}", r.out);
    assert!(r.out.contains("example.com:80"), "{}", r.out);
    // A request that is not for a proxy: 400.
    let answer = raw(&s, b"GET /v1.0/deviceManagement HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[test]
fn another_host_is_refused_by_name_with_the_flag_and_journaled() {
    let s = ProxyServer::start(&[]);
    // curl sees the refusal of the tunnel.
    let r = curl(&["-x", &s.proxy, "https://example.com/"]);
    assert_eq!(r.code, 56, "{}", r.err);
    assert!(r.err.contains("403"), "{}", r.err);
    let answer = raw(&s, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("example.com:443") && answer.contains("--proxy-passthrough"), "{answer}");
    assert!(answer.contains(r#""code":"ProxyHostRefused""#), "{answer}");
    // No way into this machine's own services either: the Graph listener, by address.
    let own = s.base.trim_start_matches("http://").to_owned();
    let answer = raw(&s, format!("CONNECT {own} HTTP/1.1\r\nHost: {own}\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // An intercepted host on another port is no tunnel to anywhere.
    let answer = raw(&s, b"CONNECT graph.microsoft.com:8443 HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let journal = s.journal();
    let refused: Vec<&str> = journal
        .iter()
        .filter(|e| e["method"] == "CONNECT" && e["status"] == 403)
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        refused,
        ["example.com:443", "example.com:443", own.as_str(), "graph.microsoft.com:8443"],
        "{journal:?}"
    );
}

#[test]
fn passthrough_tunnels_other_hosts_untouched() {
    // The test's own TLS server: another enrollgraph on `serve --tls`, with its own CA.
    let other = TlsServer::start(&[]);
    let url = other.url("/health");
    let other_ca = other.ca.display().to_string();
    let refused = ProxyServer::start(&[]);
    let r = curl(&["-x", &refused.proxy, "--cacert", &other_ca, &url]);
    assert_ne!(r.code, 0, "without --proxy-passthrough the tunnel is refused: {}", r.out);
    let s = ProxyServer::start(&["--proxy-passthrough"]);
    // The far server's own certificate reaches the client: verified against its CA, not ours.
    let r = curl(&["-x", &s.proxy, "--cacert", &other_ca, &url]);
    assert_eq!((r.code, r.out.as_str()), (0, "ok"), "{}", r.err);
    let r = curl(&["-x", &s.proxy, "--cacert", &s.ca.display().to_string(), &url]);
    assert_ne!(r.code, 0, "our CA does not vouch for a passthrough host: {}", r.out);
    // Intercepted hosts stay intercepted with passthrough on.
    let r = curl(&[
        "-x",
        &s.proxy,
        "--cacert",
        &s.ca.display().to_string(),
        "https://graph.microsoft.com/v1.0/$metadata",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]);
    assert_eq!((r.code, r.out.as_str()), (0, "200"), "{}", r.err);
}

#[test]
fn a_client_that_does_not_trust_the_ca_fails_closed() {
    let s = ProxyServer::start(&[]);
    // The system's roots only: the handshake fails, and nothing is answered.
    let r =
        curl(&["-x", &s.proxy, "-o", "/dev/null", "-w", "%{http_code}", "https://graph.microsoft.com/v1.0/$metadata"]);
    assert_eq!(r.code, 60, "{}", r.err);
    assert_eq!(r.out, "000");
    // Nor does the proxy fall back to plaintext inside the tunnel.
    let r = curl(&[
        "-x",
        &s.proxy,
        "--proxytunnel",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://graph.microsoft.com:443/v1.0/$metadata",
    ]);
    assert_ne!(r.out, "200", "{}", r.err);
}

#[test]
fn huge_and_malformed_connects_are_answered_and_closed() {
    let s = ProxyServer::start(&[]);
    let mut huge = b"CONNECT ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1_000_000));
    huge.extend_from_slice(b".com:443 HTTP/1.1\r\n\r\n");
    let answer = raw(&s, &huge);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
    for bad in [
        &b"CONNECT nonsense HTTP/1.1\r\n\r\n"[..],
        b"CONNECT :443 HTTP/1.1\r\n\r\n",
        b"CONNECT graph.microsoft.com:443:1 HTTP/1.1\r\n\r\n",
        b"CONNECT \x01\x02 HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw(&s, bad);
        assert!(answer.starts_with("HTTP/1.1 4"), "{:?}: {answer}", String::from_utf8_lossy(bad));
    }
    // And the proxy still serves.
    let r = curl(&[
        "-x",
        &s.proxy,
        "--cacert",
        &s.ca.display().to_string(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "https://graph.microsoft.com/v1.0/$metadata",
    ]);
    assert_eq!(r.out, "200", "{}", r.err);
}

#[test]
fn the_proxy_refuses_a_non_loopback_address_without_the_flag() {
    let dir = std::env::temp_dir().join(format!("enrollgraph-proxy-remote-{}", uuid_like()));
    let out = Command::new(bin())
        .args(["serve", "--port", "0", "--proxy", "--proxy-port", "0", "--proxy-address", "0.0.0.0", "--data-dir"])
        .arg(&dir)
        .arg("--signing-keys-file")
        .arg(keys_file())
        .env_remove("ENROLLGRAPH_DATABASE")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--proxy-address 0.0.0.0 is not a loopback address") && err.contains("--proxy-allow-remote"),
        "{err}"
    );
}

#[test]
fn env_prints_the_proxy_the_ca_and_a_bundle_with_the_system_roots() {
    let dir = std::env::temp_dir().join(format!("enrollgraph-proxy-env-{}", uuid_like()));
    let out = Command::new(bin()).args(["env", "--proxy-port", "5999", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")))
            .unwrap_or_else(|| panic!("no {k}: {text}"))
            .trim_matches('\'')
            .to_owned()
    };
    assert_eq!(var("HTTPS_PROXY"), "http://127.0.0.1:5999");
    assert_eq!(var("NO_PROXY"), "localhost,127.0.0.1,::1");
    let ca = std::fs::read_to_string(var("ENROLLGRAPH_CA")).unwrap();
    let bundle = std::fs::read_to_string(var("REQUESTS_CA_BUNDLE")).unwrap();
    assert_eq!(var("SSL_CERT_FILE"), var("REQUESTS_CA_BUNDLE"));
    assert_eq!(var("NODE_EXTRA_CA_CERTS"), var("REQUESTS_CA_BUNDLE"));
    assert!(bundle.ends_with(&ca));
    if let Ok(system) = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt") {
        assert!(bundle.starts_with(system.trim_end()), "the system roots come first");
    }
    // The CA key is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("tls/ca-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
