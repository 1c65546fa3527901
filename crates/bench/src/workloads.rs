//! The workloads: which requests each sends, built once per server (the `Host` header
//! differs). Ceilings serve the same paths as enrollgraph, so one definition drives both.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::ceilings::CONFIGS;
use crate::load::{Client, MakeRequest, head, request, write_request};
use crate::seed::{FILTER_GROUP, Seeded, assignment_body};

/// A workload of the table.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Short id (`--only` matches its prefix).
    pub id: &'static str,
    /// What the table calls it.
    pub title: &'static str,
    /// Connections.
    pub conns: usize,
}

/// W1 at c=1.
pub const W1C1: Def = Def { id: "W1c1", title: "W1 create assignment", conns: 1 };
/// W1 at c=32.
pub const W1C32: Def = Def { id: "W1c32", title: "W1 create assignment", conns: 32 };
/// W2.
pub const W2: Def = Def { id: "W2", title: "W2 get one assignment", conns: 32 };
/// W3.
pub const W3: Def = Def { id: "W3", title: "W3 list 100 assignments", conns: 32 };
/// W4.
pub const W4: Def = Def { id: "W4", title: "W4 80% GET / 20% POST", conns: 32 };
/// W6: one client replacing one configuration's set of 50, again and again (latency).
pub const W6: Def = Def { id: "W6", title: "W6 assign (replace 50)", conns: 1 };

/// Assignments per `assign` body (W6).
const ASSIGN_SET: usize = 50;

fn get_requests(head: &str, seeded: &Seeded) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        seeded
            .read
            .iter()
            .flat_map(|(config, children)| {
                children
                    .iter()
                    .map(move |child| request("GET", head, &format!("{CONFIGS}/{config}/assignments/{child}"), None))
            })
            .collect(),
    )
}

/// The request generator of workload `def` for the server `head` (from [`crate::load::head`]) names.
pub fn make(def: Def, head: &str, seeded: &Seeded) -> MakeRequest {
    let gets = get_requests(head, seeded);
    let write_paths: Arc<Vec<String>> =
        Arc::new(seeded.write.iter().map(|c| format!("{CONFIGS}/{c}/assignments")).collect());
    let post_head = head.to_owned();
    let post = move |rng: &mut crate::load::Rng, conn: usize, out: &mut Vec<u8>| {
        let body = assignment_body(&rng.uuid()).to_string();
        write_request(out, "POST", &post_head, &write_paths[conn % write_paths.len()], Some(&body));
    };
    match def.id {
        "W2" => Arc::new(move |rng, _, out| out.extend_from_slice(&gets[rng.below(gets.len())])),
        "W3" => {
            let lists: Vec<Vec<u8>> = seeded
                .read
                .iter()
                .map(|(config, _)| request("GET", head, &format!("{CONFIGS}/{config}/assignments"), None))
                .collect();
            Arc::new(move |rng, _, out| out.extend_from_slice(&lists[rng.below(lists.len())]))
        }
        "W4" => Arc::new(move |rng, conn, out| {
            if rng.below(5) == 0 {
                post(rng, conn, out);
            } else {
                out.extend_from_slice(&gets[rng.below(gets.len())]);
            }
        }),
        "W6" => {
            let assigns: Vec<Vec<u8>> = seeded
                .assign
                .iter()
                .enumerate()
                .map(|(i, config)| {
                    let items: Vec<Value> = (0..ASSIGN_SET)
                        .map(|j| assignment_body(&format!("00000000-0000-4000-8000-{:06x}{:06x}", i, j)))
                        .collect();
                    let body = serde_json::json!({ "enrollmentConfigurationAssignments": items }).to_string();
                    request("POST", head, &format!("{CONFIGS}/{config}/assign"), Some(&body))
                })
                .collect();
            Arc::new(move |_, conn, out| out.extend_from_slice(&assigns[conn % assigns.len()]))
        }
        // W1 (c=1 and c=32).
        _ => Arc::new(post),
    }
}

/// W5's requests, found by probing the server.
pub struct W5Plan {
    /// The filter that worked.
    pub filter: String,
    /// Page 1 over the big configuration.
    pub page1: Vec<u8>,
    /// Page `n` over the big configuration (following nextLinks).
    pub page_n: Vec<u8>,
    /// Which page `page_n` is.
    pub n: usize,
    /// Page 1 over the small configuration.
    pub small1: Vec<u8>,
}

/// Why W5 cannot run on this server.
pub enum W5Skip {
    /// The server answered 501 or 400 to every filter tried: it has no `$filter` (yet).
    NoFilter(String),
    /// The server answered something else: the bench reports it as broken.
    Broken(String),
}

