//! The listener (issue 18, items 3 and 17): an accept loop over hyper's connection builder,
//! plain or TLS, so that no client can hold the server's resources for nothing.
//!
//! - At most `max_connections` connections at once; one more is answered `503` with
//!   `Retry-After` (plain HTTP; over TLS it is closed) and closed, before any work is done.
//! - A request's head must arrive within `header_read` of the connection waiting for it
//!   (hyper's header-read timer; over TLS the handshake too), its body within `body_read`
//!   of its head (the body then fails, and the server answers `408`).
//! - A connection with no request in progress and no byte in either direction for `idle`
//!   is closed (over HTTP/1.1 hyper's header timer starts when a keep-alive connection
//!   begins to wait, so there an idle connection lasts the shorter of the two).
//! - A request answered before its body was read (401, 400, 413) gets `Connection: close`,
//!   and the connection reads and drops what the client still sends for a moment after the
//!   answer (a lingering close), so a client still writing its body reads the answer instead
//!   of a reset.
//! - `X-Forwarded-*` and `Forwarded` headers reach the server only from `trusted_proxies`
//!   (they choose the origin of nextLinks and token endpoints: issue 18 item 15).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Version, header};
use bytes::Bytes;
use enrollgraph_server::observe::Observer;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// What one client may hold, and whom `X-Forwarded-*` is believed from.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a request's head (and a TLS handshake) to arrive.
    pub header_read: Duration,
    /// Time for a request's body to arrive, from its head.
    pub body_read: Duration,
    /// Time a connection may sit with no request and no traffic.
    pub idle: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long open connections may finish their requests once the server is told to stop.
    pub shutdown_grace: Duration,
}

impl Limits {
    fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// How long a refused body is read and dropped after the answer (the lingering close).
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much of a refused body is read and dropped after the answer.
const LINGER_LIMIT: usize = 16 * 1024 * 1024;

/// Serves `router` on `listener` until `stop` resolves; with `proxy`, the listener is
/// `serve --proxy`'s forward proxy (proxy.rs), under the same rules.
///
/// # Errors
/// The listener cannot be used.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    proxy: Option<Arc<crate::proxy::Proxy>>,
    limits: Limits,
    observer: Option<Arc<Observer>>,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX).max(1);
    let permits = Arc::new(Semaphore::new(max as usize));
    let limits = Arc::new(limits);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stopping, stopped) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections finish first.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream, acceptor.is_none());
            continue;
        };
        let conn = Connection {
            peer,
            router: router.clone(),
            proxy: proxy.clone(),
            limits: limits.clone(),
            observer: observer.clone(),
            activity: Arc::new(Activity::new()),
            stopped: stopped.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let io = Tracked { inner: Some(stream), activity: conn.activity.clone(), permit: Some(permit) };
            match acceptor {
                None => conn.run(io).await,
                Some(acceptor) => {
                    if let Ok(Ok(tls)) = tokio::time::timeout(conn.limits.header_read, acceptor.accept(io)).await {
                        conn.run(tls).await;
                    }
                }
            }
        });
    }
    // Graceful shutdown (issue 16): the listening socket closes first, so a new
    // connection is refused by the kernel; open connections finish the requests they
    // have (HTTP/1.1 answers them with `Connection: close`, HTTP/2 sends GOAWAY) within
    // the grace, and idle ones close now.
    let _ = stopping.send(true);
    drop(listener);
    let open = max as usize - permits.available_permits();
    tracing::info!(connections = open, grace_s = limits.shutdown_grace.as_secs(), "stopped accepting connections");
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(max)).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace are dropped");
    }
    Ok(())
}

/// Over the connection cap: a `503` with `Retry-After`, written without waiting (the socket's
/// send buffer is empty), then the connection is closed. Over TLS, closed without a word: a
/// handshake would cost the work the cap saves.
fn refuse(stream: &TcpStream, plain: bool) {
    // Once a second at most: a flood of refusals must not become a flood of log lines.
    static LAST_WARNED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if LAST_WARNED.swap(now, Ordering::Relaxed) != now {
        tracing::warn!("connection cap reached: connections are refused");
    }
    if plain {
        let body = r#"{"error":{"code":"ServiceUnavailable","message":"The server has too many open connections; retry later."}}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.try_write(answer.as_bytes());
    }
}

