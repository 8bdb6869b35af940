//! Talk: in character, grounded in retrieved lore within the budget, charged to the player, and
//! advancing the player's quests once; what a player cannot make it do.

use proto::aicore::npc::v1::TalkResponse;

use super::play_tests::{ME, YOU, mood_of, npcs};
use super::*;
use crate::kit::context::Principal;
use crate::kit::testing::player;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn talk_streams_in_character_charges_the_player_and_advances_quests() {
    let (_d, svc, others) = npcs();
    let talk = |ctx: Context, npc: &str, text: &str| {
        svc.talk(
            ctx,
            TalkRequest {
                npc_id: npc.into(),
                text: text.into(),
                max_tokens: 0,
                player_id: String::new(),
            },
        )
    };
    let before = mood_of(&svc, "brenna-hale").await;
    let stream = talk(
        player(ME),
        "brenna-hale",
        "Who keeps putting out the lanterns?",
    )
    .await
    .unwrap();
    let events: Vec<TalkResponse> = stream.map(|r| r.unwrap()).collect().await;
    let text: String = events.iter().map(|e| e.delta.as_str()).collect();
    assert_eq!(text, "Evening. Mind the lanterns.");
    let last = events.last().unwrap();
    assert_eq!(last.finish_reason, "stop");
    // What she knows and the library ranks first, then the region's lore it ranks, then the rest
    // of what she knows: as the grounding has it, within the budget.
    assert_eq!(
        last.lore_used[..3],
        [
            "brenna-hale",
            "windmills-of-the-vale",
            "the-hearth-guard-yard"
        ]
    );
    let (grounded, tokens) = others.lore.lock().unwrap()[0].clone();
    assert_eq!(grounded, last.lore_used);
    assert!(tokens <= crate::services::llm::retrieval::DEFAULT_BUDGET && tokens > 0);
    let (query, tags) = others.searched.lock().unwrap()[0].clone();
    assert!(
        query.contains("lanterns") && query.contains("Brenna Hale"),
        "{query}"
    );
    assert_eq!(tags, ["hearthvale"], "her region's lore only");
    assert!(last.mood > before, "a talk is a greeting");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.lore_used.is_empty())
    );
    // Grounded in the sky over her region, as weather says it.
    // Grounded in the sky over her region, as weather says it, and in the season of the game day.
    assert_eq!(others.grounded_weather.lock().unwrap()[0], "rain/winter");
    let (prompt, payer) = others.prompts.lock().unwrap()[0].clone();
    assert_eq!(
        payer,
        Some(Principal::Player {
            player_id: ME.into()
        })
    );
    for part in [
        "You are Brenna Hale",
        "lamplighter's daughter",
        "Your mood: neutral",
        "Who keeps putting out the lanterns?",
        "Lore:\n- Of brenna-hale: The first paragraph of brenna-hale",
        "- Of windmills-of-the-vale:",
        "Hearthvale",
    ] {
        assert!(prompt.contains(part), "{part} in {prompt}");
    }
    assert!(
        !prompt.contains("A second paragraph"),
        "the paragraph that fits the line"
    );
    let advanced = others.advanced.lock().unwrap().clone();
    assert_eq!(advanced.len(), 1);
    let (who, event, target, key) = &advanced[0];
    assert_eq!(
        (who.as_str(), event.as_str(), target.as_str()),
        (ME, "talked_to", "brenna-hale")
    );
    assert!(key.starts_with("npc:talk:brenna-hale:"), "{key}");
    // Bad lines, unknown NPCs and forged players.
    for text in [
        "",
        "   ",
        &"a".repeat(301),
        "hello\u{7}there",
        "line\nbreak",
    ] {
        let e = talk(player(ME), "brenna-hale", text).await.err().unwrap();
        assert_eq!(e.code(), Code::InvalidArgument, "{text:?}");
    }
    let e = talk(player(ME), "nobody", "Hello").await.err().unwrap();
    assert_eq!(e.code(), Code::NotFound);
    let forged = svc
        .talk(
            player(ME),
            TalkRequest {
                npc_id: "brenna-hale".into(),
                text: "Hello".into(),
                max_tokens: 0,
                player_id: YOU.into(),
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(forged.code(), Code::PermissionDenied);
    assert_eq!(others.advanced.lock().unwrap().len(), 1);
    // A line as long as may be, all lore words, asks no longer a query and gets no more lore.
    let long = "lanterns abbey bell ".repeat(15);
    let stream = talk(player(ME), "brenna-hale", long.trim()).await.unwrap();
    let _: Vec<_> = stream.collect().await;
    let (query, _) = others.searched.lock().unwrap()[1].clone();
    assert!(query.chars().count() <= crate::services::llm::retrieval::MAX_QUERY);
    let (_, tokens) = others.lore.lock().unwrap()[1].clone();
    assert!(tokens <= crate::services::llm::retrieval::DEFAULT_BUDGET);
    // A talk the model refuses changes neither the mood nor the quest log.
    let mood = mood_of(&svc, "brenna-hale").await;
    others.model_refuses.store(true, Ordering::SeqCst);
    let e = talk(player(ME), "brenna-hale", "Hello")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!((mood_of(&svc, "brenna-hale").await - mood).abs() < 1e-9);
    assert_eq!(others.advanced.lock().unwrap().len(), 2);
}
