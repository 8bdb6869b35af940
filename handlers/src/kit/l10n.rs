//! Content text in the reader's language: quest, objective, region, NPC and item text.
//!
//! English is the source: designers write it in the content TOML, in one place. Translations are
//! Fluent files keyed by content id (`handlers/data/language/content/<locale>.ftl`:
//! `quest-<id>-title`, `region-<id>-name`, `item-<sku>-name`, ...), one text per key, no
//! variables. A file whose head says `# status: complete` is held to every key by the content
//! check (`crate::content`); the others say how far they are. At run time a text a locale lacks
//! is the English one, counted in `edge_content_fallback_total{locale,kind}`: a call never fails
//! for a translation.
//!
//! Kit: imports `proto` and other kit modules only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use fluent_bundle::{FluentBundle, FluentResource};
use proto::aicore::settings::v1::{GetRequest, SettingsServiceClient};
use unic_langid::LanguageIdentifier;

use crate::kit::calls::Caller;
use crate::kit::content::{DataError, Source};
use crate::kit::context::{Context, Principal};

/// The source locale: the content TOML's own text.
pub const DEFAULT: &str = "en";
/// Longest language tag looked at; a longer one is nobody's language and reads as English.
pub const MAX_TAG: usize = 35;
/// The services that assemble a player's view from other services' answers: their calls carry
/// the player's language, settled once, as `Accept-Language`.
pub const VIEW_CALLERS: &[&str] = &["bodybroker"];
/// The head line that marks a locale's content translations complete.
pub const COMPLETE_MARK: &str = "# status: complete";

/// One locale's translations of content text.
#[derive(Debug, Clone, Default)]
pub struct LocaleTexts {
    /// Its tag (`de`).
    pub locale: String,
    /// Its file declares itself complete ([`COMPLETE_MARK`]).
    pub complete: bool,
    /// The line of that mark (1 without one).
    pub mark_line: usize,
    /// Its file, as errors name it.
    pub file: String,
    /// Each key's text.
    pub texts: HashMap<String, String>,
    /// Each key's line in the file.
    pub lines: BTreeMap<String, usize>,
}

/// Whether a key may be left out even by a complete locale: an NPC's name is a proper name,
/// which usually stays as it is.
pub fn optional(key: &str) -> bool {
    key.starts_with("npc-") && key.ends_with("-name")
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl LocaleTexts {
    /// Parses `<locale>.ftl`: Fluent syntax, every message a value without variables, no key
    /// twice. Which keys content has is the content check's (`crate::content`).
    pub fn parse(locale: &str, src: &Source) -> Result<LocaleTexts, DataError> {
        let at = |line: usize, message: String| DataError {
            file: src.file.clone(),
            line,
            message,
        };
        let langid: LanguageIdentifier = locale
            .parse()
            .map_err(|_| at(1, format!("{locale:?} is not a language tag")))?;
        let resource = FluentResource::try_new(src.text.clone()).map_err(|(_, errors)| {
            let first = errors.first();
            at(
                // The broken entry's first line (the parser stops further on).
                first.map_or(1, |e| {
                    line_of(&src.text, e.slice.as_ref().map_or(e.pos.start, |s| s.start))
                }),
                format!("Fluent syntax: {:?}", first.map(|e| &e.kind)),
            )
        })?;
        let mut lines = BTreeMap::new();
        let mut complete = false;
        let mut mark_line = 1;
        let mut in_head = true;
        for (i, l) in src.text.lines().enumerate() {
            if in_head && l.trim_end() == COMPLETE_MARK {
                complete = true;
                mark_line = i + 1;
            }
            let Some((id, _)) = l.split_once('=') else {
                continue;
            };
            if l.starts_with(|c: char| c.is_ascii_alphabetic()) {
                in_head = false;
                let id = id.trim().to_owned();
                if lines.insert(id.clone(), i + 1).is_some() {
                    return Err(at(i + 1, format!("{id} is translated twice")));
                }
            }
        }
        let mut bundle = FluentBundle::new(vec![langid]);
        bundle.set_use_isolating(false);
        bundle
            .add_resource(resource)
            .map_err(|e| at(1, format!("{} keys defined twice", e.len())))?;
        let mut texts = HashMap::new();
        for (id, line) in &lines {
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                return Err(at(*line, format!("{id} has no text")));
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, None, &mut errors);
            if let Some(e) = errors.first() {
                return Err(at(
                    *line,
                    format!("{id}: {e} (content text takes no variables)"),
                ));
            }
            if text.trim().is_empty() {
                return Err(at(*line, format!("{id} is empty")));
            }
            if text.chars().any(|c| c.is_control() && c != '\n') {
                return Err(at(*line, format!("{id} holds a control character")));
            }
            texts.insert(id.clone(), text.into_owned());
        }
        Ok(LocaleTexts {
            locale: locale.to_owned(),
            complete,
            mark_line,
            file: src.file.clone(),
            texts,
            lines,
        })
    }
}

