//! Cost of `Validator::validate` on a cache hit and on a miss, as ratios to the cost of one
//! `serde_json::from_str` of a ~430-byte JSON object measured in the same run.
//!
//! `cargo bench -p enrollgraph-auth --bench validate`

use std::hint::black_box;
use std::time::{Duration, Instant};

use enrollgraph_auth::{Issuer, KeySet, Validator, graph_audiences, permissions};

const NOW: i64 = 1_750_000_000;
const TENANT: &str = "5b0e1a5e-1111-4c2e-9a6f-000000000001";
const CLIENT: &str = "0c1d2e3f-2222-4c2e-9a6f-000000000002";

/// Best (lowest) time per operation over `rounds` rounds of `iters` calls.
fn per_op(rounds: usize, iters: usize, mut f: impl FnMut(usize)) -> Duration {
    let mut best = Duration::MAX;
    for r in 0..rounds {
        let start = Instant::now();
        for i in 0..iters {
            f(r * iters + i);
        }
        best = best.min(start.elapsed() / iters as u32);
    }
    best
}

fn main() {
    let sample = r##"{"@odata.type":"#microsoft.graph.deviceEnrollmentLimitConfiguration","id":"0f2b7c1e-6b1a-4c55-9d2e-3c1a5e7f9b10_Limit","displayName":"All users and all devices","description":"The default Device Limit Restriction, applied with the lowest priority to all users.","priority":0,"createdDateTime":"2024-01-02T03:04:05.6789012Z","lastModifiedDateTime":"2024-05-06T07:08:09.1234567Z","version":3,"limit":5,"roleScopeTagIds":["0"]}"##;
    assert!((400..=460).contains(&sample.len()), "{}", sample.len());

    let keys = KeySet::generate_at(NOW).expect("generate");
    let issuer = Issuer::new(keys.clone(), "https://localhost:8443");
    let roles: Vec<String> = permissions::WRITE.iter().map(|s| s.to_string()).collect();
    let token = issuer.app_token(TENANT, CLIENT, &roles, 3599, NOW).expect("token").0;

    // Baseline: one serde_json::from_str of the sample.
    let json = per_op(7, 200_000, |_| {
        let v: serde_json::Value = serde_json::from_str(black_box(sample)).expect("json");
        black_box(v);
    });

    // Cache hit: the same token again and again.
    let cached = Validator::new(&keys, "https://localhost:8443", graph_audiences(), 300);
    cached.validate(&token, NOW).expect("valid");
    let hit = per_op(7, 200_000, |_| {
        black_box(cached.validate(black_box(&token), NOW).expect("valid"));
    });

    // Miss: the cache disabled, so every call decodes and verifies the RSA signature.
    let uncached = Validator::new(&keys, "https://localhost:8443", graph_audiences(), 300).with_cache_capacity(0);
    let miss = per_op(5, 2_000, |_| {
        black_box(uncached.validate(black_box(&token), NOW).expect("valid"));
    });

    // First sight of a token with the cache on: verification plus insertion.
    let fresh: Vec<String> =
        (0..2_000).map(|i| issuer.app_token(TENANT, CLIENT, &roles, 3599, NOW + i).expect("token").0).collect();
    let mut first = Duration::MAX;
    for _ in 0..5 {
        let inserting = Validator::new(&keys, "https://localhost:8443", graph_audiences(), 300);
        let start = Instant::now();
        for t in &fresh {
            black_box(inserting.validate(black_box(t), NOW + 2_000).expect("valid"));
        }
        first = first.min(start.elapsed() / fresh.len() as u32);
    }

    // For scale: one client-secret check at the token endpoint.
    let hash = enrollgraph_auth::hash_secret("abc8Q~0123456789012345678901234567890123");
    let verify = per_op(3, 5, |_| {
        black_box(enrollgraph_auth::verify_secret("abc8Q~0123456789012345678901234567890123", &hash));
    });

    let ratio = |d: Duration| d.as_secs_f64() / json.as_secs_f64();
    println!("token: {} bytes; JSON sample: {} bytes", token.len(), sample.len());
    println!("serde_json::from_str (baseline)  {:>9.0} ns   1.00x", json.as_nanos());
    println!("validate, cache hit              {:>9.0} ns   {:.2}x", hit.as_nanos(), ratio(hit));
    println!("validate, miss (no cache)        {:>9.0} ns   {:.2}x", miss.as_nanos(), ratio(miss));
    println!("validate, miss + cache insert    {:>9.0} ns   {:.2}x", first.as_nanos(), ratio(first));
    println!("verify_secret (PBKDF2, token endpoint only)  {:.1} ms", verify.as_secs_f64() * 1e3);
}
