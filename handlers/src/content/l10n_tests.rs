//! Content text's translations, as the content check holds them (`l10n_checks.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;

/// An extending pack in a temporary directory: `(path under the pack, text)`.
fn pack(files: &[(&str, &str)]) -> (tempfile::TempDir, ContentPaths) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let paths = ContentPaths {
        pack: Some(dir.path().to_path_buf()),
        ..ContentPaths::default()
    };
    (dir, paths)
}

fn problems(paths: &ContentPaths) -> String {
    GameContent::load(paths).unwrap_err().to_string()
}

fn at(dir: &Path, rel: &str, line: usize) -> String {
    format!("{}:{line}: ", dir.join(rel).display())
}

#[test]
fn the_shipped_content_is_complete_in_german_and_french() {
    let content = GameContent::load(&ContentPaths::default()).unwrap();
    let summary = content.summary();
    assert!(
        summary.contains("de complete, fr complete, ja: 0 of "),
        "{summary}"
    );
    assert!(summary.contains("pl: 0 of "), "{summary}");
    let texts = content.locales.texts();
    let de = texts.reader("de");
    assert_eq!(
        de.text("quest-the-briar-mark-title", "The Briar Mark"),
        "Das Dornenmal"
    );
    assert_eq!(
        texts
            .reader("fr-CA")
            .text("region-ashfen-name", "Ashfen Marsh"),
        "Marais d'Ashfen"
    );
    assert_eq!(texts.fallbacks("de", "quest"), 0);
}

/// No English left behind: a German or French text is never the English one, but for names
/// that stay (a region's own name).
#[test]
fn no_translation_is_the_english_text() {
    let content = GameContent::load(&ContentPaths::default()).unwrap();
    let keys = l10n_checks::content_keys(
        &content.quests,
        &content.regions,
        &content.npcs,
        &content.prices,
    );
    let texts = content.locales.texts();
    for locale in ["de", "fr"] {
        let t = texts.get(locale).unwrap();
        for (key, english) in &keys {
            let Some(said) = t.texts.get(key) else {
                assert!(crate::kit::l10n::optional(key), "{locale} lacks {key}");
                continue;
            };
            let stays = ["region-hearthvale-name", "region-thornwood-name"];
            assert!(
                said != english || stays.contains(&key.as_str()),
                "{locale} {key} is the English text"
            );
        }
    }
}

#[test]
fn a_complete_locale_missing_a_text_fails_at_its_mark() {
    // The pack's German is marked complete and says nothing of a quest the pack adds.
    let quest = r#"
[[quest]]
id = "briar-in-the-millrace"
title = "Briar in the Millrace"
description = "Every dawn the grate of the Tarrow millrace is choked with cut briar. Oswin Tarrow wants it cleared."
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
"#;
    let (dir, paths) = pack(&[("quest/quests.toml", quest)]);
    let err = problems(&paths);
    // The shipped German file is complete: its mark's line is named, and the text.
    assert!(
        err.lines().any(
            |l| l.starts_with("handlers/data/language/content/de.ftl:4: ")
                && l.contains("quest-briar-in-the-millrace-title")
        ),
        "{err}"
    );
    assert!(
        err.contains("fr is marked complete but does not translate quest-briar-in-the-millrace-objective-clear-the-grate"),
        "{err}"
    );
    drop(dir);
}

#[test]
fn a_translation_of_no_content_fails_at_its_line() {
    // A misspelt quest id, and an objective the quest does not have.
    let de = "# Ergänzungen\n\nquest-the-briar-mrak-title = Das Dornenmal\nquest-the-briar-mark-objective-light-lanterns = Entzünde die Laternen\n";
    let (dir, paths) = pack(&[("language/content/de.ftl", de)]);
    let err = problems(&paths);
    let file = "language/content/de.ftl";
    assert!(
        err.lines().any(|l| l.starts_with(&at(dir.path(), file, 3))
            && l.contains("quest-the-briar-mrak-title translates no content text")),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with(&at(dir.path(), file, 4))),
        "{err}"
    );
}

#[test]
fn broken_fluent_syntax_fails_at_its_line() {
    let de = "# Ergänzungen\n\nquest-the-briar-mark-title = Das { Dornenmal\n";
    let (dir, paths) = pack(&[("language/content/de.ftl", de)]);
    let err = problems(&paths);
    assert!(
        err.lines().any(
            |l| l.starts_with(&at(dir.path(), "language/content/de.ftl", 3))
                && l.contains("Fluent syntax")
        ),
        "{err}"
    );
    // A variable is no content text either.
    let de = "quest-the-briar-mark-title = Das Mal von { $who }\n";
    let (dir, paths) = pack(&[("language/content/de.ftl", de)]);
    let err = problems(&paths);
    assert!(
        err.lines().any(
            |l| l.starts_with(&at(dir.path(), "language/content/de.ftl", 1))
                && l.contains("no variables")
        ),
        "{err}"
    );
}

#[test]
fn a_pack_overrides_a_translation_and_reports_an_incomplete_locale() {
    let pl = "# Polski, w toku\nregion-ashfen-name = Moczary Ashfen\nregion-ashfen-description = Czarna woda, trzcinowe wyspy i zatopione opactwo Świętego Wrena.\n";
    let de = "quest-the-briar-mark-title = Das Mal der Dornen\n";
    let (_dir, paths) = pack(&[
        ("language/content/pl.ftl", pl),
        ("language/content/de.ftl", de),
    ]);
    let content = GameContent::load(&paths).unwrap_or_else(|e| panic!("{e}"));
    let summary = content.summary();
    assert!(summary.contains("pl: 2 of "), "{summary}");
    // The pack's German is merged over the shipped file, which keeps it complete.
    assert!(summary.contains("de complete"), "{summary}");
    let texts = content.locales.texts();
    assert_eq!(
        texts.reader("de").text("quest-the-briar-mark-title", "x"),
        "Das Mal der Dornen"
    );
    assert_eq!(
        texts
            .reader("pl")
            .text("region-ashfen-name", "Ashfen Marsh"),
        "Moczary Ashfen"
    );
    // A content file for a language players cannot choose is refused.
    let (dir, paths) = pack(&[("language/content/xx.ftl", "region-ashfen-name = Ashfen\n")]);
    let err = problems(&paths);
    assert!(
        err.lines()
            .any(|l| l.starts_with(&at(dir.path(), "language/content/xx.ftl", 1))),
        "{err}"
    );
}

/// The canon's known-wrong names are looked for in translations too.
#[test]
fn a_translation_is_held_to_the_canon() {
    let de = "region-ashfen-description = Schwarzes Wasser und die Ruinen von Greywood.\n";
    let (dir, paths) = pack(&[("language/content/de.ftl", de)]);
    let err = problems(&paths);
    assert!(
        err.lines().any(
            |l| l.starts_with(&at(dir.path(), "language/content/de.ftl", 1))
                && l.contains("Greywood")
        ),
        "{err}"
    );
}
