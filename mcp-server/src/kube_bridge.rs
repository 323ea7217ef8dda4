//! `wirelens mcp --kube`: MCP on stdio on a laptop, carried to the hub in a cluster through the
//! Kubernetes API server's service proxy with the user's kubeconfig, so an MCP client needs one
//! command and no port-forward. Each JSON-RPC message read on stdin is POSTed to
//! `/api/v1/namespaces/NS/services/http:SERVICE:PORT_NAME/proxy/mcp`; the replies (JSON or an SSE
//! stream, progress notifications included) are written to stdout, one message per line. The
//! hub's bearer token is read from its Secret and sent as `X-Wirelens-Token`, because the API
//! server removes `Authorization` after authenticating the user.

use std::sync::Arc;

use anyhow::{Context, bail};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub kube: capture_core::enrich::kube::KubeOptions,
    pub namespace: String,
    pub service: String,
    /// The Service port's name.
    pub port: String,
    /// The Secret holding the hub's token (key `token`).
    pub token_secret: String,
}

struct Bridge {
    client: kube::Client,
    path: String,
    token: String,
    session: tokio::sync::RwLock<Option<String>>,
    protocol: tokio::sync::RwLock<Option<String>>,
    out: tokio::sync::Mutex<tokio::io::Stdout>,
}

impl Bridge {
    async fn write(&self, msg: &[u8]) {
        let mut out = self.out.lock().await;
        let _ = out.write_all(msg).await;
        let _ = out.write_all(b"\n").await;
        let _ = out.flush().await;
    }

    /// An error reply to a request (notifications get none).
    async fn fail(&self, msg: &Value, why: String) {
        if let Some(id) = msg.get("id") {
            let e = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": why}});
            self.write(e.to_string().as_bytes()).await;
        }
    }

    async fn forward(&self, line: String) {
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("not JSON on stdin: {e}");
                return;
            }
        };
        let mut req = http::Request::post(&self.path)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header(crate::http::TOKEN_HEADER, &self.token);
        if let Some(s) = self.session.read().await.as_deref() {
            req = req.header("mcp-session-id", s);
        }
        if let Some(p) = self.protocol.read().await.as_deref() {
            req = req.header("mcp-protocol-version", p);
        }
        let req = match req.body(kube::client::Body::from(line.into_bytes())) {
            Ok(r) => r,
            Err(e) => return self.fail(&msg, format!("wirelens --kube: {e}")).await,
        };
        let resp = match self.client.send(req).await {
            Ok(r) => r,
            Err(e) => {
                return self
                    .fail(
                        &msg,
                        format!("wirelens --kube: the API server proxy to the hub failed: {e}"),
                    )
                    .await;
            }
        };
        let status = resp.status();
        if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            *self.session.write().await = Some(s.to_string());
        }
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if !status.is_success() {
            let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text[..text.len().min(500)]).trim().to_string();
            return self
                .fail(&msg, format!("wirelens --kube: the hub answered HTTP {status}: {text}"))
                .await;
        }
        if status == http::StatusCode::ACCEPTED {
            return;
        }
        if !sse {
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            self.note_protocol(&bytes).await;
            if !bytes.is_empty() {
                self.write(&bytes).await;
            }
            return;
        }
        // Server-sent events: one JSON-RPC message per event's data.
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Some(data) = frame.data_ref() else { continue };
            buf.extend_from_slice(data);
            while let Some(end) = find_event_end(&buf) {
                let event: Vec<u8> = buf.drain(..end.1).collect();
                let payload = event_data(&event[..end.0]);
                if !payload.is_empty() {
                    self.note_protocol(&payload).await;
                    self.write(&payload).await;
                }
            }
        }
    }

    /// After `initialize`, later requests carry the negotiated protocol version.
    async fn note_protocol(&self, bytes: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes)
            && let Some(p) = v.pointer("/result/protocolVersion").and_then(Value::as_str)
        {
            *self.protocol.write().await = Some(p.to_string());
        }
    }
}

/// (end of the event's text, end including the blank line) of the first complete event.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The `data:` lines of one event, joined by newlines.
fn event_data(event: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    lines.join("\n").into_bytes()
}

/// Bridges stdin/stdout to the hub until stdin ends.
pub async fn run(opts: BridgeOptions) -> anyhow::Result<()> {
    let client = capture_core::enrich::kube::client(&opts.kube)
        .await
        .context("connecting to the Kubernetes API (kubeconfig)")?;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &opts.namespace);
    let secret = secrets.get(&opts.token_secret).await.with_context(|| {
        format!(
            "reading the hub's token from Secret {}/{} (is wirelens installed there, and may your kubeconfig's user get Secrets in it?)",
            opts.namespace, opts.token_secret
        )
    })?;
    let Some(token) = secret.data.as_ref().and_then(|d| d.get("token")) else {
        bail!("Secret {}/{} has no `token` key", opts.namespace, opts.token_secret);
    };
    let token = String::from_utf8(token.0.clone()).context("the hub's token is not text")?;
    let bridge = Arc::new(Bridge {
        client,
        path: format!(
            "/api/v1/namespaces/{}/services/http:{}:{}/proxy/mcp",
            opts.namespace, opts.service, opts.port
        ),
        token: token.trim().to_string(),
        session: tokio::sync::RwLock::new(None),
        protocol: tokio::sync::RwLock::new(None),
        out: tokio::sync::Mutex::new(tokio::io::stdout()),
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = true;
    while let Some(line) = lines.next_line().await.context("reading stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        if first {
            // `initialize` opens the session every later message names: wait for it.
            first = false;
            bridge.forward(line).await;
            continue;
        }
        let b = bridge.clone();
        tasks.spawn(async move { b.forward(line).await });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    if let Some(s) = bridge.session.read().await.clone() {
        // End the session on the hub.
        let req = http::Request::delete(&bridge.path)
            .header("mcp-session-id", s)
            .header(crate::http::TOKEN_HEADER, &bridge.token)
            .body(kube::client::Body::empty());
        if let Ok(req) = req {
            let _ = bridge.client.send(req).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_and_join_their_data() {
        let buf = b"event: message\ndata: {\"a\":1}\n\ndata: {\"b\":\ndata: 2}\r\n\r\nrest";
        let (text, end) = find_event_end(buf).unwrap();
        assert_eq!(event_data(&buf[..text]), b"{\"a\":1}");
        let rest = &buf[end..];
        let (text, end2) = find_event_end(rest).unwrap();
        assert_eq!(event_data(&rest[..text]), b"{\"b\":\n2}");
        assert!(find_event_end(&rest[end2..]).is_none());
    }
}
