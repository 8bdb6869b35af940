//! Every data file the services load, loaded together, and the checks that span files (a quest's
//! reward item is in the catalog, an arc's region exists). Sits above the services: it imports
//! their content types; nothing below imports it.
//!
//! Where the files come from (`[content]`): the shipped ones, a content pack (a directory laid
//! out as `handlers/data/`: in `extend` mode each of its files is merged over the shipped one by
//! id, in `replace` mode it is the whole content), or per-file paths, which replace one file
//! each and win over the pack. `edge content check DIR` runs [`GameContent::load`] on a pack, so
//! every check made here is a check of the offline checker too.

use std::path::PathBuf;

use crate::kit::canon::{Canon, Kind};
use crate::kit::content::{Content as _, DataError, Source};
use crate::kit::l10n::{LocaleTexts, Texts};

mod canon_checks;
mod l10n_checks;
mod merge;
mod pack;

pub use l10n_checks::Coverage;
pub use merge::{ENTRY_IDS, id_key};

/// How a content pack is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackMode {
    /// Each file in the pack is merged over the shipped one by id (new ids added, the same id
    /// replacing the whole entry, shipped ids never removed); files it lacks stay shipped.
    #[default]
    Extend,
    /// The pack is the whole content: it has every file, and nothing shipped is used.
    Replace,
}

impl std::str::FromStr for PackMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "extend" => Ok(PackMode::Extend),
            "replace" => Ok(PackMode::Replace),
            other => Err(format!("{other:?} is not a pack mode (extend or replace)")),
        }
    }
}

/// Where the content comes from: the shipped files unless a pack or an operator's own file is
/// given (DESIGN section 11).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentPaths {
    /// A content pack: a directory laid out as `handlers/data/` (`quest/quests.toml`,
    /// `language/<locale>.ftl`, ...) [default: none].
    pub pack: Option<std::path::PathBuf>,
    /// How the pack is used: `extend` (merged over the shipped content by id) or `replace`
    /// (the whole content).
    pub mode: PackMode,
    /// The canon: the world's named things, which the other files refer to (TOML, as
    /// `handlers/data/canon.toml`) [default: shipped]. A file is checked against the canon when
    /// both are shipped (or from the pack) or both are the operator's per-file options.
    pub canon: Option<std::path::PathBuf>,
    /// The price catalog (TOML, as `handlers/data/payment/catalog.toml`) [default: shipped].
    pub price_catalog: Option<std::path::PathBuf>,
    /// The world's regions (TOML, as `handlers/data/world/regions.toml`) [default: shipped].
    pub regions: Option<std::path::PathBuf>,
    /// A directory with `npcs.toml` and `actions.toml` (as `handlers/data/npc/`) [default:
    /// shipped].
    pub npcs: Option<std::path::PathBuf>,
    /// The device tier table (TOML, as `handlers/data/perf/tiers.toml`) [default: shipped].
    pub perf: Option<std::path::PathBuf>,
    /// Weather chains and climates per biome (TOML, as `handlers/data/weather/biomes.toml`)
    /// [default: shipped].
    pub weather: Option<std::path::PathBuf>,
    /// The quests (TOML, as `handlers/data/quest/quests.toml`) [default: shipped].
    pub quests: Option<std::path::PathBuf>,
    /// The narrative's phrase tables (TOML, as `handlers/data/narrative/phrases.toml`)
    /// [default: shipped].
    pub narrative: Option<std::path::PathBuf>,
    /// A directory of `<locale>.ftl` files, with `en.ftl` (as `handlers/data/language/`)
    /// [default: shipped].
    pub language: Option<std::path::PathBuf>,
    /// The lore written to an empty store (TOML, as `handlers/data/kb/lore.toml`) [default:
    /// shipped].
    pub lore: Option<std::path::PathBuf>,
    /// The story arcs (TOML, as `handlers/data/story/arcs.toml`) [default: shipped].
    pub story: Option<std::path::PathBuf>,
    /// The game-event routing table (TOML, as `handlers/data/bodybroker/events.toml`)
    /// [default: shipped].
    pub game_events: Option<std::path::PathBuf>,
    /// The workflows (TOML, as `handlers/data/orchestration/workflows.toml`) [default: shipped].
    pub workflows: Option<std::path::PathBuf>,
}

