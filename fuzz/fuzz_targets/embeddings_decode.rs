//! Embeddings request inspection and the upstream rewrite: never a panic, and a request that
//! decodes is an object whose rewrite is still one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::{embeddings, json_scan};

fuzz_target!(|data: &[u8]| {
    if embeddings::decode_request(data).is_ok() {
        let out =
            embeddings::encode_upstream_request(data, "m").expect("a decoded request is an object");
        assert!(json_scan::members(&out).is_ok());
    }
});
