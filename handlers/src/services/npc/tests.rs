use std::sync::atomic::{AtomicI64, Ordering};

use proto::aicore::npc::v1::{NPC_SERVICE, Stimulus};
use proto::aicore::time::v1::NowResponse;
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::content::{Consideration, CurveKind, Input};
use super::*;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::Source;
use crate::kit::status::Code;

/// The time service, and the events npc published (checked to be their declared shapes).
struct Clock(AtomicI64, std::sync::Mutex<Vec<Published>>);

/// An event npc published, its idempotency key, and who pays for it.
type Published = (
    proto::aicore::events::v1::PublishRequest,
    String,
    Option<crate::kit::context::Principal>,
);

impl Route for Clock {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        if method.name == "Publish" {
            let req: proto::aicore::events::v1::PublishRequest =
                proto::codec::decode(Codec::Proto, &body).unwrap();
            crate::kit::calls::fake::check_declared(&req);
            let key = ctx.idempotency_key.clone().unwrap();
            let payer = ctx.payer().cloned();
            self.1.lock().unwrap().push((req, key, payer));
            let reply = proto::codec::encode(
                Codec::Proto,
                &proto::aicore::events::v1::PublishResponse::default(),
            )
            .map_err(Status::from)
            .map(Encoded::Unary);
            return Box::pin(async move { reply });
        }
        assert_eq!(method.path, "/aicore.time.v1.TimeService/Now");
        let reply = proto::codec::encode(
            Codec::Proto,
            &NowResponse {
                game_time_ms: self.0.load(Ordering::SeqCst),
                ..NowResponse::default()
            },
        )
        .map_err(Status::from)
        .map(Encoded::Unary);
        Box::pin(async move { reply })
    }
}

const HOUR: i64 = 3_600_000;

fn npcs() -> (tempfile::TempDir, NpcService, Arc<Clock>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let clock = Arc::new(Clock(AtomicI64::new(100 * HOUR), Default::default()));
    let calls = Calls::new();
    calls.connect(Arc::clone(&clock) as Arc<dyn Route>);
    let svc = NpcService::new(
        store,
        Arc::new(Catalog::embedded().unwrap()),
        calls.from(NPC_SERVICE),
    );
    (dir, svc, clock)
}

fn ctx() -> Context {
    Context::default()
}

async fn get(svc: &NpcService, id: &str) -> Npc {
    svc.get_npc(ctx(), GetNpcRequest { npc_id: id.into() })
        .await
        .unwrap()
        .npc
        .unwrap()
}

async fn perceive(svc: &NpcService, id: &str, kind: &str, intensity: f64) -> Result<Npc, Status> {
    svc.perceive(
        ctx(),
        PerceiveRequest {
            npc_id: id.into(),
            stimuli: vec![Stimulus {
                kind: kind.into(),
                intensity,
                source_id: "player-1".into(),
            }],
        },
    )
    .await
    .map(|r| r.npc.unwrap())
}

