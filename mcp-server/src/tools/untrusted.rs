//! The last step of every tool result: payload-derived text is untrusted, so every string in a
//! result (keys too) has its control characters and bidi controls escaped, whatever field it sits
//! in. Newlines, carriage returns and tabs stay (bodies and headers are multi-line text); ESC (ANSI
//! sequences), NUL, BEL, DEL, the C1 controls become `\xNN`, and the bidi embeddings, overrides,
//! isolates and marks become `\u{NNNN}`, as in summaries.

use schemars::JsonSchema;
use serde::{Serialize, Serializer};
use serde_json::Value;

fn hostile(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// `s` with every hostile character written as an escape.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !hostile(c) {
            out.push(c);
        } else if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    out
}

/// Escapes every string of `v` in place (object keys too).
pub fn escape_value(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().any(hostile) => *s = escape(s),
        Value::Array(a) => a.iter_mut().for_each(escape_value),
        Value::Object(m) => {
            if m.keys().any(|k| k.chars().any(hostile)) {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    escape_value(&mut x);
                    m.insert(escape(&k), x);
                }
            } else {
                m.values_mut().for_each(escape_value);
            }
        }
        _ => {}
    }
}

/// A tool result serialized with [`escape_value`] applied; its JSON Schema is the result's.
pub struct Untrusted<T>(pub T);

impl<T: Serialize> Serialize for Untrusted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        escape_value(&mut v);
        v.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Untrusted<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostile_characters_become_visible_escapes() {
        assert_eq!(escape("a\x1b[31mb\u{202e}c\0\u{85}"), "a\\x1b[31mb\\u{202e}c\\x00\\x85");
        assert_eq!(escape("line 1\r\nline\t2"), "line 1\r\nline\t2");
        let mut v = json!({"k\x07": ["x\x1b", {"y": "\u{2066}z"}], "n": 1, "ok": "plain"});
        escape_value(&mut v);
        assert_eq!(
            v,
            json!({"k\\x07": ["x\\x1b", {"y": "\\u{2066}z"}], "n": 1, "ok": "plain"})
        );
        let s = serde_json::to_string(&Untrusted(json!({"a": "\x1b"}))).unwrap();
        assert_eq!(s, r#"{"a":"\\x1b"}"#);
    }
}
