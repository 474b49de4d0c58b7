//! The SQLite log's batch format: the records of one written batch (of one UTC day) packed
//! into one blob, so that a batch is one row, not one row per record.
//!
//! Why a format of our own: a SQLite row per record cost about 22,000 instructions (the
//! statement, 25 bound values, three B-trees), a third of a proxied request's own cost, where
//! the budget for logging it is a tenth. Packed, a record costs a few hundred instructions to
//! write, and SQLite's cost is shared by the batch (BENCHMARKS.md, *Request log, fifth pass*).
//! The format is private to this module: it is written and read only here, and a version byte
//! leads every blob so that it can change.
//!
//! A blob is the version, the record count, then each record: a presence bitmap, the fields in
//! [`RequestRecord`]'s order (strings as a length and UTF-8 bytes, integers as LEB128, the cost
//! as an IEEE double), its attempts. Bodies are not packed: they are rows of their own,
//! written only when `log.bodies` keeps them.
//!
//! Everything read is checked: a damaged blob is an error for its batch, never a panic.

use std::borrow::Cow;
use std::sync::Arc;

use super::record::{USER_AGENT_CAP, capped};
use super::sql::clamp_time;
use crate::{AttemptRecord, RequestRecord};

/// The version this code writes and reads.
const VERSION: u8 = 1;

// Presence bits of a record's optional fields, and its two flags.
const KEY_ID: u32 = 1;
const KEY_NAME: u32 = 1 << 1;
const VENDOR: u32 = 1 << 2;
const CREDENTIAL: u32 = 1 << 3;
const UPSTREAM_MODEL: u32 = 1 << 4;
const ERROR_KIND: u32 = 1 << 5;
const TTFB: u32 = 1 << 6;
const INPUT_TOKENS: u32 = 1 << 7;
const OUTPUT_TOKENS: u32 = 1 << 8;
const CACHED_TOKENS: u32 = 1 << 9;
const REASONING_TOKENS: u32 = 1 << 10;
const COST: u32 = 1 << 11;
const COST_ESTIMATED: u32 = 1 << 12;
const STREAM: u32 = 1 << 13;
const USER_AGENT: u32 = 1 << 14;
const KNOWN: u32 = (1 << 15) - 1;

/// One record packed on the request path, as the writer's channel carries it: its bytes in
/// the batch format, and what the writer needs besides them.
///
/// Packing where the record was made means the record's strings are freed by the thread that
/// allocated them (cheap), and one buffer crosses to the writer, where a dozen strings did
/// (freeing each on another thread cost about 2,300 instructions per record).
#[derive(Debug)]
pub struct PackedRecord {
    bytes: Vec<u8>,
    /// The record's time, clamped.
    time_ms: i64,
    /// The id and the bodies, when the writer stores them beside the batch: an id `get`
    /// cannot find by its time, or a kept body. `None` on the usual path.
    extra: Option<Box<Extra>>,
}

#[derive(Debug)]
struct Extra {
    request_id: String,
    by_id: bool,
    request_body: Option<String>,
    response_body: Option<String>,
}

impl PackedRecord {
    /// Packs `record` (the user agent capped, the time clamped, a non-finite cost dropped, as
    /// every backend stores them).
    pub fn new(mut record: RequestRecord) -> Self {
        let mut bytes = Vec::with_capacity(160);
        pack_record(&record, &mut bytes);
        let by_id = !finds_by_time(&record);
        let extra = (by_id || record.request_body.is_some() || record.response_body.is_some())
            .then(|| {
                Box::new(Extra {
                    request_id: std::mem::take(&mut record.request_id),
                    by_id,
                    request_body: record.request_body.take(),
                    response_body: record.response_body.take(),
                })
            });
        Self {
            bytes,
            time_ms: clamp_time(record.time_ms),
            extra,
        }
    }

    /// The record again, with its bodies.
    pub(super) fn unpack(&self) -> Result<RequestRecord, Damaged> {
        let mut reader = Reader { rest: &self.bytes };
        let mut record = reader.record()?;
        if let Some(extra) = &self.extra {
            record.request_body.clone_from(&extra.request_body);
            record.response_body.clone_from(&extra.response_body);
        }
        Ok(record)
    }

