//! tcp_insights, list_flows, flow_summary and get_payload's include_l4 on real captures, through
//! the same tool functions the MCP server and `wirelens call` run.

use mcp_server::state::{AppState, SourceArgs};
use serde_json::{Value, json};
use wirelens_e2e::pcaps_dir;

fn state(rel: &str) -> Option<AppState> {
    let dir = pcaps_dir()?;
    Some(
        AppState::load(&SourceArgs {
            pcaps: vec![dir.join(rel)],
            ..SourceArgs::default()
        })
        .expect("load"),
    )
}

fn call(st: &AppState, tool: &str, args: Value) -> Value {
    let Value::Object(m) = args else {
        panic!("args must be an object")
    };
    match mcp_server::tools::call(st, tool, m) {
        Ok(v) => v,
        Err(e) => panic!("{tool}: {e:?}"),
    }
}

fn call_err(st: &AppState, tool: &str, args: Value) -> String {
    let Value::Object(m) = args else {
        panic!("args must be an object")
    };
    match mcp_server::tools::call(st, tool, m) {
        Ok(v) => panic!("{tool} should fail, got {v}"),
        Err(mcp_server::tools::CallError::Tool(e)) => e.0,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn refused_connection_is_severe() {
    let Some(st) = state("tcp/deepflow_server-reset.pcap") else {
        return;
    };
    let v = call(&st, "tcp_insights", json!({}));
    let f = &v["flows"][0];
    assert_eq!(f["connection_completeness"], 37);
    assert_eq!(f["state"], "refused");
    assert_eq!(f["verdict"], "severe");
    assert!(f["reasons"][0].as_str().unwrap().contains("refused"), "{f}");
    assert_eq!(f["initial_rtt_us"], 83);
    assert_eq!(f["client"], "192.168.0.2:1395");
}

#[test]
fn lossy_connection_ranks_first_and_is_severe() {
    let Some(st) = state("tcp/wireshark_tcp-retrans.pcap") else {
        return;
    };
    let v = call(&st, "tcp_insights", json!({"sort": "retransmission_rate"}));
    let f = &v["flows"][0];
    assert_eq!(f["retransmissions"], 47);
    assert_eq!(f["fast_retransmissions"], 14);
    assert_eq!(f["spurious_retransmissions"], 5);
    assert_eq!(f["dup_acks"], 27);
    assert!(f["retransmission_rate"].as_f64().unwrap() > 0.05);
    assert_eq!(f["verdict"], "severe");
    assert!(f["rtt_samples"].as_u64().unwrap() > 0);
    // The entry's connection, from get_payload.
    let e = call(&st, "list_entries", json!({"limit": 1, "fields": ["id"]}));
    let id = e["entries"][0]["id"].as_str().unwrap();
    let p = call(&st, "get_payload", json!({"id": id, "include_l4": true}));
    assert_eq!(p["l4"]["retransmissions"], 47);
    let p = call(&st, "get_payload", json!({"id": id}));
    assert!(p.get("l4").is_none());
}

#[test]
fn groups_sorting_paging_and_errors() {
    let Some(st) = state("http/zeek_http_bro.org.pcap") else {
        return;
    };
    let all = call(&st, "tcp_insights", json!({"limit": 1000}));
    assert_eq!(all["total_matched"], 13);
    assert!(all["initial_rtt_p50_us"].as_u64().is_some());
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"limit": 5, "sort": "+payload_bytes"});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = call(&st, "tcp_insights", args);
        for f in page["flows"].as_array().unwrap() {
            ids.push(f["flow_id"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 13);
    let by_server = call(&st, "tcp_insights", json!({"group_by": "server"}));
    let groups = by_server["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    let flows: u64 = groups.iter().map(|g| g["flows"].as_u64().unwrap()).sum();
    assert_eq!(flows, 13);
    assert!(groups[0]["initial_rtt_p90_us"].as_u64().is_some());
    assert!(call_err(&st, "tcp_insights", json!({"sort": "colour"})).contains("cannot sort by `colour`"));
    assert!(call_err(&st, "tcp_insights", json!({"verdict": "meh"})).contains("healthy, degraded or severe"));
    assert!(call_err(&st, "tcp_insights", json!({"group_by": "pod"})).contains("group_by"));
}

#[test]
fn udp_flows_and_summary() {
    let Some(st) = state("dns/arkime_dns-wiresharkrepo.pcap") else {
        return;
    };
    let v = call(&st, "list_flows", json!({"protocol": "udp"}));
    assert!(v["total_matched"].as_u64().unwrap() >= 1);
    let f = &v["flows"][0];
    assert_eq!(f["transport"], "udp");
    assert_eq!(f["verdict"], Value::Null);
    assert!(f["packets_c2s"].as_u64().unwrap() + f["packets_s2c"].as_u64().unwrap() > 0);
    let s = call(&st, "flow_summary", json!({"top": 2}));
    assert_eq!(s["tcp_flows"], 0);
    assert!(s["udp_flows"].as_u64().unwrap() >= 1);
    assert!(s["top_talkers_by_bytes"].as_array().unwrap().len() <= 2);
    let Some(st) = state("tcp/zeek_tcp_syn-then-stuff-then-rst.pcap") else {
        return;
    };
    let s = call(&st, "flow_summary", json!({}));
    assert_eq!(s["tcp_flows"], 1);
    assert_eq!(s["tcp_states"]["reset"], 1);
}

#[test]
fn kfl_filters_select_flows() {
    let Some(st) = state("tcp/wireshark_tcp-retrans.pcap") else {
        return;
    };
    let lossy = call(
        &st,
        "tcp_insights",
        json!({"filter": "retransmission_rate > 0.05 && dst.port == 4000"}),
    );
    assert_eq!(lossy["total_matched"], 1);
    let none = call(&st, "tcp_insights", json!({"filter": "conn_state == \"refused\""}));
    assert_eq!(none["total_matched"], 0);
    let listed = call(
        &st,
        "list_flows",
        json!({"filter": "tcp_flow && retransmissions >= 47"}),
    );
    assert_eq!(listed["total_matched"], 1);
    let summary = call(&st, "flow_summary", json!({"filter": "udp_flow"}));
    assert_eq!(summary["tcp_flows"], 0);
    let e = call_err(&st, "list_flows", json!({"filter": "conn_stat == \"x\""}));
    assert!(
        e.contains("line 1, column 1") && e.contains("did you mean `conn_state`?"),
        "{e}"
    );
    assert_eq!(e.matches("did you mean").count(), 1, "{e}");
    let Some(st) = state("tcp/deepflow_server-reset.pcap") else {
        return;
    };
    let refused = call(
        &st,
        "list_flows",
        json!({"filter": "conn_state == \"refused\" && verdict == \"severe\""}),
    );
    assert_eq!(refused["total_matched"], 1);
}
