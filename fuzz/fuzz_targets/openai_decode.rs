//! OpenAI chat request inspection, model rewriting and the neutral codec: never a panic, and
//! rewriting `model` keeps every other top-level member.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::{json_scan, openai_chat, sse};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = openai_chat::decode_request(data) {
        let out = openai_chat::encode_upstream_request(data, "m", &request)
            .expect("a valid request is an object");
        assert!(json_scan::members(&out).is_ok());
    }
    let _ = openai_chat::rewrite_response(data, b"\"x\"");
    let _ = openai_chat::decode_neutral_request(data);
    let _ = openai_chat::decode_neutral_response(data, 1);
    let mut decoder = sse::Decoder::default();
    decoder.push(data);
    decoder.finish();
    let mut chunks = openai_chat::ChunkDecoder::new(1);
    while let Some(event) = decoder.next_event() {
        let _ = chunks.decode(&event);
    }
});
