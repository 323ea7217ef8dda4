//! MCP over stdio through the real binary: initialize, list tools, call them, and get in-band
//! tool errors for bad arguments. JSON-RPC messages are newline-delimited on stdin/stdout.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Session {
    fn start(args: &[&str]) -> Session {
        let mut child = Command::new(common::bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wirelens mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Session {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    fn send(&mut self, v: &Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "server closed stdout");
            let v: Value = serde_json::from_str(&line).expect("every stdout line is JSON-RPC");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stdio_session_lists_and_calls_tools() {
    let mut s = Session::start(&["mcp", "--demo"]);
    let init = s.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "wirelens", "{init}");
    assert!(init["result"]["instructions"].as_str().unwrap().contains("untrusted"));
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    let tools = s.request("tools/list", json!({}));
    let list = tools["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in [
        "capture_status",
        "get_payload",
        "list_entries",
        "tcp_insights",
        "list_flows",
        "flow_summary",
        "validate_filter",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let again = s.request("tools/list", json!({}));
    let names_again: Vec<&str> = again["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, names_again, "tool order is deterministic");
    // The forensics tools write files (exports, snapshots); deleting a snapshot destroys one.
    let writers = ["export_pcap", "export_har", "create_snapshot", "delete_snapshot"];
    for t in list {
        let name = t["name"].as_str().unwrap();
        assert_eq!(t["annotations"]["readOnlyHint"], !writers.contains(&name), "{t}");
        assert_eq!(
            t["annotations"]["destructiveHint"].as_bool().unwrap_or(false),
            name == "delete_snapshot",
            "{t}"
        );
        assert!(t["outputSchema"].is_object(), "{t}");
        assert!(
            t["inputSchema"]["properties"].is_object() || ["capture_status", "list_snapshots"].contains(&name),
            "{t}"
        );
        assert!(
            !t.to_string().contains("\"uint"),
            "non-standard formats are stripped: {t}"
        );
        assert!(t["description"].as_str().unwrap().len() > 40);
    }

    let r = s.request(
        "tools/call",
        json!({"name": "list_entries", "arguments": {"limit": 2, "fields": ["method", "status"]}}),
    );
    let sc = &r["result"]["structuredContent"];
    assert_eq!(sc["entries"].as_array().unwrap().len(), 2, "{r}");
    assert_ne!(r["result"]["isError"], true);
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("total_matched")
    );

    let id = sc["entries"][0].clone();
    assert!(id.get("method").is_some());

    let bad = s.request(
        "tools/call",
        json!({"name": "list_entries", "arguments": {"limit": 5000}}),
    );
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert!(
        bad["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000")
    );

    let bad = s.request("tools/call", json!({"name": "get_payload", "arguments": {}}));
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    assert!(
        bad["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("missing field `id`")
    );

    let st = s.request("tools/call", json!({"name": "capture_status", "arguments": {}}));
    assert!(st["result"]["structuredContent"]["packets"].as_u64().unwrap() > 0);
}

#[test]
fn server_exits_when_stdin_closes() {
    let mut s = Session::start(&["mcp", "--demo"]);
    let _ = s.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    );
    // Close our end of the server's stdin (swap in a pipe whose reader already exited).
    let mut other = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let dummy = other.stdin.take().unwrap();
    let _ = other.wait();
    drop(std::mem::replace(&mut s.stdin, dummy));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not exit after stdin closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