/// Every locale's content translations, and how often a reader got English instead.
#[derive(Debug, Default)]
pub struct Texts {
    /// The locales players may read, but English (which is the content itself).
    locales: Vec<LocaleTexts>,
    /// Fallbacks to English by (locale, kind), as the metric counts them.
    fallbacks: Mutex<BTreeMap<(String, &'static str), u64>>,
}

/// The metric's `kind`: what a key names.
fn kind(key: &str) -> &'static str {
    match key.split('-').next() {
        Some("quest") => "quest",
        Some("region") => "region",
        Some("npc") => "npc",
        Some("item") => "item",
        _ => "other",
    }
}

impl Texts {
    /// Over `locales` (English, the source, is not one of them).
    pub fn new(locales: Vec<LocaleTexts>) -> Texts {
        Texts {
            locales: locales
                .into_iter()
                .filter(|l| l.locale != DEFAULT)
                .collect(),
            fallbacks: Mutex::default(),
        }
    }

    /// The locales, English first.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        std::iter::once(DEFAULT).chain(self.locales.iter().map(|l| l.locale.as_str()))
    }

    /// One locale's translations.
    pub fn get(&self, locale: &str) -> Option<&LocaleTexts> {
        self.locales.iter().find(|l| l.locale == locale)
    }

    /// The locale `tag` names (`de-AT` is `de`), else English. A tag too long to be one, or
    /// not one at all (`../`), is English.
    pub fn negotiate(&self, tag: &str) -> &str {
        let tag = tag.trim();
        if tag.is_empty() || tag.len() > MAX_TAG {
            return DEFAULT;
        }
        let language = tag
            .parse::<LanguageIdentifier>()
            .ok()
            .map(|l| l.language.as_str().to_owned());
        self.locales
            .iter()
            .map(|l| l.locale.as_str())
            .find(|l| l.eq_ignore_ascii_case(tag) || language.as_deref() == Some(*l))
            .unwrap_or(DEFAULT)
    }

    /// The first range of an `Accept-Language` value a locale matches (weights aside: a
    /// client sends its first choice first), else English.
    fn by_header(&self, header: &str) -> &str {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .map(|tag| self.negotiate(tag))
            .find(|l| *l != DEFAULT)
            .unwrap_or(DEFAULT)
    }

    /// A reader in `locale` (a loaded one, else English).
    pub fn reader(&self, locale: &str) -> Reader<'_> {
        Reader {
            texts: self,
            locale: self.get(self.negotiate(locale)),
        }
    }

    /// The reader of the player a call is for: `player` (the request's, already authorized)
    /// or the calling player. Their settings' language when they chose one (one read of their
    /// settings), else the request's `Accept-Language`, else English. Nothing here fails the
    /// call: an unreadable setting is English.
    ///
    /// A call from another service is English, the source its models are grounded in, unless
    /// the caller is one of [`VIEW_CALLERS`], which settle the player's language once for a
    /// whole view and pass it on as `Accept-Language`.
    pub async fn reader_for(
        &self,
        ctx: &Context,
        settings: &SettingsServiceClient<Caller>,
        player: Option<&str>,
    ) -> Reader<'_> {
        if self.locales.is_empty() {
            return self.reader(DEFAULT);
        }
        if let Some(caller) = ctx.chain.last() {
            return match &ctx.accept_language {
                Some(header) if VIEW_CALLERS.contains(caller) => {
                    self.reader(self.by_header(header))
                }
                _ => self.reader(DEFAULT),
            };
        }
        let own = match &ctx.principal {
            Some(Principal::Player { player_id }) => Some(player_id.as_str()),
            _ => None,
        };
        if let Some(player_id) = player.or(own) {
            let got = settings
                .get(
                    ctx.outgoing(),
                    GetRequest {
                        player_id: player_id.to_owned(),
                    },
                )
                .await;
            match got {
                // Version 0: the defaults, which the player never chose.
                Ok(s) if s.version > 0 => {
                    if let Some(s) = s.settings {
                        return self.reader(&s.language);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "settings unreadable; content in the request's language")
                }
            }
        }
        match &ctx.accept_language {
            Some(header) => self.reader(self.by_header(header)),
            None => self.reader(DEFAULT),
        }
    }

    /// How often `locale` readers got English for a `kind` of text.
    pub fn fallbacks(&self, locale: &str, kind: &str) -> u64 {
        self.fallbacks.lock().map_or(0, |f| {
            f.iter()
                .filter(|((l, k), _)| l == locale && *k == kind)
                .map(|(_, n)| *n)
                .sum()
        })
    }

    fn fell_back(&self, locale: &str, key: &str) {
        let kind = kind(key);
        metrics::counter!("edge_content_fallback_total", "locale" => locale.to_owned(), "kind" => kind)
            .increment(1);
        if let Ok(mut f) = self.fallbacks.lock() {
            *f.entry((locale.to_owned(), kind)).or_default() += 1;
        }
    }
}

