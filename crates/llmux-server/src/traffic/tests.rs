use super::*;

fn sample(now_ms: u64, status: u16, model: &str, latency_ms: u32) -> Sample<'_> {
    Sample {
        now_ms,
        failed: status >= 400,
        vendor: Some("openai"),
        model,
        key: Some("team-a"),
        latency_ms,
        ttfb_ms: Some(latency_ms / 2),
        input_tokens: 10,
        output_tokens: 5,
        cost_usd: 0.001,
    }
}

const T0: u64 = 1_800_000_000_000;

#[test]
fn a_minute_counts_requests_errors_tokens_and_cost() {
    let traffic = Traffic::default();
    for i in 0..10 {
        traffic.record(&sample(T0, if i < 2 { 500 } else { 200 }, "fast", 100));
    }
    let report = traffic.report(T0);
    assert_eq!(report.minutes.len(), MINUTES);
    let now = report.minutes.last().unwrap();
    assert_eq!(now.totals.requests, 10);
    assert_eq!(now.totals.errors, 2);
    assert_eq!(now.totals.input_tokens, 100);
    assert!((now.totals.cost_usd - 0.01).abs() < 1e-9);
    assert_eq!(report.hour.totals.requests, 10);
    assert_eq!(report.by.model[0].name, "fast");
    assert_eq!(report.by.key[0].name, "team-a");
}

#[test]
fn percentiles_come_from_the_histogram_within_a_bucket() {
    let traffic = Traffic::default();
    for ms in 1..=100 {
        traffic.record(&sample(T0, 200, "fast", ms));
    }
    let hour = traffic.report(T0).hour;
    let p50 = hour.latency_p50_ms.unwrap();
    let p95 = hour.latency_p95_ms.unwrap();
    assert!((50.0..=60.0).contains(&p50), "p50 {p50}");
    assert!((95.0..=114.0).contains(&p95), "p95 {p95}");
    assert!(hour.ttfb_p50_ms.unwrap() < p50);
}

#[test]
fn minutes_older_than_an_hour_fall_out_and_a_reused_slot_starts_empty() {
    let traffic = Traffic::default();
    traffic.record(&sample(T0, 200, "fast", 10));
    let later = T0 + 60 * 60_000;
    traffic.record(&sample(later, 200, "fast", 10));
    let report = traffic.report(later);
    assert_eq!(report.hour.totals.requests, 1);
    assert_eq!(report.minutes.last().unwrap().totals.requests, 1);
}

#[test]
fn invented_model_names_are_bounded() {
    let traffic = Traffic::default();
    let names: Vec<String> = (0..500).map(|i| format!("model-{i}")).collect();
    for name in &names {
        traffic.record(&sample(T0, 200, name, 10));
    }
    let report = traffic.report(T0);
    assert!(report.by.model.len() <= MAX_NAMES + 1);
    let other = report.by.model.iter().find(|n| n.name == "other").unwrap();
    assert_eq!(other.totals.requests, 500 - MAX_NAMES as u64);
}

#[test]
fn samples_from_many_threads_all_count() {
    let traffic = std::sync::Arc::new(Traffic::default());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let traffic = traffic.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    traffic.record(&sample(T0, 200, "fast", 5));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(traffic.report(T0).hour.totals.requests, 8000);
}
