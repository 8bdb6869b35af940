//! A quest's text in the reader's language (`crate::kit::l10n`): its title, description and
//! objectives, keyed `quest-<id>-title`, `quest-<id>-description` and
//! `quest-<id>-objective-<objective id>`. Ids, counts and rewards are the same in every language.

use proto::aicore::quest::v1::QuestDefinition;

use crate::kit::l10n::Reader;

/// `def`'s text, in place, as `reader` reads it.
pub(super) fn localize(def: &mut QuestDefinition, reader: &Reader<'_>) {
    let id = def.id.clone();
    reader.put(&format!("quest-{id}-title"), &mut def.title);
    reader.put(&format!("quest-{id}-description"), &mut def.description);
    for o in &mut def.objectives {
        reader.put(
            &format!("quest-{id}-objective-{}", o.id),
            &mut o.description,
        );
    }
}
