//! End-to-end: content packs. `edge content check` passes the shipped content and reports every
//! problem of a broken pack at its file and line; an edge serving a pack serves what it adds
//! and overrides. Content text is served in the player's language.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_e2e::{Edge, edge_bin, scenarios};
use proto::rpc;
use serde_json::json;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../handlers/data")
}

fn pack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// `edge content check ARGS`: exit code, stdout, stderr.
fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(edge_bin())
        .args(["content", "check"])
        .args(args)
        .env_remove("EDGE_CONTENT_PACK")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A quest the pack adds, and a shipped one it rewrites whole.
const QUESTS: &str = r#"# The Tarrow millrace, for the Hearthvale watch.

[[quest]]
id = "briar-in-the-millrace"
title = "Briar in the Millrace"
description = "Every dawn the grate of the Tarrow millrace is choked with cut briar, and the wheel stands still while the barley waits. Oswin Tarrow wants the grate cleared before the carters lose another day."
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
id = "herring-and-hearsay"
title = "Herring and Rumour"
description = "Sefa Quill's herring barrels have been arriving in Gull's Rest too heavy and smelling of something other than fish. Pry a few open in her storehouse before the carters take them inland."
chain = "gulls-rest-smugglers"
region = "saltmere"
giver = "Sefa Quill"
min_level = 1
prerequisites = []
reward = { currency = 200, items = [], experience = 110 }

[[quest.objective]]
id = "inspect-barrels"
description = "Pry open the herring barrels in Sefa's storehouse"
target = 3
on = "object_interacted:herring-barrel"
"#;

#[test]
fn the_shipped_content_passes_the_checker_in_both_modes() {
    let dir = shipped();
    for mode in ["extend", "replace"] {
        let (code, out, err) = check(&[dir.to_str().unwrap(), "--mode", mode]);
        assert_eq!(code, 0, "{mode}: {out}{err}");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.contains("content is sound") && out.contains("quests"),
            "{out}"
        );
    }
}