    /// The record's time (Unix ms), clamped.
    pub(super) fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// The request id, when `get` finds the record only through the id index.
    pub(super) fn indexed_id(&self) -> Option<&str> {
        self.extra
            .as_deref()
            .filter(|extra| extra.by_id)
            .map(|extra| extra.request_id.as_str())
    }

    /// The request id and bodies, when a body is kept.
    pub(super) fn bodies(&self) -> Option<(&str, Option<&str>, Option<&str>)> {
        self.extra
            .as_deref()
            .filter(|extra| extra.request_body.is_some() || extra.response_body.is_some())
            .map(|extra| {
                (
                    extra.request_id.as_str(),
                    extra.request_body.as_deref(),
                    extra.response_body.as_deref(),
                )
            })
    }
}

/// Writes the blob of `records` into `out` (after what it holds).
pub(super) fn blob(records: &[&PackedRecord], out: &mut Vec<u8>) {
    out.push(VERSION);
    put_uint(out, records.len() as u64);
    for record in records {
        out.extend_from_slice(&record.bytes);
    }
}

fn pack_record(r: &RequestRecord, out: &mut Vec<u8>) {
    let cost = r.cost_usd.filter(|cost| cost.is_finite());
    let mut bits = 0;
    for (present, bit) in [
        (r.key_id.is_some(), KEY_ID),
        (r.key_name.is_some(), KEY_NAME),
        (r.vendor.is_some(), VENDOR),
        (r.credential.is_some(), CREDENTIAL),
        (r.upstream_model.is_some(), UPSTREAM_MODEL),
        (r.error_kind.is_some(), ERROR_KIND),
        (r.ttfb_ms.is_some(), TTFB),
        (r.input_tokens.is_some(), INPUT_TOKENS),
        (r.output_tokens.is_some(), OUTPUT_TOKENS),
        (r.cached_tokens.is_some(), CACHED_TOKENS),
        (r.reasoning_tokens.is_some(), REASONING_TOKENS),
        (cost.is_some(), COST),
        (r.cost_estimated, COST_ESTIMATED),
        (r.stream, STREAM),
        (r.user_agent.is_some(), USER_AGENT),
    ] {
        if present {
            bits |= bit;
        }
    }
    put_uint(out, u64::from(bits));
    put_uint(out, clamp_time(r.time_ms) as u64);
    put_str(out, &r.request_id);
    put_str(out, &r.ingress);
    put_str(out, &r.requested_model);
    put_uint(out, u64::from(r.status));
    put_uint(out, u64::from(r.total_ms));
    put_str(out, &r.client_addr);
    for text in [
        r.key_id.as_deref(),
        r.key_name.as_deref(),
        r.vendor.as_deref(),
        r.credential.as_deref(),
        r.upstream_model.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        put_str(out, text);
    }
    if let Some(kind) = &r.error_kind {
        put_str(out, kind);
    }
    if let Some(ttfb) = r.ttfb_ms {
        put_uint(out, u64::from(ttfb));
    }
    for count in [
        r.input_tokens,
        r.output_tokens,
        r.cached_tokens,
        r.reasoning_tokens,
    ]
    .into_iter()
    .flatten()
    {
        put_uint(out, count);
    }
    if let Some(cost) = cost {
        out.extend_from_slice(&cost.to_le_bytes());
    }
    if let Some(agent) = &r.user_agent {
        put_str(out, capped(agent, USER_AGENT_CAP));
    }
    put_uint(out, r.attempts.len() as u64);
    for attempt in &r.attempts {
        put_str(out, &attempt.vendor);
        put_str(out, &attempt.credential);
        put_str(out, &attempt.model);
        put_uint(out, u64::from(attempt.status));
        put_uint(out, u64::from(attempt.duration_ms));
        match &attempt.error {
            None => out.push(0),
            Some(error) => {
                out.push(1);
                put_str(out, error);
            }
        }
    }
}

/// Why a blob could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Damaged(pub(super) &'static str);

