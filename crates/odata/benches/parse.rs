//! Parse+bind time of typical options, as a ratio to `serde_json::from_str` of a JSON
//! text of similar length measured in the same run. `cargo bench -p enrollgraph-odata`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use enrollgraph_odata::*;

/// Median nanoseconds per call over `rounds` rounds of `iters` calls.
fn median_ns(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let model = common::model();
    let cfg = ParseConfig::default();
    let filter = "$filter=target/microsoft.graph.groupAssignmentTarget/groupId%20eq%20'6f1e5c2d-0000-4000-8000-000000000001'%20and%20target/deviceAndAppManagementAssignmentFilterType%20eq%20'include'";
    let options = "$select=id,displayName,priority,createdDateTime&$orderby=priority%20desc,displayName&$top=50&$skip=100&$count=true";
    let cases = [("filter", filter), ("select/orderby/top", options)];
    let (rounds, iters) = (31, 2_000);
    for (name, raw) in cases {
        let json = format!("{{\"filter\":\"{}\",\"n\":[1,2,3],\"ok\":true}}", "x".repeat(raw.len().saturating_sub(34)));
        let baseline = median_ns(rounds, iters, || {
            black_box(serde_json::from_str::<serde_json::Value>(black_box(&json)).unwrap());
        });
        let parse_only = median_ns(rounds, iters, || {
            black_box(parse_query(black_box(raw), &cfg).unwrap());
        });
        let parse_bind = median_ns(rounds, iters, || {
            let q = parse_query(black_box(raw), &cfg).unwrap();
            black_box(bind(&q, &model, common::CONFIG).unwrap());
        });
        let q = bind(&parse_query(raw, &cfg).unwrap(), &model, common::CONFIG).unwrap();
        let to_sql = median_ns(rounds, iters, || {
            if let Some(f) = &q.filter {
                black_box(filter_to_sql(f, &Sqlite::default(), 1));
            }
            black_box(orderby_to_sql(&q.orderby, &Sqlite::default(), 1));
        });
        println!(
            "{name:<20} len {:>3}: parse {parse_only:>8.0} ns, parse+bind {parse_bind:>8.0} ns ({:.2}x serde_json::from_str of {} bytes = {baseline:.0} ns), to_sql {to_sql:>7.0} ns",
            raw.len(),
            parse_bind / baseline,
            json.len()
        );
    }
}
