//! The game's own messages are translated in the locale files, never by a model: `Translate` of a
//! text that is one of them (a message without variables, as the source locale's file says it)
//! answers the target locale's message at once, whether or not a model can translate.

use super::{DEFAULT, Locales};

impl Locales {
    /// The loaded locale `tag` names (`de-DE` is `de`), or `None` when none is loaded for it.
    fn loaded(&self, tag: &str) -> Option<&str> {
        let found = self.negotiate(tag);
        (found != DEFAULT || tag.to_ascii_lowercase().starts_with(DEFAULT)).then_some(found)
    }

    /// `text` as `target`'s file says it, when `text` is one of the game's messages without
    /// variables in `source`'s file; `None` when it is not, or `target` lacks the message.
    pub fn shipped_translation(&self, text: &str, source: &str, target: &str) -> Option<String> {
        let text = text.trim();
        let (source, target) = (self.loaded(source)?, self.loaded(target)?);
        let bundle = |l: &str| self.bundles.iter().find(|(b, _)| b == l).map(|(_, b)| b);
        let (from, to) = (bundle(source)?, bundle(target)?);
        for id in &self.ids {
            let Some(pattern) = from.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let said = from.format_pattern(pattern, None, &mut errors);
            if !errors.is_empty() || said.trim() != text {
                continue;
            }
            let pattern = to.get_message(id).and_then(|m| m.value())?;
            let mut errors = Vec::new();
            let out = to.format_pattern(pattern, None, &mut errors);
            return errors.is_empty().then(|| out.into_owned());
        }
        None
    }
}
