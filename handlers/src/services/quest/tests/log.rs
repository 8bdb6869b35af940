//! Progression, the drawable log, GetQuest and the locked quests.

use proto::aicore::quest::v1::{Lock, LockReason, Progression};

use super::*;

const OTHER: &str = "ffffffffffffffffffffffffffffffff";

/// The fixture and two more: one deeper in the inn chain behind level 3, and one whose reward
/// alone carries a new player from level 1 to the top (3).
fn extra() -> String {
    format!(
        r#"{FIXTURE}
[[quest]]
id = "deep-cellar"
title = "Under the Cellar"
description = "The key opens a door below the cellar."
chain = "inn"
region = "hearthvale"
giver = "Maud Feverfew"
min_level = 3
prerequisites = ["cellar-key"]
reward = {{ currency = 0, experience = 10 }}

[[quest.objective]]
id = "open"
description = "Open the lower door"
target = 1
scripted = true

[[quest]]
id = "great-hunt"
title = "The Great Hunt"
description = "The marsh hounds are at the mill again."
chain = "hunt"
region = "hearthvale"
giver = "Brenna Hale"
min_level = 1
reward = {{ currency = 0, experience = 300 }}

[[quest.objective]]
id = "hunt"
description = "Drive the hounds from the mill"
target = 1
scripted = true
"#
    )
}

fn at(p: &Progression) -> (u32, u32, u32, u32, u32) {
    (
        p.level,
        p.experience,
        p.level_experience,
        p.next_level_experience,
        p.max_level,
    )
}

async fn finish(w: &World, id: &str) -> CompleteResponse {
    accept(w, id).await.unwrap();
    let q = w.quests.quests.get(id).unwrap().clone();
    for o in &q.definition.objectives {
        progress(w, id, &o.id, o.target_count).await.unwrap();
    }
    complete(w, id).await.unwrap()
}

async fn my_progression(w: &World) -> Progression {
    w.quests
        .get_progression(me(), GetProgressionRequest::default())
        .await
        .unwrap()
        .progression
        .unwrap()
}

async fn get_quest(w: &World, id: &str) -> Result<GetQuestResponse, Status> {
    w.quests
        .get_quest(
            me(),
            GetQuestRequest {
                quest_id: id.into(),
                player_id: String::new(),
            },
        )
        .await
}

async fn listing(w: &World) -> (Vec<String>, Vec<(String, Vec<Lock>)>) {
    let r = w
        .quests
        .list_available(me(), ListAvailableRequest::default())
        .await
        .unwrap();
    (
        r.quests.into_iter().map(|q| q.id).collect(),
        r.locked
            .into_iter()
            .map(|l| (l.quest.unwrap().id, l.locks))
            .collect(),
    )
}

fn level_lock(level: u32) -> Lock {
    Lock {
        reason: LockReason::Level.into(),
        level,
        quests: vec![],
    }
}

fn prerequisite_lock(quests: &[&str]) -> Lock {
    Lock {
        reason: LockReason::Prerequisite.into(),
        level: 0,
        quests: quests.iter().map(|&q| q.to_owned()).collect(),
    }
}

fn state_lock(reason: LockReason) -> Lock {
    Lock {
        reason: reason.into(),
        ..Lock::default()
    }
}

#[test]
fn progression_at_each_boundary() {
    let levels = [0, 100, 250];
    // Level, experience, where the level began, the next threshold, the top level.
    assert_eq!(at(&progression(&levels, 0)), (1, 0, 0, 100, 3));
    assert_eq!(at(&progression(&levels, 99)), (1, 99, 0, 100, 3));
    assert_eq!(at(&progression(&levels, 100)), (2, 100, 100, 250, 3));
    assert_eq!(
        at(&progression(&levels, 250)),
        (3, 250, 250, 0, 3),
        "the top"
    );
    assert_eq!(
        at(&progression(&levels, 10_000)),
        (3, 10_000, 250, 0, 3),
        "beyond the top: still the top, nothing next"
    );
    assert_eq!(progression(&levels, 0).levels, [0, 100, 250]);
    let huge = progression(&levels, u64::MAX);
    assert_eq!(huge.experience, u32::MAX, "clamped, not wrapped");
}