#[test]
fn curves_match_hand_computed_values() {
    let c = |curve, m, k, cc, b| Consideration {
        input: Input::Hunger,
        curve,
        m,
        k,
        c: cc,
        b,
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
    close(c(CurveKind::Linear, -1.0, 1.0, 0.0, 1.0).eval(0.25), 0.75);
    close(c(CurveKind::Polynomial, 1.0, 2.0, 0.0, 0.0).eval(0.5), 0.25);
    // 1 / (1 + e^(-12 (0.45 - 0.45))) = 0.5
    close(c(CurveKind::Logistic, 12.0, 1.0, 0.45, 0.0).eval(0.45), 0.5);
    // 1 / (1 + e^-1.2) at 0.55
    close(
        c(CurveKind::Logistic, 12.0, 1.0, 0.45, 0.0).eval(0.55),
        1.0 / (1.0 + (-1.2_f64).exp()),
    );
    // Clamped to 0..1.
    close(c(CurveKind::Linear, 3.0, 1.0, 0.0, 0.0).eval(0.9), 1.0);
    close(c(CurveKind::Linear, -3.0, 1.0, 0.0, 0.0).eval(0.9), 0.0);
}

#[test]
fn scores_are_compensated_products_that_stay_in_range_and_veto() {
    let catalog = Catalog::embedded().unwrap();
    let sleep = catalog.action("sleep").unwrap();
    // sleep: rest^2 and (1 - safety); two considerations, modification 1 - 1/2 = 0.5.
    let needs = [0.0, 0.8, 0.0, 0.2];
    let rest = 0.64_f64;
    let safe = 0.8_f64;
    let comp = |v: f64| v + (1.0 - v) * 0.5 * v;
    let want = comp(rest) * comp(safe);
    let got = score(sleep, &needs, 0.0, false, catalog.commitment);
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    // The commitment bonus: 0.15 of the distance to 1.
    let kept = score(sleep, &needs, 0.0, true, catalog.commitment);
    assert!((kept - (want + (1.0 - want) * 0.15)).abs() < 1e-12);
    // A zero vetoes, bonus or not: no sleeping in danger.
    assert_eq!(score(sleep, &[0.0, 1.0, 0.0, 1.0], 0.0, true, 0.15), 0.0);
    // Every action, every state: 0..1.
    for a in &catalog.actions {
        for i in 0..=20 {
            let x = f64::from(i) / 20.0;
            let s = score(
                a,
                &[x, 1.0 - x, x, x / 2.0],
                x * 2.0 - 1.0,
                i % 2 == 0,
                0.15,
            );
            assert!((0.0..=1.0).contains(&s), "{} {s}", a.id);
        }
    }
}

#[test]
fn bad_data_names_the_file_and_line() {
    let npcs = crate::embedded!("npc/npcs.toml").text.replace(
        "name = \"Tamsin Reed\"\narchetype = \"farmer\"",
        "name = \"Tamsin Reed\"\narchetype = \"baker\"",
    );
    let err = Catalog::parse(
        &Source::embedded("npcs.toml", &npcs),
        &Source::embedded("actions.toml", crate::embedded!("npc/actions.toml").text),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no archetype \"baker\""), "{err}");
    assert!(err.line > 1);
    let actions = crate::embedded!("npc/actions.toml")
        .text
        .replace("input = \"social\"", "input = \"greed\"");
    let err = Catalog::parse(
        &Source::embedded("npcs.toml", crate::embedded!("npc/npcs.toml").text),
        &Source::embedded("actions.toml", &actions),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("actions.toml:"), "{err}");
}

#[tokio::test]
async fn needs_drift_with_game_time_and_mood_returns() {
    let (_d, svc, clock) = npcs();
    let start = get(&svc, "oswin-tarrow").await;
    assert!(start.version > 0, "recorded when first seen");
    let hunger0 = start.needs.unwrap().hunger;
    clock.0.fetch_add(5 * HOUR, Ordering::SeqCst);
    let later = get(&svc, "oswin-tarrow").await;
    let n = later.needs.unwrap();
    assert!(
        (n.hunger - (hunger0 + 5.0 * 0.06)).abs() < 1e-6,
        "{}",
        n.hunger
    );
    // An insult sours the mood; four half-lives later it is back near the baseline.
    let insulted = perceive(&svc, "oswin-tarrow", "insult", 1.0).await.unwrap();
    assert!(
        (insulted.mood - (0.3 - 0.35)).abs() < 1e-6,
        "{}",
        insulted.mood
    );
    clock.0.fetch_add(16 * HOUR, Ordering::SeqCst);
    let calm = get(&svc, "oswin-tarrow").await;
    assert!(
        (calm.mood - (0.3 - 0.35 / 16.0)).abs() < 1e-6,
        "{}",
        calm.mood
    );
}

