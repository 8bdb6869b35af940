#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::*;

/// `handlers/data`: the shipped content, as a pack.
fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A pack in a temporary directory: `(path under the pack, text)`.
fn pack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn extend(dir: &Path) -> ContentPaths {
    ContentPaths {
        pack: Some(dir.to_path_buf()),
        ..ContentPaths::default()
    }
}

/// A quest a studio adds in its pack: Oswin's millrace, on the briar trail.
const NEW_QUEST: &str = r#"# The Tarrow millrace, for the Hearthvale watch.

[[quest]]
id = "briar-in-the-millrace"
title = "Briar in the Millrace"
description = "Every dawn the grate of the Tarrow millrace is choked with cut briar, and the wheel stands still while the barley waits. Oswin Tarrow wants the grate cleared and the cuttings brought to him before the carters lose another day."
chain = "tarrow-mill"
region = "hearthvale"
giver = "Oswin Tarrow"
min_level = 1
prerequisites = []
reward = { currency = 150, items = [], experience = 80 }

[[quest.objective]]
id = "clear-the-grate"
description = "Clear the briar from the millrace grate"
target = 1
on = "object_interacted:millrace-grate"

[[quest]]
id = "lanterns-on-the-mill-road"
title = "Lanterns on the Tarrow Road"
description = "The lanterns along the road to the Tarrow windmill have gone dark three nights running. Brenna Hale wants every one relit, and she wants to know who keeps putting them out."
chain = "hearthvale-watch"
region = "hearthvale"
giver = "Brenna Hale"
min_level = 1
prerequisites = []
reward = { currency = 250, items = ["lantern_oil"], experience = 120 }

[[quest.objective]]
id = "light-lanterns"
description = "Relight the lanterns along the Tarrow road"
target = 6
on = "object_interacted:mill-road-lantern"
"#;

/// The new quest in the locales the shipped content marks complete, which a pack that adds
/// text must translate too.
const NEW_QUEST_DE: &str = "\
quest-briar-in-the-millrace-title = Dornen im Mühlgraben
quest-briar-in-the-millrace-description = Jeden Morgen ist das Gitter des Tarrow-Mühlgrabens mit abgeschnittenen Dornenranken verstopft, und das Rad steht still, während die Gerste wartet. Oswin Tarrow will das Gitter freigeräumt und die Ranken zu ihm gebracht sehen, bevor die Fuhrleute noch einen Tag verlieren.
quest-briar-in-the-millrace-objective-clear-the-grate = Räume die Dornen vom Gitter des Mühlgrabens
";
const NEW_QUEST_FR: &str = "\
quest-briar-in-the-millrace-title = Des ronces dans le bief
quest-briar-in-the-millrace-description = Chaque matin, la grille du bief du moulin de Tarrow est obstruée de ronces coupées, et la roue reste immobile pendant que l'orge attend. Oswin Tarrow veut que la grille soit dégagée et les ronces rapportées avant que les charretiers ne perdent une journée de plus.
quest-briar-in-the-millrace-objective-clear-the-grate = Dégager les ronces de la grille du bief
";

#[test]
fn every_shipped_data_file_loads() {
    let content = GameContent::load(&ContentPaths::default()).unwrap();
    assert!(content.regions.list.len() >= 8);
    assert!(!content.npcs.actions.is_empty());
    let bad = ContentPaths {
        weather: Some("/nonexistent/biomes.toml".into()),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&bad).unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/biomes.toml:1:"), "{err}");
}

/// `edge content check handlers/data` in both modes: the shipped content is a complete pack,
/// and laid over itself it is itself.
#[test]
fn the_shipped_content_passes_as_a_pack() {
    let shipped = GameContent::load(&ContentPaths::default()).unwrap();
    for mode in [PackMode::Extend, PackMode::Replace] {
        let paths = ContentPaths {
            pack: Some(shipped_dir()),
            mode,
            ..ContentPaths::default()
        };
        let content = GameContent::load(&paths).unwrap_or_else(|e| panic!("{mode:?}:\n{e}"));
        assert_eq!(content.summary(), shipped.summary(), "{mode:?}");
        assert_eq!(content.quests.levels, shipped.quests.levels);
    }
}

