//! Whether a player may accept a quest, and if not why: the locks `GetQuest` and `ListAvailable`
//! show, and the refusal `Accept` answers, from one rule.

use proto::aicore::quest::v1::{Lock, LockReason, LockedQuest};

use super::*;

/// Every reason the player with `records` and `level` cannot accept `q` now; empty when they
/// can. In the order Accept reports them: its own state, prerequisites, level.
pub(super) fn locks(q: &QuestDef, records: &BTreeMap<String, Record>, level: u32) -> Vec<Lock> {
    let mut out = Vec::new();
    match records.get(&q.definition.id).map(|r| r.status) {
        Some(Stage::Active) => out.push(lock(LockReason::Active)),
        Some(Stage::Completed) => out.push(lock(LockReason::Completed)),
        Some(Stage::Abandoned) | None => {}
    }
    let missing: Vec<String> = q
        .definition
        .prerequisites
        .iter()
        .filter(|p| records.get(*p).map(|r| r.status) != Some(Stage::Completed))
        .cloned()
        .collect();
    if !missing.is_empty() {
        out.push(Lock {
            quests: missing,
            ..lock(LockReason::Prerequisite)
        });
    }
    if level < q.definition.min_level {
        out.push(Lock {
            level: q.definition.min_level,
            ..lock(LockReason::Level)
        });
    }
    out
}

fn lock(reason: LockReason) -> Lock {
    Lock {
        reason: reason.into(),
        ..Lock::default()
    }
}

/// The refusal Accept answers for the first of `locks`, if any.
pub(super) fn refusal(q: &QuestDef, locks: &[Lock], level: u32) -> Option<Status> {
    let id = &q.definition.id;
    let first = locks.first()?;
    Some(Status::failed_precondition(match first.reason() {
        LockReason::Active => format!("quest {id} is already active"),
        LockReason::Completed => format!("quest {id} is already completed"),
        LockReason::Prerequisite => format!(
            "quest {id} needs quest {} completed first",
            first.quests.join(", ")
        ),
        LockReason::Level | LockReason::Unspecified => format!(
            "quest {id} needs level {}; the player is level {level}",
            first.level
        ),
    }))
}

/// What the player may accept now, and the locked quests one step beyond: those not taken whose
/// every prerequisite is completed, active or open now (the proto's `ListAvailableResponse`).
pub(super) fn offer<'a>(
    quests: &'a Quests,
    records: &BTreeMap<String, Record>,
    level: u32,
) -> (Vec<&'a QuestDef>, Vec<LockedQuest>) {
    let all: Vec<(&QuestDef, Vec<Lock>)> = quests
        .list
        .iter()
        .map(|q| (q, locks(q, records, level)))
        .collect();
    let open: Vec<&QuestDef> = all
        .iter()
        .filter(|(_, l)| l.is_empty())
        .map(|(q, _)| *q)
        .collect();
    let within_reach = |p: &String| {
        matches!(
            records.get(p).map(|r| r.status),
            Some(Stage::Completed | Stage::Active)
        ) || open.iter().any(|q| q.definition.id == *p)
    };
    let locked = all
        .iter()
        .filter(|(q, l)| {
            !l.is_empty()
                && !l
                    .iter()
                    .any(|l| matches!(l.reason(), LockReason::Active | LockReason::Completed))
                && q.definition.prerequisites.iter().all(within_reach)
        })
        .map(|(q, l)| LockedQuest {
            quest: Some(q.definition.clone()),
            locks: l.clone(),
        })
        .collect();
    (open, locked)
}
