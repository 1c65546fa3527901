//! `serve --proxy` (issue 14): an HTTP/1.1 forward proxy beside the Graph listener, so that a
//! tool whose Graph and login hosts are fixed (IntuneCD, the SDKs' defaults, MSAL's public
//! authority) reaches enrollgraph with `HTTPS_PROXY` and one trusted CA, unchanged.
//!
//! - `CONNECT host:443` to an intercepted host (`graph.microsoft.com`, the login hosts and
//!   their aliases; the national clouds' with `--proxy-national-clouds`): answered `200`,
//!   then TLS is terminated here with a leaf for the name the client sent (SNI), issued on
//!   the fly by the local CA of `serve --tls` (tls.rs) and cached, and the requests inside
//!   go through the same router as direct ones, as `https://<that host>`. Nothing is ever
//!   forwarded to the real service.
//! - Absolute-form plain HTTP (`GET http://graph.microsoft.com/v1.0/...`) to an intercepted
//!   host: the same router, as `http://<that host>`.
//! - Any other host (including this machine's own ports, so the proxy is no way into loopback
//!   services): `403` naming the host and `--proxy-passthrough`, and a journal entry in the
//!   default tenant. With `--proxy-passthrough`, `CONNECT` to other hosts is a blind tunnel
//!   (any address, loopback too: the operator asked for it); plain HTTP to them stays refused.
//!
//! The connection rules of listen.rs (cap, header and idle timeouts) hold for the proxy's
//! connections and for the connections inside its tunnels alike.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use enrollgraph_server::admin::Controls;
use enrollgraph_server::journal::Record;
use hyper_util::rt::TokioIo;

use crate::listen::{Connection, answer};
use crate::tls::Authority;

/// The hosts served by default: Graph, the login host and the aliases clients use for it.
pub const PUBLIC_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
];

/// The national clouds' Graph and login hosts (`--proxy-national-clouds`): US Government
/// (L4, L5/DoD) and China (21Vianet), as the Graph SDKs name them in their national-cloud
/// constants.
pub const NATIONAL_HOSTS: &[&str] = &[
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// How long a passthrough connection to another host may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The proxy's configuration and its certificate cache.
pub struct Proxy {
    /// The Graph router, for requests inside intercepted tunnels (its scheme is `https`).
    pub tunnel_router: Router,
    /// The Graph router, for absolute-form plain HTTP (its scheme is `http`).
    pub plain_router: Router,
    /// The intercepted hosts, lower case.
    pub hosts: Vec<String>,
    /// Tunnel other hosts untouched instead of refusing them.
    pub passthrough: bool,
    /// Throttling, faults and the journal (a refused host is journaled).
    pub controls: Arc<Controls>,
    /// The tenant refusals are journaled in.
    pub tenant: Arc<str>,
    /// TLS for intercepted tunnels: the leaf is chosen by SNI.
    pub tls: Arc<rustls::ServerConfig>,
}

impl Proxy {
    /// `hosts` intercepted with leaves of `authority`.
    pub fn new(
        tunnel_router: Router,
        plain_router: Router,
        hosts: Vec<String>,
        passthrough: bool,
        controls: Arc<Controls>,
        tenant: Arc<str>,
        authority: Authority,
    ) -> Proxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let leaves = Arc::new(Leaves { authority, hosts: hosts.clone(), cache: Mutex::new(HashMap::new()) });
        let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_cert_resolver(leaves);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Proxy { tunnel_router, plain_router, hosts, passthrough, controls, tenant, tls: Arc::new(config) }
    }

    fn intercepts(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
    }

    /// `403`, naming the host and the flag, and a journal entry.
    fn refuse(&self, method: &str, target: &str, headers: &HeaderMap, why: &str) -> Response<Body> {
        let message = format!(
            "enrollgraph's proxy does not forward {target}: it serves only {} itself. {why}",
            self.hosts.join(", ")
        );
        tracing::info!(target_host = target, "proxy: refused");
        self.controls.journal.record(&Record {
            tenant: &self.tenant,
            app: None,
            method,
            path: target,
            query: "",
            headers,
            body: &[],
            status: StatusCode::FORBIDDEN.as_u16(),
            duration_ms: 0.0,
            request_id: None,
            client_request_id: None,
        });
        error(StatusCode::FORBIDDEN, "ProxyHostRefused", &message)
    }
}

