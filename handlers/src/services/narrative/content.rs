//! The phrase tables (`handlers/data/narrative/phrases.toml`): loading and validation.
//!
//! Every line may say what moment it needs (`when`) and what it cannot stand (`not`), in the
//! words of the moment: weather conditions, seasons, periods of the day and temperature bands.
//! The checks at load make the promises Describe keeps: every moment has a line in every table
//! it reads, each region's own lines name one of its marks, and no line that another region can
//! use names them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::kit::clock::SEASONS;
use crate::kit::content::{Content, DataError, Embedded, Source, valid_slug};

/// The weather conditions, as weather names them.
pub const CONDITIONS: [&str; 6] = ["clear", "cloudy", "rain", "storm", "snow", "fog"];
/// The parts of the day, as the game clock names them (`kit::clock::PERIODS`).
pub const PERIODS: [&str; 5] = ["dawn", "morning", "afternoon", "evening", "night"];
/// The temperature bands, each with the temperature (degrees C) it runs up to, not included.
pub const BANDS: [(&str, f64); 5] = [
    ("freezing", 0.0),
    ("cold", 10.0),
    ("mild", 20.0),
    ("warm", 28.0),
    ("hot", f64::INFINITY),
];
const BAND_NAMES: [&str; 5] = ["freezing", "cold", "mild", "warm", "hot"];

/// The band a temperature falls in.
pub fn band(temperature_c: f64) -> &'static str {
    BANDS
        .iter()
        .find(|(_, below)| temperature_c < *below)
        .map_or("hot", |(name, _)| name)
}

/// What a description is built for: the weather, season, part of the day and temperature band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment<'a> {
    /// "clear", "rain", ...
    pub condition: &'a str,
    /// "spring", ...
    pub season: &'a str,
    /// "dawn", ...
    pub period: &'a str,
    /// "freezing", ...
    pub band: &'a str,
}

