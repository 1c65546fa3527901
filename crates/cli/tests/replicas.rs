//! Several `enrollgraph serve` replicas over one PostgreSQL database act as one service
//! (issue 6): many clients hammer two replicas with `assign`, `setPriority`, `PATCH`,
//! `DELETE` and creates for a bounded time, then the data must be consistent — priorities
//! unique and contiguous from 1 per kind (rulings.md 7), no assignment set half-replaced, no
//! lost update, no duplicate id — and both replicas must answer every read alike. A replica
//! killed with SIGKILL mid-load loses nothing it acknowledged.
//!
//! These run on the harness's own PostgreSQL cluster whatever the suite's backend is;
//! skipped (with a line) only where PostgreSQL is absent and not required (rulings.md 11).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Server, TENANT, Value, json, list_all};

const CFG: &str = "/beta/deviceManagement/deviceEnrollmentConfigurations";
const LIMIT: &str = "#microsoft.graph.deviceEnrollmentLimitConfiguration";
const HELLO: &str = "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration";
/// Targets per `assign`: a set is whole when all of them carry one generation's tag.
const SET_SIZE: usize = 3;

/// `n` replicas over one fresh database, started at the same moment (the migration runs
/// once, under its advisory lock).
fn replicas(n: usize) -> Option<Vec<Server>> {
    let cluster = enrollgraph_testpg::cluster_or_skip("replicas")?;
    let db = cluster.create_database();
    let servers = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n).map(|_| scope.spawn(|| Server::start_on(Some(db.clone()), &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Some(servers)
}

/// How long the stress test hammers (`ENROLLGRAPH_STRESS_SECS`, default 10).
fn stress_time() -> Duration {
    Duration::from_secs(std::env::var("ENROLLGRAPH_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10))
}

/// xorshift64*: reproducible per worker, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        usize::try_from(x).unwrap() % n
    }
}

fn create(s: &Server, odata_type: &str, name: &str) -> reqwest::Result<(u16, Value)> {
    let body = if odata_type == LIMIT {
        json!({"@odata.type": odata_type, "displayName": name, "limit": 2})
    } else {
        json!({"@odata.type": odata_type, "displayName": name})
    };
    let r = s.raw().post(s.url(CFG)).header("content-type", "application/json").body(body.to_string()).send()?;
    let status = r.status().as_u16();
    Ok((status, r.json().unwrap_or(Value::Null)))
}

fn send(s: &Server, method: &str, path: &str, body: &Value) -> reqwest::Result<(u16, String)> {
    let r = s
        .raw()
        .request(method.parse().unwrap(), s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    let r = s.raw().get(s.url(path)).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// An acknowledged PATCH of a displayName: its value and when it was sent and answered.
struct Patch {
    config: String,
    value: String,
    sent: Instant,
    acked: Instant,
}

#[derive(Default)]
struct Outcome {
    patches: Vec<Patch>,
    created: Vec<String>,
    deleted: Vec<String>,
    /// Per config, the generations whose `assign` was acknowledged.
    assigned: HashMap<String, Vec<String>>,
    ops: usize,
}

/// One client: random operations on random replicas until `until`.
fn worker(servers: &[Server], seeded: &[(String, &'static str)], index: usize, until: Instant) -> Outcome {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((index as u64 + 1) * 0x1000_0001));
    let mut out = Outcome::default();
    let mut own: Vec<String> = Vec::new();
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        out.ops += 1;
        let s = &servers[rng.below(servers.len())];
        let other = &servers[rng.below(servers.len())];
        let (config, kind) = &seeded[rng.below(seeded.len())];
        match rng.below(20) {
            0..=4 => {
                let generation = format!("g{index}x{n}");
                let set: Vec<Value> = (0..SET_SIZE)
                    .map(|k| json!({"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": format!("{generation}-{k}")}}))
                    .collect();
                let (status, body) = send(
                    s,
                    "POST",
                    &format!("{CFG}/{config}/assign"),
                    &json!({"enrollmentConfigurationAssignments": set}),
                )
                .unwrap();
                assert_eq!(status, 200, "assign: {body}");
                out.assigned.entry(config.clone()).or_default().push(generation);
            }
            5..=9 => {
                // Within the seeded members of the kind, so always a valid move.
                let top = if *kind == LIMIT { 4 } else { 2 };
                let p = rng.below(top) + 1;
                let (status, body) =
                    send(s, "POST", &format!("{CFG}/{config}/setPriority"), &json!({"priority": p})).unwrap();
                assert_eq!(status, 200, "setPriority: {body}");
            }
            10..=14 => {
                let value = format!("w{index}-{n}");
                let sent = Instant::now();
                let (status, body) =
                    send(s, "PATCH", &format!("{CFG}/{config}"), &json!({"displayName": value})).unwrap();
                assert_eq!(status, 200, "PATCH: {body}");
                out.patches.push(Patch { config: config.clone(), value, sent, acked: Instant::now() });
            }
            15..=17 => {
                let kind = if rng.below(2) == 0 { LIMIT } else { HELLO };
                let (status, body) = create(s, kind, &format!("c{index}-{n}")).unwrap();
                assert_eq!(status, 201, "create: {body}");
                let id = body["id"].as_str().unwrap().to_owned();
                // Acknowledged means committed: the other replica has it at once, alike.
                let (st, seen) = get(other, &format!("{CFG}/{id}"));
                assert_eq!(st, 200, "{id} created on one replica, missing on the other");
                assert_eq!(seen["displayName"], body["displayName"]);
                assert_eq!(seen["priority"].as_i64().map(|p| p > 0), Some(true));
                own.push(id.clone());
                out.created.push(id);
            }
            _ => {
                if own.is_empty() {
                    continue;
                }
                let id = own.swap_remove(rng.below(own.len()));
                let (status, body) = send(s, "DELETE", &format!("{CFG}/{id}"), &Value::Null).unwrap();
                assert_eq!(status, 204, "DELETE: {body}");
                out.deleted.push(id);
            }
        }
    }
    out
}

#[test]
fn two_replicas_under_concurrent_writes_stay_consistent() {
    let Some(servers) = replicas(2) else { return };
    let (a, b) = (&servers[0], &servers[1]);
    // Seeded configurations: the shared targets of assign, setPriority and PATCH.
    let mut seeded: Vec<(String, &'static str)> = Vec::new();
    for (i, kind) in [LIMIT, LIMIT, LIMIT, LIMIT, HELLO, HELLO].into_iter().enumerate() {
        let s = &servers[i % 2];
        let (status, body) = create(s, kind, &format!("seed{i}")).unwrap();
        assert_eq!(status, 201, "{body}");
        seeded.push((body["id"].as_str().unwrap().to_owned(), kind));
    }
    let until = Instant::now() + stress_time();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                scope.spawn({
                    let (servers, seeded) = (&servers, &seeded);
                    move || worker(servers, seeded, i, until)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ops: usize = outcomes.iter().map(|o| o.ops).sum();
    eprintln!("stress: {ops} requests by 12 clients on 2 replicas in {:?}", stress_time());
    assert!(ops > 100, "the load ran: {ops}");

    // Both replicas list the same collection, byte for byte as JSON.
    let list = list_all(a, CFG);
    assert_eq!(list, list_all(b, CFG), "the replicas disagree on the collection");

    // No duplicate id.
    let ids: Vec<&str> = list.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate ids: {ids:?}");

    // Everything acknowledged as created is there unless acknowledged as deleted.
    let deleted: HashSet<&String> = outcomes.iter().flat_map(|o| &o.deleted).collect();
    for id in outcomes.iter().flat_map(|o| &o.created) {
        assert_eq!(unique.contains(id.as_str()), !deleted.contains(id), "{id}");
    }
    let expected = 5 + seeded.len() + outcomes.iter().map(|o| o.created.len() - o.deleted.len()).sum::<usize>();
    assert_eq!(ids.len(), expected);

    // Priorities unique and contiguous from 1 within each kind; defaults at 0.
    let mut by_kind: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for v in &list {
        let p = v["priority"].as_i64().unwrap();
        if v["id"].as_str().unwrap().starts_with(TENANT) {
            assert_eq!(p, 0, "{v}");
        } else {
            by_kind.entry(v["@odata.type"].as_str().unwrap().trim_start_matches('#').to_owned()).or_default().push(p);
        }
    }
    for (kind, mut ps) in by_kind {
        ps.sort_unstable();
        let want: Vec<i64> = (1..=i64::try_from(ps.len()).unwrap()).collect();
        assert_eq!(ps, want, "priorities of {kind}");
    }

    for (config, _) in &seeded {
        // Each assignment set is exactly one acknowledged generation's, never a mix.
        let path = format!("{CFG}/{config}/assignments");
        let set = list_all(a, &path);
        assert_eq!(set, list_all(b, &path), "the replicas disagree on {path}");
        let acked: Vec<&String> = outcomes.iter().flat_map(|o| o.assigned.get(config).into_iter().flatten()).collect();
        if acked.is_empty() {
            assert!(set.is_empty());
            continue;
        }
        let groups: Vec<&str> = set.iter().map(|v| v["target"]["groupId"].as_str().unwrap()).collect();
        assert_eq!(groups.len(), SET_SIZE, "{config}: {groups:?}");
        let generation = groups[0].rsplit_once('-').unwrap().0;
        assert!(acked.iter().any(|g| g.as_str() == generation), "{config}: {generation} was never acknowledged");
        let want: Vec<String> = (0..SET_SIZE).map(|k| format!("{generation}-{k}")).collect();
        assert_eq!(groups, want, "{config}: a half-replaced set");

        // No lost update: the final name is an acknowledged PATCH's, and no PATCH sent
        // after that one was acknowledged (so ordered after it) was acknowledged too.
        let patches: Vec<&Patch> = outcomes.iter().flat_map(|o| &o.patches).filter(|p| &p.config == config).collect();
        let now = list.iter().find(|v| v["id"] == config.as_str()).unwrap()["displayName"].as_str().unwrap().to_owned();
        if patches.is_empty() {
            continue;
        }
        let winner = patches
            .iter()
            .find(|p| p.value == now)
            .unwrap_or_else(|| panic!("{config}: '{now}' was never acknowledged"));
        if let Some(later) = patches.iter().find(|p| p.sent > winner.acked) {
            panic!("{config}: '{}' was acknowledged after '{now}' had been, and is lost", later.value);
        }
    }
}

#[test]
fn a_replica_killed_mid_load_loses_nothing_it_acknowledged() {
    let Some(mut servers) = replicas(2) else { return };
    let until = Instant::now() + Duration::from_secs(3);
    let acked: Vec<String> = std::thread::scope(|scope| {
        let victim = &servers[0];
        let handles: Vec<_> = (0..6)
            .map(|i| {
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    let mut n = 0;
                    // Until the victim stops answering (killed below), or time runs out.
                    while Instant::now() < until + Duration::from_secs(10) {
                        n += 1;
                        match create(victim, LIMIT, &format!("k{i}-{n}")) {
                            Ok((201, body)) => ids.push(body["id"].as_str().unwrap().to_owned()),
                            Ok((status, body)) => panic!("create answered {status}: {body}"),
                            Err(_) => break,
                        }
                    }
                    ids
                })
            })
            .collect();
        std::thread::sleep(until - Instant::now());
        // SIGKILL while the clients are writing. Safe: the handles only borrow, and the
        // process is gone, not the Server value.
        let pid_kill = std::process::Command::new("kill").args(["-9", &victim_pid(victim)]).status().unwrap();
        assert!(pid_kill.success());
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    servers[0].kill9();
    let survivor = &servers[1];
    assert!(acked.len() > 10, "the load ran: {}", acked.len());
    eprintln!("kill -9: {} creates acknowledged before the kill", acked.len());
    for id in &acked {
        let (status, body) = get(survivor, &format!("{CFG}/{id}"));
        assert_eq!(status, 200, "{id} was acknowledged by the killed replica and is lost: {body}");
    }
    // Still one service: the survivor takes writes and numbers after what the victim wrote.
    let (status, body) = create(survivor, LIMIT, "after").unwrap();
    assert_eq!(status, 201, "{body}");
    let limits = list_all(survivor, CFG)
        .iter()
        .filter(|v| v["@odata.type"] == LIMIT && !v["id"].as_str().unwrap().starts_with(TENANT))
        .count();
    // Creates in flight at the kill may have committed too; none is lost, none doubled.
    assert!(limits > acked.len(), "{limits} limit configurations, {} acknowledged", acked.len());
    assert_eq!(body["priority"].as_i64(), Some(i64::try_from(limits).unwrap()));
}

fn victim_pid(s: &Server) -> String {
    s.pid().to_string()
}

#[test]
fn replicas_making_their_first_key_at_once_agree_on_one() {
    // Each replica of a new database makes an RSA key off its workers while it answers;
    // the first stored wins and every replica signs with that one (`make_first_keys`). The
    // attack: two replicas each signing with their own key would refuse each other's
    // tokens, and their JWKS would differ.
    let Some(cluster) = enrollgraph_testpg::cluster_or_skip("replicas_making_their_first_key_at_once_agree_on_one")
    else {
        return;
    };
    let db = cluster.create_database();
    let servers: Vec<Server> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..3).map(|_| scope.spawn(|| Server::start_making_keys_on(Some(db.clone()), &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let jwks: Vec<Value> = servers
        .iter()
        .map(|s| s.raw().get(s.url(&format!("/{TENANT}/discovery/v2.0/keys"))).send().unwrap().json().unwrap())
        .collect();
    assert_eq!(jwks[0]["keys"].as_array().map(Vec::len), Some(1), "{}", jwks[0]);
    assert!(jwks.iter().all(|j| *j == jwks[0]), "the replicas publish different keys: {jwks:?}");
    // Every replica's token (the harness asked each for one) opens every replica.
    for (i, issuer) in servers.iter().enumerate() {
        for (j, other) in servers.iter().enumerate() {
            let r = other.raw().get(other.url(CFG)).bearer_auth(&issuer.token).send().unwrap();
            assert_eq!(r.status(), 200, "replica {j} refused replica {i}'s token: {}", r.text().unwrap());
        }
    }
}
