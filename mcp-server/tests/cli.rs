//! The command-line contract of `wirelens call` (shared/CONTRACT.md), through the real binary.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn demo_lists_entries_with_the_contract_shape() {
    let v = call_json(&["call", "--demo", "list_entries", r#"{"limit": 5}"#]);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert!(v["total_matched"].as_u64().unwrap() > 100);
    assert!(v["next_cursor"].is_string());
    assert_eq!(v["coverage"]["complete"], true);
    assert_eq!(v["coverage"]["sources"][0], "demo");
    for key in [
        "id",
        "timestamp",
        "protocol",
        "transport",
        "src",
        "dst",
        "flow_id",
        "elapsed_ms",
        "summary",
        "method",
        "host",
        "path",
        "status",
        "request_body_size",
        "response_body_size",
    ] {
        assert!(entries[0].get(key).is_some(), "missing {key}");
    }
    // Newest first by default.
    let ts: Vec<&str> = entries.iter().map(|e| e["timestamp"].as_str().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "{ts:?}");
    assert!(ts[0].ends_with('Z') && ts[0].len() == "2026-01-15T10:00:00.000000Z".len());
}

#[test]
fn pagination_visits_every_entry_once() {
    for order in ["asc", "desc"] {
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor: Option<String> = None;
        let mut total: u64;
        let mut pages = 0;
        loop {
            let mut args = serde_json::json!({"limit": 37, "order": order, "fields": ["id", "timestamp"]});
            if let Some(c) = &cursor {
                args["cursor"] = Value::String(c.clone());
            }
            let v = call_json(&["call", "--demo", "list_entries", &args.to_string()]);
            total = v["total_matched"].as_u64().unwrap();
            let page = v["entries"].as_array().unwrap();
            assert!(page.len() <= 37);
            for e in page {
                assert_eq!(
                    e.as_object().unwrap().len(),
                    2,
                    "projection holds exactly the requested keys"
                );
                assert!(
                    seen.insert(e["id"].as_str().unwrap().to_string()),
                    "id repeated across pages"
                );
            }
            pages += 1;
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len() as u64, total, "{order}");
        assert!(pages >= 4);
    }
}

#[test]
fn projection_nulls_and_request_without_response() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = conv("10.0.0.1:40000", "10.0.0.2:8080", 0);
    a.client_send(b"GET /pending HTTP/1.1\r\nHost: svc\r\n\r\n", 100);
    let path = write_pcap(dir.path(), "pending.pcap", vec![a]);
    let v = call_json(&[
        "call",
        "--pcap",
        path.to_str().unwrap(),
        "list_entries",
        r#"{"fields": ["method", "path", "status", "response_body_size", "src.ip", "dst.port", "elapsed_ms"]}"#,
    ]);
    let e = &v["entries"][0];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/pending");
    assert_eq!(e["status"], Value::Null);
    assert_eq!(e["response_body_size"], Value::Null);
    assert_eq!(e["elapsed_ms"], Value::Null);
    assert_eq!(e["src.ip"], "10.0.0.1");
    assert_eq!(e["dst.port"], 8080);
}

