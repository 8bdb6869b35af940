//! The description: one fitting line from each table, the region's own first when words are few.

use std::collections::BTreeMap;

use super::content::{Line, Moment, Phrases};
use crate::kit::content::seed;

fn of<'a>(table: &'a BTreeMap<String, Vec<Line>>, key: &str) -> &'a [Line] {
    table.get(key).map_or(&[], Vec::as_slice)
}

fn pick<'a>(
    lines: &'a [Line],
    m: &Moment<'_>,
    seed: u64,
    salt: u64,
    not: &[&str],
) -> Option<&'a str> {
    let fitting: Vec<&str> = lines
        .iter()
        .filter(|l| l.fits(m) && !not.contains(&l.text.as_str()))
        .map(|l| l.text.as_str())
        .collect();
    if fitting.is_empty() {
        return None;
    }
    let mixed =
        (seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    Some(fitting[(mixed >> 33) as usize % fitting.len()])
}

/// The description of region `region_id` (named `region_name`, of `biome`) at moment `m`: whole
/// sentences, as many as fit `max_words`. The sentences are taken in order of need (the region's
/// own feature, the perspective's opening, the weather, the time of day, the season, the sounds
/// and the land) and read in the order of a scene (opening, time, season, weather, the region,
/// the land, its sounds).
pub fn compose(
    phrases: &Phrases,
    region_id: &str,
    region_name: &str,
    biome: &str,
    m: &Moment<'_>,
    perspective: &str,
    max_words: usize,
) -> String {
    let s = seed(&[
        region_id,
        biome,
        m.condition,
        m.season,
        m.period,
        m.band,
        perspective,
    ]);
    let features = phrases
        .regions
        .get(region_id)
        .map_or(&[][..], |r| r.features.as_slice());
    let land = of(&phrases.land, biome);
    let feature = pick(features, m, s, 4, &[]);
    let more_land = pick(land, m, s, 5, &[]);
    // (place in the scene, sentence), in order of need.
    let wanted = [
        (4, feature),
        (0, pick(of(&phrases.openings, perspective), m, s, 1, &[])),
        (3, pick(of(&phrases.weather, m.condition), m, s, 3, &[])),
        (1, pick(of(&phrases.time, m.period), m, s, 2, &[])),
        (2, pick(of(&phrases.season, m.season), m, s, 6, &[])),
        (6, pick(of(&phrases.sounds, biome), m, s, 7, &[])),
        (5, more_land),
        (
            7,
            pick(features, m, s, 8, &feature.into_iter().collect::<Vec<_>>()),
        ),
        (
            8,
            pick(land, m, s, 9, &more_land.into_iter().collect::<Vec<_>>()),
        ),
    ];
    let mut taken: Vec<(usize, String)> = Vec::new();
    let mut words = 0;
    for (place, line) in wanted {
        let Some(line) = line else { continue };
        let line = line.replace("{region}", region_name);
        let n = line.split_whitespace().count();
        if words + n > max_words {
            if taken.is_empty() {
                // Even the most needed sentence is too long: its first words.
                let cut: Vec<&str> = line.split_whitespace().take(max_words).collect();
                return format!("{}…", cut.join(" ").trim_end_matches([',', ';', '.']));
            }
            continue;
        }
        words += n;
        taken.push((place, line));
    }
    taken.sort_by_key(|(place, _)| *place);
    taken
        .into_iter()
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join(" ")
}