#[tokio::test]
async fn one_reward_can_gain_several_levels_and_a_retry_gains_none() {
    let w = world_with(&extra());
    assert_eq!(at(&my_progression(&w).await), (1, 0, 0, 100, 3));
    accept(&w, "great-hunt").await.unwrap();
    progress(&w, "great-hunt", "hunt", 1).await.unwrap();
    // The process dies after the grant, before the record: the retry grants nothing more.
    w.store.down.store(true, Ordering::SeqCst);
    assert_eq!(
        complete(&w, "great-hunt").await.unwrap_err().code(),
        Code::Unavailable
    );
    w.store.down.store(false, Ordering::SeqCst);
    let done = complete(&w, "great-hunt").await.unwrap();
    assert_eq!(done.levels_gained, 2, "1 to 3 in one reward");
    assert_eq!(at(done.progression.as_ref().unwrap()), (3, 300, 250, 0, 3));
    for _ in 0..2 {
        let again = complete(&w, "great-hunt").await.unwrap();
        assert_eq!(again.levels_gained, 2, "the same answer");
        assert_eq!(again.progression, done.progression, "no second grant");
    }
    assert_eq!(at(&my_progression(&w).await), (3, 300, 250, 0, 3));
    let events = w.bus.published.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].1, "quest.completed");
    assert_eq!(events[0].2["levelsGained"], 2.0);
    assert_eq!(events[1].1, "player.leveled");
    assert_eq!(
        (&events[1].2["oldLevel"], &events[1].2["newLevel"]),
        (&serde_json::json!(1.0), &serde_json::json!(3.0))
    );
    assert_eq!(events[1].2["questId"], "great-hunt");

    // At the top, more experience gains no level and says nothing of one.
    let more = finish(&w, "rats").await;
    assert_eq!(more.levels_gained, 0);
    assert_eq!(at(more.progression.as_ref().unwrap()), (3, 420, 250, 0, 3));
    let types: Vec<String> = w.bus.events().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        types,
        ["quest.completed", "player.leveled", "quest.completed"]
    );
}

#[tokio::test]
async fn parallel_completions_count_each_level_once() {
    let w = world_with(&extra());
    for id in ["rats", "great-hunt"] {
        accept(&w, id).await.unwrap();
        let q = w.quests.quests.get(id).unwrap().clone();
        for o in &q.definition.objectives {
            progress(&w, id, &o.id, o.target_count).await.unwrap();
        }
    }
    let (a, b) = tokio::join!(complete(&w, "rats"), complete(&w, "great-hunt"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.levels_gained + b.levels_gained, 2, "1 to 3, once");
    assert_eq!(at(&my_progression(&w).await), (3, 420, 250, 0, 3));
    let leveled: Vec<(f64, f64)> = w
        .bus
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.1 == "player.leveled")
        .map(|e| {
            (
                e.2["oldLevel"].as_f64().unwrap(),
                e.2["newLevel"].as_f64().unwrap(),
            )
        })
        .collect();
    let gained: f64 = leveled.iter().map(|(from, to)| to - from).sum();
    assert_eq!(gained, 2.0, "{leveled:?}");
}

#[tokio::test]
async fn the_log_draws_every_state_with_its_definition() {
    let w = world();
    accept(&w, "rats").await.unwrap();
    progress(&w, "rats", "rats", 5).await.unwrap();
    let log = w
        .quests
        .get_log(me(), GetLogRequest::default())
        .await
        .unwrap()
        .quests;
    let entry = &log[0];
    assert_eq!(entry.status(), QuestStatus::Active);
    let quest = entry.quest.as_ref().unwrap();
    assert_eq!(quest.title, "Rats in the Cellar");
    assert_eq!(quest.description, "The Golden Sheaf's cellar squeaks.");
    // In the order players do them, each with its text, target and the player's count.
    let tracker: Vec<(&str, &str, u32, u32)> = quest
        .objectives
        .iter()
        .map(|o| {
            (
                o.id.as_str(),
                o.description.as_str(),
                o.count,
                o.target_count,
            )
        })
        .collect();
    assert_eq!(
        tracker,
        [
            ("rats", "Drive out the rats", 5, 20),
            ("hole", "Block the hole in the wall", 0, 1)
        ]
    );
    assert!(entry.granted.is_none());

    progress(&w, "rats", "rats", 15).await.unwrap();
    progress(&w, "rats", "hole", 1).await.unwrap();
    complete(&w, "rats").await.unwrap();
    accept(&w, "cellar-key").await.unwrap();
    w.quests
        .abandon(
            me(),
            AbandonRequest {
                quest_id: "cellar-key".into(),
                player_id: String::new(),
                accepted_with_key: String::new(),
            },
        )
        .await
        .unwrap();
    let log = w
        .quests
        .get_log(me(), GetLogRequest::default())
        .await
        .unwrap()
        .quests;
    let drawn: Vec<(QuestStatus, String, Vec<u32>)> = log
        .iter()
        .map(|p| {
            let q = p.quest.as_ref().unwrap();
            (
                p.status(),
                q.title.clone(),
                q.objectives.iter().map(|o| o.count).collect(),
            )
        })
        .collect();
    let mut drawn_sorted = drawn.clone();
    drawn_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        drawn_sorted,
        [
            (
                QuestStatus::Completed,
                "Rats in the Cellar".into(),
                vec![20, 1]
            ),
            (QuestStatus::Abandoned, "The Cellar Key".into(), vec![0]),
        ]
    );
    let done = log.iter().find(|p| p.quest_id == "rats").unwrap();
    assert_eq!(done.granted.as_ref().unwrap().experience, 120);
    let dropped = log.iter().find(|p| p.quest_id == "cellar-key").unwrap();
    assert!(dropped.abandoned_game_time_ms >= dropped.accepted_game_time_ms);
    assert!(dropped.abandoned_at_ms >= dropped.accepted_at_ms && dropped.accepted_at_ms > 0);
    // Accept and Progress answer the same drawable shape.
    let p = accept(&w, "cellar-key").await.unwrap();
    assert_eq!(
        p.quest.unwrap().objectives[0].description,
        "Find who has the key"
    );
}

