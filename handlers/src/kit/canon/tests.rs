#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn canon() -> Canon {
    Canon::embedded().unwrap()
}

/// Every shipped data file but the canon, with its name in errors.
const SHIPPED: [(&str, &str); 17] = [
    (
        "payment/catalog.toml",
        include_str!("../../../data/payment/catalog.toml"),
    ),
    (
        "world/regions.toml",
        include_str!("../../../data/world/regions.toml"),
    ),
    (
        "quest/quests.toml",
        include_str!("../../../data/quest/quests.toml"),
    ),
    (
        "narrative/phrases.toml",
        include_str!("../../../data/narrative/phrases.toml"),
    ),
    ("kb/lore.toml", include_str!("../../../data/kb/lore.toml")),
    (
        "story/arcs.toml",
        include_str!("../../../data/story/arcs.toml"),
    ),
    (
        "bodybroker/events.toml",
        include_str!("../../../data/bodybroker/events.toml"),
    ),
    (
        "orchestration/workflows.toml",
        include_str!("../../../data/orchestration/workflows.toml"),
    ),
    (
        "weather/biomes.toml",
        include_str!("../../../data/weather/biomes.toml"),
    ),
    (
        "perf/tiers.toml",
        include_str!("../../../data/perf/tiers.toml"),
    ),
    ("npc/npcs.toml", include_str!("../../../data/npc/npcs.toml")),
    (
        "npc/actions.toml",
        include_str!("../../../data/npc/actions.toml"),
    ),
    (
        "language/en.ftl",
        include_str!("../../../data/language/en.ftl"),
    ),
    (
        "language/de.ftl",
        include_str!("../../../data/language/de.ftl"),
    ),
    (
        "language/fr.ftl",
        include_str!("../../../data/language/fr.ftl"),
    ),
    (
        "language/pl.ftl",
        include_str!("../../../data/language/pl.ftl"),
    ),
    (
        "language/ja.ftl",
        include_str!("../../../data/language/ja.ftl"),
    ),
];

