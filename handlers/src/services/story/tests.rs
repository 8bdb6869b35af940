use super::*;
use crate::kit::content::Content as _;
use crate::kit::content::Source;

const EMBEDDED: &str = crate::embedded!("story/arcs.toml").text;

#[test]
fn the_shipped_arcs_load_and_name_real_quests_and_regions() {
    let arcs = Arcs::embedded().unwrap();
    assert!(arcs.list.len() >= 3);
    let quests = Quests::embedded().unwrap();
    let regions = crate::services::world::Regions::embedded().unwrap();
    arcs.check_refs(|q| quests.get(q).is_some(), |r| regions.get(r).is_some())
        .unwrap();
    for a in &arcs.list {
        assert!(
            a.beats.values().filter(|b| b.end).count() >= 2,
            "{} has two endings",
            a.id
        );
    }
}

#[test]
fn bad_arcs_name_the_line() {
    let unreachable = format!(
        "{EMBEDDED}\n[[arc.beat]]\nid = \"orphan\"\nchapter = 9\ntext = \"Nobody comes here.\"\nend = true\n"
    );
    let e = Arcs::parse(&Source::embedded("arcs.toml", &unreachable)).unwrap_err();
    assert!(e.message.contains("orphan"), "{e}");
    assert!(e.line > 300, "{e}");
    let dangling = EMBEDDED.replacen("next = \"the-reed-island\"", "next = \"nowhere\"", 1);
    let e = Arcs::parse(&Source::embedded("arcs.toml", &dangling)).unwrap_err();
    assert!(e.message.contains("nowhere"), "{e}");
    let arcs = Arcs::embedded().unwrap();
    let e = arcs
        .check_refs(|q| q != "the-bell-of-saint-wren", |_| true)
        .unwrap_err();
    assert!(e.message.contains("the-bell-of-saint-wren"), "{e}");
}

#[test]
fn seeds_are_stable() {
    assert_eq!(seed(&["a", "b"]), seed(&["a", "b"]));
    assert_ne!(seed(&["ab", ""]), seed(&["a", "b"]));
}
