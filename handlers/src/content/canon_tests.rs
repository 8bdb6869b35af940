//! Content held to the canon across files: a reference the canon lacks is refused with the file
//! and line, in an operator's pack as in the shipped one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::{ContentPaths, GameContent};
use crate::kit::canon::Canon;
use crate::kit::content::Content as _;

/// An operator's canon (the shipped one, edited) and one other file of theirs, in `dir`.
fn pack(dir: &Path, edit_canon: impl Fn(&str) -> String, file: &str, text: &str) -> PathBuf {
    std::fs::write(dir.join("canon.toml"), edit_canon(Canon::SHIPPED.text)).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
    dir.join(file)
}

/// The 1-based line of the table whose first key line contains `needle`.
fn table_line(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap()
}

#[test]
fn a_reference_the_canon_lacks_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let canon = Some(dir.path().join("canon.toml"));
    let same = |s: &str| s.to_owned();
    // An NPC who is no person of the canon.
    let npcs = crate::embedded!("npc/npcs.toml").text;
    pack(
        dir.path(),
        |c| c.replace("id = \"orla-saltash\"", "id = \"orla\""),
        "npcs.toml",
        npcs,
    );
    std::fs::write(
        dir.path().join("actions.toml"),
        crate::embedded!("npc/actions.toml").text,
    )
    .unwrap();
    let paths = ContentPaths {
        canon: canon.clone(),
        npcs: Some(dir.path().to_owned()),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    let line = table_line(npcs, "id = \"orla-saltash\"");
    assert!(
        err.contains(&format!(
            "npcs.toml:{line}: npc orla-saltash: \"orla-saltash\" is not a person of the canon"
        )),
        "{err}"
    );
    // A lore document about something the canon lacks.
    let lore = crate::embedded!("kb/lore.toml").text;
    let bad = lore.replacen(
        "about = [\"abbey-of-saint-wren\"",
        "about = [\"greywood\"",
        1,
    );
    let path = pack(dir.path(), same, "lore.toml", &bad);
    let paths = ContentPaths {
        canon: canon.clone(),
        lore: Some(path),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    let line = table_line(lore, "id = \"the-drowned-abbey\"");
    assert!(
        err.contains(&format!(
            "lore.toml:{line}: document the-drowned-abbey: about \"greywood\""
        )),
        "{err}"
    );
    // A beat about someone from another world.
    let arcs = crate::embedded!("story/arcs.toml").text;
    let bad = arcs.replacen("about = [\"orla-saltash\"", "about = [\"odo-marrable\"", 1);
    let path = pack(dir.path(), same, "arcs.toml", &bad);
    let paths = ContentPaths {
        canon: canon.clone(),
        story: Some(path),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    let line = table_line(arcs, "id = \"the-harbourmasters-seal\"");
    assert!(err.contains(&format!("arcs.toml:{line}: arc the-breakwater-run: beat the-harbourmasters-seal: about \"odo-marrable\"")), "{err}");
    // A quest giver the canon knows but who has no NPC, and one it does not know at all.
    let quests = crate::embedded!("quest/quests.toml").text;
    let line = table_line(quests, "id = \"lanterns-on-the-mill-road\"");
    for giver in ["Queen Ysolde", "Iselde Marr"] {
        let bad = quests.replacen(
            "giver = \"Brenna Hale\"",
            &format!("giver = \"{giver}\""),
            1,
        );
        let path = pack(dir.path(), same, "quests.toml", &bad);
        let paths = ContentPaths {
            canon: canon.clone(),
            quests: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err().to_string();
        assert!(err.contains(&format!("quests.toml:{line}: quest lanterns-on-the-mill-road: giver \"{giver}\" is not the name of a canon person with an NPC")), "{err}");
        // The same quests beside the shipped canon are the operator's to reconcile.
        let mixed = ContentPaths {
            quests: paths.quests.clone(),
            ..ContentPaths::default()
        };
        GameContent::load(&mixed).unwrap();
    }
    // A catalog item that is neither a canon item nor says it is a service.
    let catalog = crate::embedded!("payment/catalog.toml").text;
    let line = table_line(catalog, "sku = \"stash_expansion\"");
    for (from, to, says) in [
        (
            "catalog_only = true\n",
            "",
            "stash_expansion: say which canon item it is",
        ),
        (
            "catalog_only = true\n",
            "canon = \"guildhall-chest\"\n",
            "stash_expansion: canon \"guildhall-chest\" is not an item of the canon",
        ),
    ] {
        let path = pack(
            dir.path(),
            same,
            "catalog.toml",
            &catalog.replacen(from, to, 1),
        );
        let paths = ContentPaths {
            canon: canon.clone(),
            price_catalog: Some(path),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err().to_string();
        assert!(
            err.contains(&format!("catalog.toml:{line}: {says}")),
            "{err}"
        );
    }
    // A region under another name than the canon's.
    let regions = crate::embedded!("world/regions.toml").text;
    let path = pack(
        dir.path(),
        same,
        "regions.toml",
        &regions.replacen("\"Ashfen Marsh\"", "\"Ashfen Mire\"", 1),
    );
    let paths = ContentPaths {
        canon: canon.clone(),
        regions: Some(path),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    assert!(
        err.contains(
            "region ashfen: named \"Ashfen Mire\", but the canon names it \"Ashfen Marsh\""
        ),
        "{err}"
    );
    // Prose naming a place of another world, by its line.
    let bad = quests.replacen(
        "the Tarrow windmill",
        "the Tarrow windmill past Highmoor",
        1,
    );
    let path = pack(dir.path(), same, "quests.toml", &bad);
    let paths = ContentPaths {
        canon: canon.clone(),
        quests: Some(path),
        ..ContentPaths::default()
    };
    let err = GameContent::load(&paths).unwrap_err().to_string();
    let line = table_line(quests, "the Tarrow windmill") + 1;
    assert!(
        err.contains(&format!(
            "quests.toml:{line}: \"Highmoor\" is not of this world"
        )),
        "{err}"
    );
}

#[test]
fn a_workflow_names_only_real_quests_and_items() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = crate::embedded!("orchestration/workflows.toml").text;
    let path = dir.path().join("workflows.toml");
    for (template, literal, says) in [
        (
            "sku = \"{{input.sku}}\"",
            "sku = \"no_such_thing\"",
            "names item \"no_such_thing\", which is not in the price catalog",
        ),
        (
            "questId = \"{{input.quest}}\"",
            "questId = \"no-such-quest\"",
            "names quest \"no-such-quest\", which does not exist",
        ),
    ] {
        let bad = shipped.replacen(template, literal, 1);
        std::fs::write(&path, bad).unwrap();
        let paths = ContentPaths {
            workflows: Some(path.clone()),
            ..ContentPaths::default()
        };
        let err = GameContent::load(&paths).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    let fine = shipped.replacen("sku = \"{{input.sku}}\"", "sku = \"lantern_oil\"", 1);
    std::fs::write(&path, fine).unwrap();
    GameContent::load(&ContentPaths {
        workflows: Some(path),
        ..ContentPaths::default()
    })
    .unwrap();
}