#[test]
fn an_extend_pack_adds_and_overrides_by_id_and_removes_nothing() {
    let dir = pack(&[
        ("quest/quests.toml", NEW_QUEST),
        (
            "language/en.ftl",
            "level-up = You rise to level { $level }.\nmill-stopped = The Tarrow mill stands still.\n",
        ),
        ("language/content/de.ftl", NEW_QUEST_DE),
        ("language/content/fr.ftl", NEW_QUEST_FR),
        ("README.md", "notes the edge does not read\n"),
    ]);
    let shipped = GameContent::load(&ContentPaths::default()).unwrap();
    let content = GameContent::load(&extend(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(content.quests.list.len(), shipped.quests.list.len() + 1);
    let added = content.quests.get("briar-in-the-millrace").unwrap();
    assert_eq!(added.giver, "Oswin Tarrow");
    let overridden = content.quests.get("lanterns-on-the-mill-road").unwrap();
    assert_eq!(overridden.definition.title, "Lanterns on the Tarrow Road");
    // The whole entry is the pack's: one objective, where the shipped entry had two.
    assert_eq!(overridden.definition.objectives.len(), 1);
    // Shipped quests the pack does not name are there, in their order.
    assert_eq!(
        content.quests.list[0].definition.id,
        "lanterns-on-the-mill-road"
    );
    assert!(content.quests.get("the-briar-mark").is_some());
    let args = fluent_bundle::FluentArgs::from_iter([("level", 4)]);
    let say = |id| content.locales.localize(id, "en", &args).unwrap().0;
    assert_eq!(say("level-up"), "You rise to level 4.");
    assert_eq!(say("mill-stopped"), "The Tarrow mill stands still.");
    // Other files are the shipped ones.
    assert_eq!(
        content.summary().split(", ").nth(1),
        shipped.summary().split(", ").nth(1)
    );
}

/// Every problem of a pack at once, each naming the pack's file and line; what came from the
/// shipped file under it names the shipped file.
#[test]
fn a_broken_pack_reports_every_problem_where_it_is() {
    let quests = NEW_QUEST.replace(
        "region = \"hearthvale\"\ngiver = \"Oswin",
        "region = \"the-moon\"\ngiver = \"Oswin",
    );
    let dir = pack(&[
        ("quest/quests.toml", &quests),
        (
            "language/pl.ftl",
            "# Polski.\n\nitems-received = Otrzymano { $count ->\n    [one] { $count } przedmiot\n   *[other] { $count } przedmiotu\n    }.\nlevel-up = Poziom { $poziom }!\n",
        ),
        ("world/region.toml", "# misspelt\n"),
        (
            "perf/tiers.toml",
            "[[tier]]\nname = \"low\"\nmin_gpu_memory_mb = \"lots\"\n",
        ),
    ]);
    let err = GameContent::load(&extend(dir.path())).unwrap_err();
    let text = err.to_string();
    let p = |rel: &str| dir.path().join(rel).display().to_string();
    let has = |file: &str, lines: &[usize], what: &str| {
        assert!(
            err.0
                .iter()
                .any(|e| e.file == file && lines.contains(&e.line) && e.message.contains(what)),
            "no {file}:{lines:?}: ...{what}... in\n{text}"
        );
    };
    // The quest's line in the pack (line 3 of the pack: `[[quest]]`).
    has(&p("quest/quests.toml"), &[3, 4], "the-moon");
    has(&p("language/pl.ftl"), &[3], "no [few] variant");
    has(&p("language/pl.ftl"), &[7], "$poziom");
    has(&p("world/region.toml"), &[1], "no service reads this file");
    has(&p("perf/tiers.toml"), &[3], "");
    assert!(err.0.len() >= 6, "{text}");
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (file, number) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(file.ends_with(".toml") || file.ends_with(".ftl"), "{line}");
        number.parse::<usize>().unwrap();
    }
}

/// A pack's change can break a shipped entry under it: the error names the shipped file's line.
#[test]
fn an_error_under_the_pack_names_the_shipped_line() {
    let dir = pack(&[("quest/quests.toml", "levels = [0, 100, 250]\n")]);
    let err = GameContent::load(&extend(dir.path())).unwrap_err();
    let shipped: Vec<&str> = include_str!("../../data/quest/quests.toml")
        .lines()
        .collect();
    // The first shipped quest above level 3, from its header to its min_level.
    let min_level = shipped
        .iter()
        .position(|l| {
            l.strip_prefix("min_level = ")
                .is_some_and(|n| n.parse::<u32>().unwrap() > 3)
        })
        .unwrap();
    let header = shipped[..min_level]
        .iter()
        .rposition(|l| *l == "[[quest]]")
        .unwrap();
    let e = &err.0[0];
    assert_eq!(e.file, "handlers/data/quest/quests.toml", "{err}");
    assert!(
        (header + 1..=min_level + 1).contains(&e.line) && e.message.contains("min_level"),
        "{err}"
    );
}

/// A pack that names one id twice is refused at the second, in the pack: the merge never hides a
/// mistake by picking one.
#[test]
fn an_id_twice_in_a_pack_is_refused_at_its_line() {
    let twice = format!(
        "{NEW_QUEST}\n{}",
        &NEW_QUEST[NEW_QUEST.find("[[quest]]").unwrap()..]
    );
    let dir = pack(&[("quest/quests.toml", &twice)]);
    let err = GameContent::load(&extend(dir.path())).unwrap_err();
    let file = dir.path().join("quest/quests.toml").display().to_string();
    // The pack's second copies: its third and fourth entries.
    let seconds: Vec<usize> = twice
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "[[quest]]")
        .map(|(i, _)| i + 1)
        .skip(2)
        .collect();
    assert!(
        err.0.iter().any(|e| e.file == file
            && seconds.iter().any(|s| (*s..=s + 1).contains(&e.line))
            && e.message.contains("appears twice")),
        "{err} (second copies at {seconds:?})"
    );
}

