//! The load generator: N keep-alive HTTP/1.1 connections on one current-thread runtime
//! (the bench process is pinned to its own core), a warm-up, then a fixed measured window
//! whose latencies go into an HDR histogram, and each response into a per-request trace
//! (when it completed, how long it took) from which [`crate::tails`] reads the tail's shape.
//!
//! The client is hand-rolled (one `write`, `read`s until the response is complete, no
//! allocation per request) because a general client costs more per request than the
//! servers under test spend on a bare `hello`; the generator must never be the bottleneck.
//! Each run also reports the CPU both processes used, so a saturated generator shows.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Where the connections of a run go: plain TCP, or TLS (directly, or through a `CONNECT`
/// proxy: `serve --proxy`, issue 14).
#[derive(Clone)]
pub struct Target {
    /// The server's (or the proxy's) address.
    pub addr: SocketAddr,
    /// TLS on top, if any.
    pub tls: Option<Arc<Tls>>,
}

impl Target {
    /// Plain HTTP to `addr`.
    pub fn plain(addr: SocketAddr) -> Target {
        Target { addr, tls: None }
    }
}

/// TLS settings of a [`Target`].
pub struct Tls {
    /// Trusting the server's CA; HTTP/1.1 only (the generator speaks nothing else).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must carry (SNI).
    pub name: rustls::pki_types::ServerName<'static>,
    /// `host:port` to `CONNECT` to first, when `addr` is a proxy.
    pub connect: Option<String>,
}

/// A connection's byte stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Builds the bytes of one request: `(rng, connection index, out)`.
pub type MakeRequest = Arc<dyn Fn(&mut Rng, usize, &mut Vec<u8>) + Send + Sync>;

/// A small, fast PRNG (xorshift64*): enough to pick keys, no dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        // Modulo bias is irrelevant for picking among a few thousand keys.
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap_or(0)
    }

    /// A random version-4-shaped UUID string (for group ids in bodies).
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// The header lines every request to one server carries: `Host`, `Accept`, and a bearer
/// token when the server wants one.
pub fn head(host: &str, token: Option<&str>) -> String {
    let mut h = format!("Host: {host}\r\nAccept: application/json\r\n");
    if let Some(t) = token {
        h.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    h
}

/// The bytes of one HTTP/1.1 request (keep-alive is the default); `head` from [`head`].
pub fn request(method: &str, head: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + head.len() + body.map_or(0, str::len));
    write_request(&mut out, method, head, path, body);
    out
}

/// Appends one HTTP/1.1 request to `out`.
pub fn write_request(out: &mut Vec<u8>, method: &str, head: &str, path: &str, body: Option<&str>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{method} {path} HTTP/1.1\r\n{head}");
    if let Some(b) = body {
        let _ = write!(out, "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len());
        out.extend_from_slice(b.as_bytes());
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// One keep-alive connection.
pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
    consumed: usize,
    chunked: Vec<u8>,
}

/// A response: status and body (borrowed from the client's buffer).
pub struct Reply<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

enum BodyAt {
    Range(Range<usize>),
    Chunked,
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses one complete response at the start of `buf`: `(status, body, bytes used)`, or
/// `None` when more bytes are needed.
fn parse(buf: &[u8], chunked: &mut Vec<u8>) -> io::Result<Option<(u16, BodyAt, usize)>> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = &buf[..head_end];
    if head.len() < 12 || !head.starts_with(b"HTTP/1.") {
        return Err(invalid("not an HTTP/1 response"));
    }
    let status: u16 = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut length = None;
    let mut is_chunked = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse::<usize>().ok());
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") && find(value, b"chunked").is_some() {
            is_chunked = true;
        }
    }
    let start = head_end + 4;
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some((status, BodyAt::Range(start..start), start)));
    }
    if is_chunked {
        chunked.clear();
        let mut pos = start;
        loop {
            let Some(eol) = find(&buf[pos..], b"\r\n") else {
                return Ok(None);
            };
            let text = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| invalid("bad chunk size"))?;
            let size = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            pos += eol + 2;
            if size == 0 {
                // No trailers: servers under test send none.
                return Ok((buf.len() >= pos + 2).then_some((status, BodyAt::Chunked, pos + 2)));
            }
            if buf.len() < pos + size + 2 {
                return Ok(None);
            }
            chunked.extend_from_slice(&buf[pos..pos + size]);
            pos += size + 2;
        }
    }
    let len = length.ok_or_else(|| invalid("a response with neither Content-Length nor chunked encoding"))?;
    Ok((buf.len() >= start + len).then_some((status, BodyAt::Range(start..start + len), start + len)))
}

