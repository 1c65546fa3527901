//! Wire forms of stored entities already written once (issue 17: W2 and W3).
//!
//! Shaping a stored row for a version (`shape::write_entity_members`) is a pure function of
//! the schema, the row's type, its stored text and whether it carries `@odata.type`; listing
//! 100 assignments spent more than half its instructions on it (callgrind, 4.2 k per row,
//! docs/performance.md). Reads of rows that have not changed since they were last shaped are
//! what automation does (a backup run, a plan's refresh, polling), so lists keep what they
//! wrote, keyed by the whole stored text: a changed row is a different key, so nothing is
//! ever invalidated or stale, on one replica or many. `$select` answers are not kept, nor
//! single entities (the service shapes those: measured faster, `ops/read.rs`).
//!
//! Bounded: [`CAPACITY`] bytes in all (texts and wire forms counted with an allowance per
//! entry), in [`SHARDS`] shards each with its own lock; a shard that would go over its share
//! is emptied first (cheaper to keep than an LRU list, and a working set larger than the memo
//! then costs one insert per miss, measured below a tenth of a shaping). Creates do not fill
//! it: their answer is shaped once (W1's budget).

use std::hash::Hasher;
use std::sync::Mutex;

use rustc_hash::{FxHashMap, FxHasher};

/// Bytes the memo holds at most (all shards).
pub const CAPACITY: usize = 2 << 20;
/// Independent locks: readers on different rows rarely meet.
const SHARDS: usize = 16;
/// What an entry costs beyond its texts (map slot, three boxes' headers).
const ENTRY_OVERHEAD: usize = 96;

/// One remembered wire form, with what it was made from (the key is checked whole: a hash
/// match alone is never trusted).
struct Entry {
    annotated: bool,
    type_name: Box<str>,
    raw: Box<str>,
    wire: Box<str>,
}

impl Entry {
    fn cost(&self) -> usize {
        self.type_name.len() + self.raw.len() + self.wire.len() + ENTRY_OVERHEAD
    }
}

#[derive(Default)]
struct Shard {
    /// By the key's hash; a hash two keys share holds both.
    entries: FxHashMap<u64, Vec<Entry>>,
    bytes: usize,
}

/// The memo of one schema version's wire forms.
pub struct WireMemo {
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for WireMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireMemo").field("bytes", &self.bytes()).finish()
    }
}

impl Default for WireMemo {
    fn default() -> WireMemo {
        WireMemo { shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect() }
    }
}

fn key_hash(annotated: bool, type_name: &str, raw: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(raw.as_bytes());
    h.write(type_name.as_bytes());
    h.write_u8(u8::from(annotated));
    h.finish()
}

impl WireMemo {
    fn shard(&self, hash: u64) -> Option<&Mutex<Shard>> {
        // The high bits: the map inside the shard uses the low ones.
        self.shards.get(usize::try_from(hash >> 60).unwrap_or(0) % SHARDS)
    }

    /// Appends the remembered wire form of (`annotated`, `type_name`, `raw`) to `out`;
    /// false when there is none.
    pub(crate) fn write(&self, annotated: bool, type_name: &str, raw: &str, out: &mut String) -> bool {
        let hash = key_hash(annotated, type_name, raw);
        let Some(Ok(shard)) = self.shard(hash).map(Mutex::lock) else { return false };
        let found = shard.entries.get(&hash).and_then(|same| {
            same.iter().find(|e| e.annotated == annotated && *e.type_name == *type_name && *e.raw == *raw)
        });
        match found {
            Some(entry) => {
                out.push_str(&entry.wire);
                true
            }
            None => false,
        }
    }

    /// Remembers `wire` as the wire form of (`annotated`, `type_name`, `raw`).
    pub(crate) fn keep(&self, annotated: bool, type_name: &str, raw: &str, wire: &str) {
        let entry = Entry { annotated, type_name: type_name.into(), raw: raw.into(), wire: wire.into() };
        let cost = entry.cost();
        let share = CAPACITY / SHARDS;
        if cost > share / 8 {
            return; // one huge row must not empty a shard for itself
        }
        let hash = key_hash(annotated, type_name, raw);
        let Some(Ok(mut shard)) = self.shard(hash).map(Mutex::lock) else { return };
        if shard.bytes + cost > share {
            shard.entries = FxHashMap::default();
            shard.bytes = 0;
        }
        let same = shard.entries.entry(hash).or_default();
        if same.iter().any(|e| e.annotated == annotated && *e.type_name == *type_name && *e.raw == *raw) {
            return; // kept by a concurrent reader meanwhile
        }
        same.push(entry);
        shard.bytes += cost;
    }

    /// The bytes held (texts and allowances), for tests and the bound.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.bytes)).sum()
    }
}
