//! Content text's translations (`language/content/<locale>.ftl`) held to the content: every key
//! names a text some content has (a renamed quest leaves its old keys behind, and they are
//! refused), and a locale whose file says `# status: complete` translates every text players
//! read. See [`crate::kit::l10n`] for the keys and how they are served.

use std::collections::BTreeSet;

use crate::kit::content::DataError;
use crate::kit::l10n::{LocaleTexts, optional};
use crate::services::{npc, payment, quest, world};

/// Every content text players read, by its key, with the English: quests (title,
/// description, each objective by its id), regions (name, description), NPCs (name, and the
/// public first sentence of the persona), catalog items (name, description).
pub(super) fn content_keys(
    quests: &quest::Quests,
    regions: &world::Regions,
    npcs: &npc::Catalog,
    prices: &payment::Catalog,
) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for q in &quests.list {
        let d = &q.definition;
        keys.push((format!("quest-{}-title", d.id), d.title.clone()));
        keys.push((format!("quest-{}-description", d.id), d.description.clone()));
        for o in &d.objectives {
            keys.push((
                format!("quest-{}-objective-{}", d.id, o.id),
                o.description.clone(),
            ));
        }
    }
    for r in &regions.list {
        let r = &r.region;
        keys.push((format!("region-{}-name", r.id), r.name.clone()));
        keys.push((
            format!("region-{}-description", r.id),
            r.description.clone(),
        ));
    }
    for n in npcs.npcs.values() {
        keys.push((format!("npc-{}-name", n.id), n.name.clone()));
        keys.push((
            format!("npc-{}-description", n.id),
            n.description().to_owned(),
        ));
    }
    let mut items: Vec<_> = prices.items().collect();
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    for i in items {
        keys.push((format!("item-{}-name", i.sku), i.name.clone()));
        keys.push((format!("item-{}-description", i.sku), i.description.clone()));
    }
    keys.retain(|(_, english)| !english.trim().is_empty());
    keys
}

/// How far one locale's translation is: texts translated, of how many a complete one has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The locale.
    pub locale: String,
    /// Whether its file says it is complete (and so, having loaded, it is).
    pub complete: bool,
    /// Required texts it translates.
    pub translated: usize,
    /// Required texts there are (an NPC's name may stay as it is, so it is not counted).
    pub of: usize,
}

/// Checks every locale's translations against the content's `keys`: a key no content has is
/// refused at its line, unless `also_known` (the shipped content's keys, under a pack that
/// extends it: a shipped translation of a text the pack replaced is no fault of the pack's); a
/// complete locale missing a text is refused at its mark, naming the text. `locales` lists
/// every locale players may choose (`en` included, which is the content itself).
pub(super) fn check(
    translations: &[LocaleTexts],
    locales: &[String],
    keys: &[(String, String)],
    also_known: &BTreeSet<String>,
) -> (Vec<DataError>, Vec<Coverage>) {
    let known: BTreeSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let required: Vec<&(String, String)> = keys.iter().filter(|(k, _)| !optional(k)).collect();
    let mut problems = Vec::new();
    for t in translations {
        if !locales.contains(&t.locale) {
            problems.push(DataError {
                file: t.file.clone(),
                line: 1,
                message: format!(
                    "no language/{}.ftl: players cannot choose {:?}, so its content text is never read",
                    t.locale, t.locale
                ),
            });
        }
        for (key, line) in &t.lines {
            if !known.contains(key.as_str()) && !also_known.contains(key) {
                problems.push(DataError {
                    file: t.file.clone(),
                    line: *line,
                    message: format!(
                        "{key} translates no content text (a renamed or removed quest, objective, \
                         region, NPC or item? keys are quest-<id>-title|description|objective-<id>, \
                         region-<id>-name|description, npc-<id>-name|description, \
                         item-<sku>-name|description)"
                    ),
                });
            }
        }
        if t.complete {
            let mark = t.mark_line;
            for (key, english) in &required {
                if !t.texts.contains_key(key.as_str()) {
                    problems.push(DataError {
                        file: t.file.clone(),
                        line: mark,
                        message: format!(
                            "{} is marked complete but does not translate {key} ({english:?})",
                            t.locale
                        ),
                    });
                }
            }
        }
    }
    let mut coverage: Vec<Coverage> = locales
        .iter()
        .filter(|l| *l != crate::kit::l10n::DEFAULT)
        .map(|l| {
            let t = translations.iter().find(|t| &t.locale == l);
            Coverage {
                locale: l.clone(),
                complete: t.is_some_and(|t| t.complete),
                translated: t.map_or(0, |t| {
                    required
                        .iter()
                        .filter(|(k, _)| t.texts.contains_key(k.as_str()))
                        .count()
                }),
                of: required.len(),
            }
        })
        .collect();
    coverage.sort_by(|a, b| a.locale.cmp(&b.locale));
    (problems, coverage)
}

/// The shipped content's keys.
pub(super) fn shipped_keys() -> BTreeSet<String> {
    use crate::kit::content::Content;
    let quests = quest::Quests::parse(&quest::Quests::SHIPPED.source());
    let regions = world::Regions::parse(&world::Regions::SHIPPED.source());
    let npcs = npc::Catalog::parse(
        &npc::content::NPCS.source(),
        &npc::content::ACTIONS.source(),
    );
    let prices = payment::Catalog::parse(&payment::Catalog::SHIPPED.source());
    match (quests, regions, npcs, prices) {
        (Ok(q), Ok(r), Ok(n), Ok(p)) => content_keys(&q, &r, &n, &p)
            .into_iter()
            .map(|(k, _)| k)
            .collect(),
        // The shipped content always loads (a test says so).
        _ => BTreeSet::new(),
    }
}