/// Content text for one reader.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    texts: &'a Texts,
    /// `None`: English.
    locale: Option<&'a LocaleTexts>,
}

impl Reader<'_> {
    /// The locale the text is in (`en`, `de`, ...).
    pub fn locale(&self) -> &str {
        self.locale.map_or(DEFAULT, |l| l.locale.as_str())
    }

    /// `key`'s text in the reader's locale; `english` (the content's own) where it has none,
    /// counted unless the key is [`optional`].
    pub fn text(&self, key: &str, english: &str) -> String {
        let Some(l) = self.locale else {
            return english.to_owned();
        };
        match l.texts.get(key) {
            Some(t) => t.clone(),
            None => {
                if !optional(key) {
                    self.texts.fell_back(&l.locale, key);
                }
                english.to_owned()
            }
        }
    }

    /// [`Reader::text`] in place.
    pub fn put(&self, key: &str, text: &mut String) {
        if self.locale.is_some() {
            *text = self.text(key, text);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn texts() -> Texts {
        let de = Source::embedded(
            "de.ftl",
            "# status: complete\nregion-ashfen-name = Ashfen-Sümpfe\nquest-q-title = Der Titel\n",
        );
        Texts::new(vec![LocaleTexts::parse("de", &de).unwrap()])
    }

    #[test]
    fn a_missing_text_is_english_and_counted() {
        let t = texts();
        let de = t.reader("de-AT");
        assert_eq!(de.locale(), "de");
        assert_eq!(de.text("quest-q-title", "The Title"), "Der Titel");
        assert_eq!(t.fallbacks("de", "quest"), 0);
        assert_eq!(de.text("quest-q-description", "What it is."), "What it is.");
        assert_eq!(de.text("item-rope-name", "Rope"), "Rope");
        assert_eq!(t.fallbacks("de", "quest"), 1);
        assert_eq!(t.fallbacks("de", "item"), 1);
        // A proper name that stays is no fallback.
        assert_eq!(
            de.text("npc-brenna-hale-name", "Brenna Hale"),
            "Brenna Hale"
        );
        assert_eq!(t.fallbacks("de", "npc"), 0);
        // English readers read the content itself: nothing to count.
        let en = t.reader("en");
        assert_eq!(en.text("quest-q-title", "The Title"), "The Title");
        assert_eq!(t.fallbacks("en", "quest"), 0);
    }

    #[test]
    fn a_tag_that_is_no_language_reads_english() {
        let t = texts();
        let long = "de-".to_owned() + &"x".repeat(10 * 1024);
        for tag in [
            long.as_str(),
            "../de",
            "../../etc/passwd",
            "",
            "de\u{0}",
            "*",
        ] {
            assert_eq!(t.reader(tag).locale(), "en", "{tag:?}");
        }
        assert_eq!(t.by_header("fr;q=1, de-CH;q=0.8"), "de");
        assert_eq!(t.by_header(&"de,".repeat(5000)), "de");
    }

    #[test]
    fn the_file_is_checked_when_parsed() {
        let bad = |text: &str| {
            LocaleTexts::parse("de", &Source::embedded("de.ftl", text))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("a = eins\na = zwei\n").starts_with("de.ftl:2: "));
        assert!(bad("a = { $x }\n").contains("no variables"));
        assert!(bad("a =\n    .attr = nur ein Attribut\n").contains("a has no text"));
        assert!(bad("\n\na = { \n").starts_with("de.ftl:3: "));
        let ok = LocaleTexts::parse("de", &Source::embedded("de.ftl", "a = eins\n")).unwrap();
        assert!(!ok.complete);
    }
}