/// Every data file the services load, loaded and validated.
#[derive(Debug)]
pub struct GameContent {
    /// The canon.
    pub canon: Canon,
    /// The price catalog.
    pub prices: crate::services::payment::Catalog,
    /// The world's regions.
    pub regions: crate::services::world::Regions,
    /// Weather per biome.
    pub climate: crate::services::weather::Climate,
    /// NPCs, archetypes, stimuli and actions.
    pub npcs: crate::services::npc::Catalog,
    /// The device tier table.
    pub perf: crate::services::perf::Table,
    /// The quests.
    pub quests: crate::services::quest::Quests,
    /// The narrative's phrase tables.
    pub phrases: crate::services::narrative::Phrases,
    /// The locales' messages.
    pub locales: crate::services::language::Locales,
    /// The shipped lore.
    pub lore: crate::services::kb::Lore,
    /// The story arcs.
    pub arcs: crate::services::story::Arcs,
    /// The game-event routing table.
    pub game_events: crate::services::bodybroker::GameEvents,
    /// The workflows.
    pub workflows: crate::services::orchestration::Workflows,
    /// How far each locale but English translates the content's text.
    pub translations: Vec<Coverage>,
}

impl GameContent {
    /// Loads every data file from where `paths` says (the shipped ones by default) and runs
    /// every check, within files and between them. The error holds every problem found, each
    /// naming the file and line it came from (a pack's file, or the shipped one under it).
    pub fn load(paths: &ContentPaths) -> Result<GameContent, Problems> {
        use crate::services::{
            bodybroker, kb, language, narrative, npc, orchestration, payment, perf, quest, story,
            weather, world,
        };
        let mut files = pack::Files::new(paths);
        let canon = files.load::<Canon>(paths.canon.as_deref());
        // The canon's own text is no prose to hold to it.
        files.prose.clear();
        // A file and the canon from the same hands are held to each other; an operator's own
        // file beside the shipped canon (or the reverse) is theirs to reconcile. A pack's files
        // and the canon it extends or replaces are the same hands.
        let with_canon = |p: &Option<PathBuf>| p.is_some() == paths.canon.is_some();
        let prices = files.load::<payment::Catalog>(paths.price_catalog.as_deref());
        let regions = files.load::<world::Regions>(paths.regions.as_deref());
        let quests = files.load::<quest::Quests>(paths.quests.as_deref());
        let game_events = files.load::<bodybroker::GameEvents>(paths.game_events.as_deref());
        let npc_file = |name: &str| paths.npcs.as_ref().map(|d| d.join(name));
        let npcs = match (
            files.source(npc::content::NPCS, npc_file("npcs.toml").as_deref()),
            files.source(npc::content::ACTIONS, npc_file("actions.toml").as_deref()),
        ) {
            (Some(n), Some(a)) => files.check(npc::Catalog::parse(&n, &a)),
            _ => None,
        };
        let workflows = files.load::<orchestration::Workflows>(paths.workflows.as_deref());
        let phrases = files.load::<narrative::Phrases>(paths.narrative.as_deref());
        let locales = files
            .locales(&language::SHIPPED, paths.language.as_deref())
            .and_then(|sources| {
                // Every problem of the game's messages, not only the first.
                for e in language::contract_problems(&sources) {
                    files.problem(e);
                }
                files.check(language::Locales::parse(sources))
            });
        // Content text's translations: parsed here, held to the content below.
        let mut translations = Vec::new();
        for (locale, src) in files
            .content_locales(&language::CONTENT_SHIPPED, paths.language.as_deref())
            .unwrap_or_default()
        {
            translations.extend(files.check(LocaleTexts::parse(&locale, &src)));
        }
        let lore = files.load::<kb::Lore>(paths.lore.as_deref());
        let arcs = files.load::<story::Arcs>(paths.story.as_deref());
        let climate = files.load::<weather::Climate>(paths.weather.as_deref());
        let perf = files.load::<perf::Table>(paths.perf.as_deref());
        files.unread();

        // Between files, where both loaded.
        if let (Some(quests), Some(prices), Some(regions)) = (&quests, &prices, &regions) {
            // Reward items are checked against the catalog when both come from the same hands:
            // an operator's own catalog beside the shipped quests is theirs to reconcile.
            let check_items = paths.price_catalog.is_none()
                || files.own(&quest::Quests::SHIPPED, paths.quests.as_deref());
            let r = quests.check_refs(
                |sku| !check_items || prices.get(sku).is_some(),
                |r| regions.get(r).is_some(),
            );
            files.check(r);
        }
        if let (Some(quests), Some(game_events), Some(npcs)) = (&quests, &game_events, &npcs) {
            let r = quests.check_events(
                |event| game_events.advances_quests(event),
                |npc| npcs.npcs.contains_key(npc),
            );
            files.check(r);
        }
        if let (Some(workflows), Some(quests), Some(prices)) = (&workflows, &quests, &prices) {
            let r =
                workflows.check_refs(|q| quests.get(q).is_some(), |sku| prices.get(sku).is_some());
            files.check(r);
        }
        if let (Some(phrases), Some(regions)) = (&phrases, &regions) {
            let r = phrases.check_world(
                regions
                    .list
                    .iter()
                    .map(|r| (r.region.id.as_str(), r.region.biome.as_str())),
            );
            files.check(r);
        }
        if let (Some(arcs), Some(quests), Some(regions)) = (&arcs, &quests, &regions) {
            let r = arcs.check_refs(|q| quests.get(q).is_some(), |r| regions.get(r).is_some());
            files.check(r);
        }
        if let (Some(npcs), Some(regions), Some(lore)) = (&npcs, &regions, &lore) {
            let r = npcs.check_refs(
                |r| regions.get(r).map(|r| (r.min, r.max)),
                |doc| lore.documents.iter().any(|d| d.id == doc),
            );
            files.check(r);
        }
        // Translations, against the content they translate: when both come from the same hands
        // (an operator's own quests beside the shipped translations are theirs to reconcile).
        let mut coverage = Vec::new();
        if let (Some(quests), Some(regions), Some(npcs), Some(prices), Some(locales)) =
            (&quests, &regions, &npcs, &prices, &locales)
        {
            let keys = l10n_checks::content_keys(quests, regions, npcs, prices);
            let own_content = [
                &paths.quests,
                &paths.regions,
                &paths.npcs,
                &paths.price_catalog,
            ]
            .iter()
            .any(|p| p.is_some());
            // Under a pack that extends the shipped content, a shipped translation of a text
            // the pack replaced (an objective it dropped) is the shipped file's, not a fault.
            let shipped = match (&paths.pack, paths.mode) {
                (Some(_), PackMode::Extend) => l10n_checks::shipped_keys(),
                _ => Default::default(),
            };
            let (problems, cov) =
                l10n_checks::check(&translations, &locales.list(), &keys, &shipped);
            if paths.language.is_some() || !own_content {
                for p in problems {
                    files.problem(p);
                }
            }
            coverage = cov;
        }
        // Every locale players may choose reads content text: where it has none, English,
        // counted as a fallback.
        let locales = locales.map(|l| {
            for locale in l.list() {
                if !translations.iter().any(|t| t.locale == locale) {
                    translations.push(LocaleTexts {
                        locale,
                        ..LocaleTexts::default()
                    });
                }
            }
            l.with_texts(Texts::new(translations))
        });
        // Against the canon.
        if let Some(canon) = &canon {
            if let Some(regions) = regions.as_ref().filter(|_| with_canon(&paths.regions)) {
                let r = regions.check_canon(|id| {
                    canon
                        .get(id)
                        .filter(|e| e.kind == Kind::Region)
                        .map(|e| e.name.clone())
                });
                files.check(r);
            }
            if let Some(prices) = prices.as_ref().filter(|_| with_canon(&paths.price_catalog)) {
                files.check(prices.check_canon(|id| canon.is(id, Kind::Item)));
            }
            if let Some(npcs) = npcs.as_ref().filter(|_| with_canon(&paths.npcs)) {
                files.check(canon_checks::check_npcs(npcs, canon));
            }
            if let (Some(quests), Some(npcs)) = (&quests, &npcs)
                && with_canon(&paths.quests)
            {
                let r = quests.check_canon(
                    |r| canon.is(r, Kind::Region),
                    |giver| {
                        canon
                            .person_named(giver)
                            .is_some_and(|p| npcs.npcs.values().any(|n| n.canon == p.id))
                    },
                );
                files.check(r);
            }
            if let Some(lore) = lore.as_ref().filter(|_| with_canon(&paths.lore)) {
                files.check(lore.check_canon(|id| canon.get(id).is_some()));
            }
            if let Some(arcs) = arcs.as_ref().filter(|_| with_canon(&paths.story)) {
                let r =
                    arcs.check_canon(|r| canon.is(r, Kind::Region), |id| canon.get(id).is_some());
                files.check(r);
            }
            if let Some(regions) = &regions {
                let regions_of_biome = |biome: &str| -> Vec<String> {
                    regions
                        .list
                        .iter()
                        .filter(|r| r.region.biome == biome)
                        .map(|r| r.canon.clone())
                        .collect()
                };
                let own_canon = paths.canon.is_some();
                let prose: Vec<Source> = std::mem::take(&mut files.prose)
                    .into_iter()
                    .filter(|(_, own)| *own == own_canon)
                    .map(|(src, _)| src)
                    .collect();
                for src in prose {
                    files.check(canon.check_prose(&src, &regions_of_biome));
                }
            }
        }
        match (
            canon,
            prices,
            regions,
            climate,
            npcs,
            perf,
            quests,
            phrases,
            locales,
            lore,
            arcs,
            game_events,
            workflows,
        ) {
            (
                Some(canon),
                Some(prices),
                Some(regions),
                Some(climate),
                Some(npcs),
                Some(perf),
                Some(quests),
                Some(phrases),
                Some(locales),
                Some(lore),
                Some(arcs),
                Some(game_events),
                Some(workflows),
            ) if files.problems.is_empty() => Ok(GameContent {
                canon,
                prices,
                regions,
                climate,
                npcs,
                perf,
                quests,
                phrases,
                locales,
                lore,
                arcs,
                game_events,
                workflows,
                translations: coverage,
            }),
            _ => Err(Problems(files.problems)),
        }
    }

    /// One line on what was loaded, for `edge content check`: with how far each locale
    /// translates the content's text ("de complete, ja: 12 of 180 content texts").
    pub fn summary(&self) -> String {
        let translated: Vec<String> = self
            .translations
            .iter()
            .map(|c| match c.complete {
                true => format!("{} complete", c.locale),
                false => format!("{}: {} of {} content texts", c.locale, c.translated, c.of),
            })
            .collect();
        format!(
            "{} quests, {} regions, {} NPCs, {} story arcs, {} lore documents, {} catalog items, \
             {} locales ({})",
            self.quests.list.len(),
            self.regions.list.len(),
            self.npcs.npcs.len(),
            self.arcs.list.len(),
            self.lore.documents.len(),
            self.prices.items().count(),
            self.locales.list().len(),
            translated.join(", ")
        )
    }
}

/// Every problem a load found, each `file:line: message`, one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<DataError>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod canon_tests;
#[cfg(test)]
mod l10n_tests;
#[cfg(test)]
mod served_tests;
#[cfg(test)]
mod tests;
