//! JSON Schema → Gemini's subset on arbitrary JSON: never a panic, and the output stays within
//! the budget it was given (an over-budget schema is an error, not an allocation bomb).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::gemini::{self, SchemaBudget};
use llmux_protocol::neutral::{Request, ResponseFormat, Tool};

/// Small enough that a bomb is refused long before the 512 MB RSS limit.
const NODES: usize = 10_000;
const BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut budget = SchemaBudget::new(NODES, BYTES);
    if let Ok(cleaned) = gemini::clean_schema_within(&schema, &mut budget) {
        let text = serde_json::to_vec(&cleaned).expect("a Value serializes");
        // The byte count is an estimate of the JSON size; allow for its rounding.
        assert!(text.len() <= 2 * BYTES, "{} bytes", text.len());
    }
    // The same schema through the encoder, as tool parameters and as a response format.
    let request = Request {
        model: "gemini-2.5-flash".into(),
        tools: vec![Tool {
            name: "f".into(),
            description: None,
            parameters: Some(schema.clone()),
            strict: None,
        }],
        response_format: Some(ResponseFormat::JsonSchema {
            name: "r".into(),
            schema,
            strict: None,
        }),
        ..Request::default()
    };
    let _ = gemini::encode_request(&request);
});
