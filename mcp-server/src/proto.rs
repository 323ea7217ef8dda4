//! `--proto-descriptor FILE`: FileDescriptorSets (`protoc -o`, `buf build`,
//! `grpc_tools.protoc --descriptor_set_out --include_imports`) loaded into one
//! [`DescriptorPool`], so get_payload can decode the messages of known gRPC methods into named
//! JSON fields (proto3 JSON mapping with the `.proto` field names).

use std::path::Path;

use anyhow::Context;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

/// Loads every descriptor set into one pool; a later file may import types of an earlier one.
pub fn load_pool<P: AsRef<Path>>(paths: &[P]) -> anyhow::Result<DescriptorPool> {
    let mut pool = DescriptorPool::new();
    for p in paths {
        let p = p.as_ref();
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        pool.decode_file_descriptor_set(bytes.as_slice())
            .with_context(|| format!("{} is not a valid FileDescriptorSet", p.display()))?;
    }
    Ok(pool)
}

/// The request and response types of `service`/`method` (`pkg.Service`, `Method`), when the pool
/// knows them.
pub fn method_types(
    pool: &DescriptorPool,
    service: &str,
    method: &str,
) -> Option<(MessageDescriptor, MessageDescriptor)> {
    let svc = pool.get_service_by_name(service)?;
    let m = svc.methods().find(|m| m.name() == method)?;
    Some((m.input(), m.output()))
}

/// One message decoded against its type, as proto3 JSON with the `.proto` field names (default
/// values left out, 64-bit integers as strings). `None` when the bytes do not parse as that type.
pub fn decode_named(desc: &MessageDescriptor, bytes: &[u8]) -> Option<Value> {
    let msg = DynamicMessage::decode(desc.clone(), bytes).ok()?;
    let opts = SerializeOptions::new().use_proto_field_name(true);
    msg.serialize_with_options(serde_json::value::Serializer, &opts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::prost::Message;
    use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
    use prost_reflect::prost_types::{
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    use serde_json::json;

    fn field(name: &str, number: i32, ty: Type, label: Label) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(ty as i32),
            label: Some(label as i32),
            json_name: None,
            ..Default::default()
        }
    }

    /// `payments.Payments/Charge(ChargeRequest) returns (ChargeReply)`, as `protoc -o` writes it.
    fn descriptor_set() -> Vec<u8> {
        let req = DescriptorProto {
            name: Some("ChargeRequest".into()),
            field: vec![
                field("order_id", 1, Type::String, Label::Optional),
                field("amount_cents", 2, Type::Int64, Label::Optional),
                field("tags", 3, Type::String, Label::Repeated),
            ],
            ..Default::default()
        };
        let rep = DescriptorProto {
            name: Some("ChargeReply".into()),
            field: vec![
                field("ok", 1, Type::Bool, Label::Optional),
                field("codes", 2, Type::Int32, Label::Repeated),
            ],
            ..Default::default()
        };
        let svc = ServiceDescriptorProto {
            name: Some("Payments".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Charge".into()),
                input_type: Some(".payments.ChargeRequest".into()),
                output_type: Some(".payments.ChargeReply".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("payments.proto".into()),
            package: Some("payments".into()),
            message_type: vec![req, rep],
            service: vec![svc],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        FileDescriptorSet { file: vec![file] }.encode_to_vec()
    }

    fn pool() -> DescriptorPool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.desc");
        std::fs::write(&path, descriptor_set()).unwrap();
        load_pool(&[path]).unwrap()
    }

    #[test]
    fn known_method_decodes_into_named_fields() {
        let pool = pool();
        let (req, rep) = method_types(&pool, "payments.Payments", "Charge").expect("known method");
        assert_eq!(req.full_name(), "payments.ChargeRequest");
        assert_eq!(rep.full_name(), "payments.ChargeReply");
        // order_id = "o-17", amount_cents = 1250, tags = ["a", "b"]
        let bytes = [
            0x0a, 4, b'o', b'-', b'1', b'7', 0x10, 0xe2, 0x09, 0x1a, 1, b'a', 0x1a, 1, b'b',
        ];
        assert_eq!(
            decode_named(&req, &bytes),
            Some(json!({"order_id": "o-17", "amount_cents": "1250", "tags": ["a", "b"]}))
        );
        // ok = true, codes = [3, 300] packed
        let bytes = [0x08, 1, 0x12, 3, 3, 0xac, 0x02];
        assert_eq!(decode_named(&rep, &bytes), Some(json!({"ok": true, "codes": [3, 300]})));
    }

    #[test]
    fn unknown_methods_and_bad_bytes_fall_back() {
        let pool = pool();
        assert!(method_types(&pool, "payments.Payments", "Refund").is_none());
        assert!(method_types(&pool, "other.Payments", "Charge").is_none());
        let (req, _) = method_types(&pool, "payments.Payments", "Charge").unwrap();
        // field 1 declared as 10 bytes long, only 2 present
        assert_eq!(decode_named(&req, &[0x0a, 10, b'x', b'y']), None);
    }

    #[test]
    fn a_file_that_is_not_a_descriptor_set_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.desc");
        std::fs::write(&path, b"\xff\xff\xff not protobuf").unwrap();
        let e = load_pool(&[&path]).unwrap_err();
        assert!(format!("{e:#}").contains("not a valid FileDescriptorSet"), "{e:#}");
        assert!(load_pool(&[dir.path().join("missing.desc")]).is_err());
    }
}
