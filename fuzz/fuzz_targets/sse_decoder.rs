//! The SSE decoder on arbitrary bytes split at arbitrary points: never panics, and the split
//! does not change the events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::sse::Decoder;

fn events(pieces: &[&[u8]]) -> Vec<llmux_protocol::sse::Event> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            out.push(event);
        }
    }
    decoder.finish();
    while let Some(event) = decoder.next_event() {
        out.push(event);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
    let whole = events(&[data]);
    let pieces = events(&[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces);
});
