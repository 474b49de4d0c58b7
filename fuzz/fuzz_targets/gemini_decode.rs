//! Gemini response, request and stream decoding: malformed input is an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::{gemini, sse};

fuzz_target!(|data: &[u8]| {
    let _ = gemini::decode_response(data, 1);
    let _ = gemini::decode_request(data);
    let _ = gemini::decode_error(429, data);
    let mut decoder = sse::Decoder::default();
    decoder.push(data);
    decoder.finish();
    let mut stream = gemini::StreamDecoder::new(1);
    while let Some(event) = decoder.next_event() {
        let _ = stream.decode(&event);
    }
});
