//! What npc tells a region when an NPC changes in a way players see: `npc.changed` on
//! `world.<region>`, with what ListNpcs shows of it. Only when the mood crosses into another
//! label or the NPC takes up another action: a greeting that nudges Brenna's mood within
//! "friendly" is not news. The drift back to the baselines is computed when read (no write
//! happens), so it is never pushed: a client refreshes with ListNpcs.

use proto::aicore::npc::v1::NpcChanged;

use super::NpcService;
use super::mood::{State, mood_label};
use crate::kit::context::Context;
use crate::kit::event_log::typed_event;

/// The event for a write that took `id` from `before` to `after`, if players would see it.
pub(super) fn change(
    svc: &NpcService,
    id: &str,
    before: &State,
    after: &State,
) -> Option<NpcChanged> {
    let was = mood_label(before.mood);
    if was == mood_label(after.mood) && before.current_action == after.current_action {
        return None;
    }
    let (def, arch) = svc.def(id).ok()?;
    Some(NpcChanged {
        npc: Some(svc.summary(def, arch, after)),
        current_action: after.current_action.clone(),
        previous_mood_label: was.to_owned(),
    })
}

impl NpcService {
    /// Publishes the change a write made (`version`: the write's store version, so a retry of
    /// the publication repeats nothing), charged to `player` when one caused it. Best effort: the
    /// NPC has changed either way, and ListNpcs says so.
    pub(super) async fn announce(
        &self,
        ctx: &Context,
        player: Option<&str>,
        id: &str,
        (before, after): (&State, &State),
        version: u64,
    ) {
        let Some(event) = change(self, id, before, after) else {
            return;
        };
        let region = event.npc.as_ref().map_or("", |n| n.region_id.as_str());
        let request = match typed_event(format!("world.{region}"), &event) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(npc = id, error = %e.message(), "npc event not built");
                return;
            }
        };
        let mut call = ctx
            .outgoing()
            .idempotent(format!("npc-changed:{id}:{version}"));
        if let Some(p) = player {
            call = call.for_player(p);
        }
        if let Err(e) = self.events.publish(call, request).await {
            tracing::warn!(npc = id, error = %e.message(), "npc event not published");
        }
    }
}
