//! Wall-clock time as the services record it, and the names of the game clock's hours.

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
}
