//! [`MemoryHealthBoard`]: a board inside one process (tests, and replicas in one process).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::{HealthBoard, Mark, MarkKind};
use crate::{BoxFuture, StoreError};

/// Marks in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryHealthBoard {
    marks: Mutex<HashMap<(String, MarkKind), u64>>,
}

impl HealthBoard for MemoryHealthBoard {
    fn publish<'a>(
        &'a self,
        mark: &'a Mark,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
            let until = marks.entry((mark.id.clone(), mark.kind)).or_insert(0);
            *until = (*until).max(mark.until_ms);
            Ok(())
        })
    }

    fn active(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<Mark>, StoreError>> {
        Box::pin(async move {
            let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
            marks.retain(|_, until| *until > now_ms);
            Ok(marks
                .iter()
                .map(|((id, kind), until)| Mark {
                    id: id.clone(),
                    kind: *kind,
                    until_ms: *until,
                })
                .collect())
        })
    }
}