impl Client {
    /// Connects (with `TCP_NODELAY`, as every HTTP client does).
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        Client::open(&Target::plain(addr)).await
    }

    /// Connects to `target`: TCP, the proxy's `CONNECT` if any, then the TLS handshake.
    pub async fn open(target: &Target) -> io::Result<Client> {
        let mut tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let stream = match &target.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                if let Some(authority) = &tls.connect {
                    tcp.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
                        .await?;
                    // Byte by byte up to the blank line: nothing after it may be consumed.
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut b = [0u8; 1];
                        if tcp.read(&mut b).await? == 0 || head.len() > 16 * 1024 {
                            return Err(invalid("the proxy closed the connection"));
                        }
                        head.push(b[0]);
                    }
                    if !head.starts_with(b"HTTP/1.1 200") {
                        return Err(invalid(&format!("CONNECT refused: {}", String::from_utf8_lossy(&head))));
                    }
                }
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                Stream::Tls(Box::new(connector.connect(tls.name.clone(), tcp).await?))
            }
        };
        Ok(Client { stream, buf: Vec::with_capacity(64 * 1024), consumed: 0, chunked: Vec::new() })
    }

    /// Sends one request and reads its response.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Reply<'_>> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.stream.write_all(request).await?;
        let (status, body, used) = loop {
            if let Some(done) = parse(&self.buf, &mut self.chunked)? {
                break done;
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
            }
        };
        self.consumed = used;
        let body = match body {
            BodyAt::Range(r) => &self.buf[r],
            BodyAt::Chunked => &self.chunked[..],
        };
        Ok(Reply { status, body })
    }
}

/// One load run.
#[derive(Clone)]
pub struct Spec {
    /// Concurrent connections, each with one request in flight.
    pub conns: usize,
    /// Not measured: connections open, caches and the allocator warm up.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// What each request is.
    pub make: MakeRequest,
}

/// What a run measured.
pub struct Outcome {
    /// Responses completed within the measured window.
    pub requests: u64,
    /// Non-2xx responses (any time, warm-up included).
    pub errors: u64,
    /// The first non-2xx response or I/O failure, for the report.
    pub first_error: Option<String>,
    /// Latencies (µs) of the measured responses.
    pub hist: Histogram<u64>,
    /// The measured window, seconds.
    pub seconds: f64,
    /// CPU the generator used over the window, in cores (1.0 = one core busy).
    pub gen_cpu: f64,
    /// CPU the server used over the window, in cores.
    pub server_cpu: f64,
    /// Time the server's threads were runnable but not running (waiting for a core), in
    /// seconds per second of the window, summed over its threads (`schedstat`, proc(5)).
    pub server_run_wait: f64,
    /// Bytes the server sent to storage over the window, per second (`write_bytes` of
    /// `/proc/<pid>/io`: the WAL's frames and the checkpoints' pages, as the page cache
    /// counts them when they are dirtied), NaN where the kernel does not say.
    pub server_written: f64,
    /// Every measured response, in order of completion (at most [`TRACE_PER_CONN`] per
    /// connection); slices merged one after another ([`Outcome::merge`]).
    pub trace: Vec<Sample>,
}

/// One measured response of the per-request trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When it completed: µs after its slice's measured window opened (later slices are
    /// shifted by the earlier ones' windows).
    pub done_us: u64,
    /// How long it took, µs.
    pub latency_us: u64,
}

/// The most responses one connection traces per slice (16 bytes each, so at most 2 MiB):
/// bounded whatever the server's speed; at the speeds measured here (≤ 160 k req/s) no
/// connection comes near it.
pub const TRACE_PER_CONN: usize = 1 << 17;

impl Outcome {
    /// Both runs as one (slices of the same workload on the same server).
    pub fn merge(mut self, other: Outcome) -> Outcome {
        let total = self.seconds + other.seconds;
        let weigh = |a: f64, b: f64| (a * self.seconds + b * other.seconds) / total.max(1e-9);
        self.gen_cpu = weigh(self.gen_cpu, other.gen_cpu);
        self.server_cpu = weigh(self.server_cpu, other.server_cpu);
        self.server_run_wait = weigh(self.server_run_wait, other.server_run_wait);
        self.server_written = weigh(self.server_written, other.server_written);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let shift = (self.seconds * 1e6) as u64;
        self.trace.extend(other.trace.iter().map(|s| Sample { done_us: s.done_us + shift, ..*s }));
        self.requests += other.requests;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        // Same bounds on both sides: adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.seconds = total;
        self
    }

    /// Requests per second.
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 { self.requests as f64 / self.seconds } else { 0.0 }
    }

    /// The latency at `q` (0..=1), milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

struct ConnResult {
    hist: Histogram<u64>,
    trace: Vec<Sample>,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs .. 100 s at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant histogram bounds are valid")
}

