//! Response body framing (RFC 9112 §6.3): a `Content-Length` body, a chunked body, or one that
//! runs until the vendor closes the connection. Decoding works on the connection's read buffer
//! and never copies: data comes out as `Bytes` split off that buffer.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size line (size, extensions, CRLF) accepted before the body is called invalid.
const MAX_CHUNK_LINE: usize = 1024;
/// Most trailer bytes accepted after the last chunk (they are read and discarded).
const MAX_TRAILERS: usize = 16 * 1024;

/// How the body of one response is delimited.
#[derive(Debug)]
pub(crate) enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`, at this point of the grammar.
    Chunked(Chunked),
    /// Everything until the connection closes (the connection cannot be reused).
    UntilClose,
}

/// Where a chunked decoder stands.
#[derive(Debug)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many data bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: trailer lines until an empty one; bytes seen so far.
    Trailers(usize),
    /// The body has ended.
    Done,
}

/// One decoding step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    Data(Bytes),
    /// The buffer holds no complete piece: read more from the connection.
    NeedMore,
    End,
}

/// The body does not follow its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    #[error("invalid chunk size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("trailers too large")]
    Trailers,
    #[error("connection closed before the body ended")]
    Incomplete,
}

impl Framing {
    /// Takes the next piece of body out of `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        match self {
            Self::Length(0) => Ok(Decoded::End),
            Self::Length(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            Self::UntilClose if buf.is_empty() => Ok(Decoded::NeedMore),
            Self::UntilClose => Ok(Decoded::Data(buf.split().freeze())),
            Self::Chunked(state) => state.decode(buf),
        }
    }

    /// Whether the body has certainly ended (no more bytes belong to it).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Self::Length(0) | Self::Chunked(Chunked::Done))
    }

    /// The connection closed: the end of an until-close body, a truncation of any other.
    pub(crate) fn at_eof(&self) -> Result<Decoded, FramingError> {
        match self {
            Self::UntilClose => Ok(Decoded::End),
            _ if self.is_done() => Ok(Decoded::End),
            _ => Err(FramingError::Incomplete),
        }
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        let data = loop {
            match self {
                Self::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= n as u64;
                    if *left == 0 {
                        *self = Self::DataEnd;
                    }
                    break buf.split_to(n).freeze();
                }
                Self::Done => return Ok(Decoded::End),
                _ => {
                    if !self.skip_framing(buf)? {
                        return Ok(Decoded::NeedMore);
                    }
                }
            }
        };
        // Consume framing that is already buffered (the CRLF, the next size line, the last
        // chunk and trailers), so the end of the body is seen with its last data.
        while !matches!(self, Self::Data(_) | Self::Done) && self.skip_framing(buf)? {}
        Ok(Decoded::Data(data))
    }

    /// Consumes one framing element; false when `buf` does not hold a complete one yet.
    fn skip_framing(&mut self, buf: &mut BytesMut) -> Result<bool, FramingError> {
        match self {
            Self::Size => {
                let Some(line) = take_line(buf, MAX_CHUNK_LINE).ok_or(FramingError::ChunkSize)?
                else {
                    return Ok(false);
                };
                let size = parse_chunk_size(&line)?;
                *self = if size == 0 {
                    Self::Trailers(0)
                } else {
                    Self::Data(size)
                };
            }
            Self::DataEnd => {
                if buf.len() < 2 {
                    return Ok(false);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(FramingError::ChunkEnd);
                }
                buf.advance(2);
                *self = Self::Size;
            }
            Self::Trailers(seen) => {
                let room = MAX_TRAILERS.saturating_sub(*seen);
                let Some(line) = take_line(buf, room).ok_or(FramingError::Trailers)? else {
                    return Ok(false);
                };
                if line.is_empty() {
                    *self = Self::Done;
                } else {
                    *seen += line.len() + 2;
                }
            }
            Self::Data(_) | Self::Done => {}
        }
        Ok(true)
    }
}

/// Takes one line (without its CRLF or bare LF) off `buf`: `Some(None)` when the line is not
/// complete yet, `None` when it is longer than `max`.
fn take_line(buf: &mut BytesMut, max: usize) -> Option<Option<Bytes>> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        return (buf.len() <= max).then_some(None);
    };
    if newline > max {
        return None;
    }
    let mut line = buf.split_to(newline + 1);
    line.truncate(newline);
    if line.last() == Some(&b'\r') {
        line.truncate(newline - 1);
    }
    Some(Some(line.freeze()))
}