#[tokio::test]
async fn locked_quests_say_why_and_only_the_next_in_each_chain_show() {
    let w = world_with(&extra());
    let (open, locked) = listing(&w).await;
    assert_eq!(open, ["rats", "great-hunt"]);
    // deep-cellar is two steps away (behind cellar-key, itself locked): not shown yet.
    assert_eq!(
        locked,
        [
            ("cellar-key".to_owned(), vec![prerequisite_lock(&["rats"])]),
            ("veteran".to_owned(), vec![level_lock(2)]),
        ]
    );
    // An active prerequisite keeps the next one in view.
    accept(&w, "rats").await.unwrap();
    let (open, locked) = listing(&w).await;
    assert_eq!(open, ["great-hunt"]);
    assert_eq!(locked[0].0, "cellar-key");

    progress(&w, "rats", "rats", 20).await.unwrap();
    progress(&w, "rats", "hole", 1).await.unwrap();
    complete(&w, "rats").await.unwrap();
    // Level 2 now: cellar-key and the veteran open; deep-cellar is next, for both reasons.
    let (open, locked) = listing(&w).await;
    assert_eq!(open, ["cellar-key", "veteran", "great-hunt"]);
    assert_eq!(
        locked,
        [(
            "deep-cellar".to_owned(),
            vec![prerequisite_lock(&["cellar-key"]), level_lock(3)]
        )]
    );
    // Accept refuses it saying the first reason.
    let e = accept(&w, "deep-cellar").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("cellar-key"), "{e:?}");
    finish(&w, "great-hunt").await;
    let (_, locked) = listing(&w).await;
    assert_eq!(
        locked,
        [(
            "deep-cellar".to_owned(),
            vec![prerequisite_lock(&["cellar-key"])]
        )]
    );
}

#[tokio::test]
async fn get_quest_says_the_players_state_and_why_not() {
    let w = world();
    let e = get_quest(&w, "no-such-quest").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(get_quest(&w, "").await.unwrap_err().code(), Code::NotFound);

    let vet = get_quest(&w, "veteran").await.unwrap();
    let p = vet.progress.unwrap();
    assert_eq!(p.status(), QuestStatus::NotAccepted);
    assert_eq!(p.quest.unwrap().title, "A Veteran's Errand");
    assert!(!vet.available);
    assert_eq!(vet.locks, [level_lock(2)]);

    let rats = get_quest(&w, "rats").await.unwrap();
    assert!(rats.available && rats.locks.is_empty());
    accept(&w, "rats").await.unwrap();
    progress(&w, "rats", "rats", 3).await.unwrap();
    let rats = get_quest(&w, "rats").await.unwrap();
    let p = rats.progress.unwrap();
    assert_eq!(p.status(), QuestStatus::Active);
    assert_eq!(p.quest.unwrap().objectives[0].count, 3);
    assert_eq!(rats.locks, [state_lock(LockReason::Active)]);
    progress(&w, "rats", "rats", 20).await.unwrap();
    progress(&w, "rats", "hole", 1).await.unwrap();
    complete(&w, "rats").await.unwrap();
    let rats = get_quest(&w, "rats").await.unwrap();
    assert_eq!(rats.progress.unwrap().status(), QuestStatus::Completed);
    assert_eq!(rats.locks, [state_lock(LockReason::Completed)]);
    assert!(get_quest(&w, "veteran").await.unwrap().available);
}

#[tokio::test]
async fn a_player_reads_only_their_own_progression_log_and_quests() {
    let w = world();
    // The other player has levelled; nothing of it shows to me.
    w.quests.grant_experience(OTHER, "rats", 120).await.unwrap();
    assert_eq!(my_progression(&w).await.level, 1);
    let denied = Code::PermissionDenied;
    let e = w
        .quests
        .get_progression(
            me(),
            GetProgressionRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), denied);
    let e = w
        .quests
        .get_log(
            me(),
            GetLogRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), denied);
    let e = w
        .quests
        .get_quest(
            me(),
            GetQuestRequest {
                quest_id: "rats".into(),
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), denied);
    let e = w
        .quests
        .list_available(
            me(),
            ListAvailableRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), denied);
    // A service names the player it asks about, and must name one that is well formed.
    let theirs = w
        .quests
        .get_progression(
            game_server(),
            GetProgressionRequest {
                player_id: OTHER.into(),
            },
        )
        .await
        .unwrap()
        .progression
        .unwrap();
    assert_eq!((theirs.level, theirs.experience), (2, 120));
    for bad in ["", "../quest.xp.x", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"] {
        let e = w
            .quests
            .get_progression(
                game_server(),
                GetProgressionRequest {
                    player_id: bad.into(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}");
    }
}