impl Moment<'_> {
    fn words(&self) -> [&str; 4] {
        [self.condition, self.season, self.period, self.band]
    }

    /// Every moment there is, as the checks and the tests walk them.
    pub fn all() -> Vec<Moment<'static>> {
        let mut out = Vec::new();
        for condition in CONDITIONS {
            for season in SEASONS {
                for period in PERIODS {
                    for band in BAND_NAMES {
                        out.push(Moment {
                            condition,
                            season,
                            period,
                            band,
                        });
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Moment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.words().join(", "))
    }
}

/// The tags a line may use, by kind: a line fits a moment when, for each kind its `when` names,
/// the moment's word is among them, and its `not` names none of the moment's words.
const KINDS: [&[&str]; 4] = [&CONDITIONS, &SEASONS, &PERIODS, &BAND_NAMES];

/// One sentence and the moments it fits.
#[derive(Debug, Clone, Default)]
pub struct Line {
    /// The sentence; `{region}` is the region's name.
    pub text: String,
    /// Needed: per kind, one of these.
    pub when: Vec<String>,
    /// Refused: any of these.
    pub not: Vec<String>,
    /// Its line in the file.
    pub line: usize,
}

impl Line {
    /// Whether the line may be said at `m`.
    pub fn fits(&self, m: &Moment<'_>) -> bool {
        let words = m.words();
        if self.not.iter().any(|t| words.contains(&t.as_str())) {
            return false;
        }
        KINDS.iter().zip(words).all(|(kind, word)| {
            let mut wanted = self
                .when
                .iter()
                .filter(|t| kind.contains(&t.as_str()))
                .peekable();
            wanted.peek().is_none() || wanted.any(|t| t == word)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineTable {
    text: String,
    #[serde(default)]
    when: Vec<String>,
    #[serde(default)]
    not: Vec<String>,
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Line;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sentence, or { text = \"...\", when = [...], not = [...] }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Line, E> {
                Ok(Line {
                    text: s.to_owned(),
                    ..Line::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Line, A::Error> {
                let t = LineTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(Line {
                    text: t.text,
                    when: t.when,
                    not: t.not,
                    line: 0,
                })
            }
        }
        d.deserialize_any(V)
    }
}

type Lines = Vec<Spanned<Line>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    perspective: BTreeMap<String, Spanned<OpeningsEntry>>,
    weather: BTreeMap<String, Spanned<LinesEntry>>,
    time: BTreeMap<String, Spanned<LinesEntry>>,
    season: BTreeMap<String, Spanned<LinesEntry>>,
    biome: BTreeMap<String, Spanned<BiomeEntry>>,
    region: BTreeMap<String, Spanned<RegionEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpeningsEntry {
    opening: Lines,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesEntry {
    lines: Lines,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BiomeEntry {
    land: Lines,
    sounds: Lines,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntry {
    marks: Vec<String>,
    features: Lines,
}

/// A region's own lines, and the words only its lines may say.
#[derive(Debug, Clone)]
pub struct RegionSet {
    /// Lowercase words or phrases of the region's own features ("the lake").
    pub marks: Vec<String>,
    /// Sentences about its own features, each naming a mark.
    pub features: Vec<Line>,
    line: usize,
}

/// The phrase tables.
#[derive(Debug, Clone)]
pub struct Phrases {
    pub(super) openings: BTreeMap<String, Vec<Line>>,
    pub(super) weather: BTreeMap<String, Vec<Line>>,
    pub(super) time: BTreeMap<String, Vec<Line>>,
    pub(super) season: BTreeMap<String, Vec<Line>>,
    pub(super) land: BTreeMap<String, Vec<Line>>,
    pub(super) sounds: BTreeMap<String, Vec<Line>>,
    pub(super) regions: BTreeMap<String, RegionSet>,
    file: String,
}

/// Which moments a table must have a line for.
type Cover<'a> = Option<&'a dyn Fn(&Moment<'_>) -> bool>;

/// Checks one table's lines (placeholders, length, tags, marks) and that every moment `cover`
/// selects has a line that fits; the lines, each with its line number.
fn table(
    src: &Source,
    span: Range<usize>,
    what: &str,
    lines: &[Spanned<Line>],
    cover: Cover<'_>,
    foreign: &[(&str, &[String])],
) -> Result<Vec<Line>, DataError> {
    if lines.is_empty() {
        return Err(src.error(Some(span), format!("{what}: at least one line")));
    }
    let mut out = Vec::new();
    for l in lines {
        let at = || Some(l.span());
        let mut line = l.get_ref().clone();
        line.line = src.error(at(), "").line;
        let rest = line.text.replace("{region}", "");
        if rest.contains('{') || rest.contains('}') {
            return Err(src.error(
                at(),
                format!(
                    "{what}: {:?} has a placeholder other than {{region}}",
                    line.text
                ),
            ));
        }
        if line.text.trim().is_empty() || line.text.len() > 400 {
            return Err(src.error(at(), format!("{what}: lines are 1 to 400 bytes")));
        }
        for tag in line.when.iter().chain(&line.not) {
            if !KINDS.iter().any(|k| k.contains(&tag.as_str())) {
                return Err(src.error(
                    at(),
                    format!(
                        "{what}: unknown tag {tag:?}; tags are conditions ({}), seasons ({}), \
                         periods ({}) or temperature bands ({})",
                        CONDITIONS.join(", "),
                        SEASONS.join(", "),
                        PERIODS.join(", "),
                        BAND_NAMES.join(", ")
                    ),
                ));
            }
            if line.when.contains(tag) && line.not.contains(tag) {
                return Err(src.error(at(), format!("{what}: {tag:?} is in both when and not")));
            }
        }
        let lower = rest.to_lowercase();
        for (region, marks) in foreign {
            if let Some(m) = marks.iter().find(|m| lower.contains(m.as_str())) {
                return Err(src.error(
                    at(),
                    format!("{what}: names {m:?}, which only [region.{region}] may say"),
                ));
            }
        }
        out.push(line);
    }
    if let Some(cover) = cover {
        for m in Moment::all().iter().filter(|m| cover(m)) {
            if !out.iter().any(|l| l.fits(m)) {
                return Err(src.error(
                    Some(span),
                    format!("{what}: no line fits {m}; add one whose tags allow it"),
                ));
            }
        }
    }
    Ok(out)
}

impl Phrases {
    /// Checks the phrases against the world's regions (`(id, biome)`): every biome and region has
    /// its lines, every [region.<id>] is a region of the world, and no line a region may use names
    /// another region's marks.
    pub fn check_world<'a>(
        &self,
        regions: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), DataError> {
        let err = |line: usize, message: String| DataError {
            file: self.file.clone(),
            line,
            message,
        };
        let regions: Vec<(&str, &str)> = regions.into_iter().collect();
        for (id, set) in &self.regions {
            if !regions.iter().any(|(r, _)| r == id) {
                return Err(err(set.line, format!("[region.{id}]: no such region")));
            }
        }
        for (id, biome) in &regions {
            if !self.land.contains_key(*biome) {
                return Err(err(
                    1,
                    format!("no [biome.{biome}] for a region of that biome"),
                ));
            }
            let Some(own) = self.regions.get(*id) else {
                return Err(err(1, format!("no [region.{id}] for region {id}")));
            };
            let usable = self.land[*biome]
                .iter()
                .chain(self.sounds.get(*biome).into_iter().flatten())
                .chain(&own.features);
            for line in usable {
                let lower = line.text.replace("{region}", "").to_lowercase();
                for (other, set) in self.regions.iter().filter(|(o, _)| o != id) {
                    if let Some(m) = set.marks.iter().find(|m| lower.contains(m.as_str())) {
                        return Err(err(
                            line.line,
                            format!(
                                "{id} may say this line, which names {m:?} of [region.{other}]"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The perspectives offered.
    pub fn perspectives(&self) -> impl Iterator<Item = &str> {
        self.openings.keys().map(String::as_str)
    }
}

fn keyed(
    src: &Source,
    kind: &str,
    entries: &BTreeMap<String, Spanned<LinesEntry>>,
    required: &[&'static str],
    marks: &[(&str, &[String])],
) -> Result<BTreeMap<String, Vec<Line>>, DataError> {
    for name in required {
        if !entries.contains_key(*name) {
            return Err(src.error(None, format!("[{kind}.{name}] is missing")));
        }
    }
    let mut out = BTreeMap::new();
    for (name, e) in entries {
        let Some(word) = required.iter().find(|r| **r == name.as_str()).copied() else {
            return Err(src.error(
                Some(e.span()),
                format!("[{kind}.{name}]: not one of {}", required.join(", ")),
            ));
        };
        let cover = move |m: &Moment<'_>| m.words().contains(&word);
        let lines = table(
            src,
            e.span(),
            &format!("{kind}.{name}"),
            &e.get_ref().lines,
            Some(&cover),
            marks,
        )?;
        out.insert(name.clone(), lines);
    }
    Ok(out)
}

impl Content for Phrases {
    const SHIPPED: Embedded = crate::embedded!("narrative/phrases.toml");

    /// Parses and validates one file: every condition, season and period has lines, every moment
    /// has an opening, a line of each and a feature of each region, tags are known words, and
    /// lines use no placeholder but `{region}`.
    fn parse(src: &Source) -> Result<Phrases, DataError> {
        let file: File = src.toml()?;
        let mut regions = BTreeMap::new();
        for (id, r) in &file.region {
            let what = format!("region.{id}");
            let e = r.get_ref();
            if !valid_slug(&id.replace('_', "-"), 64) {
                return Err(src.error(Some(r.span()), format!("[{what}]: not a region id")));
            }
            let marks: Vec<String> = e.marks.iter().map(|m| m.trim().to_lowercase()).collect();
            if marks.is_empty() || marks.iter().any(|m| m.len() < 3) {
                return Err(src.error(
                    Some(r.span()),
                    format!("{what}.marks: at least one, each of 3 letters or more"),
                ));
            }
            let features = table(src, r.span(), &what, &e.features, Some(&|_| true), &[])?;
            for (l, spanned) in features.iter().zip(&e.features) {
                let lower = l.text.replace("{region}", "").to_lowercase();
                if !marks.iter().any(|m| lower.contains(m.as_str())) {
                    return Err(src.error(
                        Some(spanned.span()),
                        format!(
                            "{what}: each feature names one of its marks ({})",
                            marks.join(", ")
                        ),
                    ));
                }
            }
            let line = src.error(Some(r.span()), "").line;
            regions.insert(
                id.clone(),
                RegionSet {
                    marks,
                    features,
                    line,
                },
            );
        }
        // Lines every region may say name no region's own features.
        let marks: Vec<(&str, &[String])> = regions
            .iter()
            .map(|(id, s): (&String, &RegionSet)| (id.as_str(), s.marks.as_slice()))
            .collect();
        let mut p = Phrases {
            openings: BTreeMap::new(),
            weather: keyed(src, "weather", &file.weather, &CONDITIONS, &marks)?,
            time: keyed(src, "time", &file.time, &PERIODS, &marks)?,
            season: keyed(src, "season", &file.season, &SEASONS, &marks)?,
            land: BTreeMap::new(),
            sounds: BTreeMap::new(),
            regions: BTreeMap::new(),
            file: src.file.clone(),
        };
        if file.perspective.is_empty() {
            return Err(src.error(None, "at least one [perspective.<name>]"));
        }
        for (name, o) in &file.perspective {
            let what = format!("perspective.{name}");
            let lines = table(
                src,
                o.span(),
                &what,
                &o.get_ref().opening,
                Some(&|_| true),
                &marks,
            )?;
            p.openings.insert(name.clone(), lines);
        }
        // A biome's lines are checked against the regions of that biome by `check_world`.
        for (name, b) in &file.biome {
            let e = b.get_ref();
            let land = table(
                src,
                b.span(),
                &format!("biome.{name}.land"),
                &e.land,
                None,
                &[],
            )?;
            let sounds = table(
                src,
                b.span(),
                &format!("biome.{name}.sounds"),
                &e.sounds,
                None,
                &[],
            )?;
            p.land.insert(name.clone(), land);
            p.sounds.insert(name.clone(), sounds);
        }
        p.regions = regions;
        Ok(p)
    }
}