/// The shipped regions of each biome, read from regions.toml as plain TOML (the kit knows no
/// service's types).
fn regions_of_biome(biome: &str) -> Vec<String> {
    let regions: toml::Table = toml::from_str(SHIPPED[1].1).unwrap();
    regions["region"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["biome"].as_str() == Some(biome))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn check(canon: &Canon, file: &str, text: &str) -> Result<(), DataError> {
    canon.check_prose(&Source::embedded(file, text), &regions_of_biome)
}

#[test]
fn the_shipped_canon_loads() {
    let c = canon();
    assert_eq!(c.entries().filter(|e| e.kind == Kind::Region).count(), 9);
    assert_eq!(c.person_named("Orla Saltash").unwrap().id, "orla-saltash");
    assert_eq!(
        c.get("mill-road").unwrap().region.as_deref(),
        Some("hearthvale")
    );
    assert!(c.is("pale-lantern", Kind::Event));
    assert!(!c.is("pale-lantern", Kind::Item));
    assert!(
        c.wrong
            .iter()
            .any(|w| w.region.as_deref() == Some("ashfen"))
    );
}

/// Prose is held to the canon: no shipped file (TOML string values, .ftl messages) names a
/// thing the known-wrong list refuses, everywhere or in the region the text is set in.
#[test]
fn no_shipped_prose_names_a_known_wrong_thing() {
    let c = canon();
    for (file, text) in SHIPPED {
        check(&c, file, text).unwrap();
    }
    // The biome tables reach the regions: the wetland is Ashfen's.
    assert_eq!(regions_of_biome("wetland"), ["ashfen"]);
}

#[test]
fn a_wrong_name_is_refused_with_its_file_and_line() {
    let c = canon();
    let text = "[[quest]]\nid = \"q\"\nregion = \"hearthvale\"\ndescription = \"\"\"\nA fine day.\nWalk to Greywood.\n\"\"\"\n";
    let e = check(&c, "quests.toml", text).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("quests.toml", 6), "{e}");
    assert!(
        e.message.contains("\"Greywood\" is not of this world"),
        "{e}"
    );
    // Case folded, whole words only: "greywoodsman" is another word.
    assert!(check(&c, "x.toml", "a = \"the GREYWOOD road\"").is_err());
    check(&c, "x.toml", "a = \"a greywoodsman\"").unwrap();
    // Deep in nested tables and arrays too.
    let e = check(
        &c,
        "arcs.toml",
        "[[arc]]\nid = \"a\"\n[[arc.beat]]\nchoice = [{ label = \"Ask Odo Marrable\" }]\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    // An .ftl message, by its line; comments are the translators' own.
    let e = check(
        &c,
        "en.ftl",
        "# the Crown\nhello = Hello\nbye = For the Crown!\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn a_name_wrong_in_one_region_is_right_in_another() {
    let c = canon();
    let in_region = |r: &str, text: &str| {
        check(
            &c,
            "npcs.toml",
            &format!("[[npc]]\nregion = \"{r}\"\npersona = \"{text}\"\n"),
        )
    };
    let e = in_region("ashfen", "She grinds eel-meal at the mill.").unwrap_err();
    assert!(e.message.contains("in ashfen"), "{e}");
    in_region("hearthvale", "He grinds barley at the mill.").unwrap();
    // The Mill Road is named in Ashfen by those who grew up on it.
    in_region("ashfen", "Born a Tarrow on the Mill Road.").unwrap();
    // A lore document tagged with one region is set there; a biome's lines in its regions.
    let lore = "[[document]]\ntags = [\"ashfen\", \"legends\"]\nbody = \"A dragon sleeps.\"\n";
    assert!(check(&c, "lore.toml", lore).is_err());
    let two = "[[document]]\ntags = [\"ashfen\", \"hearthvale\"]\nbody = \"The windmills turn.\"\n";
    check(&c, "lore.toml", two).unwrap();
    let e = check(
        &c,
        "phrases.toml",
        "[biome.wetland]\nland = [\"A windmill creaks.\"]\n",
    );
    assert!(e.is_err());
    check(
        &c,
        "phrases.toml",
        "[biome.grassland]\nland = [\"A windmill creaks.\"]\n",
    )
    .unwrap();
    assert!(
        check(
            &c,
            "phrases.toml",
            "[region.ashfen]\nland = [\"A windmill creaks.\"]\n"
        )
        .is_err()
    );
    // "the Crown" is matched with its capital only: the crown is the coin.
    check(&c, "x.toml", "a = \"It costs the crown you owe.\"").unwrap();
}

fn parse(text: &str) -> Result<Canon, DataError> {
    Canon::parse(&Source::embedded("canon.toml", text))
}

const REGION: &str = "[[entry]]\nid = \"ashfen\"\nname = \"Ashfen Marsh\"\nkind = \"region\"\n";

#[test]
fn a_bad_canon_is_refused_with_its_line() {
    parse(REGION).unwrap();
    // An unknown kind.
    let e = parse(&format!(
        "{REGION}\n[[entry]]\nid = \"smaug\"\nname = \"Smaug\"\nkind = \"dragon\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, 9, "{e}");
    assert!(e.message.contains("dragon"), "{e}");
    // A person with no region, or in a region the canon lacks.
    let e = parse(&format!(
        "{REGION}[[entry]]\nid = \"hob\"\nname = \"Hob\"\nkind = \"person\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    let e = parse(&format!("{REGION}[[entry]]\nid = \"hob\"\nname = \"Hob\"\nkind = \"person\"\nregion = \"greywood\"\n")).unwrap_err();
    assert!(
        e.message
            .contains("\"greywood\" is not a region of the canon"),
        "{e}"
    );
    // The same id twice, an id that is no slug, an unknown field.
    assert!(
        parse(&format!("{REGION}{REGION}"))
            .unwrap_err()
            .message
            .contains("twice")
    );
    assert!(parse(&REGION.replace("\"ashfen\"", "\"Ash Fen\"")).is_err());
    assert!(parse(&format!("{REGION}colour = \"grey\"\n")).is_err());
    // A wrong name's region must be a region; its case is "exact" or nothing.
    let e = parse(&format!(
        "{REGION}[[wrong]]\nnames = [\"x\"]\nregion = \"mars\"\nwhy = \"y\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    assert!(
        parse(&format!(
            "{REGION}[[wrong]]\nnames = [\"x\"]\ncase = \"loud\"\nwhy = \"y\"\n"
        ))
        .is_err()
    );
    assert!(parse(&format!("{REGION}[[wrong]]\nnames = []\nwhy = \"y\"\n")).is_err());
    // The canon cannot call its own names wrong.
    let e = parse(&format!(
        "{REGION}[[wrong]]\nnames = [\"ashfen marsh\"]\nwhy = \"y\"\n"
    ))
    .unwrap_err();
    assert!(e.message.contains("the canon's own name for ashfen"), "{e}");
}
