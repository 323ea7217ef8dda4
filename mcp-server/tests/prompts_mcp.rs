//! Prompts and completions through rmcp, in process: the server runs on one end of an in-memory
//! pipe and this test speaks newline-delimited JSON-RPC on the other, as a client would over
//! stdio.

use std::sync::Arc;

use mcp_server::server::WirelensServer;
use mcp_server::state::{AppState, SourceArgs};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

struct Client {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
    next_id: u64,
}

impl Client {
    async fn start() -> Client {
        let state = Arc::new(
            AppState::load(&SourceArgs {
                demo: true,
                ..Default::default()
            })
            .unwrap(),
        );
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let running = WirelensServer::new(state).serve(theirs).await.expect("server starts");
            let _ = running.waiting().await;
        });
        let (r, w) = tokio::io::split(ours);
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
        };
        let init = c
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        let caps = &init["result"]["capabilities"];
        assert!(caps["prompts"].is_object(), "{init}");
        assert!(caps["completions"].is_object(), "{init}");
        c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        c
    }

    async fn send(&mut self, v: &Value) {
        self.writer.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).await.unwrap() > 0, "server closed");
            let v: Value = serde_json::from_str(&line).expect("JSON-RPC");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// The error of a request that must fail with invalid params.
    async fn invalid(&mut self, method: &str, params: Value) -> String {
        let r = self.request(method, params).await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        r["error"]["message"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn prompts_list_get_and_errors() {
    let mut c = Client::start().await;
    let list = c.request("prompts/list", json!({})).await;
    let prompts = list["result"]["prompts"].as_array().unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "debug_connection",
            "investigate_errors",
            "latency_analysis",
            "map_dependencies",
            "network_health",
            "verify_deployment"
        ]
    );
    let again = c.request("prompts/list", json!({})).await;
    assert_eq!(list["result"], again["result"], "deterministic");
    for p in prompts {
        assert!(
            p["title"].is_string() && p["description"].as_str().unwrap().len() > 40,
            "{p}"
        );
        for a in p["arguments"].as_array().unwrap() {
            assert!(
                a["name"].is_string() && a["description"].is_string() && a["required"].is_boolean(),
                "{a}"
            );
        }
    }
    let dc = prompts.iter().find(|p| p["name"] == "debug_connection").unwrap();
    assert_eq!(dc["arguments"][0]["name"], "client");
    assert_eq!(dc["arguments"][0]["required"], true);

    // Without arguments: defaults apply and optional sections stay out.
    let r = c.request("prompts/get", json!({"name": "latency_analysis"})).await;
    let msg = &r["result"]["messages"][0];
    assert_eq!(msg["role"], "user", "{r}");
    let text = msg["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("elapsed_ms > 500 && kafka_api_key_name != 'FETCH'"),
        "{text}"
    );
    assert!(!text.contains("{{") && !text.contains("matching `"), "{text}");
    assert!(
        r["result"]["description"]
            .as_str()
            .unwrap()
            .contains("Latency percentiles")
    );

    // With arguments: a KFL filter is normalised and JSON-escaped inside the tool calls.
    let r = c
        .request(
            "prompts/get",
            json!({"name": "latency_analysis", "arguments": {"filter": "host == \"inventory\" // a comment", "threshold_ms": "250"}}),
        )
        .await;
    let text = r["result"]["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.contains(r#""filter": "(host == \"inventory\") && elapsed_ms > 250 && "#),
        "{text}"
    );
    assert!(text.contains("slower than 250 ms"), "{text}");

    let r = c
        .request(
            "prompts/get",
            json!({"name": "debug_connection", "arguments": {"client": "10.42.2.31", "server": "payments.shop.svc.cluster.local"}}),
        )
        .await;
    let text = r["result"]["messages"][0]["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("host.startsWith('payments.shop.svc.cluster.local')"),
        "{text}"
    );
    assert!(text.contains("src.ip == '10.42.2.31'"), "{text}");

    // Errors name the problem.
    let e = c
        .invalid(
            "prompts/get",
            json!({"name": "debug_connection", "arguments": {"client": "10.42.2.31"}}),
        )
        .await;
    assert!(e.contains("`server`"), "{e}");
    let e = c
        .invalid(
            "prompts/get",
            json!({"name": "network_health", "arguments": {"endpoint": "10.0.0.1", "namespace": "shop"}}),
        )
        .await;
    assert!(e.contains("`namespace`") && e.contains("`endpoint`"), "{e}");
    let e = c.invalid("prompts/get", json!({"name": "analyze_everything"})).await;
    assert!(e.contains("investigate_errors"), "{e}");
    let e = c
        .invalid(
            "prompts/get",
            json!({"name": "latency_analysis", "arguments": {"filter": "stauts >= 500"}}),
        )
        .await;
    assert!(e.contains("`filter`") && e.contains("status"), "{e}");
}

