//! A quest's text in the reader's language (`crate::kit::l10n`): its title, description and
//! objectives, keyed `quest-<id>-title`, `quest-<id>-description` and
//! `quest-<id>-objective-<objective id>`. Ids, counts and rewards are the same in every language.

use proto::aicore::quest::v1::{QuestDefinition, QuestProgress};

use super::QuestService;
use crate::kit::context::Context;
use crate::kit::l10n::Reader;

impl QuestService {
    /// `progress` with its quest's text as `player` reads it (Accept, Complete and Abandon
    /// answer what the log would show).
    pub(super) async fn as_read(
        &self,
        ctx: &Context,
        player: &str,
        mut progress: QuestProgress,
    ) -> QuestProgress {
        if let Some(def) = progress.quest.as_mut() {
            localize(def, &self.reader(ctx, player).await);
        }
        progress
    }
}

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
