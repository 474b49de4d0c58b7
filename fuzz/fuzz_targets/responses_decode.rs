//! Responses API request decoding, then encoding the neutral request for every vendor:
//! malformed input is an error, never a panic, and a decoded request always encodes (Gemini may
//! refuse a schema, with an error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::{anthropic, gemini, openai_chat, responses};

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = responses::decode_request(data) {
        let request = &decoded.request;
        let _ = openai_chat::encode_neutral_request(request);
        let _ = anthropic::encode_request(request, 1024);
        let _ = gemini::encode_request(request);
        let _ = request.estimate_input_tokens();
    }
});
