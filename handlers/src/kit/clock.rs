//! Wall-clock time as the services record it, and the names of the game clock's hours, months
//! and seasons.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The parts of a game day, in order, with the hour each begins: narration words its text by
/// them, and the time service announces each as it begins (dawn, and dusk as night begins).
pub const PERIODS: [(&str, u32); 5] = [
    ("dawn", 5),
    ("morning", 7),
    ("afternoon", 12),
    ("evening", 17),
    ("night", 21),
];

/// The part of the day a game hour falls in.
pub fn period(hour: u32) -> &'static str {
    let hour = hour % 24;
    PERIODS
        .iter()
        .rev()
        .find(|(_, begins)| hour >= *begins)
        .map_or("night", |(name, _)| name)
}

/// The part of the day that begins at `hour`, if one does.
pub fn period_beginning(hour: u32) -> Option<&'static str> {
    PERIODS
        .iter()
        .find(|(_, begins)| *begins == hour % 24)
        .map(|(name, _)| *name)
}

/// Days in a month of the game calendar: twelve months of thirty days, as the Hearth reckoning
/// counts them (lore `the-vale-calendar`; the days of the Turning are left out of the game's year).
pub const MONTH_DAYS: i64 = 30;

/// Days in the game year; the weather's seasonal temperature curve turns on the same 360 days
/// (coldest on day 10, warmest on day 190, `handlers/data/weather/biomes.toml`).
pub const YEAR_DAYS: i64 = 360;

/// The months in order from the year's first day (game day 1 is the first of Frostwane, just
/// after midwinter), each with its season. Seasons are whole months, three each, so narration,
/// lore and festivals agree: hay in Haymoon, the Harvest Moon in Harvest, Longnight in winter.
pub const MONTHS: [(&str, &str); 12] = [
    ("Frostwane", "winter"),
    ("Thaw", "spring"),
    ("Sowing", "spring"),
    ("Greening", "spring"),
    ("Highsun", "summer"),
    ("Haymoon", "summer"),
    ("Reaping", "summer"),
    ("Harvest", "autumn"),
    ("Leaffall", "autumn"),
    ("Embermoon", "autumn"),
    ("Longnight", "winter"),
    ("Deepwinter", "winter"),
];

/// The seasons, in the order of the year.
pub const SEASONS: [&str; 4] = ["spring", "summer", "autumn", "winter"];

fn month_of(day: i64) -> (&'static str, &'static str) {
    let i = usize::try_from(day.rem_euclid(YEAR_DAYS) / MONTH_DAYS).unwrap_or(0);
    MONTHS.get(i).copied().unwrap_or(MONTHS[0])
}

/// The month of a game day (days since the game epoch, 0 = the first day; TimeService Now's `day`
/// is this plus one).
pub fn month(day: i64) -> &'static str {
    month_of(day).0
}

/// The season of a game day (days since the game epoch, 0 = the first day).
pub fn season(day: i64) -> &'static str {
    month_of(day).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hour_has_its_period() {
        let expected = [
            "night",
            "night",
            "night",
            "night",
            "night",
            "dawn",
            "dawn",
            "morning",
            "morning",
            "morning",
            "morning",
            "morning",
            "afternoon",
            "afternoon",
            "afternoon",
            "afternoon",
            "afternoon",
            "evening",
            "evening",
            "evening",
            "evening",
            "night",
            "night",
            "night",
        ];
        for (h, want) in expected.iter().enumerate() {
            assert_eq!(period(h as u32), *want, "hour {h}");
            assert_eq!(period(h as u32 + 48), *want, "hour {h} two days later");
        }
        let begins: Vec<_> = (0..24).filter_map(period_beginning).collect();
        assert_eq!(begins, ["dawn", "morning", "afternoon", "evening", "night"]);
    }

    #[test]
    fn the_calendar_has_twelve_months_and_four_seasons() {
        assert_eq!(MONTHS.len() as i64 * MONTH_DAYS, YEAR_DAYS);
        assert_eq!((month(0), season(0)), ("Frostwane", "winter"));
        assert_eq!((month(29), month(30)), ("Frostwane", "Thaw"));
        assert_eq!((month(165), season(165)), ("Haymoon", "summer"));
        assert_eq!((month(225), season(225)), ("Harvest", "autumn"));
        assert_eq!((month(359), season(359)), ("Deepwinter", "winter"));
        assert_eq!(month(360), "Frostwane", "the year wraps");
        assert_eq!(season(-1), "winter", "before the epoch too");
        for s in SEASONS {
            let days = (0..YEAR_DAYS).filter(|d| season(*d) == s).count();
            assert_eq!(days, 90, "{s}");
        }
        // The weather's year agrees: its coldest day falls in winter, its warmest in summer.
        assert_eq!((season(10), season(190)), ("winter", "summer"));
    }
}