/// Unpacks a blob [`pack`] wrote: its records without bodies, in the order they were packed.
pub(super) fn unpack(blob: &[u8]) -> Result<Vec<RequestRecord>, Damaged> {
    let mut reader = Reader { rest: blob };
    match reader.byte()? {
        VERSION => {}
        _ => return Err(Damaged("unknown batch format")),
    }
    let count = reader.uint()?;
    // Each record takes at least a dozen bytes: a count beyond the blob's length is damage,
    // not a reason to reserve memory.
    if count > reader.rest.len() as u64 {
        return Err(Damaged("record count"));
    }
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        records.push(reader.record()?);
    }
    if !reader.rest.is_empty() {
        return Err(Damaged("bytes after the last record"));
    }
    Ok(records)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn record(&mut self) -> Result<RequestRecord, Damaged> {
        let bits = self.uint()?;
        let bits = u32::try_from(bits)
            .ok()
            .filter(|bits| bits & !KNOWN == 0)
            .ok_or(Damaged("record flags"))?;
        let has = |bit| bits & bit != 0;
        let time_ms = i64::try_from(self.uint()?).map_err(|_| Damaged("time"))?;
        let request_id = self.string()?;
        let ingress = Cow::Owned(self.string()?);
        let requested_model = self.string()?;
        let status = self.narrow("status")?;
        let total_ms = self.narrow("total_ms")?;
        let client_addr = self.string()?;
        let key_id = self.string_if(has(KEY_ID))?;
        let key_name = self.string_if(has(KEY_NAME))?;
        let vendor = self.string_if(has(VENDOR))?.map(Arc::from);
        let credential = self.string_if(has(CREDENTIAL))?.map(Arc::from);
        let upstream_model = self.string_if(has(UPSTREAM_MODEL))?.map(Arc::from);
        let error_kind = self.string_if(has(ERROR_KIND))?.map(Cow::Owned);
        let ttfb_ms = has(TTFB).then(|| self.narrow("ttfb_ms")).transpose()?;
        let input_tokens = self.uint_if(has(INPUT_TOKENS))?;
        let output_tokens = self.uint_if(has(OUTPUT_TOKENS))?;
        let cached_tokens = self.uint_if(has(CACHED_TOKENS))?;
        let reasoning_tokens = self.uint_if(has(REASONING_TOKENS))?;
        let cost_usd = has(COST)
            .then(|| {
                let bytes = self.take(8)?;
                let mut array = [0; 8];
                array.copy_from_slice(bytes);
                Ok(f64::from_le_bytes(array))
            })
            .transpose()?;
        let user_agent = self.string_if(has(USER_AGENT))?;
        let attempt_count = self.uint()?;
        if attempt_count > self.rest.len() as u64 {
            return Err(Damaged("attempt count"));
        }
        let mut attempts = Vec::with_capacity(attempt_count as usize);
        for _ in 0..attempt_count {
            attempts.push(AttemptRecord {
                vendor: self.string()?.into(),
                credential: self.string()?.into(),
                model: self.string()?.into(),
                status: self.narrow("attempt status")?,
                duration_ms: self.narrow("attempt duration")?,
                error: match self.byte()? {
                    0 => None,
                    1 => Some(Cow::Owned(self.string()?)),
                    _ => return Err(Damaged("attempt error")),
                },
            });
        }
        Ok(RequestRecord {
            time_ms,
            request_id,
            key_id,
            key_name,
            ingress,
            requested_model,
            vendor,
            credential,
            upstream_model,
            status,
            error_kind,
            attempts,
            ttfb_ms,
            total_ms,
            input_tokens,
            output_tokens,
            cached_tokens,
            reasoning_tokens,
            cost_usd,
            cost_estimated: has(COST_ESTIMATED),
            stream: has(STREAM),
            client_addr,
            user_agent,
            request_body: None,
            response_body: None,
        })
    }

    fn byte(&mut self) -> Result<u8, Damaged> {
        let (&byte, rest) = self.rest.split_first().ok_or(Damaged("truncated"))?;
        self.rest = rest;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Damaged> {
        if len > self.rest.len() {
            return Err(Damaged("truncated"));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// LEB128: seven bits per byte, least significant first, at most ten bytes.
    fn uint(&mut self) -> Result<u64, Damaged> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(Damaged("integer overflow"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Damaged("integer overflow"))
    }

    fn narrow<T: TryFrom<u64>>(&mut self, what: &'static str) -> Result<T, Damaged> {
        T::try_from(self.uint()?).map_err(|_| Damaged(what))
    }

    fn uint_if(&mut self, present: bool) -> Result<Option<u64>, Damaged> {
        present.then(|| self.uint()).transpose()
    }

    fn string(&mut self) -> Result<String, Damaged> {
        let len = usize::try_from(self.uint()?).map_err(|_| Damaged("truncated"))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Damaged("text is not UTF-8"))
    }

    fn string_if(&mut self, present: bool) -> Result<Option<String>, Damaged> {
        present.then(|| self.string()).transpose()
    }
}

fn put_uint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_uint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// The time (Unix ms) a gateway-made request id carries: `req_`, 12 hex digits of time, 12
/// random hex digits (`llmux-server`'s edge makes them). `None` for any other id.
pub(super) fn id_time(request_id: &str) -> Option<i64> {
    let digits = request_id.strip_prefix("req_")?.as_bytes();
    if digits.len() != 24 {
        return None;
    }
    // No `from_str_radix`: this runs for every logged request. Each byte's value comes from a
    // table (`NOT_HEX` for any other byte); the time's digits are read, the random ones only
    // checked.
    const NOT_HEX: u8 = 0xff;
    const VALUES: [u8; 256] = {
        let mut values = [NOT_HEX; 256];
        let mut i = 0;
        while i < 10 {
            values[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            values[b'a' as usize + i] = 10 + i as u8;
            values[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        values
    };
    let (time_digits, random) = digits.split_at(12);
    let mut time = 0i64;
    let mut seen = 0;
    for &byte in time_digits {
        let digit = VALUES[usize::from(byte)];
        seen |= digit;
        time = time << 4 | i64::from(digit);
    }
    for &byte in random {
        seen |= VALUES[usize::from(byte)];
    }
    // A digit is at most 0x0f: any other bit set means a byte was not a hex digit.
    (seen & 0xf0 == 0).then_some(time)
}

/// How far (ms) a record's time may be from the time its id carries for `get` to look for it
/// by that time. The edge makes the id and starts the record in the same microseconds; an id
/// a client chose may carry any time.
pub(super) const ID_TIME_SLACK_MS: i64 = 60_000;

/// Whether `get` finds `record` by the time its id carries. Records it would not find (ids a
/// client chose) are indexed by id as well.
pub(super) fn finds_by_time(record: &RequestRecord) -> bool {
    id_time(&record.request_id)
        .is_some_and(|time| (clamp_time(record.time_ms) - time).abs() <= ID_TIME_SLACK_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RequestRecord {
        RequestRecord {
            time_ms: 1_793_534_400_123,
            request_id: "req_01a24b2b7548abcdef012345".into(),
            key_id: Some("abcdefabcdef".into()),
            key_name: Some("ci é".into()),
            ingress: Cow::Borrowed("messages"),
            requested_model: "fast".into(),
            vendor: Some("anthropic".into()),
            credential: Some("anthropic-1".into()),
            upstream_model: Some("claude-haiku".into()),
            status: 502,
            error_kind: Some(Cow::Borrowed("upstream_error")),
            attempts: vec![
                AttemptRecord {
                    vendor: "anthropic".into(),
                    credential: "anthropic-1".into(),
                    model: "claude-haiku".into(),
                    status: 529,
                    duration_ms: 40,
                    error: Some("overloaded".into()),
                },
                AttemptRecord {
                    vendor: "openai".into(),
                    credential: "o".into(),
                    model: "gpt".into(),
                    status: 0,
                    duration_ms: u32::MAX,
                    error: None,
                },
            ],
            ttfb_ms: Some(0),
            total_ms: u32::MAX,
            input_tokens: Some(u64::MAX),
            output_tokens: Some(0),
            cached_tokens: Some(300),
            reasoning_tokens: Some(u64::from(u32::MAX) + 7),
            cost_usd: Some(0.000_25),
            cost_estimated: true,
            stream: true,
            client_addr: "::1".into(),
            user_agent: Some("agent/1".into()),
            request_body: None,
            response_body: None,
        }
    }

    fn bare() -> RequestRecord {
        RequestRecord::new(0, String::new(), Cow::Borrowed("chat"))
    }

    fn packed(records: &[RequestRecord]) -> Vec<u8> {
        let records: Vec<PackedRecord> = records.iter().cloned().map(PackedRecord::new).collect();
        let mut out = Vec::new();
        blob(&records.iter().collect::<Vec<_>>(), &mut out);
        out
    }

    #[test]
    fn records_come_back_as_they_went_in_without_bodies() {
        let mut with_body = full();
        with_body.request_body = Some("{}".into());
        let records = [full(), bare(), with_body];
        let back = unpack(&packed(&records)).unwrap();
        assert_eq!(back, [full(), bare(), full()]);
        assert_eq!(unpack(&packed(&[])).unwrap(), []);
    }

    #[test]
    fn a_packed_record_keeps_its_bodies_and_says_what_is_stored_beside_it() {
        let mut with_body = full();
        with_body.response_body = Some("{}".into());
        let packed = PackedRecord::new(with_body.clone());
        assert_eq!(packed.unpack().unwrap(), with_body);
        assert_eq!(
            packed.bodies(),
            Some((with_body.request_id.as_str(), None, Some("{}")))
        );
        // The id carries a time near the record's: found by time, not indexed.
        let mut own = full();
        own.time_ms = 0x01a2_4b2b_7548 + 5;
        let packed = PackedRecord::new(own);
        assert_eq!(packed.indexed_id(), None);
        assert!(packed.extra.is_none());
        let client = PackedRecord::new(bare());
        assert_eq!(client.indexed_id(), Some(""));
        assert_eq!(client.bodies(), None);
    }

    #[test]
    fn stored_values_are_those_every_backend_stores() {
        let mut odd = full();
        odd.time_ms = -5;
        odd.cost_usd = Some(f64::NAN);
        odd.user_agent = Some("é".repeat(200));
        let back = unpack(&packed(&[odd])).unwrap().remove(0);
        assert_eq!(back.time_ms, 0);
        assert_eq!(back.cost_usd, None);
        assert_eq!(back.user_agent.unwrap(), "é".repeat(USER_AGENT_CAP / 2));
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let blob = packed(&[full(), bare()]);
        // Every truncation, and every byte changed to a few values, reads as an error or as
        // some records: never a panic, never an allocation the blob cannot back.
        for len in 0..blob.len() {
            assert!(unpack(&blob[..len]).is_err(), "truncated at {len}");
        }
        for at in 0..blob.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut damaged = blob.clone();
                damaged[at] = value;
                let _ = unpack(&damaged);
            }
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(unpack(&longer), Err(Damaged("bytes after the last record")));
        assert_eq!(unpack(&[2, 0]), Err(Damaged("unknown batch format")));
        // A count of 2^63 records in a short blob.
        let huge = [
            VERSION, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ];
        assert_eq!(unpack(&huge), Err(Damaged("record count")));
        let overflow = [
            VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(unpack(&overflow), Err(Damaged("integer overflow")));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(17);
        let seed = packed(&[full(), bare(), full()]);
        for _ in 0..20_000 {
            let mut blob = seed.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..blob.len());
                blob[at] = rng.u8(..);
            }
            if let Ok(records) = unpack(&blob) {
                assert!(records.len() <= 3);
            }
        }
    }

    #[test]
    fn gateway_ids_carry_their_time() {
        assert_eq!(
            id_time("req_01a24b2b7548abcdef012345"),
            Some(0x01a2_4b2b_7548)
        );
        for foreign in [
            "req-full",
            "req_01a24b2b7548abcdef01234",
            "req_01a24b2b7548abcdef0123456",
            "req_01a24b2b7548abcdef01234g",
            "REQ_01a24b2b7548abcdef012345",
            "",
        ] {
            assert_eq!(id_time(foreign), None, "{foreign}");
        }
    }
}
