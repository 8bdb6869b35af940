//! End-to-end: content packs. `edge content check` passes the shipped content and reports every
//! problem of a broken pack at its file and line; an edge serving a pack serves what it adds
//! and overrides.

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

#[tokio::test]
async fn a_served_pack_adds_and_overrides_by_id() {
    let dir = pack(&[
        ("quest/quests.toml", QUESTS),
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
