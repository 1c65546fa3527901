//! Reading a run's tail from its per-request trace (issue 17: "find the tail").
//!
//! Every SQLite workload is a closed loop: `conns` clients, each with one request in
//! flight. By Little's law the mean latency is then `conns ÷ throughput`, so a server at
//! 0.6 of its ceiling's throughput has a mean latency 1.67 × the ceiling's before any tail
//! of its own. The p99 ratio the report judges therefore splits exactly into two factors:
//!
//! `p99 × = (mean_e ÷ mean_c) · (shape_e ÷ shape_c)`, with `shape = p99 ÷ mean`.
//!
//! The first factor is throughput's (it follows from the req/s ratio); only the second is a
//! tail of the server's own: requests that take longer than their share of the queue. The
//! trace then says what the slow requests have in common:
//! - **stalls**: gaps of at least [`STALL_US`] in which no response at all completed while
//!   `conns` requests were in flight (the server did not run: a wait for the disk, a
//!   preemption, a pause); a slow request that spans one was held up by it;
//! - **run-queue wait**: time the server's threads were runnable without a core
//!   (`schedstat`), i.e. the scheduler, not the server, holding requests;
//! - **slow spells**: windows of [`SPELL_US`] in which the server completed under
//!   [`SPELL_RATE`] of its usual number of responses, without stopping and without its
//!   threads waiting for a core. On this shared virtual machine they come in episodes of
//!   tens to hundreds of ms, to every server alike (the ceilings too), with nothing in the
//!   guest to show for them (no steal time, no run-queue wait): the host. One such episode
//!   in a server's 8 s decides its p99, so the report also gives the p99 of the requests
//!   that completed outside spells;
//! - otherwise the slow requests are spread out: the cost of the requests themselves.

use crate::load::{Outcome, Sample};

/// A gap in completions at least this long (µs) is a stall: at the loads measured here a
/// server completes a response every 10–300 µs, and a group commit's batch every 1–5 ms, so
/// gaps this long outside the write workloads mean the server stopped.
pub const STALL_US: u64 = 1_000;

/// The window in which a server's pace is read for slow spells, µs.
pub const SPELL_US: u64 = 10_000;
/// A window with fewer completions than this share of the run's median window is a spell.
pub const SPELL_RATE: f64 = 0.8;

/// What a run's trace says about its tail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tail {
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// 99.9th percentile and the slowest, ms.
    pub p999_ms: f64,
    pub max_ms: f64,
    /// p99 ÷ mean: the tail's shape, independent of throughput.
    pub shape: f64,
    /// Share of the measured time in stalls (completion gaps ≥ [`STALL_US`]).
    pub stall_share: f64,
    /// The longest gap between two completions, ms.
    pub longest_gap_ms: f64,
    /// Of the requests slower than the p99, the share that spans a stall.
    pub slow_in_stall: f64,
    /// Run-queue wait of the server's threads, ms per second.
    pub run_wait_ms_per_s: f64,
    /// Responses traced.
    pub traced: usize,
    /// Share of the measured windows that were slow spells.
    pub spell_share: f64,
    /// p99 of the responses that completed outside slow spells, ms.
    pub p99_outside_ms: f64,
}

