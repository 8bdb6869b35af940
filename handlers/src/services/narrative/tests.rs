#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::kit::clock::SEASONS;
use crate::kit::content::{Content, Source};

fn phrases() -> Phrases {
    Phrases::embedded().unwrap()
}

/// The shipped world's regions: (id, name, biome).
fn world() -> Vec<(String, String, String)> {
    crate::services::world::Regions::embedded()
        .unwrap()
        .list
        .iter()
        .map(|r| {
            (
                r.region.id.clone(),
                r.region.name.clone(),
                r.region.biome.clone(),
            )
        })
        .collect()
}

fn at<'a>(condition: &'a str, season: &'a str, period: &'a str, band: &'a str) -> Moment<'a> {
    Moment {
        condition,
        season,
        period,
        band,
    }
}

fn ashfen(p: &Phrases, m: &Moment<'_>, perspective: &str, max: usize) -> String {
    compose(p, "ashfen", "Ashfen Marsh", "wetland", m, perspective, max)
}

#[test]
fn the_same_inputs_give_the_same_text_and_weather_and_night_show() {
    let p = phrases();
    let morning = at("clear", "spring", "morning", "mild");
    let a = ashfen(&p, &morning, "omniscient", 80);
    assert_eq!(a, ashfen(&p, &morning, "omniscient", 80));
    assert!(a.split_whitespace().count() <= 80);
    let storm = ashfen(
        &p,
        &at("storm", "spring", "morning", "mild"),
        "omniscient",
        80,
    );
    assert_ne!(a, storm);
    let lower = storm.to_lowercase();
    assert!(
        ["storm", "thunder", "lightning"]
            .iter()
            .any(|w| lower.contains(w)),
        "{storm}"
    );
    let night = ashfen(
        &p,
        &at("clear", "spring", "night", "cold"),
        "omniscient",
        80,
    );
    let lower = night.to_lowercase();
    assert!(
        ["night", "moon", "star", "dark", "lamp", "lantern"]
            .iter()
            .any(|w| lower.contains(w)),
        "{night}"
    );
    let mine = ashfen(
        &p,
        &at("clear", "spring", "night", "cold"),
        "first_person",
        80,
    );
    assert!(mine.starts_with("I ") || mine.contains(" I "), "{mine}");
}

/// Words whose claim a moment can contradict, and the tags of the moments they contradict.
const CLAIMS: [(&str, &[&str]); 10] = [
    ("hay", &["snow", "freezing", "winter", "rain", "storm"]),
    ("poppies", &["snow", "freezing", "winter", "autumn"]),
    (
        "bluebells",
        &["snow", "freezing", "summer", "autumn", "winter"],
    ),
    ("frost", &["warm", "hot"]),
    ("frozen", &["warm", "hot", "summer"]),
    ("dust", &["rain", "storm", "snow"]),
    (
        "stars are out",
        &["dawn", "morning", "afternoon", "evening", "cloudy", "fog"],
    ),
    (
        "sunlight",
        &["night", "fog", "storm", "rain", "snow", "cloudy"],
    ),
    ("heat", &["freezing", "cold", "night"]),
    (
        "still, and it holds a second sky",
        &["storm", "rain", "fog", "snow", "morning"],
    ),
];

/// Whether `text` says `claim` as words of its own ("frost", not "Frostholm").
fn says(text: &str, claim: &str) -> bool {
    text.match_indices(claim).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + claim.len()..].chars().next();
        !before.is_some_and(char::is_alphabetic) && !after.is_some_and(char::is_alphabetic)
    })
}

