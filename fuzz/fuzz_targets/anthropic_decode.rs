//! Anthropic response, request and stream decoding: malformed input is an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::{anthropic, sse};

fuzz_target!(|data: &[u8]| {
    let _ = anthropic::decode_response(data);
    let _ = anthropic::decode_request(data);
    let _ = anthropic::decode_error(529, data);
    let mut decoder = sse::Decoder::default();
    decoder.push(data);
    decoder.finish();
    let mut stream = anthropic::StreamDecoder::default();
    while let Some(event) = decoder.next_event() {
        let _ = stream.decode(&event);
    }
});
