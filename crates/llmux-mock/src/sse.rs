//! Event framing and response bodies: events are serialised into one buffer, then sent either in
//! one write (the fast path) or one by one with a delay, and possibly cut off.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;

/// How to send a body's events.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacing {
    /// Pause between events.
    pub delay: Duration,
    /// Send at most this many events (never the last one), then drop the connection.
    pub cut_after: Option<usize>,
}

/// A body made of events, each ending at an offset of one shared buffer.
#[derive(Debug, Default)]
pub(crate) struct Events {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Events {
    /// A body holding `value` as its only event (a non-stream JSON answer).
    pub fn json<T: Serialize>(value: &T) -> serde_json::Result<Self> {
        let mut events = Self::default();
        serde_json::to_writer(&mut events.buf, value)?;
        events.ends.push(events.buf.len());
        Ok(events)
    }

    /// Appends `data: <json><terminator>`.
    pub fn data<T: Serialize>(&mut self, value: &T, terminator: &[u8]) -> serde_json::Result<()> {
        self.framed(b"data: ", value, terminator)
    }

    /// Appends `<prefix><json><suffix>` as one event.
    pub fn framed<T: Serialize>(
        &mut self,
        prefix: &[u8],
        value: &T,
        suffix: &[u8],
    ) -> serde_json::Result<()> {
        self.buf.extend_from_slice(prefix);
        serde_json::to_writer(&mut self.buf, value)?;
        self.buf.extend_from_slice(suffix);
        self.ends.push(self.buf.len());
        Ok(())
    }

    /// Appends `event: <name>\ndata: <json>\n\n`.
    pub fn named<T: Serialize>(&mut self, name: &str, value: &T) -> serde_json::Result<()> {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'\n');
        self.data(value, b"\n\n")
    }

    /// Appends an event given as its exact bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.ends.push(self.buf.len());
    }

    /// The response body. Without a delay or a cut, the whole buffer goes out in one write.
    pub fn into_body(self, pacing: Pacing) -> Body {
        if pacing.delay.is_zero() && pacing.cut_after.is_none() {
            return Body::from(self.buf);
        }
        let all = Bytes::from(self.buf);
        let mut frames = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for &end in &self.ends {
            frames.push(all.slice(start..end));
            start = end;
        }
        let cut = pacing.cut_after.is_some();
        if let Some(n) = pacing.cut_after {
            // The last event (terminator or final chunk) is never sent when cutting.
            frames.truncate(n.min(frames.len().saturating_sub(1)));
        }
        let state = Paced {
            frames: frames.into_iter(),
            delay: pacing.delay,
            first: true,
            cut,
        };
        Body::from_stream(futures_util::stream::unfold(state, Paced::next))
    }
}

/// Stream state of a paced body.
struct Paced {
    frames: std::vec::IntoIter<Bytes>,
    delay: Duration,
    first: bool,
    cut: bool,
}

impl Paced {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        if let Some(frame) = self.frames.next() {
            if !self.first && !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.first = false;
            return Some((Ok(frame), self));
        }
        if !self.cut {
            return None;
        }
        self.cut = false;
        // Yield once so hyper flushes the events already written before it sees the error;
        // the error then makes it close the connection without the chunked terminator.
        tokio::task::yield_now().await;
        let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "mock cut the stream");
        Some((Err(err), self))
    }
}