fn percent_encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/'".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The filters tried, in order: the plain path, then with a type cast (the declared
/// `target` type is abstract; `groupId` lives on `groupAssignmentTarget`).
const FILTERS: [&str; 2] = ["target/groupId eq '{g}'", "target/microsoft.graph.groupAssignmentTarget/groupId eq '{g}'"];

/// Page size of W5's pages: `$top=10`, so 100 pages over 1,000 matches.
pub const W5_TOP: usize = 10;

/// Finds a `$filter` the server accepts and the URL of page `want` (following nextLinks).
pub async fn probe_w5(addr: SocketAddr, seeded: &Seeded, want: usize) -> Result<W5Plan, W5Skip> {
    let base = format!("http://{addr}");
    let head = head(&addr.to_string(), None);
    let mut client = Client::connect(addr).await.map_err(|e| W5Skip::Broken(format!("connect: {e}")))?;
    let mut last = String::new();
    for filter in FILTERS {
        let filter = filter.replace("{g}", FILTER_GROUP);
        let query = format!("$filter={}&$top={W5_TOP}", percent_encode_query(&filter));
        let first = format!("{CONFIGS}/{}/assignments?{query}", seeded.big);
        let reply =
            client.send(&request("GET", &head, &first, None)).await.map_err(|e| W5Skip::Broken(e.to_string()))?;
        let text = String::from_utf8_lossy(reply.body).into_owned();
        match reply.status {
            200 => {}
            400 | 501 => {
                last = format!("HTTP {}: {}", reply.status, text.chars().take(200).collect::<String>());
                continue;
            }
            s => return Err(W5Skip::Broken(format!("HTTP {s} for {first}: {text}"))),
        }
        let mut page: Value = serde_json::from_str(&text).map_err(|e| W5Skip::Broken(format!("page 1: {e}")))?;
        let mut n = 1;
        let mut page_n = first.clone();
        loop {
            let items = page.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
            let wrong =
                items.iter().any(|i| i.pointer("/target/groupId").and_then(Value::as_str) != Some(FILTER_GROUP));
            if items.is_empty() || wrong {
                return Err(W5Skip::Broken(format!("the filter '{filter}' answered wrong items on page {n}")));
            }
            let next = page.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
            let Some(next) = next.filter(|_| n < want) else {
                break;
            };
            let path = next.strip_prefix(&base).unwrap_or(&next).to_owned();
            let reply =
                client.send(&request("GET", &head, &path, None)).await.map_err(|e| W5Skip::Broken(e.to_string()))?;
            if reply.status != 200 {
                return Err(W5Skip::Broken(format!("HTTP {} following nextLink {path}", reply.status)));
            }
            page = serde_json::from_slice(reply.body).map_err(|e| W5Skip::Broken(format!("page {}: {e}", n + 1)))?;
            n += 1;
            page_n = path;
        }
        let small = format!("{CONFIGS}/{}/assignments?{query}", seeded.small);
        return Ok(W5Plan {
            filter,
            page1: request("GET", &head, &first, None),
            page_n: request("GET", &head, &page_n, None),
            n,
            small1: request("GET", &head, &small, None),
        });
    }
    Err(W5Skip::NoFilter(last))
}

/// The development app of `enrollgraph serve` (crates/cli/src/main.rs: published, dev only).
const DEV_CLIENT_ID: &str = "5e0f7b2a-8c4d-4e1f-9a3b-6d2c1f0e8b7a";
const DEV_CLIENT_SECRET: &str = "egDev8Q~enrollgraph-development-secret-0001";

/// An app token for the development app (client credentials), as a Graph client gets one.
pub async fn fetch_token(addr: SocketAddr, tenant: &str) -> Result<String, String> {
    let form = format!(
        "grant_type=client_credentials&client_id={DEV_CLIENT_ID}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        percent_encode_query(DEV_CLIENT_SECRET)
    );
    let req = format!(
        "POST /{tenant}/oauth2/v2.0/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let mut client = Client::connect(addr).await.map_err(|e| format!("token: {e}"))?;
    let reply = client.send(req.as_bytes()).await.map_err(|e| format!("token: {e}"))?;
    let body: Value = serde_json::from_slice(reply.body).unwrap_or(Value::Null);
    match (reply.status, body.get("access_token").and_then(Value::as_str)) {
        (200, Some(t)) => Ok(t.to_owned()),
        (s, _) => Err(format!("the token endpoint answered HTTP {s}: {body}")),
    }
}
