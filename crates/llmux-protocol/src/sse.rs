//! Incremental Server-Sent Events decoding and encoding (WHATWG framing).
//!
//! The decoder accepts bytes in arbitrary pieces and yields complete events. It handles
//! LF, CRLF and CR line endings, multi-line `data:`, comments, `event:` names and a leading
//! BOM. A single-line `data:` payload is returned as a slice of the input buffer, so the
//! common case (one JSON object per event) copies the bytes once, into the buffer.
//!
//! Each byte is searched for a line end once, and one line and one event's data are capped
//! ([`DEFAULT_MAX_LINE`], [`DEFAULT_MAX_EVENT`], [`Decoder::with_limits`]): a vendor cannot make
//! the gateway buffer or rescan without bound.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ErrorKind;

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

/// The default cap on one line, in bytes ([`Decoder::with_limits`]).
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

/// The default cap on one event's accumulated `data`, in bytes ([`Decoder::with_limits`]).
pub const DEFAULT_MAX_EVENT: usize = 16 << 20;

/// A stream the decoder gave up on: one of its caps was exceeded. The vendor is not speaking
/// SSE as we know it ([`ErrorKind::UpstreamProtocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line went on past the cap without a line end.
    #[error("upstream stream line longer than {limit} bytes")]
    LineTooLong {
        /// The cap, in bytes.
        limit: usize,
    },
    /// One event's `data` lines added up to more than the cap.
    #[error("upstream stream event larger than {limit} bytes")]
    EventTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

impl SseError {
    /// What failed: always [`ErrorKind::UpstreamProtocol`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::UpstreamProtocol
    }
}

/// Incremental SSE decoder. Feed bytes with [`Decoder::push`], drain with [`Decoder::next_event`]
/// (or [`Decoder::try_next_event`], which also reports a cap being exceeded).
///
/// Memory and work are bounded: each byte is scanned for a line end once, however the input is
/// split, and a line longer than `max_line` or an event whose data exceeds `max_event` stops the
/// decoder with an [`SseError`]. It then drops what it buffered, ignores further input and yields
/// no more events; [`Decoder::error`] says why. A caller that drains after every push holds at
/// most `max_line` plus one piece.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// How much of `buf` is known to hold no line end (the next search starts there).
    scanned: usize,
    data: Option<Data>,
    name: Option<String>,
    bom_checked: bool,
    finished: bool,
    max_line: usize,
    max_event: usize,
    error: Option<SseError>,
}

impl Default for Decoder {
    /// A decoder with [`DEFAULT_MAX_LINE`] and [`DEFAULT_MAX_EVENT`].
    fn default() -> Self {
        Self::with_limits(DEFAULT_MAX_LINE, DEFAULT_MAX_EVENT)
    }
}

#[derive(Debug)]
enum Data {
    One(Bytes),
    Many(BytesMut),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Self::One(bytes) => bytes.len(),
            Self::Many(bytes) => bytes.len(),
        }
    }
}

impl Decoder {
    /// A decoder that fails a stream with a line longer than `max_line` bytes (its terminator not
    /// counted) or an event whose joined `data` is longer than `max_event` bytes.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            data: None,
            name: None,
            bom_checked: false,
            finished: false,
            max_line,
            max_event,
            error: None,
        }
    }

    /// Appends bytes received from the network (ignored once the decoder has failed).
    pub fn push(&mut self, chunk: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(chunk);
        }
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

    /// Why the decoder stopped, once a cap was exceeded.
    pub fn error(&self) -> Option<SseError> {
        self.error
    }

    /// Returns the next complete event, or `None` when more input is needed or the decoder has
    /// failed (see [`Decoder::error`]).
    pub fn next_event(&mut self) -> Option<Event> {
        self.try_next_event().ok().flatten()
    }

    /// Returns the next complete event, `Ok(None)` when more input is needed, or the error that
    /// stopped the decoder (every later call returns it again).
    pub fn try_next_event(&mut self) -> Result<Option<Event>, SseError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let next = self.decode_next();
        if let Err(error) = next {
            self.error = Some(error);
            // Nothing more will be decoded: give the memory back now.
            self.buf = BytesMut::new();
            self.data = None;
            self.name = None;
        }
        next
    }

    fn decode_next(&mut self) -> Result<Option<Event>, SseError> {
        if !self.bom_checked {
            if self.buf.len() < 3 && !self.finished && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                return Ok(None);
            }
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.advance(3);
            }
            self.bom_checked = true;
        }
        loop {
            let Some((line_len, eol_len)) = self.find_line_end() else {
                // `scanned` is the length of the unfinished line (a trailing CR not counted).
                if self.scanned > self.max_line {
                    return Err(SseError::LineTooLong {
                        limit: self.max_line,
                    });
                }
                if self.finished {
                    if !self.buf.is_empty() {
                        let line = self.buf.split().freeze();
                        self.scanned = 0;
                        self.process_line(line)?;
                    }
                    return Ok(self.dispatch());
                }
                return Ok(None);
            };
            if line_len > self.max_line {
                return Err(SseError::LineTooLong {
                    limit: self.max_line,
                });
            }
            let line = self.buf.split_to(line_len).freeze();
            self.buf.advance(eol_len);
            self.scanned = 0;
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            self.process_line(line)?;
        }
    }

    /// Finds the end of the first line: (length of the line, length of its terminator).
    /// Remembers how far it looked, so bytes without a line end are not scanned again.
    fn find_line_end(&mut self) -> Option<(usize, usize)> {
        let from = self.scanned.min(self.buf.len());
        let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buf[from..]) else {
            self.scanned = self.buf.len();
            return None;
        };
        let pos = from + found;
        if self.buf[pos] == b'\n' {
            return Some((pos, 1));
        }
        // A CR may be followed by LF in the next chunk: wait unless the input is complete.
        match self.buf.get(pos + 1) {
            Some(b'\n') => Some((pos, 2)),
            Some(_) => Some((pos, 1)),
            None if self.finished => Some((pos, 1)),
            None => {
                self.scanned = pos;
                None
            }
        }
    }

    fn process_line(&mut self, line: Bytes) -> Result<(), SseError> {
        if line.first() == Some(&b':') {
            return Ok(()); // comment
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
                let held = self.data.as_ref().map_or(0, |d| d.len() + 1);
                if held + value.len() > self.max_event {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event,
                    });
                }
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
        Ok(())
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
    // Compact JSON has no newline: one search, one line (a byte-wise split cost ~1,500
    // instructions per event).
    let mut line_start = 0;
    let mut data_line = |line: &[u8]| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    };
    for newline in memchr::memchr_iter(b'\n', data) {
        data_line(&data[line_start..newline]);
        line_start = newline + 1;
    }
    data_line(&data[line_start..]);
    out.extend_from_slice(b"\n");
}

/// The OpenAI stream terminator frame.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests;