#[test]
fn errors_exit_codes_and_messages() {
    // Unknown field: a tool error (exit 1) that suggests the closest name.
    let out = run(&["call", "--demo", "list_entries", r#"{"fields": ["stauts"]}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `status`"));
    // Bad argument values and unknown arguments are tool errors too.
    let out = run(&["call", "--demo", "list_entries", r#"{"limit": 0}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 1000"));
    let out = run(&["call", "--demo", "list_entries", r#"{"limt": 5}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `limt`"));
    let out = run(&["call", "--demo", "get_payload", r#"{"id": "999999"}"#]);
    assert_eq!(out.status.code(), Some(1));
    // Bad usage: exit 2.
    assert_eq!(
        run(&["call", "--demo", "list_entries", "{not json"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["call", "--demo", "no_such_tool"]).status.code(), Some(2));
    assert_eq!(run(&["call", "list_entries"]).status.code(), Some(2));
    assert_eq!(
        run(&["call", "--demo", "--store-memory", "lots", "list_entries"])
            .status
            .code(),
        Some(2)
    );
    // A file that is not a capture: exit 1, naming the offset.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.pcap");
    std::fs::write(&p, b"hello world").unwrap();
    let out = run(&["call", "--pcap", p.to_str().unwrap(), "capture_status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("byte offset 0") && err.contains("not a pcap"), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
}

#[test]
fn bpf_filters_files_and_the_demo_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let mut web = conv("10.0.0.1:40001", "10.0.0.2:80", 0);
    web.client_send(b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n", 100)
        .server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100);
    let mut alt = conv("10.0.0.1:40002", "10.0.0.3:8080", 1);
    alt.client_send(b"GET /dropped HTTP/1.1\r\nHost: x\r\n\r\n", 100)
        .server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100);
    let path = write_pcap(dir.path(), "two.pcap", vec![web, alt]);
    let p = path.to_str().unwrap();

    let v = call_json(&[
        "call",
        "--pcap",
        p,
        "--bpf",
        "tcp port 80",
        "list_entries",
        r#"{"fields": ["path"]}"#,
    ]);
    let paths: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/kept"]);
    assert_eq!(v["coverage"]["complete"], true, "a filter is not a loss");
    let notes = v["coverage"]["notes"].to_string();
    assert!(notes.contains("capture filter `tcp port 80`"), "{notes}");

    let s = call_json(&["call", "--pcap", p, "--bpf", "tcp port 80", "capture_status"]);
    let bpf = &s["sources"][0]["bpf"];
    assert_eq!(bpf["expression"], "tcp port 80");
    assert_eq!(bpf["applied"], "wirelens");
    let filtered = bpf["filtered_out"].as_u64().unwrap();
    assert!(filtered > 0);
    assert_eq!(s["filtered_out_packets"].as_u64(), Some(filtered));
    assert_eq!(
        s["packets"].as_u64().unwrap() + filtered,
        s["sources"][0]["packets"].as_u64().unwrap(),
        "decoded + filtered out = read"
    );
    assert_eq!(s["flows"]["created"], 1);
    // Without a filter the field is null and nothing is filtered.
    let s = call_json(&["call", "--pcap", p, "capture_status"]);
    assert!(s["sources"][0]["bpf"].is_null());
    assert_eq!(s["filtered_out_packets"], 0);

    // The demo applies it too.
    let d = call_json(&[
        "call",
        "--demo",
        "--bpf",
        "tcp port 6379",
        "list_entries",
        r#"{"fields": ["protocol"]}"#,
    ]);
    let protos: std::collections::BTreeSet<&str> = d["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protos.into_iter().collect::<Vec<_>>(), ["redis"]);

    // A bad expression is a usage error naming the column, before any source is read.
    let out = run(&["call", "--pcap", p, "--bpf", "tcp port foo", "capture_status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bpf filter: column 10:") && err.contains("'foo'"), "{err}");
    assert!(err.contains("tcp port foo\n         ^^^"), "{err}");
    let out = run(&["call", "--demo", "--bpf", "vlan and tcp", "capture_status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported by wirelens' filter compiler"));
    let out = run(&["mcp", "--demo", "--bpf", "(tcp"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn truncated_capture_is_read_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = conv("10.0.0.1:40001", "10.0.0.2:80", 0);
    a.client_send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 100)
        .server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100);
    let path = write_pcap(dir.path(), "cut.pcap", vec![a]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let v = call_json(&["call", "--pcap", path.to_str().unwrap(), "capture_status"]);
    let warning = v["sources"][0]["warning"].as_str().unwrap();
    assert!(warning.contains("byte offset"), "{warning}");
    assert_eq!(v["coverage"]["complete"], false);
}

#[test]
fn get_payload_decodes_pages_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"items":[1,2,3],"note":"hello"}"#;
    let gz = gzip(body);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nSet-Cookie: session=abcdef\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend_from_slice(&gz);
    let mut a = conv("10.0.0.1:40002", "10.0.0.2:80", 0);
    a.client_send(
        b"GET /items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cr3t-token\r\n\r\n",
        100,
    )
    .server_send(&resp, 100);
    let text = "x".repeat(5000);
    let resp2 = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n{text}");
    a.client_send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", 100)
        .server_send(resp2.as_bytes(), 100);
    let path = write_pcap(dir.path(), "payload.pcap", vec![a]);
    let p = path.to_str().unwrap();
    let list = call_json(&[
        "call",
        "--pcap",
        p,
        "list_entries",
        r#"{"order": "asc", "fields": ["id", "path"]}"#,
    ]);
    let id1 = list["entries"][0]["id"].as_str().unwrap().to_string();
    let id2 = list["entries"][1]["id"].as_str().unwrap().to_string();

    let v = call_json(&[
        "call",
        "--pcap",
        p,
        "get_payload",
        &serde_json::json!({"id": id1}).to_string(),
    ]);
    let resp = &v["response"];
    assert_eq!(resp["body_json"]["note"], "hello");
    assert_eq!(resp["content_decoded"], "gzip");
    assert_eq!(resp["body_size"], gz.len());
    let all = v.to_string();
    assert!(
        !all.contains("s3cr3t-token") && !all.contains("session=abcdef"),
        "secrets redacted"
    );
    assert!(all.contains("Bearer [redacted len=12 id="));

    let raw = call_json(&[
        "call",
        "--pcap",
        p,
        "get_payload",
        &serde_json::json!({"id": id1, "part": "response", "decode": "raw"}).to_string(),
    ]);
    assert_eq!(raw["response"]["body_encoding"], "base64");
    assert_eq!(raw["request"], Value::Null);

    let w1 = call_json(&[
        "call",
        "--pcap",
        p,
        "get_payload",
        &serde_json::json!({"id": id2, "part": "response", "max_bytes": 3000}).to_string(),
    ]);
    assert_eq!(w1["response"]["returned_bytes"], 3000);
    assert_eq!(w1["response"]["truncated"], true);
    assert_eq!(w1["response"]["next_offset"], 3000);
    let w2 = call_json(&[
        "call",
        "--pcap",
        p,
        "get_payload",
        &serde_json::json!({"id": id2, "part": "response", "max_bytes": 3000, "offset": 3000}).to_string(),
    ]);
    assert_eq!(w2["response"]["returned_bytes"], 2000);
    assert_eq!(w2["response"]["truncated"], false);
    assert_eq!(w2["response"]["next_offset"], Value::Null);
}

#[test]
fn capture_status_counts_everything() {
    let v = call_json(&["call", "--demo", "capture_status"]);
    assert!(v["packets"].as_u64().unwrap() > 500);
    assert_eq!(v["sources"][0]["kind"], "demo");
    assert!(v["store"]["entries"].as_u64().unwrap() > 100);
    assert_eq!(v["store"]["budget_bytes"], 256u64 << 20);
    // Nothing queried the store while `call` read: nothing waited for it.
    for k in ["store_busy", "capture_waited", "entries_waiting"] {
        assert_eq!(v["store"][k], 0, "{k}");
    }
    assert_eq!(v["drops"]["tcp_gap_bytes"], 0);
    assert!(v["limits"]["body_capture_bytes"].as_u64().is_some());
    let small = call_json(&["call", "--demo", "--store-memory", "64KiB", "capture_status"]);
    assert!(small["store"]["evicted"].as_u64().unwrap() > 0);
    assert!(small["store"]["bytes"].as_u64().unwrap() <= 64 << 10);
    assert_eq!(small["coverage"]["complete"], false);
}

/// The first entry of the demo that `filter` matches, through get_payload.
fn demo_payload(filter: &str) -> Value {
    let list = call_json(&[
        "call",
        "--demo",
        "list_entries",
        &serde_json::json!({"filter": filter, "limit": 1, "fields": ["id"]}).to_string(),
    ]);
    let id = list["entries"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry for {filter}: {list}"));
    call_json(&[
        "call",
        "--demo",
        "get_payload",
        &serde_json::json!({"id": id}).to_string(),
    ])
}

#[test]
fn get_payload_details_redis_and_dns() {
    let set = demo_payload(r#"redis and redis_command == "SET""#);
    let d = &set["detail"];
    assert_eq!(d["command"], "SET");
    assert!(d["args"][0].as_str().unwrap().starts_with("order:"), "{d}");
    assert_eq!(d["reply"]["type"], "simple_string");
    assert_eq!(d["reply"]["text"], "OK");
    assert_eq!(set["request"], Value::Null);

    let nx = demo_payload("dns and status_code == 3");
    let d = &nx["detail"];
    assert_eq!(d["response"]["rcode_name"], "NXDOMAIN");
    assert_eq!(d["questions"][0]["type"], "A");
    assert!(d["query"]["recursion_desired"].as_bool().unwrap());

    let ok = demo_payload("dns and dns_answer_count > 0");
    let a = &ok["detail"]["response"]["answers"][0];
    assert!(
        a["ttl"].as_u64().is_some() && !a["data"].as_str().unwrap().is_empty(),
        "{a}"
    );

    let http = demo_payload("http");
    assert!(
        http.get("detail").is_none(),
        "HTTP keeps its messages as request/response"
    );
}

#[test]
fn api_stats_groups_endpoints_statuses_and_others() {
    let v = call_json(&["call", "--demo", "api_stats", r#"{"limit": 5}"#]);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 5);
    // Busiest first; ids in paths are templated into one endpoint.
    let counts: Vec<u64> = groups.iter().map(|g| g["count"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert_eq!(groups[0]["key"], "GET /stock/{id}");
    let listed: u64 = counts.iter().sum();
    assert_eq!(
        listed + v["others"]["count"].as_u64().unwrap(),
        v["total"]["count"].as_u64().unwrap()
    );
    assert!(v["groups_total"].as_u64().unwrap() > 5);
    assert!(v["window_seconds"].as_f64().unwrap() >= 1.0);

    let grpc = call_json(&["call", "--demo", "api_stats", r#"{"filter": "grpc"}"#]);
    let charge = grpc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "payments.Payments/Charge")
        .expect("the gRPC method is an endpoint");
    assert_eq!(charge["protocols"], serde_json::json!(["grpc"]));
    assert!(charge["errors"].as_u64().unwrap() > 0);
    assert!(
        charge["top_statuses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "UNAVAILABLE")
    );
    let lat = &charge["latency_ms"];
    assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap());
    // The example is an error when the group has errors, for get_payload.
    let id = charge["example_entry_id"].as_str().unwrap();
    let p = call_json(&[
        "call",
        "--demo",
        "get_payload",
        &serde_json::json!({"id": id}).to_string(),
    ]);
    assert!(
        p["summary"].as_str().unwrap().contains("UNAVAILABLE"),
        "{}",
        p["summary"]
    );
    assert!(grpc["others"].is_null());

    let st = call_json(&["call", "--demo", "api_stats", r#"{"group_by": "status", "limit": 200}"#]);
    let keys: Vec<&str> = st["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    for k in ["200", "503", "UNAVAILABLE", "NXDOMAIN", "NOERROR", "ok", "error"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    for g in st["groups"].as_array().unwrap() {
        let errs = g["errors"].as_u64().unwrap();
        let expect_error =
            ["503", "502", "500", "UNAVAILABLE", "NXDOMAIN", "error", "312"].contains(&g["key"].as_str().unwrap());
        assert_eq!(errs > 0, expect_error, "{}", g["key"]);
    }

    let wl = call_json(&[
        "call",
        "--demo",
        "api_stats",
        r#"{"group_by": "workload", "limit": 200}"#,
    ]);
    let keys: Vec<&str> = wl["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    for k in ["shop/payments", "shop/inventory", "data/kafka", "web/api-gateway"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    let svc = call_json(&[
        "call",
        "--demo",
        "api_stats",
        r#"{"group_by": "service", "filter": "dns"}"#,
    ]);
    assert_eq!(svc["groups"][0]["key"], "kube-system/kube-dns");

    let out = run(&["call", "--demo", "api_stats", r#"{"limit": 0}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`limit`"));
    let out = run(&["call", "--demo", "api_stats", r#"{"group_by": "cluster"}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("group_by"));

    // The responder's pods tell the two ReplicaSets of the inventory rollout apart; `client`
    // names the callers, the undocumented one from namespace `mobile` too.
    let scenario = capture_core::source::demo::demo_packets(mcp_server::state::DEMO_SEED);
    let rollout = &scenario.ground_truth_rollout;
    let pods = call_json(&[
        "call",
        "--demo",
        "api_stats",
        r#"{"group_by": "pod", "filter": "dst.workload.name == 'inventory'"}"#,
    ]);
    let mut got: Vec<(String, u64)> = pods["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap().to_string(), g["count"].as_u64().unwrap()))
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = [rollout.old_pod, rollout.new_pod]
        .iter()
        .map(|pod| {
            let n = scenario.ground_truth.iter().filter(|c| c.server_pod == *pod).count() as u64;
            (format!("shop/{pod}"), n)
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let callers = call_json(&[
        "call",
        "--demo",
        "api_stats",
        r#"{"group_by": "client", "filter": "dst.workload.name == 'orders'"}"#,
    ]);
    let keys: Vec<&str> = callers["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["web/api-gateway", "mobile/mobile-backend"]);
}

#[test]
fn service_map_names_the_demo_and_shows_its_trouble() {
    let v = call_json(&["call", "--demo", "service_map", "{}"]);
    let edges = v["edges"].as_array().unwrap();
    let edge = |s: &str, d: &str| {
        edges
            .iter()
            .find(|e| e["source"] == s && e["destination"] == d)
            .unwrap_or_else(|| panic!("no edge {s} -> {d}"))
    };
    // Refused connections make an edge without calls.
    let rec = edge("web/api-gateway", "shop/recommendations");
    assert_eq!(rec["requests"], 0);
    assert!(rec["refused_connections"].as_u64().unwrap() > 0);
    assert_eq!(rec["tcp_verdict"], "severe");
    assert_eq!(rec["cross_namespace"], true);
    // The lossy link: calls with errors over a severe connection, inside one namespace.
    let pay = edge("shop/orders", "shop/payments");
    assert!(pay["errors"].as_u64().unwrap() > 0 && pay["requests"].as_u64().unwrap() > 0);
    assert_eq!(pay["tcp_verdict"], "severe");
    assert_eq!(pay["cross_namespace"], false);
    assert!(pay["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let grpc = edge("web/api-gateway", "shop/payments");
    assert_eq!(grpc["protocols"], serde_json::json!(["grpc"]));
    assert!(edge("shop/orders", "data/kafka")["protocols"][0] == "kafka");
    let nodes = v["nodes"].as_array().unwrap();
    let orders = nodes.iter().find(|n| n["id"] == "shop/orders").unwrap();
    assert_eq!(orders["kind"], "Deployment");
    assert!(
        orders["inbound"]["requests"].as_u64().unwrap() > 0 && orders["outbound"]["requests"].as_u64().unwrap() > 0
    );
    assert_eq!(
        nodes.iter().find(|n| n["id"] == "shop/redis").unwrap()["kind"],
        "StatefulSet"
    );
    let m = v["mermaid"].as_str().unwrap();
    assert!(
        m.starts_with("graph LR\n") && m.contains("subgraph ns_shop") && m.contains("-.->"),
        "{m}"
    );
    assert!(m.contains("refused") && m.contains("linkStyle"));
    assert_eq!(v["mermaid_truncated"], false);

    let ns = call_json(&[
        "call",
        "--demo",
        "service_map",
        r#"{"level": "namespace", "filter": "http"}"#,
    ]);
    let pairs: Vec<(String, String)> = ns["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().into(),
                e["destination"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(pairs.contains(&("web".into(), "shop".into())), "{pairs:?}");
    assert!(pairs.iter().all(|(s, d)| !s.contains('/') && !d.contains('/')));
    let pods = call_json(&["call", "--demo", "service_map", r#"{"level": "pod", "limit": 1}"#]);
    assert_eq!(pods["edges"].as_array().unwrap().len(), 1);
    assert!(pods["edges_omitted"].as_u64().unwrap() > 0);
    // The busiest pod pair: the frontend's calls to the gateway (the gateway's calls to
    // inventory are split over the rollout's two pods).
    assert!(
        pods["edges"][0]["source"]
            .as_str()
            .unwrap()
            .contains("frontend-6b8f9c7d4-h5k2m")
    );
    assert!(
        pods["edges"][0]["destination"]
            .as_str()
            .unwrap()
            .contains("api-gateway-7c5d8f6b9-q8wzr")
    );
    let out = run(&["call", "--demo", "service_map", r#"{"level": "cluster"}"#]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn list_workloads_filters_and_counts_traffic() {
    let v = call_json(&["call", "--demo", "list_workloads", r#"{"namespace": "shop"}"#]);
    assert_eq!(v["identity_source"], "demo");
    let ws = v["workloads"].as_array().unwrap();
    assert!(ws.iter().all(|w| w["namespace"] == "shop"));
    let rec = ws.iter().find(|w| w["name"] == "recommendations").unwrap();
    // Only refused connections, no calls: still traffic.
    assert_eq!(rec["pods"][0]["entries_as_destination"], 0);
    assert!(rec["pods"][0]["connections"].as_u64().unwrap() > 0);
    assert_eq!(rec["traffic_seen"], true);
    let sts = call_json(&["call", "--demo", "list_workloads", r#"{"kind": "statefulset"}"#]);
    let names: Vec<&str> = sts["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kafka", "rabbitmq", "redis"]);
    let re = call_json(&[
        "call",
        "--demo",
        "list_workloads",
        r#"{"name_regex": "^pay", "labels": {"app": "payments"}}"#,
    ]);
    assert_eq!(re["total_matched"], 1);
    assert_eq!(re["workloads"][0]["pods"][0]["ips"][0], "10.42.3.12");
    let none = call_json(&["call", "--demo", "list_workloads", r#"{"labels": {"app": "nope"}}"#]);
    assert_eq!(none["total_matched"], 0);
    let out = run(&["call", "--demo", "list_workloads", r#"{"name_regex": "("}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name_regex"));
}

#[test]
fn identities_file_names_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = conv("10.244.1.5:40000", "10.96.7.7:80", 0);
    a.client_send(b"GET /x HTTP/1.1\r\nHost: api\r\n\r\n", 100)
        .server_send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 100);
    let pcap = write_pcap(dir.path(), "k8s.pcap", vec![a]);
    let dump = serde_json::json!({"kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d", "controller": true}]},
         "spec": {"nodeName": "n1"}, "status": {"podIP": "10.244.1.5"}},
        {"kind": "ReplicaSet", "metadata": {"name": "web-5d", "namespace": "shop",
            "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]}},
        {"kind": "Service", "metadata": {"name": "api", "namespace": "backend"},
         "spec": {"clusterIP": "10.96.7.7", "selector": {"app": "api"}}}
    ]});
    let ids = dir.path().join("ids.json");
    std::fs::write(&ids, dump.to_string()).unwrap();
    let (p, i) = (pcap.to_str().unwrap(), ids.to_str().unwrap());
    let v = call_json(&["call", "--pcap", p, "--identities", i, "list_entries", "{}"]);
    let e = &v["entries"][0];
    assert_eq!(e["src"]["name"], "web-1");
    assert_eq!(e["src"]["workload"], "Deployment/web");
    assert_eq!(e["dst"]["service"], "api");
    assert_eq!(e["dst"]["namespace"], "backend");
    let f = call_json(&[
        "call",
        "--pcap",
        p,
        "--identities",
        i,
        "list_entries",
        r#"{"filter": "src.workload.name == \"web\" && dst.resolution == \"service_ip\" && \"backend\" in namespaces", "fields": ["id"]}"#,
    ]);
    assert_eq!(f["total_matched"], 1);
    let m = call_json(&["call", "--pcap", p, "--identities", i, "service_map", "{}"]);
    assert_eq!(m["edges"][0]["source"], "shop/web");
    assert_eq!(m["edges"][0]["destination"], "backend/api");
    assert_eq!(m["edges"][0]["cross_namespace"], true);
    // Without identities the map says so and uses addresses.
    let bare = call_json(&["call", "--pcap", p, "service_map", "{}"]);
    assert_eq!(bare["edges"][0]["source"], "10.244.1.5");
    assert!(bare["coverage"]["notes"].to_string().contains("--identities"));
    // A broken dump names the item and the field.
    std::fs::write(
        &ids,
        r#"[{"kind":"Pod","metadata":{"name":"p"},"status":{"podIP":"10.0.0.999"}}]"#,
    )
    .unwrap();
    let out = run(&["call", "--pcap", p, "--identities", i, "list_entries", "{}"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Pod p") && err.contains("10.0.0.999"), "{err}");
}

#[test]
fn flows_group_by_namespace_with_identities() {
    let s = call_json(&["call", "--demo", "flow_summary", "{}"]);
    let pairs = s["cross_namespace_pairs"].as_array().unwrap();
    assert_eq!(pairs[0]["pair"], "web → shop");
    assert!(pairs.iter().all(|p| {
        let (a, b) = p["pair"].as_str().unwrap().split_once(" → ").unwrap();
        a != b
    }));
    let t = call_json(&["call", "--demo", "tcp_insights", r#"{"group_by": "namespace_pair"}"#]);
    let keys: Vec<&str> = t["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"web → shop") && keys.contains(&"shop → shop"),
        "{keys:?}"
    );
    let f = call_json(&["call", "--demo", "list_flows", r#"{"limit": 1000}"#]);
    assert!(
        f["flows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["server_name"] == "kafka-0")
    );
}

#[test]
fn dns_answers_name_the_addresses_after_them() {
    let v = call_json(&[
        "call",
        "--demo",
        "list_entries",
        r#"{"filter": "http && dst.dns == \"payments.shop.svc.cluster.local\"", "fields": ["dst.dns", "dns_resolutions", "src.dns"]}"#,
    ]);
    assert!(v["total_matched"].as_u64().unwrap() > 0, "{v}");
    let e = &v["entries"][0];
    assert!(
        e["dns_resolutions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "payments.shop.svc.cluster.local")
    );
    // The lookups themselves come before any answer for their own address.
    let q = call_json(&[
        "call",
        "--demo",
        "list_entries",
        r#"{"filter": "dns", "order": "asc", "limit": 1, "fields": ["dst.dns"]}"#,
    ]);
    assert_eq!(q["entries"][0]["dst.dns"], "");
    let s = call_json(&["call", "--demo", "capture_status", "{}"]);
    assert_eq!(s["drops"]["dns_names_forgotten"], 0);
    assert_eq!(s["limits"]["dns_names_max"], 65536);
}

/// `fields` on the flow tools: flat rows of exactly the requested KFL fields (null where one
/// does not apply), after filtering, sorting and paging; unknown names and projected groups are
/// tool errors.
#[test]
fn flow_tools_project_fields() {
    use capture_core::source::demo::{DemoPathology, demo_packets};
    let scenario = demo_packets(mcp_server::state::DEMO_SEED);
    let facts = &scenario.ground_truth_network;
    let refused = facts.iter().filter(|f| f.kind == DemoPathology::Refused).count();
    let v = call_json(&[
        "call",
        "--demo",
        "list_flows",
        r#"{"filter": "conn_state == 'refused'", "fields": ["src.workload.name", "dst.port", "conn_state"], "limit": 1000}"#,
    ]);
    let flows = v["flows"].as_array().unwrap();
    assert_eq!(flows.len(), refused);
    assert_eq!(v["total_matched"], refused as u64);
    for f in flows {
        assert_eq!(f.as_object().unwrap().len(), 3, "{f}");
        assert_eq!(
            (&f["src.workload.name"], &f["dst.port"], &f["conn_state"]),
            (
                &serde_json::json!("api-gateway"),
                &serde_json::json!(8080),
                &serde_json::json!("refused")
            )
        );
    }

    let lossy = facts.iter().find(|f| f.kind == DemoPathology::LossyLink).unwrap();
    let v = call_json(&[
        "call",
        "--demo",
        "tcp_insights",
        r#"{"sort": "retransmission_rate", "limit": 1, "fields": ["dst.workload.name", "retransmissions", "status"]}"#,
    ]);
    let [f] = v["flows"].as_array().unwrap().as_slice() else {
        panic!("{v}")
    };
    assert_eq!(f["dst.workload.name"], "payments");
    assert_eq!(f["retransmissions"], lossy.events.retransmissions);
    assert!(f["status"].is_null());

    for (tool, args, want) in [
        ("list_flows", r#"{"fields": ["stauts"]}"#, "did you mean `status`"),
        ("tcp_insights", r#"{"fields": ["conn_stat"]}"#, "conn_state"),
        (
            "tcp_insights",
            r#"{"group_by": "server", "fields": ["verdict"]}"#,
            "group_by: flow",
        ),
    ] {
        let out = run(&["call", "--demo", tool, args]);
        assert_eq!(out.status.code(), Some(1), "{tool} {args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{tool} {args}: {err}");
    }
}

/// Hostile captures at full size through the real binary with a global memory budget: the
/// process's peak resident set stays within the budget + 10 %, and the caps that held it are
/// counted in capture_status.
#[test]
fn hostile_captures_stay_within_max_memory() {
    let dir = tempfile::tempdir().unwrap();
    let budget: u64 = 96 << 20;
    let mut capped_with_budget = 0;
    for (kind, count) in [("syn-flood", "1000000"), ("endless-headers", "100")] {
        let pcap = dir.path().join(format!("{kind}.pcap"));
        let out = common::run(&[
            "generate-adversarial",
            kind,
            "--out",
            pcap.to_str().unwrap(),
            "--count",
            count,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s = common::call_json(&[
            "call",
            "--pcap",
            pcap.to_str().unwrap(),
            "--max-memory",
            "96MiB",
            "capture_status",
        ]);
        let m = &s["memory"];
        let peak = m["peak_rss_bytes"].as_u64().unwrap();
        assert!(
            peak <= budget + budget / 10,
            "{kind}: peak RSS {peak} over {budget} + 10 %: {m}"
        );
        assert_eq!(m["max_memory_bytes"], budget);
        assert_eq!(s["limits"]["store_memory_bytes"], budget / 2);
        match kind {
            "syn-flood" => {
                assert_eq!(s["tcp_packets"], 1_000_000);
                // The budget held the table: its flow cap (a quarter of it at 3 KiB per flow)
                // and, when the resident set neared the budget, shedding the oldest flows.
                let capped = s["drops"]["flows_evicted_capacity"].as_u64().unwrap() + m["flows_shed"].as_u64().unwrap();
                assert!(capped >= 900_000, "{capped}: {m}");
                capped_with_budget = capped;
            }
            _ => {
                assert!(
                    s["drops"]["http_header_too_large"].as_u64().unwrap() >= 16,
                    "{}",
                    s["drops"]
                );
            }
        }
    }
    // Without a budget the same flood is held by the default caps only: more flows are kept
    // (the budget above is what bounded them).
    let pcap = dir.path().join("syn-flood.pcap");
    let s = common::call_json(&["call", "--pcap", pcap.to_str().unwrap(), "capture_status"]);
    assert!(s["memory"]["max_memory_bytes"].is_null());
    let capped = s["drops"]["flows_evicted_capacity"].as_u64().unwrap();
    assert!(
        capped < capped_with_budget - 100_000,
        "{capped} vs {capped_with_budget}"
    );
}

#[test]
fn capture_namespaces_keep_only_their_pods_entries() {
    let all = call_json(&["call", "--demo", "list_entries", r#"{"limit": 1}"#])["total_matched"]
        .as_u64()
        .unwrap();
    let v = call_json(&[
        "call",
        "--demo",
        "--capture-namespace",
        "data",
        "list_entries",
        r#"{"limit": 1000, "fields": ["src.namespace", "dst.namespace"]}"#,
    ]);
    let kept = v["total_matched"].as_u64().unwrap();
    assert!(kept > 0 && kept < all, "{kept} of {all}");
    for e in v["entries"].as_array().unwrap() {
        assert!(e["src.namespace"] == "data" || e["dst.namespace"] == "data", "{e}");
    }
    let s = call_json(&["call", "--demo", "--capture-namespace", "data", "capture_status"]);
    assert_eq!(s["store"]["capture_namespaces"][0], "data");
    let outside = s["store"]["entries_not_selected"].as_u64().unwrap();
    assert_eq!(s["store"]["entries"].as_u64().unwrap() + outside, all);
    // Without identities there are no namespaces to keep: refused at start.
    let out = std::process::Command::new(bin())
        .args([
            "call",
            "--pcap",
            "/nonexistent.pcap",
            "--capture-namespace",
            "data",
            "capture_status",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("need Kubernetes identities"));
    // Pods by label: only calls to or from pods carrying them.
    let v = call_json(&[
        "call",
        "--demo",
        "--capture-pod-selector",
        "app=payments",
        "list_entries",
        r#"{"limit": 1000, "fields": ["src.pod.name", "dst.pod.name"]}"#,
    ]);
    let kept = v["total_matched"].as_u64().unwrap();
    assert!(kept > 0 && kept < all, "{kept} of {all}");
    for e in v["entries"].as_array().unwrap() {
        let pods = format!("{} {}", e["src.pod.name"], e["dst.pod.name"]);
        assert!(pods.contains("payments"), "{e}");
    }
    let out = std::process::Command::new(bin())
        .args(["call", "--demo", "--capture-pod-selector", "app!=x", "capture_status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad selector is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("only equality terms"));
}