#[test]
fn a_broken_pack_fails_with_every_problem_at_its_line() {
    let quests = QUESTS.replacen(
        "region = \"hearthvale\"",
        "region = \"the-drowned-moon\"",
        1,
    );
    let dir = pack(&[
        ("quest/quests.toml", &quests),
        ("world/regions.toml", "cell_size = \"wide\"\n"),
        (
            "language/de.ftl",
            "# Deutsch.\nlevel-up = Stufe { $stufe }!\n",
        ),
        ("quests.toml", "# in the wrong place\n"),
    ]);
    let (code, out, err) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    let at = |rel: &str, line: usize| format!("{}:{line}: ", dir.path().join(rel).display());
    for (rel, line, what) in [
        ("world/regions.toml", 1, "\"wide\""),
        ("language/de.ftl", 2, "$stufe"),
        ("quests.toml", 1, "no service reads this file"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&at(rel, line)) && l.contains(what)),
            "no {}...{what} in\n{err}",
            at(rel, line)
        );
    }
    // The region is checked against the regions that loaded; with the pack's broken, the quest
    // is not judged on them. Fixed, the quest's own line is named.
    let dir2 = pack(&[("quest/quests.toml", &quests)]);
    let (code, _, err2) = check(&[dir2.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let file = dir2.path().join("quest/quests.toml").display().to_string();
    assert!(
        err2.lines().any(|l| l.starts_with(&format!("{file}:3: ")) || l.starts_with(&format!("{file}:4: "))),
        "{err2}"
    );
    assert!(
        err.trim_end().ends_with(&format!(
            "problem(s) in the content pack {}",
            dir.path().display()
        )),
        "{err}"
    );
    // A replacing pack must be whole.
    let (code, _, err) = check(&[dir2.path().to_str().unwrap(), "--mode", "replace"]);
    assert_eq!(code, 1);
    assert!(err.contains("payment/catalog.toml:1: missing"), "{err}");
}

/// The pack's new quest in the locales the shipped content marks complete (a pack that adds
/// text translates it there too).
const QUEST_DE: &str = "\
quest-briar-in-the-millrace-title = Dornen im Mühlgraben
quest-briar-in-the-millrace-description = Jeden Morgen ist das Gitter des Tarrow-Mühlgrabens mit abgeschnittenen Dornenranken verstopft, und das Rad steht still, während die Gerste wartet. Oswin Tarrow will das Gitter freigeräumt sehen, bevor die Fuhrleute noch einen Tag verlieren.
quest-briar-in-the-millrace-objective-clear-the-grate = Räume die Dornen vom Gitter des Mühlgrabens
";
const QUEST_FR: &str = "\
quest-briar-in-the-millrace-title = Des ronces dans le bief
quest-briar-in-the-millrace-description = Chaque matin, la grille du bief du moulin de Tarrow est obstruée de ronces coupées, et la roue reste immobile pendant que l'orge attend. Oswin Tarrow veut que la grille soit dégagée avant que les charretiers ne perdent une journée de plus.
quest-briar-in-the-millrace-objective-clear-the-grate = Dégager les ronces de la grille du bief
";

#[tokio::test]
async fn a_served_pack_adds_and_overrides_by_id() {
    let dir = pack(&[
        ("quest/quests.toml", QUESTS),
        ("language/content/de.ftl", QUEST_DE),
        ("language/content/fr.ftl", QUEST_FR),
        (
            "language/en.ftl",
            "level-up = The watch salutes you: level { $level }!\n",
        ),
    ]);
    let edge = Edge::start(&[
        "--rate-limit",
        "false",
        "--content-pack",
        dir.path().to_str().unwrap(),
    ]);
    let c = edge.client();
    let me = scenarios::login(&c, "packer").await;
    let listing = c
        .call(rpc::quest::LIST_AVAILABLE.path, Some(&me.access), json!({}))
        .await
        .json();
    let quests = listing["quests"].as_array().unwrap();
    let title = |id: &str| {
        quests
            .iter()
            .find(|q| q["id"] == id)
            .map(|q| q["title"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        title("briar-in-the-millrace").as_deref(),
        Some("Briar in the Millrace"),
        "{listing}"
    );
    assert_eq!(
        title("herring-and-hearsay").as_deref(),
        Some("Herring and Rumour")
    );
    // Shipped quests the pack leaves alone are still there.
    assert!(title("lanterns-on-the-mill-road").is_some(), "{listing}");
    let said = c
        .call(
            rpc::language::LOCALIZE.path,
            Some(&me.access),
            json!({"messageId": "level-up", "locale": "en", "args": {"level": 3}}),
        )
        .await
        .json();
    assert_eq!(said["text"], "The watch salutes you: level 3!");
    let german = c
        .call(
            rpc::language::LOCALIZE.path,
            Some(&me.access),
            json!({"messageId": "level-up", "locale": "de", "args": {"level": 3}}),
        )
        .await
        .json();
    assert_eq!(german["locale"], "de", "{german}");
}

/// A player who chooses German in their settings reads their quest log, the catalog and the
/// facade's view of their region in German; one who chose nothing reads English; a text a locale
/// lacks is English, counted in `/metrics`.
#[tokio::test]
async fn a_player_reads_the_content_in_their_language() {
    let edge = Edge::start(&["--rate-limit", "false"]);
    let c = edge.client();
    let me = scenarios::login(&c, "leserin").await;
    let other = scenarios::login(&c, "reader").await;
    let r = c
        .call_with(
            rpc::settings::UPDATE.path,
            Some(&me.access),
            &[("idempotency-key", "lang-de")],
            json!({"patch": {"language": "de-DE"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for who in [&me, &other] {
        let r = c
            .call_with(
                rpc::quest::ACCEPT.path,
                Some(&who.access),
                &[("idempotency-key", "accept-lanterns")],
                json!({"questId": "lanterns-on-the-mill-road"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let log = c
        .call(rpc::quest::GET_LOG.path, Some(&me.access), json!({}))
        .await
        .json();
    assert_eq!(log["locale"], "de", "{log}");
    assert_eq!(log["quests"][0]["quest"]["title"], "Laternen am Mühlweg");
    assert_eq!(
        log["quests"][0]["quest"]["objectives"][0]["description"],
        "Entzünde die Laternen am Mühlweg neu"
    );
    let catalog = c
        .call(rpc::payment::LIST_CATALOG.path, Some(&me.access), json!({}))
        .await
        .json();
    assert_eq!(catalog["locale"], "de", "{catalog}");
    let name = |catalog: &serde_json::Value, sku: &str| {
        catalog["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["sku"] == sku)
            .map(|i| i["name"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        name(&catalog, "lantern_oil").as_deref(),
        Some("Flasche Lampenöl")
    );
    let view = c
        .call(
            rpc::bodybroker::BOOTSTRAP.path,
            Some(&me.access),
            json!({"regionId": "ashfen"}),
        )
        .await
        .json();
    assert_eq!(view["region"]["name"], "Ashfen-Sümpfe", "{view}");
    assert_eq!(
        view["activeQuests"][0]["quest"]["title"],
        "Laternen am Mühlweg"
    );

    // A player who chose nothing reads English; their Accept-Language is theirs alone.
    let log = c
        .call(rpc::quest::GET_LOG.path, Some(&other.access), json!({}))
        .await
        .json();
    assert_eq!(log["locale"], "en");
    assert_eq!(
        log["quests"][0]["quest"]["title"],
        "Lanterns on the Mill Road"
    );
    let japanese = c
        .call_with(
            rpc::payment::LIST_CATALOG.path,
            Some(&other.access),
            &[("accept-language", "ja")],
            json!({}),
        )
        .await
        .json();
    assert_eq!(japanese["locale"], "ja", "{japanese}");
    assert_eq!(
        name(&japanese, "lantern_oil").as_deref(),
        Some("Flask of Lantern Oil")
    );
    let metrics = edge.admin_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("edge_content_fallback_total{")
                && l.contains("locale=\"ja\"")
                && l.contains("kind=\"item\"")),
        "{metrics}"
    );
}
