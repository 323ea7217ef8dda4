//! MCP resources: the KFL language reference, the field list, the capture status, one
//! resource per entry (`wirelens://entry/{id}`) and one per field (`wirelens://fields/{name}`).

use capture_core::fields::FieldDef;
use rmcp::model::{Resource, ResourceTemplate};
use serde_json::Value;

use crate::state::AppState;
use crate::tools;

pub const KFL_REFERENCE: &str = "wirelens://kfl/reference";
pub const FIELDS: &str = "wirelens://fields";
pub const CAPTURE_STATUS: &str = "wirelens://capture/status";
pub const ENTRY_TEMPLATE: &str = "wirelens://entry/{id}";
pub const FIELD_TEMPLATE: &str = "wirelens://fields/{name}";

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
        ResourceTemplate::new(FIELD_TEMPLATE, "field")
            .with_title("One KFL field")
            .with_description(
                "A field's type, protocol, description and example; `name` is a field name or alias (completions offer them)",
            )
            .with_mime_type("application/json"),
    ]
}

fn field_json(f: &FieldDef) -> Value {
    serde_json::json!({
        "name": f.name,
        "aliases": f.aliases,
        "type": f.ty.name(),
        "protocol": f.protocol,
        "description": f.description,
        "example": f.example,
    })
}

fn fields_json() -> Value {
    Value::Array(capture_core::fields::FIELDS.iter().map(field_json).collect())
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
        _ if uri.starts_with("wirelens://fields/") => {
            let f = capture_core::fields::lookup(uri.strip_prefix("wirelens://fields/")?)?;
            Some(("application/json", field_json(f).to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_by_name_or_alias() {
        let state = AppState::empty_for_tests(crate::metrics::Metrics::default());
        let (mime, text) = read(&state, "wirelens://fields/status").unwrap();
        assert_eq!(mime, "application/json");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], "status");
        assert_eq!(v["type"], "int");
        assert_eq!(v["protocol"], "http");
        assert!(v["description"].as_str().unwrap().contains("HTTP status"));
        let alias: Value = serde_json::from_str(&read(&state, "wirelens://fields/response.status").unwrap().1).unwrap();
        assert_eq!(alias, v, "an alias reads its field");
        assert!(read(&state, "wirelens://fields/stauts").is_none());
        assert!(read(&state, "wirelens://fields/").is_none());
        assert!(templates().iter().any(|t| t.uri_template == FIELD_TEMPLATE));
    }
}