/// `1a3f;ext=1` → 0x1a3f. At least one hex digit; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 15 {
        return Err(FramingError::ChunkSize);
    }
    let rest = &line[digits..];
    let rest_ok = rest.is_empty()
        || rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .is_none_or(|i| rest[i] == b';');
    if !rest_ok {
        return Err(FramingError::ChunkSize);
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = size * 16 + u64::from(digit);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    /// Feeds `wire` in pieces of `step` bytes and collects the body, as a connection would.
    fn decode_in_steps(
        mut framing: Framing,
        wire: &[u8],
        step: usize,
    ) -> Result<Vec<u8>, FramingError> {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match framing.decode(&mut buf)? {
                Decoded::Data(data) => {
                    assert!(!data.is_empty(), "empty data piece");
                    body.extend_from_slice(&data);
                }
                Decoded::End => return Ok(body),
                Decoded::NeedMore if fed == wire.len() => match framing.at_eof()? {
                    Decoded::End => return Ok(body),
                    other => panic!("at_eof gave {other:?}"),
                },
                Decoded::NeedMore => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    const CHUNKED: &[u8] = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        for step in 1..=CHUNKED.len() {
            let body = decode_in_steps(Framing::Chunked(Chunked::Size), CHUNKED, step).unwrap();
            assert_eq!(body, b"hello, world", "step {step}");
        }
    }

    #[test]
    fn the_end_of_a_chunked_body_is_seen_with_its_last_data() {
        let mut framing = Framing::Chunked(Chunked::Size);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        assert_eq!(
            framing.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"abc"))
        );
        assert!(
            framing.is_done(),
            "the connection can go back to the pool now"
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut framing = Framing::Length(5);
        let mut buf = BytesMut::from(&b"hello"[..]);
        assert_eq!(
            framing.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"hello"))
        );
        assert!(framing.is_done());
        assert_eq!(framing.decode(&mut buf).unwrap(), Decoded::End);
        for step in [1, 2, 7] {
            let body = decode_in_steps(Framing::Length(11), b"hello world", step).unwrap();
            assert_eq!(body, b"hello world");
        }
    }

    #[test]
    fn truncated_bodies_are_errors_and_until_close_bodies_end_at_eof() {
        assert_eq!(
            decode_in_steps(Framing::Length(10), b"short", 3),
            Err(FramingError::Incomplete)
        );
        assert_eq!(
            decode_in_steps(Framing::Chunked(Chunked::Size), b"5\r\nhel", 3),
            Err(FramingError::Incomplete)
        );
        assert_eq!(
            decode_in_steps(Framing::UntilClose, b"all of it", 4).unwrap(),
            b"all of it"
        );
    }

    #[test]
    fn malformed_chunked_framing_is_refused() {
        for (wire, error) in [
            (&b"zz\r\nhello\r\n"[..], FramingError::ChunkSize),
            (b"\r\n", FramingError::ChunkSize),
            (b"5 x\r\nhello\r\n", FramingError::ChunkSize),
            (b"1000000000000000\r\n", FramingError::ChunkSize),
            (b"ffffffffffffffffff\r\n", FramingError::ChunkSize),
            (b"5\r\nhelloXY0\r\n\r\n", FramingError::ChunkEnd),
        ] {
            assert_eq!(
                decode_in_steps(Framing::Chunked(Chunked::Size), wire, 64),
                Err(error),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let endless_size_line = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert_eq!(
            decode_in_steps(Framing::Chunked(Chunked::Size), &endless_size_line, 64),
            Err(FramingError::ChunkSize)
        );
        let mut endless_trailers = b"0\r\n".to_vec();
        endless_trailers.extend(std::iter::repeat_n(b"x: y\r\n", 4000).flatten());
        assert_eq!(
            decode_in_steps(Framing::Chunked(Chunked::Size), &endless_trailers, 512),
            Err(FramingError::Trailers)
        );
    }

    #[test]
    fn chunk_sizes_accept_either_case_extensions_and_bare_newlines() {
        assert_eq!(parse_chunk_size(b"1A3f").unwrap(), 0x1a3f);
        assert_eq!(parse_chunk_size(b"10 ; a=b").unwrap(), 16);
        let body = decode_in_steps(Framing::Chunked(Chunked::Size), b"3\nabc\r\n0\n\n", 2).unwrap();
        assert_eq!(body, b"abc");
    }
}
