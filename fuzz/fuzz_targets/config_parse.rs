//! Config parsing and validation in every format: errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_config::{Format, from_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let _ = from_str(text, format, &|name| {
            (name == "SET").then(|| "value".to_owned())
        });
    }
});
