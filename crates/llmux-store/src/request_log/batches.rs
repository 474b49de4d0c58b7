//! Reading the SQLite log's batches back as pages: which batches a page needs, which of their
//! records it selects, and when the batches left cannot change it.
//!
//! Batches are read newest last-time first. A batch holds records of one day in the order they
//! were written, which is not their time order (a long stream is logged when it ends), so a
//! page is the newest records over the batches read so far; it is final once it is full and
//! its oldest record is newer than the newest record of any batch left.

use super::query::Cursor;
use super::sql;
use crate::{Page, RequestFilter, RequestRecord, StatusFilter, StoreError};

/// One page being gathered from batches.
pub(super) struct PageScan<'f> {
    filter: &'f RequestFilter,
    cursor: Option<Cursor>,
    size: usize,
    /// Selected records; sorted and cut to `size + 1` whenever it grows past twice that.
    kept: Vec<RequestRecord>,
}

impl<'f> PageScan<'f> {
    /// A scan for `filter`'s page; an unknown cursor is [`StoreError::InvalidCursor`].
    pub(super) fn new(filter: &'f RequestFilter) -> Result<Self, StoreError> {
        let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
        Ok(Self {
            filter,
            cursor,
            size: filter.page_size() as usize,
            kept: Vec::new(),
        })
    }

    /// The times a selected record may have, inclusive: the batches to read are those whose
    /// records' times overlap them.
    pub(super) fn times(&self) -> (i64, i64) {
        let from = self.filter.from.unwrap_or(i64::MIN);
        let mut to = self.filter.to.map_or(i64::MAX, |to| to.saturating_sub(1));
        if let Some(cursor) = &self.cursor {
            to = to.min(cursor.time_ms);
        }
        (from, to)
    }

    /// Takes a batch's records, keeping those the page selects.
    pub(super) fn add(&mut self, records: Vec<RequestRecord>) {
        let (filter, cursor) = (self.filter, self.cursor.as_ref());
        self.kept.extend(
            records
                .into_iter()
                .filter(|record| selects(filter, cursor, record)),
        );
        if self.kept.len() > 2 * (self.size + 1) {
            self.settle();
        }
    }

    /// Whether the page is final when the newest record left in any unread batch is at
    /// `newest_left` (Unix ms): it holds a record more than it shows, all newer than that.
    pub(super) fn complete_before(&mut self, newest_left: i64) -> bool {
        if self.kept.len() <= self.size {
            return false;
        }
        self.settle();
        self.kept
            .last()
            .is_some_and(|oldest| oldest.time_ms > newest_left)
    }

    /// The page: newest first, a record stored twice shown once.
    pub(super) fn finish(mut self) -> Page {
        self.settle();
        sql::page(self.kept, self.size)
    }

    /// Sorts newest first, drops repeats, keeps one record more than the page shows.
    fn settle(&mut self) {
        self.kept
            .sort_unstable_by(|a, b| (b.time_ms, &b.request_id).cmp(&(a.time_ms, &a.request_id)));
        self.kept
            .dedup_by(|a, b| a.time_ms == b.time_ms && a.request_id == b.request_id);
        self.kept.truncate(self.size + 1);
    }
}

/// Whether `filter` (with its decoded `cursor`) selects `record`.
fn selects(filter: &RequestFilter, cursor: Option<&Cursor>, record: &RequestRecord) -> bool {
    let status = record.status;
    filter.from.is_none_or(|from| record.time_ms >= from)
        && filter.to.is_none_or(|to| record.time_ms < to)
        && filter
            .key
            .as_deref()
            .is_none_or(|key| record.key_id.as_deref() == Some(key))
        && filter.model.as_deref().is_none_or(|model| {
            record.requested_model == model || record.upstream_model.as_deref() == Some(model)
        })
        && filter
            .vendor
            .as_deref()
            .is_none_or(|vendor| record.vendor.as_deref() == Some(vendor))
        && match filter.status {
            None => true,
            Some(StatusFilter::Exact(exact)) => status == exact,
            Some(StatusFilter::Class(class)) => status / 100 == u16::from(class),
            Some(StatusFilter::Error) => status >= 400 || record.error_kind.is_some(),
        }
        && cursor.is_none_or(|cursor| {
            (record.time_ms, record.request_id.as_str())
                < (cursor.time_ms, cursor.request_id.as_str())
        })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn record(time_ms: i64, id: &str) -> RequestRecord {
        RequestRecord {
            requested_model: "m".into(),
            status: 200,
            ..RequestRecord::new(time_ms, id.into(), Cow::Borrowed("chat"))
        }
    }

    /// Pages gathered from batches in any order of times inside them equal the page of all
    /// records sorted, and a scan stops as soon as the batches left cannot change it.
    #[test]
    fn pages_from_overlapping_batches_are_the_newest_records() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            // Batches of records finished in arbitrary order over overlapping times.
            let mut batches: Vec<Vec<RequestRecord>> = (0..rng.usize(1..8))
                .map(|b| {
                    (0..rng.usize(0..12))
                        .map(|i| record(rng.i64(0..40), &format!("{round}-{b}-{i}")))
                        .collect()
                })
                .collect();
            batches.sort_by_key(|batch| {
                std::cmp::Reverse(batch.iter().map(|r| r.time_ms).max().unwrap_or(i64::MIN))
            });
            let mut all: Vec<&RequestRecord> = batches.iter().flatten().collect();
            all.sort_by(|a, b| (b.time_ms, &b.request_id).cmp(&(a.time_ms, &a.request_id)));
            let filter = RequestFilter {
                limit: Some(rng.u32(1..6)),
                ..RequestFilter::default()
            };
            let mut scan = PageScan::new(&filter).unwrap();
            let mut read = 0;
            for (i, batch) in batches.iter().enumerate() {
                scan.add(batch.clone());
                read += 1;
                let newest_left = batches.get(i + 1).map_or(i64::MIN, |next| {
                    next.iter().map(|r| r.time_ms).max().unwrap_or(i64::MIN)
                });
                if scan.complete_before(newest_left) {
                    break;
                }
            }
            let page = scan.finish();
            let size = filter.page_size() as usize;
            let expected: Vec<&str> = all
                .iter()
                .take(size)
                .map(|r| r.request_id.as_str())
                .collect();
            let got: Vec<&str> = page.records.iter().map(|r| r.request_id.as_str()).collect();
            assert_eq!(
                got,
                expected,
                "round {round}, read {read} of {}",
                batches.len()
            );
            assert_eq!(
                page.next_cursor.is_some(),
                all.len() > size,
                "round {round}"
            );
        }
    }

    #[test]
    fn a_record_stored_twice_shows_once() {
        let filter = RequestFilter::default();
        let mut scan = PageScan::new(&filter).unwrap();
        scan.add(vec![record(5, "a"), record(4, "b")]);
        scan.add(vec![record(5, "a")]);
        let page = scan.finish();
        let ids: Vec<&str> = page.records.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