async fn conn_loop(target: Target, index: usize, make: MakeRequest, measure_from: Instant, end: Instant) -> ConnResult {
    let mut r = ConnResult { hist: new_hist(), trace: Vec::new(), requests: 0, errors: 0, first_error: None };
    let mut client = match Client::open(&target).await {
        Ok(c) => c,
        Err(e) => {
            r.errors += 1;
            r.first_error = Some(format!("connect: {e}"));
            return r;
        }
    };
    let mut rng = Rng::new(index as u64 + 1);
    let mut req = Vec::with_capacity(8 * 1024);
    while Instant::now() < end {
        req.clear();
        make(&mut rng, index, &mut req);
        let t0 = Instant::now();
        match client.send(&req).await {
            Ok(reply) => {
                let t1 = Instant::now();
                if !(200..300).contains(&reply.status) {
                    r.errors += 1;
                    if r.first_error.is_none() {
                        let body = String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)]).into_owned();
                        r.first_error = Some(format!("HTTP {}: {body}", reply.status));
                    }
                } else if t1 >= measure_from && t1 <= end {
                    r.requests += 1;
                    let us = u64::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u64::MAX).max(1);
                    // Values above the histogram's range are clamped to it.
                    r.hist.saturating_record(us);
                    if r.trace.len() < TRACE_PER_CONN {
                        let done_us = u64::try_from(t1.duration_since(measure_from).as_micros()).unwrap_or(u64::MAX);
                        r.trace.push(Sample { done_us, latency_us: us });
                    }
                }
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| format!("I/O: {e}"));
                return r;
            }
        }
    }
    r
}

/// CPU time (user + system) a process has used, seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (proc(5)).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Time (s) the threads of process `pid` have waited on a run queue, summed: the second
/// field of each `/proc/<pid>/task/<tid>/schedstat` (ns). Threads that ended are not
/// counted, so only differences over a window in which none ends mean anything.
pub fn run_wait_seconds(pid: &str) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += stat.split_whitespace().nth(1).and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
    }
    #[allow(clippy::cast_precision_loss)]
    Some(total as f64 / 1e9)
}

/// Bytes process `pid` has caused to be sent to storage (`write_bytes` of
/// `/proc/<pid>/io`, proc(5)); `None` where the kernel keeps no I/O accounting.
pub fn written_bytes(pid: &str) -> Option<f64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find_map(|l| l.strip_prefix("write_bytes:"))?;
    #[allow(clippy::cast_precision_loss)]
    line.trim().parse::<u64>().ok().map(|b| b as f64)
}

/// `sysconf(_SC_CLK_TCK)` without unsafe code: asked of `getconf` once; 100 on Linux.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Runs `spec` against `addr`; `server_pid` is sampled for CPU use.
pub async fn run(addr: SocketAddr, spec: &Spec, server_pid: u32) -> Outcome {
    run_on(&Target::plain(addr), spec, server_pid).await
}

/// Runs `spec` against `target`; `server_pid` is sampled for CPU use.
pub async fn run_on(target: &Target, spec: &Spec, server_pid: u32) -> Outcome {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.conns {
        tasks.spawn(conn_loop(target.clone(), i, spec.make.clone(), measure_from, end));
    }
    let server = server_pid.to_string();
    tokio::time::sleep_until(measure_from.into()).await;
    let (g0, s0, w0, b0, t0) =
        (cpu_seconds("self"), cpu_seconds(&server), run_wait_seconds(&server), written_bytes(&server), Instant::now());
    tokio::time::sleep_until(end.into()).await;
    let (g1, s1, w1, b1, t1) =
        (cpu_seconds("self"), cpu_seconds(&server), run_wait_seconds(&server), written_bytes(&server), Instant::now());
    let wall = t1.duration_since(t0).as_secs_f64().max(1e-9);
    let mut out = Outcome {
        requests: 0,
        errors: 0,
        first_error: None,
        hist: new_hist(),
        seconds: spec.duration.as_secs_f64(),
        gen_cpu: g0.zip(g1).map_or(f64::NAN, |(a, b)| (b - a) / wall),
        server_cpu: s0.zip(s1).map_or(f64::NAN, |(a, b)| (b - a) / wall),
        server_run_wait: w0.zip(w1).map_or(f64::NAN, |(a, b)| (b - a) / wall),
        server_written: b0.zip(b1).map_or(f64::NAN, |(a, b)| (b - a) / wall),
        trace: Vec::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => {
                out.requests += r.requests;
                out.errors += r.errors;
                if out.first_error.is_none() {
                    out.first_error = r.first_error;
                }
                // Same bounds on both sides: adding cannot fail.
                let _ = out.hist.add(&r.hist);
                out.trace.extend_from_slice(&r.trace);
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("a connection task failed: {e}"));
            }
        }
    }
    out.trace.sort_unstable_by_key(|s| s.done_us);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let mut scratch = Vec::new();
        let r = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1";
        let (status, body, used) = parse(r, &mut scratch).expect("valid").expect("complete");
        assert_eq!((status, used), (201, 45));
        assert!(matches!(body, BodyAt::Range(ref b) if &r[b.clone()] == b"{}"));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", &mut scratch).expect("valid").is_none());
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (_, body, used) = parse(c, &mut scratch).expect("valid").expect("complete");
        assert!(matches!(body, BodyAt::Chunked));
        assert_eq!((scratch.as_slice(), used), (&b"abcde"[..], c.len()));
        let (status, _, used) =
            parse(b"HTTP/1.1 204 No Content\r\n\r\n", &mut scratch).expect("valid").expect("complete");
        assert_eq!((status, used), (204, 27));
    }

    #[test]
    fn uuids_are_shaped() {
        let u = Rng::new(7).uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
