//! The schemaless protobuf decoder on arbitrary bytes: total (never panics), depth-capped, and
//! its JSON rendering is always an object.
#![no_main]

use capture_core::dissect::http2::protobuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&depth, rest)) = data.split_first() else {
        return;
    };
    if let Some(fields) = protobuf::decode(rest, usize::from(depth % 40)) {
        let json = protobuf::to_json(&fields);
        assert!(json.starts_with('{') && json.ends_with('}'));
    }
});
