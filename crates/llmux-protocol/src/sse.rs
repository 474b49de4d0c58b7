//! Incremental Server-Sent Events decoding and encoding (WHATWG framing).
//!
//! The decoder accepts bytes in arbitrary pieces and yields complete events. It handles
//! LF, CRLF and CR line endings, multi-line `data:`, comments, `event:` names and a leading
//! BOM. A single-line `data:` payload is returned as a slice of the input buffer, so the
//! common case (one JSON object per event) copies the bytes once, into the buffer.

use bytes::{Buf, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, when the stream names its events (Anthropic does, OpenAI does not).
    pub name: Option<String>,
    /// The `data:` lines joined with `\n`, without the trailing newline.
    pub data: Bytes,
}

impl Event {
    /// Whether this is OpenAI's end-of-stream sentinel: the payload *equals* `[DONE]`.
    pub fn is_done_marker(&self) -> bool {
        self.data.as_ref() == b"[DONE]"
    }
}

/// Incremental SSE decoder. Feed bytes with [`Decoder::push`], drain with [`Decoder::next_event`].
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    data: Option<Data>,
    name: Option<String>,
    bom_checked: bool,
    finished: bool,
}

#[derive(Debug)]
enum Data {
    One(Bytes),
    Many(BytesMut),
}

impl Decoder {
    /// Appends bytes received from the network.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Marks the end of input: a final event without its blank line is still dispatched
    /// (real vendors sometimes omit the last newline).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Bytes buffered but not yet part of a complete line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete event, or `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        if !self.bom_checked {
            if self.buf.len() < 3 && !self.finished && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                return None;
            }
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.advance(3);
            }
            self.bom_checked = true;
        }
        loop {
            let Some((line_len, eol_len)) = self.find_line_end() else {
                if self.finished {
                    if !self.buf.is_empty() {
                        let line = self.buf.split().freeze();
                        self.process_line(line);
                    }
                    return self.dispatch();
                }
                return None;
            };
            let line = self.buf.split_to(line_len).freeze();
            self.buf.advance(eol_len);
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Some(event);
                }
                continue;
            }
            self.process_line(line);
        }
    }

    /// Finds the end of the first line: (length of the line, length of its terminator).
    fn find_line_end(&self) -> Option<(usize, usize)> {
        let pos = memchr::memchr2(b'\n', b'\r', &self.buf)?;
        if self.buf[pos] == b'\n' {
            return Some((pos, 1));
        }
        // A CR may be followed by LF in the next chunk: wait unless the input is complete.
        match self.buf.get(pos + 1) {
            Some(b'\n') => Some((pos, 2)),
            Some(_) => Some((pos, 1)),
            None if self.finished => Some((pos, 1)),
            None => None,
        }
    }

    fn process_line(&mut self, line: Bytes) {
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(colon) => {
                let mut value = line.slice(colon + 1..);
                if value.first() == Some(&b' ') {
                    value.advance(1);
                }
                (line.slice(..colon), value)
            }
            None => (line.clone(), Bytes::new()),
        };
        match field.as_ref() {
            b"data" => {
                self.data = Some(match self.data.take() {
                    None => Data::One(value),
                    Some(Data::One(first)) => {
                        let mut joined = BytesMut::with_capacity(first.len() + 1 + value.len());
                        joined.extend_from_slice(&first);
                        joined.extend_from_slice(b"\n");
                        joined.extend_from_slice(&value);
                        Data::Many(joined)
                    }
                    Some(Data::Many(mut joined)) => {
                        joined.extend_from_slice(b"\n");
                        joined.extend_from_slice(&value);
                        Data::Many(joined)
                    }
                });
            }
            b"event" => self.name = Some(String::from_utf8_lossy(&value).into_owned()),
            _ => {} // id, retry and unknown fields do not matter to a proxy
        }
    }

    fn dispatch(&mut self) -> Option<Event> {
        let name = self.name.take();
        let data = match self.data.take()? {
            Data::One(bytes) => bytes,
            Data::Many(bytes) => bytes.freeze(),
        };
        Some(Event { name, data })
    }
}

/// Appends one event as `event: NAME\n` (when named) and one `data:` line per payload line,
/// then the blank line. LF only, so strict clients accept it.
pub fn encode_event(out: &mut BytesMut, name: Option<&str>, data: &[u8]) {
    out.reserve(data.len() + 16 + name.map_or(0, |n| n.len() + 8));
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\n");
    }
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
}

/// The OpenAI stream terminator frame.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests;