/// Every region in every moment: its own feature is named, no other region's is, no line said
/// is against the moment by its tags, and no claim in the text is against it by its words.
#[test]
fn every_region_in_every_moment_speaks_of_itself_and_never_against_the_sky() {
    let p = phrases();
    let world = world();
    let lines: Vec<&Line> = p
        .openings
        .values()
        .chain(p.weather.values())
        .chain(p.time.values())
        .chain(p.season.values())
        .chain(p.land.values())
        .chain(p.sounds.values())
        .flatten()
        .chain(p.regions.values().flat_map(|r| &r.features))
        .collect();
    let mut checked = 0;
    for (id, name, biome) in &world {
        let own = &p.regions[id].marks;
        for m in Moment::all() {
            for max in [40, 80] {
                let text = compose(&p, id, name, biome, &m, "second_person", max);
                let lower = text.replace(name.as_str(), "").to_lowercase();
                assert!(
                    own.iter().any(|k| lower.contains(k.as_str())),
                    "{id} at {m}: none of its own ({own:?}): {text}"
                );
                for (other, set) in p.regions.iter().filter(|(o, _)| *o != id) {
                    for k in &set.marks {
                        assert!(
                            !lower.contains(k.as_str()),
                            "{id} at {m} names {other}'s {k}: {text}"
                        );
                    }
                }
                for l in &lines {
                    let said = l.text.replace("{region}", name);
                    if text.contains(&said) {
                        assert!(
                            l.fits(&m),
                            "{id} at {m} says a line that does not fit: {said}"
                        );
                    }
                }
                let words = [m.condition, m.season, m.period, m.band];
                for (claim, against) in CLAIMS {
                    if says(&lower, claim) {
                        assert!(
                            !against.iter().any(|t| words.contains(t)),
                            "{id} at {m} says {claim:?}: {text}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, world.len() * 600 * 2);
}

#[test]
fn hearthvale_in_snow_smells_of_no_hay_and_mirrorlake_has_its_lake() {
    let p = phrases();
    for period in PERIODS {
        for band in ["freezing", "cold"] {
            let m = at("snow", "winter", period, band);
            for persp in ["omniscient", "travelogue", "first_person"] {
                let t = compose(&p, "hearthvale", "Hearthvale", "grassland", &m, persp, 400)
                    .to_lowercase();
                for w in ["hay", "poppies", "cornflowers", "wildflowers"] {
                    assert!(!t.contains(w), "{w}: {t}");
                }
                let t = compose(
                    &p,
                    "mirrorlake",
                    "Mirrorlake Basin",
                    "temperate_forest",
                    &m,
                    persp,
                    400,
                );
                assert!(t.contains("lake") && !t.contains("Elder oak"), "{t}");
            }
        }
    }
    // Summer afternoon heat in the desert: no frost, no snow line, and the colossi are there.
    let t = compose(
        &p,
        "dunmar",
        "Dunmar Expanse",
        "desert",
        &at("clear", "summer", "afternoon", "hot"),
        "omniscient",
        400,
    );
    let lower = t.to_lowercase();
    assert!(!lower.contains("frost") && !lower.contains("snow"), "{t}");
    assert!(
        ["colossus", "colossi", "caravan"]
            .iter()
            .any(|w| lower.contains(w)),
        "{t}"
    );
}

#[test]
fn the_word_limit_holds_for_every_combination() {
    let p = phrases();
    for (id, name, biome) in world() {
        for m in Moment::all().iter().step_by(7) {
            for persp in p.openings.keys() {
                for max in [10, 25, 80, 400] {
                    let text = compose(&p, &id, &name, &biome, m, persp, max);
                    let n = text.split_whitespace().count();
                    assert!(n <= max && n > 0, "{n} > {max}: {text}");
                    assert!(!text.contains('{'), "{text}");
                }
            }
        }
    }
}

#[test]
fn bands_and_periods() {
    assert_eq!(
        [-2.8, 0.0, 9.9, 10.0, 27.9, 28.0, 45.0].map(band),
        ["freezing", "cold", "cold", "mild", "warm", "hot", "hot"]
    );
    assert_eq!(
        [0, 5, 7, 12, 17, 21, 23].map(period),
        [
            "night",
            "dawn",
            "morning",
            "afternoon",
            "evening",
            "night",
            "night"
        ]
    );
    let clock: Vec<&str> = crate::kit::clock::PERIODS.iter().map(|(n, _)| *n).collect();
    assert_eq!(clock, PERIODS, "the tables speak the clock's words");
    assert_eq!(SEASONS.len(), 4);
}

fn refused(from: &str, to: &str) -> crate::kit::content::DataError {
    let text = Phrases::SHIPPED.text;
    assert!(text.contains(from), "{from}");
    let bad = text.replacen(from, to, 1);
    let Err(e) = Phrases::parse(&Source::embedded("p.toml", &bad)) else {
        panic!("accepted {from:?} -> {to:?}");
    };
    assert_eq!(e.file, "p.toml");
    e
}

fn line_of(needle: &str) -> usize {
    let text = Phrases::SHIPPED.text;
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn bad_files_are_refused_naming_the_line() {
    let e = refused("[weather.fog]", "[weather.haze]");
    assert!(e.message.contains("weather.fog"), "{e}");
    let e = refused("[season.autumn]", "[season.fall]");
    assert!(e.message.contains("season.autumn"), "{e}");

    // An unknown tag names its line.
    let hay = "The air smells of cut hay";
    let e = refused(
        r#"when = ["summer"], not = ["snow", "freezing", "rain", "storm"]"#,
        r#"when = ["midsummer"]"#,
    );
    assert!(e.message.contains("unknown tag \"midsummer\""), "{e}");
    assert_eq!(e.line, line_of(hay), "{e}");
    let e = refused(
        r#"when = ["summer"], not = ["snow", "freezing", "rain", "storm"]"#,
        r#"when = ["summer"], not = ["summer"]"#,
    );
    assert!(e.message.contains("both"), "{e}");

    // A placeholder other than {region}.
    let e = refused("miles along {region}", "miles along {npc}");
    assert!(e.message.contains("placeholder"), "{e}");
    assert_eq!(e.line, line_of("Grey shingle beaches"), "{e}");

    // A region feature that names none of its marks.
    let e = refused(
        "Nothing grows on the steppe taller than a hand, and the wind comes across the Reach",
        "Nothing grows here taller than a hand, and the wind comes across the plain",
    );
    assert!(e.message.contains("marks"), "{e}");
    assert_eq!(e.line, line_of("taller than a hand"), "{e}");

    // A line every region says that names one region's own feature.
    let e = refused(
        "Snow falls in thick, silent flakes,",
        "Snow falls on the colossi in thick, silent flakes,",
    );
    assert!(e.message.contains("region.dunmar"), "{e}");

    // A moment with no line: the only untagged summer line made a warm-only one.
    let e = refused(
        r#""It is summer, the long-lit middle of the year, and the nights are short.","#,
        r#"{ text = "It is summer, the long-lit middle of the year.", when = ["warm"] },"#,
    );
    assert!(e.message.contains("season.summer: no line fits"), "{e}");
    assert_eq!(e.line, line_of("[season.summer]"), "{e}");

    // Neither a sentence nor a table.
    let e = refused(
        r#""Waves hiss up the shingle"#,
        r#"42, "Waves hiss up the shingle"#,
    );
    assert!(e.line > 1, "{e}");
}

#[test]
fn the_world_and_the_tables_agree() {
    let p = phrases();
    let world = world();
    let pairs: Vec<(&str, &str)> = world
        .iter()
        .map(|(id, _, b)| (id.as_str(), b.as_str()))
        .collect();
    p.check_world(pairs.iter().copied()).unwrap();
    // A region with no lines of its own.
    let mut more = pairs.clone();
    more.push(("emberdeep", "volcanic"));
    let e = p.check_world(more.iter().copied()).unwrap_err();
    assert!(e.message.contains("no [region.emberdeep]"), "{e}");
    // Lines of a region the world does not have.
    let fewer: Vec<_> = pairs
        .iter()
        .copied()
        .filter(|(id, _)| *id != "saltmere")
        .collect();
    let e = p.check_world(fewer.iter().copied()).unwrap_err();
    assert!(
        e.message.contains("[region.saltmere]: no such region"),
        "{e}"
    );
    assert_eq!(e.line, line_of("[region.saltmere]"));
    // A biome line that names a feature of one of two regions of that biome.
    let text = Phrases::SHIPPED.text.replace(
        "Moss covers every fallen log",
        "Moss covers every fallen elder oak",
    );
    let p = Phrases::parse(&Source::embedded("p.toml", &text)).unwrap();
    let e = p.check_world(pairs.iter().copied()).unwrap_err();
    assert!(e.message.contains("elder oak"), "{e}");
}
