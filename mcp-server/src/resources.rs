//! MCP resources: the KFL language reference, the field list, the capture status, and one
//! resource per entry (`wirelens://entry/{id}`).

use rmcp::model::{Resource, ResourceTemplate};
use serde_json::Value;

use crate::state::AppState;
use crate::tools;

pub const KFL_REFERENCE: &str = "wirelens://kfl/reference";
pub const FIELDS: &str = "wirelens://fields";
pub const CAPTURE_STATUS: &str = "wirelens://capture/status";
pub const ENTRY_TEMPLATE: &str = "wirelens://entry/{id}";

pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(KFL_REFERENCE, "kfl-reference")
            .with_title("KFL filter language reference")
            .with_description(
                "Syntax, operators, functions, protocol flags and every field, generated from the registry",
            )
            .with_mime_type("text/markdown"),
        Resource::new(FIELDS, "fields")
            .with_title("Entry fields")
            .with_description("Every field name, alias, type and protocol, as JSON")
            .with_mime_type("application/json"),
        Resource::new(CAPTURE_STATUS, "capture-status")
            .with_title("Capture status")
            .with_description("Sources, volumes, store use and every drop counter (as the capture_status tool)")
            .with_mime_type("application/json"),
    ]
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(ENTRY_TEMPLATE, "entry")
            .with_title("One entry")
            .with_description("An entry's headers and bodies (as get_payload with decode=auto)")
            .with_mime_type("application/json"),
    ]
}

fn fields_json() -> Value {
    let items: Vec<Value> = capture_core::fields::FIELDS
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "aliases": f.aliases,
                "type": f.ty.name(),
                "protocol": f.protocol,
                "description": f.description,
                "example": f.example,
            })
        })
        .collect();
    Value::Array(items)
}

/// Reads a resource: (MIME type, text).
pub fn read(state: &AppState, uri: &str) -> Option<(&'static str, String)> {
    match uri {
        KFL_REFERENCE => Some(("text/markdown", capture_core::kfl::reference_markdown())),
        FIELDS => Some(("application/json", fields_json().to_string())),
        CAPTURE_STATUS => {
            let v = tools::call(state, "capture_status", serde_json::Map::new()).ok()?;
            Some(("application/json", v.to_string()))
        }
        _ => {
            let id = uri.strip_prefix("wirelens://entry/")?;
            let mut args = serde_json::Map::new();
            args.insert("id".into(), Value::String(id.to_string()));
            let v = tools::call(state, "get_payload", args).ok()?;
            Some(("application/json", v.to_string()))
        }
    }
}
