use super::*;
use proptest::prelude::*;

fn decode_all(pieces: &[&[u8]]) -> Vec<Event> {
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            events.push(event);
        }
    }
    decoder.finish();
    while let Some(event) = decoder.next_event() {
        events.push(event);
    }
    events
}

fn data(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
        .collect()
}

#[test]
fn openai_fixture_decodes_every_chunk_and_the_done_marker() {
    let raw = include_bytes!("../../../../fixtures/openai/chat_stream_text_include_usage.sse");
    let events = decode_all(&[raw]);
    assert!(events.len() > 3);
    assert!(events.last().unwrap().is_done_marker());
    for event in &events[..events.len() - 1] {
        serde_json::from_slice::<serde_json::Value>(&event.data).expect("each data is JSON");
    }
}

#[test]
fn gemini_crlf_fixture_decodes() {
    let raw = include_bytes!("../../../../fixtures/gemini/stream_text.sse");
    let events = decode_all(&[raw]);
    assert_eq!(events.len(), 2);
    for event in &events {
        serde_json::from_slice::<serde_json::Value>(&event.data).expect("each data is JSON");
    }
}

#[test]
fn anthropic_fixture_keeps_event_names_and_last_event_without_newline() {
    let raw = include_bytes!("../../../../fixtures/anthropic/stream_text.sse");
    let events = decode_all(&[raw]);
    let names: Vec<_> = events.iter().map(|e| e.name.clone().unwrap()).collect();
    assert_eq!(names.first().unwrap(), "message_start");
    assert_eq!(names.last().unwrap(), "message_stop");
    assert!(names.contains(&"ping".to_string()));
}

#[test]
fn done_is_detected_only_when_the_payload_equals_it() {
    let events = decode_all(&[b"data: {\"content\":\"say [DONE] now\"}\n\ndata: [DONE]\n\n"]);
    assert!(!events[0].is_done_marker());
    assert!(events[1].is_done_marker());
}

#[test]
fn multi_line_data_comments_and_cr_endings() {
    let events = decode_all(&[b": keepalive\revent: x\rdata: a\rdata: b\r\rdata:c\n\n"]);
    assert_eq!(data(&events), vec!["a\nb", "c"]);
    assert_eq!(events[0].name.as_deref(), Some("x"));
    assert_eq!(events[1].name, None);
}

#[test]
fn bom_is_skipped_even_when_split() {
    let events = decode_all(&[b"\xEF", b"\xBB\xBFdata: 1\n\n"]);
    assert_eq!(data(&events), vec!["1"]);
}

