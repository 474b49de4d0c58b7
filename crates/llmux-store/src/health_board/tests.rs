//! One suite for every [`HealthBoard`]: memory always, Redis when `LLMUX_TEST_REDIS_URL` is set
//! (under a prefix of its own). For Redis, a second connection plays another replica.

use std::sync::Arc;

use super::{HealthBoard, Mark, MarkKind, MemoryHealthBoard, RedisHealthBoard};

const NOW_MS: u64 = 1_793_491_200_000;

fn mark(id: &str, kind: MarkKind, until_ms: u64) -> Mark {
    Mark {
        id: id.to_owned(),
        kind,
        until_ms,
    }
}

async fn publish(board: &dyn HealthBoard, mark: Mark) {
    board.publish(&mark, NOW_MS).await.unwrap();
}

/// (this replica's board, another replica's board over the same state)
async fn boards() -> Vec<(Arc<dyn HealthBoard>, Arc<dyn HealthBoard>)> {
    let memory: Arc<dyn HealthBoard> = Arc::new(MemoryHealthBoard::default());
    let mut out = vec![(Arc::clone(&memory), memory)];
    if let Ok(url) = std::env::var("LLMUX_TEST_REDIS_URL") {
        let prefix = format!("llmux-test:{}:", crate::key::generate().unwrap().id);
        let board = || -> Arc<dyn HealthBoard> {
            Arc::new(RedisHealthBoard::new(&url).unwrap().with_prefix(&prefix))
        };
        out.push((board(), board()));
    }
    out
}

fn sorted(mut marks: Vec<Mark>) -> Vec<Mark> {
    marks.sort_by(|a, b| (&a.id, a.until_ms).cmp(&(&b.id, b.until_ms)));
    marks
}

#[tokio::test]
async fn a_published_mark_is_seen_by_another_replica_until_it_ends() {
    for (board, replica) in boards().await {
        let open = mark("c1", MarkKind::Open, NOW_MS + 30_000);
        let cool = mark("c2", MarkKind::Cooldown, NOW_MS + 2_000);
        board.publish(&open, NOW_MS).await.unwrap();
        board.publish(&cool, NOW_MS).await.unwrap();

        let seen = sorted(replica.active(NOW_MS + 1).await.unwrap());
        assert_eq!(seen, vec![open.clone(), cool]);
        // After the cooldown ends only the breaker opening is left.
        assert_eq!(replica.active(NOW_MS + 2_000).await.unwrap(), vec![open]);
        assert_eq!(replica.active(NOW_MS + 30_000).await.unwrap(), vec![]);
    }
}

#[tokio::test]
async fn a_mark_is_extended_but_never_shortened() {
    for (board, replica) in boards().await {
        publish(&*board, mark("c1", MarkKind::Cooldown, NOW_MS + 5_000)).await;
        publish(&*replica, mark("c1", MarkKind::Cooldown, NOW_MS + 1_000)).await;
        assert_eq!(
            board.active(NOW_MS).await.unwrap(),
            vec![mark("c1", MarkKind::Cooldown, NOW_MS + 5_000)]
        );
        publish(&*replica, mark("c1", MarkKind::Cooldown, NOW_MS + 9_000)).await;
        assert_eq!(
            board.active(NOW_MS).await.unwrap(),
            vec![mark("c1", MarkKind::Cooldown, NOW_MS + 9_000)]
        );
    }
}

#[tokio::test]
async fn opening_and_cooldown_of_one_id_are_separate_marks() {
    for (board, replica) in boards().await {
        publish(&*board, mark("c1", MarkKind::Open, NOW_MS + 1_000)).await;
        publish(&*board, mark("c1", MarkKind::Cooldown, NOW_MS + 3_000)).await;
        let mut kinds: Vec<_> = replica
            .active(NOW_MS)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.kind == MarkKind::Open, m.until_ms))
            .collect();
        kinds.sort_unstable();
        assert_eq!(kinds, vec![(false, NOW_MS + 3_000), (true, NOW_MS + 1_000)]);
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let board = RedisHealthBoard::new("redis://127.0.0.1:1/").unwrap();
    let started = std::time::Instant::now();
    assert!(board.active(NOW_MS).await.is_err());
    assert!(
        board
            .publish(&mark("c1", MarkKind::Open, NOW_MS + 1), NOW_MS)
            .await
            .is_err()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