#[tokio::test]
async fn completion_complete() {
    let mut c = Client::start().await;
    let complete =
        |r#ref: Value, name: &str, value: &str| json!({"ref": r#ref, "argument": {"name": name, "value": value}});
    let prompt = |n: &str| json!({"type": "ref/prompt", "name": n});
    let resource = |u: &str| json!({"type": "ref/resource", "uri": u});

    let r = c
        .request(
            "completion/complete",
            complete(prompt("latency_analysis"), "filter", "http && status_c"),
        )
        .await;
    let comp = &r["result"]["completion"];
    assert_eq!(comp["values"], json!(["http && status_code"]), "{r}");
    assert_eq!(comp["total"], 1);
    assert_eq!(comp["hasMore"], false);

    let r = c
        .request(
            "completion/complete",
            complete(prompt("debug_connection"), "server", "pay"),
        )
        .await;
    let values = r["result"]["completion"]["values"].as_array().unwrap();
    assert_eq!(values[0], "payments.shop.svc.cluster.local:8080", "{r}");

    // With the client filled in, the server completes to what that client called.
    let mut with_client = complete(prompt("debug_connection"), "server", "");
    with_client["context"] = json!({"arguments": {"client": "10.42.2.31"}});
    let r = c.request("completion/complete", with_client).await;
    let values = r["result"]["completion"]["values"].as_array().unwrap();
    assert!(values.contains(&json!("10.42.3.12")), "{r}");
    assert!(
        !values.contains(&json!("api-gateway.web.svc.cluster.local:8080")),
        "{r}"
    );

    let r = c
        .request(
            "completion/complete",
            complete(prompt("network_health"), "endpoint", ""),
        )
        .await;
    let comp = &r["result"]["completion"];
    let n = comp["values"].as_array().unwrap().len();
    assert!(n > 10 && n <= 100, "{r}");
    assert_eq!(comp["total"], n, "{r}");

    let r = c
        .request(
            "completion/complete",
            complete(resource("wirelens://fields/{name}"), "name", "retrans"),
        )
        .await;
    assert_eq!(
        r["result"]["completion"]["values"],
        json!(["retransmission_rate", "retransmissions"]),
        "{r}"
    );
    let r = c
        .request(
            "completion/complete",
            complete(resource("wirelens://entry/{id}"), "id", "1"),
        )
        .await;
    let ids = r["result"]["completion"]["values"].as_array().unwrap();
    assert!(
        !ids.is_empty() && ids.iter().all(|v| v.as_str().unwrap().starts_with('1')),
        "{r}"
    );

    // The field template is listed and reads one field.
    let t = c.request("resources/templates/list", json!({})).await;
    assert!(t.to_string().contains("wirelens://fields/{name}"), "{t}");
    let f = c
        .request(
            "resources/read",
            json!({"uri": "wirelens://fields/retransmission_rate"}),
        )
        .await;
    let doc: Value = serde_json::from_str(f["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(doc["type"], "float", "{f}");

    let e = c
        .invalid("completion/complete", complete(prompt("nope"), "x", ""))
        .await;
    assert!(e.contains("nope"), "{e}");
    let e = c
        .invalid(
            "completion/complete",
            complete(prompt("debug_connection"), "namespace", ""),
        )
        .await;
    assert!(e.contains("namespace"), "{e}");
    let e = c
        .invalid("completion/complete", complete(resource("wirelens://x/{y}"), "y", ""))
        .await;
    assert!(e.contains("wirelens://x/{y}"), "{e}");
}
