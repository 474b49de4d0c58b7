//! UTC calendar periods from Unix seconds, as the strings stores and counters key on.
//!
//! Days are `YYYY-MM-DD` and months `YYYY-MM`, zero-padded so that string order is time
//! order. Hand-written (Howard Hinnant's `civil_from_days`) to avoid a date-time dependency
//! for three functions.

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

fn civil(unix: i64) -> (i64, u32, u32) {
    let days = unix.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction: day in 1..=31, month in 1..=12.
    (year, month as u32, day as u32)
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
