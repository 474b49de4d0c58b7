//! UTC calendar periods from Unix seconds, as the strings stores and counters key on.
//!
//! Days are `YYYY-MM-DD` and months `YYYY-MM`, zero-padded so that string order is time
//! order. The date itself comes from [`llmux_telemetry::calendar::civil`].

use llmux_telemetry::calendar::civil;

/// The UTC day containing `unix`, as `YYYY-MM-DD`.
pub(crate) fn day(unix: i64) -> String {
    let (year, month, day) = civil(unix);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The UTC month containing `unix`, as `YYYY-MM`.
pub(crate) fn month(unix: i64) -> String {
    let (year, month, _) = civil(unix);
    format!("{year:04}-{month:02}")
}

/// First and last day (inclusive) of the UTC month containing `unix`, as `YYYY-MM-DD`.
/// The last day is given as `-31` whatever the month: only string comparison uses it.
pub(crate) fn month_bounds(unix: i64) -> (String, String) {
    let month = month(unix);
    (format!("{month}-01"), format!("{month}-31"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(-1), "1969-12-31");
        assert_eq!(day(951_868_800), "2000-03-01");
        assert_eq!(day(1_709_208_000), "2024-02-29");
        assert_eq!(day(1_793_487_600), "2026-10-31");
        assert_eq!(day(1_793_494_800), "2026-11-01");
        assert_eq!(month(1_793_487_600), "2026-10");
        assert_eq!(month(1_793_494_800), "2026-11");
    }

    #[test]
    fn day_changes_exactly_at_midnight() {
        let midnight = 1_793_491_200; // 2026-11-01T00:00:00Z
        assert_eq!(day(midnight - 1), "2026-10-31");
        assert_eq!(day(midnight), "2026-11-01");
    }

    #[test]
    fn month_bounds_cover_every_day_of_the_month() {
        let (first, last) = month_bounds(1_709_208_000);
        assert_eq!(
            (first.as_str(), last.as_str()),
            ("2024-02-01", "2024-02-31")
        );
        assert!(first.as_str() <= "2024-02-29" && "2024-02-29" <= last.as_str());
        assert!("2024-03-01" > last.as_str());
    }
}