#[test]
fn encoder_writes_one_data_line_per_payload_line() {
    let mut out = BytesMut::new();
    encode_event(&mut out, Some("ping"), b"{\"type\":\"ping\"}");
    encode_event(&mut out, None, b"a\nb");
    assert_eq!(
        &out[..],
        b"event: ping\ndata: {\"type\":\"ping\"}\n\ndata: a\ndata: b\n\n"
    );
    // Edges: a trailing newline is an empty last line, and empty data is one empty line, so
    // the decoder gives back exactly the data that was encoded.
    for payload in [&b"a\n"[..], b"", b"\n\n", b"x\ny\n"] {
        let mut out = BytesMut::new();
        encode_event(&mut out, None, payload);
        let mut decoder = Decoder::default();
        decoder.push(&out);
        let event = decoder.next_event().expect("one event");
        assert_eq!(
            &event.data[..],
            payload,
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn a_line_without_end_stops_at_the_cap_holding_at_most_cap_plus_a_piece() {
    let piece = [b'x'; 4096];
    let mut decoder = Decoder::default();
    decoder.push(b"data: ");
    let mut pushed = 6;
    let mut failure = None;
    while pushed < 64 << 20 {
        decoder.push(&piece);
        pushed += piece.len();
        assert!(decoder.buffered() <= DEFAULT_MAX_LINE + piece.len());
        match decoder.try_next_event() {
            Ok(None) => {}
            Ok(Some(event)) => panic!("unexpected event {event:?}"),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    assert_eq!(
        failure,
        Some(SseError::LineTooLong {
            limit: DEFAULT_MAX_LINE
        })
    );
    assert!(pushed <= DEFAULT_MAX_LINE + piece.len(), "{pushed}");
    // Stopped for good: memory released, input ignored, the error repeated.
    assert_eq!(decoder.buffered(), 0);
    decoder.push(b"\n\ndata: 1\n\n");
    assert_eq!(decoder.buffered(), 0);
    assert_eq!(decoder.next_event(), None);
    assert_eq!(decoder.error(), failure);
    assert_eq!(
        decoder.try_next_event(),
        Err(SseError::LineTooLong {
            limit: DEFAULT_MAX_LINE
        })
    );
    assert_eq!(
        SseError::LineTooLong { limit: 1 }.kind(),
        crate::error::ErrorKind::UpstreamProtocol
    );
}

#[test]
fn a_line_split_into_tiny_pieces_is_scanned_once() {
    // Rescanning the buffer on every push would read 8 MiB × 131,072 pushes (about 550 GB).
    let started = std::time::Instant::now();
    let mut decoder = Decoder::default();
    decoder.push(b"data: ");
    let piece = [b'y'; 64];
    for _ in 0..(8 << 20) / piece.len() {
        decoder.push(&piece);
        assert_eq!(decoder.next_event(), None);
    }
    decoder.push(b"\r");
    assert_eq!(decoder.next_event(), None);
    decoder.push(b"\n\n");
    let event = decoder.next_event().expect("one event");
    assert_eq!(event.data.len(), 8 << 20);
    assert_eq!(decoder.error(), None);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn line_and_event_caps_are_exact() {
    // A 10-byte line is allowed with a cap of 10, even when its CR waits for the next piece.
    let mut decoder = Decoder::with_limits(10, 1000);
    decoder.push(b"data: abcd\r");
    assert_eq!(decoder.try_next_event(), Ok(None));
    decoder.push(b"\n\n");
    assert_eq!(data(&[decoder.next_event().expect("event")]), vec!["abcd"]);
    decoder.push(b"data: abcde\n");
    assert_eq!(
        decoder.try_next_event(),
        Err(SseError::LineTooLong { limit: 10 })
    );

    // Three data lines of 4 bytes join into 14 bytes: over a cap of 13.
    let mut decoder = Decoder::with_limits(100, 14);
    decoder.push(b"data: 1234\ndata: 5678\ndata: 9abc\n\n");
    assert_eq!(
        data(&[decoder.next_event().expect("event")]),
        vec!["1234\n5678\n9abc"]
    );
    let mut decoder = Decoder::with_limits(100, 13);
    decoder.push(b"data: 1234\ndata: 5678\ndata: 9abc\n\n");
    assert_eq!(
        decoder.try_next_event(),
        Err(SseError::EventTooLarge { limit: 13 })
    );
    assert_eq!(
        SseError::EventTooLarge { limit: 13 }.to_string(),
        "upstream stream event larger than 13 bytes"
    );
    // An unfinished last line over the cap fails at the end of input too.
    let mut decoder = Decoder::with_limits(4, 100);
    decoder.push(b"data: 12345");
    decoder.finish();
    assert_eq!(
        decoder.try_next_event(),
        Err(SseError::LineTooLong { limit: 4 })
    );
}

proptest! {
    /// Decoding is the same however the bytes are split into network reads.
    #[test]
    fn chunking_does_not_change_events(
        payloads in proptest::collection::vec("[a-z{}\":\\[\\] ]{0,20}", 1..8),
        eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        cuts in proptest::collection::vec(0usize..200, 0..10),
    ) {
        let mut raw = Vec::new();
        for p in &payloads {
            raw.extend_from_slice(format!("data: {p}{eol}{eol}").as_bytes());
        }
        let whole = decode_all(&[&raw]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (raw.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut last = 0;
        for c in cuts {
            pieces.push(&raw[last..c]);
            last = c;
        }
        pieces.push(&raw[last..]);
        let split = decode_all(&pieces);
        prop_assert_eq!(&whole, &split);
        // Caps that the stream stays within change nothing either.
        let mut capped = Decoder::with_limits(40, 40);
        let mut events = Vec::new();
        for piece in &pieces {
            capped.push(piece);
            while let Some(event) = capped.try_next_event().expect("within the caps") {
                events.push(event);
            }
        }
        capped.finish();
        while let Some(event) = capped.try_next_event().expect("within the caps") {
            events.push(event);
        }
        prop_assert_eq!(&whole, &events);
        let expected: Vec<String> = payloads.iter().map(|p| p.to_string()).collect();
        prop_assert_eq!(data(&whole), expected);
    }
}
