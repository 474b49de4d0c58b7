//! The SSE decoder on arbitrary bytes split at arbitrary points: never panics, and the split
//! does not change the events. With small caps, the split changes neither the events before the
//! failure nor the failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmux_protocol::sse::{Decoder, Event, SseError};

fn events(mut decoder: Decoder, pieces: &[&[u8]]) -> (Vec<Event>, Option<SseError>) {
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Ok(Some(event)) = decoder.try_next_event() {
            out.push(event);
        }
    }
    decoder.finish();
    while let Ok(Some(event)) = decoder.try_next_event() {
        out.push(event);
    }
    (out, decoder.error())
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
    let whole = events(Decoder::default(), &[data]);
    let pieces = events(Decoder::default(), &[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces);
    assert_eq!(whole.1, None);
    let capped = || Decoder::with_limits(16, 24);
    let whole = events(capped(), &[data]);
    let pieces = events(capped(), &[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces);
});
