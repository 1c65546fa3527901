//! Any bytes: parsing (and, when it succeeds, printing, binding, evaluating and
//! translating) never panics, and printed filters parse back to equal trees.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use enrollgraph_odata::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let loose = ParseConfig { dollar_optional: true, ..ParseConfig::default() };
    if let Ok(q) = parse_query(&text, &loose) {
        let _ = q.to_query_string();
        let _ = bind(&q, &common::model(), common::CONFIG);
    }
    let cfg = ParseConfig::default();
    if let Ok(e) = parse_filter(&text, &cfg) {
        let printed = e.to_string();
        assert_eq!(parse_filter(&printed, &cfg).ok().as_ref(), Some(&e), "{printed}");
        if let Ok(f) = bind_filter(&e, &common::model(), common::CONFIG) {
            let entity = serde_json::json!({"id": "1", "displayName": "x", "roleScopeTagIds": ["0"], "targets": [{}]});
            let _ = eval(&f, common::LIMIT, &entity);
            let _ = filter_to_sql(&f, &Sqlite::default(), 1);
            let _ = filter_to_sql(&f, &Postgres::default(), 1);
        }
    }
});
