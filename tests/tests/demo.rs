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
    let mut others: HashMap<&str, usize> = HashMap::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        // The gRPC calls (HTTP/2) are checked by `demo_grpc_calls_are_found`, Redis, DNS, AMQP and Kafka by
        // the demo's own unit tests; here they are only counted.
        let Some(h) = e.http() else {
            *others.entry(e.protocol.name()).or_default() += 1;
            return ControlFlow::Continue(());
        };
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
    let want_others = HashMap::from([
        ("grpc", scenario.ground_truth_grpc.len()),
        ("redis", scenario.ground_truth_redis.len()),
        ("dns", scenario.ground_truth_dns.len()),
        ("amqp", scenario.ground_truth_amqp.len()),
        ("kafka", scenario.ground_truth_kafka.len()),
    ]);
    assert_eq!(others, want_others, "entries other than HTTP/1");
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
        if e.http().is_some() {
            entries.push(e.clone());
        }
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

/// The demo's gRPC calls (`payments.Payments` over h2c) through the real pipeline and KFL: each
/// one found as a `grpc` entry with its method and `grpc_status`, the UNAVAILABLE failures too.
#[test]
fn demo_grpc_calls_are_found() {
    let scenario = demo_packets(7);
    let shared = Shared::new(256 << 20);
    let mut engine = Engine::new(Limits::default(), shared.clone());
    let packets: Vec<_> = scenario.packets.iter().map(|p| (p.ts, p.data.clone())).collect();
    engine.replay("demo", scenario.link, &packets);

    let mut found = Vec::new();
    shared.store.scan(Order::Asc, None, &mut |e| {
        if let Some(g) = e.grpc() {
            found.push((
                e.protocol.name().to_string(),
                e.src,
                g.service.to_string(),
                g.method.to_string(),
                g.status,
                g.message.as_deref().map(str::to_string),
            ));
        }
        ControlFlow::Continue(())
    });
    let want: Vec<_> = scenario
        .ground_truth_grpc
        .iter()
        .map(|c| {
            (
                "grpc".to_string(),
                c.client_addr,
                c.service.to_string(),
                c.method.to_string(),
                Some(c.grpc_status),
                c.grpc_message.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(found, want);
    let unavailable = want.iter().filter(|w| w.4 == Some(14)).count();
    assert!(unavailable >= 1 && unavailable < want.len(), "{want:?}");

    // The same through `--demo` and KFL, as an agent would ask.
    let state = mcp_server::state::AppState::load(&mcp_server::state::SourceArgs {
        demo: true,
        ..Default::default()
    })
    .expect("demo loads");
    let args = serde_json::json!({
        "filter": "grpc and grpc_service == \"payments.Payments\" and grpc_status == 14",
        "fields": ["protocol", "grpc_method", "grpc_status", "status"],
        "limit": 1000,
    });
    let serde_json::Value::Object(args) = args else {
        unreachable!()
    };
    let res = mcp_server::tools::call(&state, "list_entries", args).expect("list_entries");
    let entries = res["entries"].as_array().unwrap();
    assert_eq!(entries.len(), unavailable, "{res}");
    for e in entries {
        assert_eq!(e["protocol"], "grpc");
        assert_eq!(e["grpc_method"], "Charge");
        assert_eq!(e["grpc_status"], 14);
        assert_eq!(e["status"], 200);
    }
}
