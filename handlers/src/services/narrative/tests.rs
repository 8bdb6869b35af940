use super::*;

fn phrases() -> Phrases {
    Phrases::embedded().unwrap()
}

#[test]
fn the_same_inputs_give_the_same_text_and_weather_and_night_show() {
    let p = phrases();
    let a = compose(
        &p,
        "Ashfen Marsh",
        "wetland",
        "clear",
        "morning",
        "omniscient",
        80,
    );
    let b = compose(
        &p,
        "Ashfen Marsh",
        "wetland",
        "clear",
        "morning",
        "omniscient",
        80,
    );
    assert_eq!(a, b);
    assert!(a.split_whitespace().count() <= 80);
    let storm = compose(
        &p,
        "Ashfen Marsh",
        "wetland",
        "storm",
        "morning",
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
    let night = compose(
        &p,
        "Ashfen Marsh",
        "wetland",
        "clear",
        "night",
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
    let mine = compose(
        &p,
        "Ashfen Marsh",
        "wetland",
        "clear",
        "night",
        "first_person",
        80,
    );
    assert!(mine.starts_with("I ") || mine.contains(" I "), "{mine}");
}

#[test]
fn the_word_limit_holds_for_every_combination() {
    let p = phrases();
    for biome in p.land.keys() {
        for c in CONDITIONS {
            for t in PERIODS {
                for persp in p.openings.keys() {
                    for max in [10, 25, 80, 400] {
                        let text = compose(&p, "Greyspire Peaks", biome, c, t, persp, max);
                        let n = text.split_whitespace().count();
                        assert!(n <= max && n > 0, "{n} > {max}: {text}");
                        assert!(!text.contains('{'), "{text}");
                    }
                }
            }
        }
    }
}

#[test]
fn periods_and_bad_files() {
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
    let bad = Phrases::SHIPPED
        .text
        .replace("[weather.fog]", "[weather.haze]");
    let e = Phrases::parse(&Source::embedded("p.toml", &bad)).unwrap_err();
    assert!(e.message.contains("weather.fog"), "{e}");
    let bad = Phrases::SHIPPED
        .text
        .replace("miles along {region}", "miles along {npc}");
    let e = Phrases::parse(&Source::embedded("p.toml", &bad)).unwrap_err();
    assert!(e.message.contains("placeholder"), "{e}");
    assert!(e.line > 1, "{e}");
}