/// What the idle check and the lingering close know of a connection.
pub(crate) struct Activity {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last byte read or written.
    last: AtomicU64,
    /// Requests whose answer has not been produced yet.
    in_flight: AtomicUsize,
    /// An answer was sent before its request's body was read: linger on close.
    linger: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            linger: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// Counts a request in progress while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The TCP stream, noting traffic; it holds the connection's place under the cap, and on
/// drop after a refused body, lingers (see the module's comment) before letting both go.
struct Tracked {
    inner: Option<TcpStream>,
    activity: Arc<Activity>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.activity.linger.load(Ordering::Relaxed) {
            return;
        }
        let (Some(stream), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let permit = self.permit.take();
        runtime.spawn(async move {
            let mut stream = stream;
            let _ = stream.shutdown().await;
            let mut buf = vec![0u8; 16 * 1024];
            let mut read = 0usize;
            let drain = async {
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    read += n;
                    if read > LINGER_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
            drop(permit);
        });
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(Ok(())) };
        let r = Pin::new(inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())) };
        let r = Pin::new(inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())) };
        let r = Pin::new(inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A request body that fails with `TimedOut` once its deadline passes, and says whether it
/// was read to its end.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    ended: Arc<AtomicBool>,
    failed: bool,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.ended.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.failed = true;
                    let e =
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body did not arrive in time");
                    Poll::Ready(Some(Err(e.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

static CLOSE: HeaderValue = HeaderValue::from_static("close");

/// One connection's share of the server.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    pub(crate) router: Router,
    /// On the proxy's listener: CONNECT and absolute-form requests go to proxy.rs.
    pub(crate) proxy: Option<Arc<crate::proxy::Proxy>>,
    pub(crate) limits: Arc<Limits>,
    /// Metrics and request log lines (issue 16), when either is on.
    pub(crate) observer: Option<Arc<Observer>>,
    pub(crate) activity: Arc<Activity>,
    pub(crate) stopped: watch::Receiver<bool>,
}

impl Connection {
    /// [`Connection::run`], boxed: the proxy runs a connection inside a request of another
    /// (a CONNECT tunnel), and a future cannot hold itself without a box in between.
    pub(crate) fn run_boxed<I>(self, io: I) -> Pin<Box<dyn Future<Output = ()> + Send>>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Box::pin(self.run(io))
    }

    pub(crate) async fn run<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.limits.header_read);
        builder.http2().timer(TokioTimer::new());
        let (router, limits, activity, peer) =
            (self.router.clone(), self.limits.clone(), self.activity.clone(), self.peer);
        let observer = self.observer.clone();
        let tunnel = self.proxy.clone().map(|p| (p, self.clone()));
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (router, limits, activity) = (router.clone(), limits.clone(), activity.clone());
            let tunnel = tunnel.clone();
            let observer = observer.clone();
            async move {
                if let Some((proxy, conn)) = tunnel {
                    return Ok::<_, Infallible>(crate::proxy::handle(proxy, conn, req).await);
                }
                Ok::<_, Infallible>(answer(router, &limits, observer.as_deref(), &activity, peer, req).await)
            }
        });
        // With upgrades: the proxy's CONNECT hands the connection over (proxy.rs); the
        // Graph router never asks for one, so for it nothing changes.
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        // The idle check runs a few times per idle period: a connection closes at most a
        // quarter period late.
        let period = (self.limits.idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut check = tokio::time::interval(period);
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = self.stopped.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = check.tick() => {
                    if self.activity.in_flight.load(Ordering::Relaxed) == 0
                        && self.activity.idle_for() >= self.limits.idle
                    {
                        break;
                    }
                }
            }
        }
    }
}

/// One request through the router, with the connection's rules applied.
pub(crate) async fn answer(
    router: Router,
    limits: &Limits,
    observer: Option<&Observer>,
    activity: &Arc<Activity>,
    peer: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let _busy = InFlight::new(activity);
    let (mut parts, body) = req.into_parts();
    // The peer address keys the failed sign-in limit (issue 18 item 9, identity.rs).
    parts.extensions.insert(axum::extract::ConnectInfo(peer));
    if !limits.trusts(peer.ip()) {
        strip_forwarded(&mut parts.headers);
    }
    // A request without a body (every GET) has nothing to watch: no flag is allocated.
    let ended = (!http_body::Body::is_end_stream(&body)).then(|| Arc::new(AtomicBool::new(false)));
    let body = match &ended {
        Some(ended) => Body::new(Deadline {
            inner: Body::new(body),
            sleep: Box::pin(tokio::time::sleep(limits.body_read)),
            ended: ended.clone(),
            failed: false,
        }),
        None => Body::new(body),
    };
    let http1 = parts.version <= Version::HTTP_11;
    let mut req = Request::from_parts(parts, body);
    let observation = observer.map(|o| o.begin(&mut req));
    let Ok(mut resp) = tower::ServiceExt::oneshot(router, req).await;
    if http1 && ended.is_some_and(|ended| !ended.load(Ordering::Relaxed)) {
        resp.headers_mut().insert(header::CONNECTION, CLOSE.clone());
        activity.linger.store(true, Ordering::Relaxed);
    }
    if let (Some(observer), Some(observation)) = (observer, observation) {
        observer.end(observation, &resp);
    }
    resp
}

/// Removes the headers a proxy sets about the client's origin.
fn strip_forwarded(headers: &mut axum::http::HeaderMap) {
    let names: Vec<header::HeaderName> =
        headers.keys().filter(|k| k.as_str().starts_with("x-forwarded-") || *k == header::FORWARDED).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_by_cidr() {
        let nets = |list: &[&str]| list.iter().filter_map(|n| n.parse().ok()).collect::<Vec<ipnet::IpNet>>();
        let limits = Limits {
            header_read: Duration::from_secs(1),
            body_read: Duration::from_secs(1),
            idle: Duration::from_secs(1),
            max_connections: 1,
            trusted_proxies: nets(&["10.0.0.0/8", "::1/128"]),
            shutdown_grace: Duration::from_secs(1),
        };
        assert!(limits.trusts("10.1.2.3".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))));
        assert!(limits.trusts("::ffff:10.1.2.3".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))));
        assert!(limits.trusts("::1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))));
        assert!(!limits.trusts("127.0.0.1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))));
        assert!(!limits.trusts("11.0.0.1".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))));
    }
}
