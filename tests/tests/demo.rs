//! The demo scenario through the real pipeline: every call the generator made is found, with the
//! right endpoints, method, path, status and body sizes (ground truth from the generator, not
//! from our output).

use std::collections::HashMap;
use std::ops::ControlFlow;

use capture_core::engine::{Engine, Shared};
use capture_core::limits::Limits;
use capture_core::source::demo::demo_packets;
use capture_core::store::Order;

#[test]
fn demo_entries_match_ground_truth() {
    let scenario = demo_packets(7);
    let shared = Shared::new(256 << 20);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    let packets: Vec<_> = scenario.packets.iter().map(|p| (p.ts, p.data.clone())).collect();
    engine.replay("demo", scenario.link, &packets);

    let mut found: HashMap<(String, String, String, String, Option<u16>), usize> = HashMap::new();
    let mut n = 0;
    shared.store.scan(Order::Asc, None, &mut |e| {
        let h = e.http().unwrap();
        let key = (
            e.src.to_string(),
            e.dst.to_string(),
            h.method.as_deref().unwrap_or("").to_string(),
            h.path.as_deref().unwrap_or("").to_string(),
            h.status,
        );
        *found.entry(key).or_default() += 1;
        n += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(n, scenario.ground_truth.len(), "one entry per call");
    for call in &scenario.ground_truth {
        let key = (
            call.client_addr.to_string(),
            call.server_addr.to_string(),
            call.method.to_string(),
            call.path.clone(),
            Some(call.status),
        );
        let left = found
            .get_mut(&key)
            .unwrap_or_else(|| panic!("call not found: {call:?}"));
        assert!(*left > 0, "call found too few times: {call:?}");
        *left -= 1;
    }
    // Body sizes and versions, matched in time order.
    let mut entries = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        entries.push(e.clone());
        ControlFlow::Continue(())
    });
    let mut truth = scenario.ground_truth.clone();
    truth.sort_by_key(|c| c.request_ts);
    for (e, c) in entries.iter().zip(&truth) {
        assert_eq!(e.ts, c.request_ts, "{c:?}");
        assert_eq!(e.request_body_size(), Some(c.request_body_len as u64), "{c:?}");
        assert_eq!(e.response_body_size(), Some(c.response_body_len as u64), "{c:?}");
        assert_eq!(e.protocol.name(), c.version.to_ascii_lowercase(), "{c:?}");
    }
    let statuses: Vec<u16> = truth.iter().map(|c| c.status).collect();
    assert!(statuses.iter().any(|s| *s >= 500) && statuses.iter().any(|s| (400..500).contains(s)));
}