#[tokio::test]
async fn stimuli_change_needs_and_mood() {
    let (_d, svc, _) = npcs();
    let before = get(&svc, "brenna-hale").await;
    let threatened = perceive(&svc, "brenna-hale", "threat", 0.5).await.unwrap();
    let (b, t) = (before.needs.unwrap(), threatened.needs.unwrap());
    assert!((t.safety - (b.safety + 0.35)).abs() < 1e-6);
    assert!(threatened.mood < before.mood);
    assert!(threatened.version > 0);
    let fed = perceive(&svc, "brenna-hale", "food", 1.0).await.unwrap();
    assert_eq!(fed.needs.unwrap().hunger, 0.0, "clamped at satisfied");
    for (kind, intensity) in [("sneeze", 0.5), ("threat", 1.5), ("threat", f64::NAN)] {
        let err = perceive(&svc, "brenna-hale", kind, intensity)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{kind} {intensity}");
    }
    let err = perceive(&svc, "nobody", "threat", 0.5).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn decide_is_deterministic_vetoes_and_does_not_flip_flop() {
    let (_d, svc, clock) = npcs();
    let decide = |candidates: Vec<&str>| {
        let svc = &svc;
        let candidates: Vec<String> = candidates.into_iter().map(str::to_owned).collect();
        async move {
            svc.decide(
                ctx(),
                DecideRequest {
                    npc_id: "corvin-ashdown".into(),
                    candidate_actions: candidates,
                },
            )
            .await
        }
    };
    // Danger: flee wins, and eating or sleeping is vetoed outright.
    perceive(&svc, "corvin-ashdown", "threat", 1.0)
        .await
        .unwrap();
    perceive(&svc, "corvin-ashdown", "threat", 1.0)
        .await
        .unwrap();
    let d = decide(vec![]).await.unwrap();
    assert_eq!(d.action, "flee");
    let sleep = d.scores.iter().find(|s| s.action == "sleep").unwrap();
    assert_eq!(sleep.utility, 0.0);
    assert!(
        d.scores.windows(2).all(|w| w[0].utility >= w[1].utility),
        "best first"
    );
    // Now flee is current and gets the bonus; the same state gives the same answer.
    let again = decide(vec![]).await.unwrap();
    assert!(again.scores[0].utility > d.scores[0].utility);
    assert_eq!(decide(vec![]).await.unwrap().scores, again.scores);

    // Safe again and hungry: eat.
    perceive(&svc, "corvin-ashdown", "calm", 1.0).await.unwrap();
    perceive(&svc, "corvin-ashdown", "calm", 1.0).await.unwrap();
    clock.0.fetch_add(6 * HOUR, Ordering::SeqCst);
    assert_eq!(decide(vec![]).await.unwrap().action, "eat");

    // Two actions near-equal: whichever is current keeps it while the other creeps past by less
    // than the bonus.
    let first = decide(vec!["work", "wander"]).await.unwrap();
    let mut flips = 0;
    let mut last = first.action.clone();
    for _ in 0..12 {
        clock.0.fetch_add(HOUR / 6, Ordering::SeqCst);
        let d = decide(vec!["work", "wander"]).await.unwrap();
        if d.action != last {
            flips += 1;
            last = d.action;
        }
    }
    assert!(flips <= 1, "{flips} flips");

    let err = decide(vec!["juggle"]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let unknown = svc
        .decide(
            ctx(),
            DecideRequest {
                npc_id: "nobody".into(),
                candidate_actions: vec![],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[test]
fn alternating_input_never_oscillates_with_the_commitment_bonus() {
    let curve = |m: f64, b: f64| Consideration {
        input: Input::Hunger,
        curve: CurveKind::Linear,
        m,
        k: 1.0,
        c: 0.0,
        b,
    };
    let eat = content::Action {
        id: "eat".into(),
        description: String::new(),
        considerations: vec![curve(1.0, 0.0)],
    };
    let work = content::Action {
        id: "work".into(),
        description: String::new(),
        considerations: vec![curve(-1.0, 1.0)],
    };
    let run = |commitment: f64| {
        let mut current = String::new();
        let mut changes = 0;
        for i in 0..40 {
            let hunger = if i % 2 == 0 { 0.48 } else { 0.52 };
            let needs = [hunger, 0.0, 0.0, 0.0];
            let s = |a: &content::Action| score(a, &needs, 0.0, a.id == current, commitment);
            let best = if s(&eat) > s(&work) { "eat" } else { "work" };
            if best != current {
                changes += 1;
                current = best.to_owned();
            }
        }
        changes
    };
    assert!(
        run(0.0) > 30,
        "without the bonus the choice flips every call"
    );
    assert_eq!(run(0.15), 1, "with it, the first choice holds");
}

/// The `npc.changed` events so far, decoded (the fake checked each is exactly its message).
fn changes(clock: &Clock) -> Vec<(String, proto::aicore::npc::v1::NpcChanged, String)> {
    clock
        .1
        .lock()
        .unwrap()
        .iter()
        .map(|(req, key, _)| {
            assert_eq!(req.r#type, "npc.changed");
            let json = serde_json::to_value(req.payload.clone().unwrap()).unwrap();
            let json = crate::kit::calls::fake::as_written(&json);
            assert!(json["npc"].get("needs").is_none() && json.get("needs").is_none());
            (
                req.topic.clone(),
                serde_json::from_value(json).unwrap(),
                key.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_mood_that_crosses_a_label_is_pushed_to_the_region_and_small_moves_are_not() {
    let (_d, svc, clock) = npcs();
    // Brenna starts at 0.1, "neutral": a faint greeting keeps her there, unannounced.
    perceive(&svc, "brenna-hale", "greeting", 0.2)
        .await
        .unwrap();
    assert!(changes(&clock).is_empty(), "no news within a label");
    let npc = perceive(&svc, "brenna-hale", "greeting", 0.5)
        .await
        .unwrap();
    let pushed = changes(&clock);
    assert_eq!(pushed.len(), 1);
    let (topic, event, key) = &pushed[0];
    assert_eq!(topic, "world.hearthvale");
    assert_eq!(key, &format!("npc-changed:brenna-hale:{}", npc.version));
    assert_eq!(event.previous_mood_label, "neutral");
    // What ListNpcs shows of her, exactly.
    let listed = svc
        .list_npcs(
            ctx(),
            ListNpcsRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .npcs
        .into_iter()
        .find(|n| n.id == "brenna-hale")
        .unwrap();
    assert_eq!(event.npc.as_ref(), Some(&listed));
    assert_eq!(listed.mood_label, "friendly");
    // Drift back over the hours is computed on read: nothing is pushed for it.
    clock.0.fetch_add(48 * HOUR, Ordering::SeqCst);
    get(&svc, "brenna-hale").await;
    assert_eq!(changes(&clock).len(), 1);
}

#[tokio::test]
async fn players_changes_are_pushed_charged_to_them_and_only_past_a_label() {
    use crate::kit::context::Principal;
    let (_d, svc, clock) = npcs();
    let insult = |who: &'static str| {
        let svc = &svc;
        async move {
            svc.interact(
                crate::kit::testing::player(who),
                InteractRequest {
                    npc_id: "brenna-hale".into(),
                    kind: InteractionKind::Insult as i32,
                    player_id: String::new(),
                },
            )
            .await
            .unwrap()
            .effect
            .unwrap()
        }
    };
    const ME: &str = "0123456789abcdef0123456789abcdef";
    const YOU: &str = "fedcba9876543210fedcba9876543210";
    // 0.1 -> -0.25: "unfriendly", pushed and paid for by the player who did it.
    assert_eq!(insult(ME).await.mood_label, "unfriendly");
    // The same player again: their bound leaves a small move, still "unfriendly": no event.
    assert_eq!(insult(ME).await.mood_label, "unfriendly");
    // Another player tips her into "hostile".
    assert_eq!(insult(YOU).await.mood_label, "hostile");
    let pushed = changes(&clock);
    let labels: Vec<(&str, &str)> = pushed
        .iter()
        .map(|(_, e, _)| {
            let now = e.npc.as_ref().unwrap().mood_label.as_str();
            (e.previous_mood_label.as_str(), now)
        })
        .collect();
    assert_eq!(
        labels,
        [("neutral", "unfriendly"), ("unfriendly", "hostile")]
    );
    let payers: Vec<Option<Principal>> = clock
        .1
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, p)| p.clone())
        .collect();
    assert_eq!(
        payers,
        [
            Some(Principal::Player {
                player_id: ME.into()
            }),
            Some(Principal::Player {
                player_id: YOU.into()
            })
        ]
    );
    assert_ne!(pushed[0].2, pushed[1].2, "one key per change");

    // Taking up another action is news too; deciding the same one again is not.
    let decided = svc
        .decide(
            ctx(),
            DecideRequest {
                npc_id: "brenna-hale".into(),
                candidate_actions: vec!["work".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(decided.action, "work");
    let pushed = changes(&clock);
    assert_eq!(pushed.len(), 3);
    assert_eq!(pushed[2].1.current_action, "work");
    assert_eq!(pushed[2].1.previous_mood_label, "hostile");
    svc.decide(
        ctx(),
        DecideRequest {
            npc_id: "brenna-hale".into(),
            candidate_actions: vec!["work".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(changes(&clock).len(), 3);
}