/// The canon holds a pack's prose too, at the pack's line.
#[test]
fn a_pack_s_prose_is_held_to_the_canon() {
    let quests = NEW_QUEST.replacen("the barley waits", "the barley waits for Highmoor", 1);
    let dir = pack(&[("quest/quests.toml", &quests)]);
    let err = GameContent::load(&extend(dir.path())).unwrap_err();
    let file = dir.path().join("quest/quests.toml").display().to_string();
    assert!(
        err.0
            .iter()
            .any(|e| e.file == file && e.line == 6 && e.message.contains("Highmoor")),
        "{err}"
    );
}

#[test]
fn a_replacing_pack_has_every_file_and_a_pack_must_exist() {
    let dir = pack(&[("quest/quests.toml", NEW_QUEST)]);
    let paths = ContentPaths {
        pack: Some(dir.path().to_path_buf()),
        mode: PackMode::Replace,
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err();
    for missing in [
        "payment/catalog.toml",
        "world/regions.toml",
        "npc/npcs.toml",
    ] {
        let file = dir.path().join(missing).display().to_string();
        assert!(
            err.0
                .iter()
                .any(|e| e.file == file && e.message.contains("missing")),
            "{err}"
        );
    }
    assert!(err.to_string().contains("language"), "{err}");
    let none = ContentPaths {
        mode: PackMode::Replace,
        ..ContentPaths::default()
    };
    assert!(
        GameContent::load(&none)
            .unwrap_err()
            .to_string()
            .contains("needs a pack")
    );
    let gone = extend(Path::new("/nonexistent/pack"));
    assert!(
        GameContent::load(&gone)
            .unwrap_err()
            .to_string()
            .contains("not a directory")
    );
}

#[test]
fn a_per_file_option_wins_over_the_pack() {
    let own = pack(&[("quests.toml", include_str!("../../data/quest/quests.toml"))]);
    let dir = pack(&[("quest/quests.toml", NEW_QUEST)]);
    let paths = ContentPaths {
        quests: Some(own.path().join("quests.toml")),
        ..extend(dir.path())
    };
    let content = GameContent::load(&paths).unwrap();
    assert!(content.quests.get("briar-in-the-millrace").is_none());
}

#[test]
fn the_xp_curve_is_checked() {
    let levels: Vec<String> = (0..1200).map(|n| (n * 10).to_string()).collect();
    let long = format!("levels = [{}]\n", levels.join(", "));
    for (text, what) in [
        ("levels = [0, 100, 100, 300]\n", "rise strictly"),
        (long.as_str(), "at most 1000 levels"),
    ] {
        let dir = pack(&[("quest/quests.toml", text)]);
        let err = GameContent::load(&extend(dir.path())).unwrap_err();
        let file = dir.path().join("quest/quests.toml").display().to_string();
        assert!(
            err.0
                .iter()
                .any(|e| e.file == file && e.line == 1 && e.message.contains(what)),
            "{err}"
        );
    }
}

/// A game needs no code of its own to finish a shipped quest: every objective is moved by an
/// event the game server sends (or, for talked_to, one the backend reports), none by Progress.
#[test]
fn every_shipped_objective_is_moved_by_an_event() {
    let content = GameContent::load(&ContentPaths::default()).unwrap();
    for q in &content.quests.list {
        for o in &q.definition.objectives {
            let (event, target) = o.on.split_once(':').unwrap_or(("", ""));
            assert!(
                !target.is_empty()
                    && (content.game_events.advances_quests(event)
                        || event == crate::services::quest::TALKED_TO),
                "quest {} objective {} is moved by no event",
                q.definition.id,
                o.id
            );
        }
    }
}

#[test]
fn an_objective_with_no_event_must_say_it_is_scripted() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../data/quest/quests.toml");
    let bad = shipped.replacen("on = \"object_interacted:mill-road-lantern\"\n", "", 1);
    assert_ne!(bad, shipped);
    let path = dir.path().join("quests.toml");
    std::fs::write(&path, &bad).unwrap();
    let paths = ContentPaths {
        quests: Some(path.clone()),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    assert!(
        err.contains("quests.toml:") && err.contains("scripted = true"),
        "{err}"
    );
    std::fs::write(
        &path,
        shipped.replacen(
            "on = \"object_interacted:mill-road-lantern\"\n",
            "scripted = true\n",
            1,
        ),
    )
    .unwrap();
    GameContent::load(&paths).unwrap();
    std::fs::write(
        &path,
        shipped.replacen("talked_to:hob-reed", "talked_to:the-miller", 1),
    )
    .unwrap();
    let err = GameContent::load(&paths).unwrap_err().to_string();
    assert!(err.contains("\"the-miller\" is not an NPC id"), "{err}");
}

mod merging {
    use crate::content::merge::{Kind, merge};
    use crate::kit::content::{DataError, Source};

    const SHIPPED: &str = r#"# Designer notes.
levels = [0, 100,
  250]
start = "a"

[[quest]]
id = "one"
text = """
[[quest]]
not a header: inside a string
"""

[[quest.objective]]
id = "o1"

[[quest]]
id = "two"
tags = [
  "[x]",
]

[biome.fen]
rain = 0.5

[biome.fen.night]
cold = true

[biome.moor]
rain = 0.1

[inventory]
base_capacity = 60
"#;

    const PACK: &str = r#"levels = [0, 50]

[[quest]]
id = "three"

[[quest]]
id = "one"
text = "rewritten"

[biome.fen]
rain = 0.9
"#;

    #[test]
    fn toml_entries_merge_by_id_and_every_line_keeps_its_origin() {
        let shipped = Source::embedded("handlers/data/x.toml", SHIPPED);
        let pack = Source::embedded("/pack/x.toml", PACK);
        let m = merge(&shipped, &pack, Kind::Toml);
        let t: toml::Table = toml::from_str(&m.source.text).unwrap();
        assert_eq!(t["levels"].as_array().unwrap().len(), 2);
        assert_eq!(t["start"].as_str(), Some("a"));
        let quests = t["quest"].as_array().unwrap();
        let ids: Vec<&str> = quests.iter().map(|q| q["id"].as_str().unwrap()).collect();
        // In place of the shipped, then the new.
        assert_eq!(ids, ["one", "two", "three"]);
        assert_eq!(quests[0]["text"].as_str(), Some("rewritten"));
        // The pack's entry is whole: the shipped objective went with the shipped entry.
        assert!(quests[0].get("objective").is_none());
        assert_eq!(quests[1]["tags"][0].as_str(), Some("[x]"));
        let fen = &t["biome"]["fen"];
        assert_eq!(fen["rain"].as_float(), Some(0.9));
        assert!(
            fen.get("night").is_none(),
            "the sub-table went with its table"
        );
        assert_eq!(t["biome"]["moor"]["rain"].as_float(), Some(0.1));
        assert_eq!(t["inventory"]["base_capacity"].as_integer(), Some(60));
        // Each merged line names its own file and line.
        let at = |needle: &str| {
            let line = m.source.text.lines().position(|l| l == needle).unwrap() + 1;
            let e = m.locate(DataError {
                file: "/pack/x.toml".into(),
                line,
                message: String::new(),
            });
            (e.file, e.line)
        };
        assert_eq!(at("id = \"three\""), ("/pack/x.toml".into(), 4));
        assert_eq!(at("text = \"rewritten\""), ("/pack/x.toml".into(), 8));
        assert_eq!(at("id = \"two\""), ("handlers/data/x.toml".into(), 17));
        assert_eq!(at("rain = 0.1"), ("handlers/data/x.toml".into(), 29));
        assert_eq!(at("start = \"a\""), ("handlers/data/x.toml".into(), 4));
        // Another file's errors pass untouched.
        let other = DataError {
            file: "handlers/data/y.toml".into(),
            line: 3,
            message: String::new(),
        };
        assert_eq!(m.locate(other.clone()), other);
    }

    #[test]
    fn an_entry_without_its_id_is_kept_as_new() {
        let shipped = Source::embedded("s.toml", "[[quest]]\nid = \"one\"\n");
        let pack = Source::embedded("p.toml", "[[quest]]\ntitle = \"no id\"\n");
        let m = merge(&shipped, &pack, Kind::Toml);
        let t: toml::Table = toml::from_str(&m.source.text).unwrap();
        assert_eq!(t["quest"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn fluent_messages_merge_by_id() {
        let shipped = Source::embedded(
            "en.ftl",
            "# English.\n\nhello = Hello { $name }.\ncount = { $n ->\n    [one] one\n   *[other] many\n}\nbye = Bye.\n",
        );
        let pack = Source::embedded(
            "/pack/en.ftl",
            "count = { $n ->\n    [one] a single one\n   *[other] { $n }\n}\n-brand = Tarrow\nnew = From { -brand }.\n",
        );
        let m = merge(&shipped, &pack, Kind::Fluent);
        let r = fluent_bundle::FluentResource::try_new(m.source.text.clone()).unwrap();
        assert_eq!(r.entries().count(), 5, "{}", m.source.text);
        assert!(m.source.text.contains("a single one") && !m.source.text.contains("many"));
        let line = m
            .source
            .text
            .lines()
            .position(|l| l.starts_with("new ="))
            .unwrap()
            + 1;
        let e = m.locate(DataError {
            file: "/pack/en.ftl".into(),
            line,
            message: String::new(),
        });
        assert_eq!((e.file.as_str(), e.line), ("/pack/en.ftl", 6));
    }
}
