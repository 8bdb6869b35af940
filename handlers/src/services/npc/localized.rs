//! What players read of an NPC in their language (`crate::kit::l10n`): the public description
//! (`npc-<id>-description`) and, where a language renders it, the name (`npc-<id>-name`; a
//! proper name usually stays as it is). Events pushed to a region's players stay in English:
//! they go to many readers at once.

use std::sync::Arc;

use proto::aicore::npc::v1::{Npc, NpcSummary};
use proto::aicore::settings::v1::SettingsServiceClient;

use crate::kit::calls::Caller;
use crate::kit::context::Context;
use crate::kit::l10n::{Reader, Texts};

/// The NPCs' text in other languages, and how to learn a player's.
pub(super) struct Localized {
    pub texts: Arc<Texts>,
    settings: SettingsServiceClient<Caller>,
}

impl Localized {
    pub fn new(caller: Caller) -> Self {
        Localized {
            texts: Arc::default(),
            settings: SettingsServiceClient(caller),
        }
    }

    /// The calling player's reader.
    pub async fn reader(&self, ctx: &Context) -> Reader<'_> {
        self.texts.reader_for(ctx, &self.settings, None).await
    }
}

impl super::NpcService {
    /// Serving what players read of NPCs in each player's language, from `texts`.
    #[must_use]
    pub fn with_texts(mut self, texts: Arc<Texts>) -> Self {
        self.localized.texts = texts;
        self
    }
}

/// `s` as `reader` reads it.
pub(super) fn summary(mut s: NpcSummary, reader: &Reader<'_>) -> NpcSummary {
    reader.put(&format!("npc-{}-name", s.id), &mut s.name);
    reader.put(&format!("npc-{}-description", s.id), &mut s.description);
    s
}

/// `n` as `reader` reads it.
pub(super) fn npc(mut n: Npc, reader: &Reader<'_>) -> Npc {
    reader.put(&format!("npc-{}-name", n.id), &mut n.name);
    n
}