/// A Graph-shaped error body from the proxy itself.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A refused client has nothing more to say on this connection.
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The host of an authority, lower case, without a trailing dot or IPv6 brackets' absence.
fn host_of(uri: &Uri) -> Option<(String, u16)> {
    let authority = uri.authority()?;
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    (!host.is_empty()).then_some((host, port))
}

/// One request to the proxy.
pub(crate) async fn handle(
    proxy: Arc<Proxy>,
    conn: Connection,
    mut req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    if req.method() == Method::CONNECT {
        return connect(proxy, conn, req).await;
    }
    let Some((host, port)) = host_of(req.uri()).filter(|_| req.uri().scheme_str() == Some("http")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "This is enrollgraph's forward proxy: send CONNECT host:443, or an absolute http:// URL.",
        );
    };
    let target = format!("{host}:{port}");
    if !proxy.intercepts(&host) || port != 80 {
        let why = "Plain HTTP is forwarded to no other host, even with --proxy-passthrough.";
        return proxy.refuse(req.method().as_str(), &target, req.headers(), why);
    }
    // As the host itself would see it: origin-form, Host naming the host.
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let Ok(origin) = path.parse::<Uri>() else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "The request target is not a URL.");
    };
    *req.uri_mut() = origin;
    if let Ok(v) = HeaderValue::from_str(&host) {
        req.headers_mut().insert(header::HOST, v);
    }
    strip_proxy_headers(req.headers_mut());
    answer(proxy.plain_router.clone(), &conn.limits, conn.observer.as_deref(), &conn.activity, conn.peer, req).await
}

/// Headers meant for the proxy, not the host behind it.
fn strip_proxy_headers(headers: &mut HeaderMap) {
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove("proxy-connection");
}

async fn connect(proxy: Arc<Proxy>, conn: Connection, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let Some((host, port)) = host_of(req.uri()) else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "CONNECT needs host:port.");
    };
    let target = format!("{host}:{port}");
    if proxy.intercepts(&host) && port == 443 {
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
            let acceptor = tokio_rustls::TlsAcceptor::from(proxy.tls.clone());
            let handshake = acceptor.accept(TokioIo::new(upgraded));
            // A client that does not trust the CA ends the handshake here: nothing is
            // served in plaintext and nothing goes elsewhere.
            if let Ok(Ok(tls)) = tokio::time::timeout(conn.limits.header_read, handshake).await {
                let inner = Connection { router: proxy.tunnel_router.clone(), proxy: None, ..conn };
                inner.run_boxed(tls).await;
            }
        });
        return Response::new(Body::empty());
    }
    if !proxy.passthrough {
        let why = if proxy.intercepts(&host) {
            "Intercepted hosts are served on port 443 only."
        } else {
            "Start the server with --proxy-passthrough (ENROLLGRAPH_PROXY_PASSTHROUGH=true) to tunnel other hosts."
        };
        return proxy.refuse("CONNECT", &target, req.headers(), why);
    }
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return error(StatusCode::BAD_GATEWAY, "BadGateway", &format!("cannot reach {target}: {e}")),
            Err(_) => return error(StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout", &format!("{target} did not answer")),
        };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let mut client = TokioIo::new(upgraded);
        let mut upstream = upstream;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    Response::new(Body::empty())
}

/// Leaf certificates by SNI, issued once per host and kept for the server's life.
struct Leaves {
    authority: Authority,
    hosts: Vec<String>,
    cache: Mutex<HashMap<String, Arc<rustls::sign::CertifiedKey>>>,
}

impl fmt::Debug for Leaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaves").field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

impl rustls::server::ResolvesServerCert for Leaves {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        // No SNI, or a name that is not intercepted: no certificate, so the handshake fails.
        let host = hello.server_name()?.trim_end_matches('.').to_ascii_lowercase();
        if !self.hosts.contains(&host) {
            return None;
        }
        let mut cache = self.cache.lock().ok()?;
        if let Some(leaf) = cache.get(&host) {
            return Some(leaf.clone());
        }
        match self.authority.leaf(&host) {
            Ok(leaf) => {
                let leaf = Arc::new(leaf);
                cache.insert(host, leaf.clone());
                Some(leaf)
            }
            Err(e) => {
                tracing::warn!(host, error = %e, "proxy: cannot issue a leaf certificate");
                None
            }
        }
    }
}