/// Reads `o`'s trace; `p99_ms` is the histogram's p99 (the report's figure).
pub fn read(o: &Outcome, p99_ms: f64) -> Tail {
    let mean_ms = o.hist.mean() / 1000.0;
    let trace = &o.trace;
    let gaps = stalls(trace);
    let stalled: u64 = gaps.iter().map(|(a, b)| b - a).sum();
    let longest = trace.windows(2).map(|w| w[1].done_us.saturating_sub(w[0].done_us)).max().unwrap_or(0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let p99_us = (p99_ms * 1000.0) as u64;
    let slow: Vec<&Sample> = trace.iter().filter(|s| s.latency_us > p99_us).collect();
    let in_stall = slow.iter().filter(|s| spans_stall(&gaps, s)).count();
    let spells = spells(trace);
    #[allow(clippy::cast_precision_loss)]
    Tail {
        mean_ms,
        p999_ms: o.quantile_ms(0.999),
        max_ms: o.hist.max() as f64 / 1000.0,
        shape: if mean_ms > 0.0 { p99_ms / mean_ms } else { f64::NAN },
        stall_share: if o.seconds > 0.0 { stalled as f64 / (o.seconds * 1e6) } else { f64::NAN },
        longest_gap_ms: longest as f64 / 1000.0,
        slow_in_stall: if slow.is_empty() { f64::NAN } else { in_stall as f64 / slow.len() as f64 },
        run_wait_ms_per_s: o.server_run_wait * 1000.0,
        traced: trace.len(),
        spell_share: spells.share,
        p99_outside_ms: spells.p99_outside_us as f64 / 1000.0,
    }
}

/// Slow spells of a trace.
struct Spells {
    share: f64,
    p99_outside_us: u64,
}

/// Finds the slow spells of `trace` ([`SPELL_US`] windows under [`SPELL_RATE`] of the
/// median window's completions) and the p99 of what completed outside them.
fn spells(trace: &[Sample]) -> Spells {
    let Some(last) = trace.last() else {
        return Spells { share: f64::NAN, p99_outside_us: 0 };
    };
    let windows = usize::try_from(last.done_us / SPELL_US).unwrap_or(0) + 1;
    let mut counts = vec![0u32; windows];
    for s in trace {
        counts[usize::try_from(s.done_us / SPELL_US).unwrap_or(0)] += 1;
    }
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let median = f64::from(sorted[sorted.len() / 2]);
    let slow: Vec<bool> = counts.iter().map(|&c| f64::from(c) < SPELL_RATE * median).collect();
    #[allow(clippy::cast_precision_loss)]
    let outside: Vec<f64> = trace
        .iter()
        .filter(|s| !slow[usize::try_from(s.done_us / SPELL_US).unwrap_or(0)])
        .map(|s| s.latency_us as f64)
        .collect();
    // The report's own quantile (0 when every window was a spell).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let p99_outside_us = if outside.is_empty() { 0 } else { crate::report::quantile(&outside, 0.99).round() as u64 };
    #[allow(clippy::cast_precision_loss)]
    Spells { share: slow.iter().filter(|&&s| s).count() as f64 / windows as f64, p99_outside_us }
}

/// The gaps `(from, to)` (µs) of at least [`STALL_US`] between consecutive completions of
/// `trace` (in order of completion), in order.
fn stalls(trace: &[Sample]) -> Vec<(u64, u64)> {
    trace.windows(2).map(|w| (w[0].done_us, w[1].done_us)).filter(|(a, b)| b.saturating_sub(*a) >= STALL_US).collect()
}

/// Whether request `s` was in flight over the whole of some gap of `gaps` (sorted).
fn spans_stall(gaps: &[(u64, u64)], s: &Sample) -> bool {
    let start = s.done_us.saturating_sub(s.latency_us);
    // The first gap that opens at or after the request started: if any gap lies within the
    // request, this one does (gaps do not overlap).
    let i = gaps.partition_point(|(a, _)| *a < start);
    gaps.get(i).is_some_and(|(_, b)| *b <= s.done_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(done_us: u64, latency_us: u64) -> Sample {
        Sample { done_us, latency_us }
    }

    #[test]
    fn finds_gaps_and_the_requests_they_held() {
        // Completions every 100 µs, then nothing from 1,000 to 4,000 µs.
        let mut trace: Vec<Sample> = (1..=10).map(|i| sample(i * 100, 100)).collect();
        trace.push(sample(4_000, 3_100));
        trace.push(sample(4_050, 50));
        assert_eq!(stalls(&trace), vec![(1_000, 4_000)]);
        let gaps = stalls(&trace);
        assert!(spans_stall(&gaps, &trace[10]), "in flight from 900 to 4,000 µs: it waited out the stall");
        assert!(!spans_stall(&gaps, &trace[11]), "started at 4,000 µs, after the stall");
        assert!(!spans_stall(&gaps, &trace[3]), "finished before the stall");
        // Started inside the gap, finished after it: it did not span the whole stall.
        assert!(!spans_stall(&gaps, &sample(4_100, 2_000)));
    }

    #[test]
    fn a_slow_spell_is_set_apart_from_the_p99() {
        // 20 windows of 10 responses of 100 µs, but window 10 completes only 5, of 1,000 µs:
        // 2.6 % of all responses, so the p99 of all of them is 1,000 µs.
        let mut trace = Vec::new();
        for w in 0..20u64 {
            let (n, latency) = if w == 10 { (5, 1_000) } else { (10, 100) };
            for i in 0..n {
                trace.push(sample(w * SPELL_US + i * 100, latency));
            }
        }
        let mut all: Vec<f64> = trace.iter().map(|s| s.latency_us as f64).collect();
        all.sort_by(f64::total_cmp);
        assert!((crate::report::quantile(&all, 0.99) - 1_000.0).abs() < 1e-9, "the spell sets the p99 of all");
        let s = spells(&trace);
        assert!((s.share - 0.05).abs() < 1e-9, "one window in twenty: {}", s.share);
        assert_eq!(s.p99_outside_us, 100, "outside the spell every response took 100 µs");
    }

    #[test]
    fn a_gap_just_short_of_the_threshold_is_not_a_stall() {
        let trace = [sample(0, 1), sample(STALL_US - 1, 1), sample(2 * STALL_US - 1, 1)];
        assert_eq!(stalls(&trace), vec![(STALL_US - 1, 2 * STALL_US - 1)]);
    }
}
