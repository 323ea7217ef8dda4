//! The wirelens MCP server as a library: the `wirelens` binary is a thin CLI over it, and the
//! end-to-end suites drive it in-process.
//!
//! # Layout
//! - [`state`]: loads the sources named on the command line into the engine's shared store;
//! - [`tools`]: each tool as a plain function (JSON arguments → engine → result);
//! - [`server`]: the rmcp service that exposes the tools over MCP;
//! - [`prompts`]: the MCP prompts (playbooks in `prompts/`, embedded) and [`completions`] for
//!   their arguments and the resource templates;
//! - [`http`]: the Streamable HTTP transport (`wirelens serve`), its security checks and
//!   `/healthz`, `/readyz`, `/metrics`;
//! - [`metrics`]: tool-call counters and the Prometheus exposition;
//! - [`convert`]: engine values → `tools-schema` types (the only place they meet);
//! - [`cluster`]: `wirelens agent` (a node's query API over HTTP/2 + mTLS) and the hub that
//!   fans each tool out to the agents and merges their answers;
//! - [`demo_truth`]: the `--demo` scenario's ground truth as JSON (`wirelens demo-truth`).

pub mod cluster;
pub mod completions;
pub mod convert;
pub mod demo_truth;
pub mod http;
pub mod kube_bridge;
pub mod loading;
pub mod metrics;
pub mod prompts;
pub mod proto;
pub mod resources;
pub mod server;
pub mod state;
pub mod tools;
