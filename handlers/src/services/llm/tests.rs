use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::aicore::llm::v1::ChatMessage;

use super::*;

/// A provider that fails before its first token, counting its calls.
struct Broken(AtomicUsize);

#[async_trait]
impl Provider for Broken {
    async fn start(&self, _: &Model, _: &InferRequest, _: &Context) -> Result<Pieces, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Box::pin(futures_util::stream::iter([Err(
            Status::unavailable("upstream down", Duration::from_secs(1)),
        )])))
    }
}

/// A provider whose stream stops after one token without an end.
struct Truncated;

#[async_trait]
impl Provider for Truncated {
    async fn start(&self, _: &Model, _: &InferRequest, _: &Context) -> Result<Pieces, Status> {
        Ok(Box::pin(futures_util::stream::iter([Ok(Piece::Text(
            "half".into(),
        ))])))
    }
}

fn service() -> (tempfile::TempDir, Catalog, LlmService, Arc<Broken>) {
    let (dir, store) = crate::kit::testing::temp_redb();
    let spend = spend::Spend::new(store.clone(), spend::SpendCaps::default());
    let catalog = Catalog::new(store);
    let broken = Arc::new(Broken(AtomicUsize::new(0)));
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    providers.insert(
        "grammar".into(),
        Arc::new(grammar::GrammarProvider::default()),
    );
    providers.insert("openai".into(), broken.clone());
    providers.insert("nats".into(), Arc::new(Truncated));
    let svc = LlmService::new(catalog.clone(), providers, spend);
    (dir, catalog, svc, broken)
}

fn request(model: &str) -> InferRequest {
    InferRequest {
        model: model.into(),
        messages: vec![ChatMessage {
            role: "user".into(),
            content: "Where is the mill?".into(),
        }],
        seed: Some(3),
        ..Default::default()
    }
}

async fn register(catalog: &Catalog, name: &str, provider: &str, tasks: &[&str]) {
    catalog
        .register(Model {
            name: name.into(),
            provider: provider.into(),
            endpoint: if provider == "openai" {
                "http://127.0.0.1:9/v1".into()
            } else {
                "svc.llm.v1.x".into()
            },
            tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn grammar_streams_the_same_text_for_a_seed() {
    let (_d, _c, svc, _) = service();
    let unary = svc.infer(Context::default(), request("")).await.unwrap();
    assert_eq!(unary.model, "grammar");
    let stream = svc
        .infer_stream(Context::default(), request("grammar"))
        .await
        .unwrap();
    let msgs: Vec<_> = stream.collect().await;
    let (last, deltas) = msgs.split_last().unwrap();
    let text: String = deltas
        .iter()
        .map(|m| m.as_ref().unwrap().delta.clone())
        .collect();
    assert_eq!(text, unary.text);
    let last = last.as_ref().unwrap();
    assert_eq!(last.finish_reason, "stop");
    let usage = last.usage.unwrap();
    assert_eq!(usage.completion_tokens as usize, deltas.len());
    assert_eq!(usage, unary.usage.unwrap());
    assert!(usage.prompt_tokens > 0);
}

#[tokio::test]
async fn falls_back_before_the_first_token_only_when_routed() {
    let (_d, catalog, svc, broken) = service();
    register(&catalog, "cheap-dialogue", "openai", &["dialogue"]).await;
    let mut req = request("");
    req.task = "dialogue".into();
    let resp = svc.infer(Context::default(), req).await.unwrap();
    assert_eq!(resp.model, "grammar", "fell back to the default");
    assert_eq!(broken.0.load(Ordering::SeqCst), 1);

    // A caller who names a model gets it or its error.
    let err = svc
        .infer(Context::default(), request("cheap-dialogue"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_stream_that_stops_without_an_end_is_an_error() {
    let (_d, catalog, svc, _) = service();
    register(&catalog, "remote", "nats", &[]).await;
    let msgs: Vec<_> = svc
        .infer_stream(Context::default(), request("remote"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].as_ref().unwrap().delta, "half");
    assert_eq!(msgs[1].as_ref().unwrap_err().code(), Code::Unavailable);
}

#[tokio::test]
async fn bad_requests_and_unknown_models() {
    let (_d, _c, svc, _) = service();
    let mut req = request("");
    req.max_tokens = 9000;
    req.messages[0].role = "wizard".into();
    let err = svc.infer(Context::default(), req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("role") && err.message().contains("maxTokens"));
    let err = svc
        .infer(Context::default(), request("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn max_tokens_and_stop() {
    let (_d, _c, svc, _) = service();
    let mut req = request("");
    req.max_tokens = 2;
    let r = svc.infer(Context::default(), req).await.unwrap();
    assert_eq!(
        (r.finish_reason.as_str(), r.usage.unwrap().completion_tokens),
        ("length", 2)
    );
}

#[tokio::test]
async fn a_forged_grounding_is_refused_and_a_fair_one_is_spoken_from() {
    use proto::aicore::llm::v1::Grounding;
    let (_d, _c, svc, _) = service();
    // Too many fragments, an empty one, a huge one, a long name: each refused, all at once.
    for g in [
        Grounding {
            fragments: vec!["A reed bed.".into(); 33],
            ..Default::default()
        },
        Grounding {
            fragments: vec!["  ".into()],
            ..Default::default()
        },
        Grounding {
            fragments: vec!["x".repeat(1001)],
            ..Default::default()
        },
        Grounding {
            place: "p".repeat(129),
            ..Default::default()
        },
    ] {
        let mut req = request("");
        req.grounding = Some(g);
        let err = svc.infer(Context::default(), req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains("grounding"), "{err}");
    }
    let mut req = request("");
    req.grounding = Some(Grounding {
        place: "Ashfen Marsh".into(),
        fragments: vec!["Black water and reed islands.".into()],
        weather: "fog".into(),
        ..Default::default()
    });
    req.seed = Some(5);
    let a = svc.infer(Context::default(), req.clone()).await.unwrap();
    assert!(a.text.contains("Ashfen Marsh") && a.text.contains("Black water and reed islands."));
    let b = svc.infer(Context::default(), req).await.unwrap();
    assert_eq!(a.text, b.text, "the same seed and request, the same text");
}

#[test]
fn a_real_model_gets_the_grounding_in_its_prompt() {
    use proto::aicore::llm::v1::Grounding;
    let g = Grounding {
        place: "Ashfen Marsh".into(),
        speaker: "Tamsin Reed".into(),
        fragments: vec!["Black water and reed islands.".into()],
        period: "night".into(),
        mood: "wary".into(),
        season: "winter".into(),
        ..Default::default()
    };
    let text = super::grounded::render(&g);
    for part in [
        "Season: winter",
        "Place: Ashfen Marsh",
        "Speaker: Tamsin Reed",
        "Time of day: night",
        "Mood: wary",
        "- Black water and reed islands.",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    assert!(
        !text.contains("Weather:"),
        "nothing said of what is not known: {text}"
    );
}

#[tokio::test]
async fn a_model_that_cannot_translate_is_never_asked_to() {
    use proto::aicore::models::v1::Capability;
    let (_d, catalog, svc, broken) = service();
    // Made for the task, but it declares no capabilities: it chats only.
    register(&catalog, "talker", "openai", &["translation"]).await;
    let mut req = request("");
    req.task = "translation".into();
    req.capability = Capability::Translate as i32;
    let err = svc
        .infer(Context::default(), req.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains(r#"capabilities = ["chat", "translate"]"#),
        "names the setting: {err}"
    );
    // Named, it is refused before it is asked; the built-in model too.
    for name in ["talker", "grammar"] {
        let mut named = req.clone();
        named.model = name.into();
        let err = svc.infer(Context::default(), named).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
        assert!(err.message().contains("cannot translate"), "{err}");
    }
    assert_eq!(broken.0.load(Ordering::SeqCst), 0, "never asked");
    // One that declares it is asked; and a chat never goes to a model that only translates.
    catalog
        .register(Model {
            name: "translator".into(),
            provider: "grammar".into(),
            capabilities: vec![Capability::Translate as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let ok = svc.infer(Context::default(), req).await.unwrap();
    assert_eq!(ok.model, "translator");
    for _ in 0..3 {
        let chat = svc.infer(Context::default(), request("")).await.unwrap();
        assert_ne!(chat.model, "translator");
    }
    let mut odd = request("");
    odd.capability = 99;
    let err = svc.infer(Context::default(), odd).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_player_pays_for_the_lore_in_the_prompt() {
    use proto::aicore::kb::v1::Document;
    use proto::aicore::llm::v1::Grounding;
    let (_d, store) = crate::kit::testing::temp_redb();
    let catalog = Catalog::new(store.clone());
    let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
    providers.insert(
        "grammar".into(),
        Arc::new(grammar::GrammarProvider::default()),
    );
    let svc = LlmService::new(
        catalog.clone(),
        providers,
        spend::Spend::new(store.clone(), spend::SpendCaps::default()),
    );
    // One cost unit a prompt token, completions free: what is charged is the prompt.
    catalog
        .register(Model {
            name: "metered".into(),
            provider: "grammar".into(),
            input_cost_per_1k: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let docs: Vec<Document> = (0..4)
        .map(|i| Document {
            id: format!("doc-{i}"),
            title: format!("Of the fen, part {i}"),
            body: "Reed-folk pole their punts along the old abbey causeway at low water. \
                   They mark safe channels with knotted reeds and trust no light on the fen."
                .into(),
            ..Document::default()
        })
        .collect();
    let lore = retrieval::within_budget(&docs, "punts abbey", retrieval::DEFAULT_BUDGET);
    assert_eq!(lore.len(), 4);
    let spent = |store: Arc<crate::kit::store::RedbStore>| async move {
        let v = crate::kit::store::Store::get(store.as_ref(), "llm.spend.player.p")
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&v.value).unwrap()["spent"]
            .as_u64()
            .unwrap()
    };
    let mut req = request("metered");
    req.grounding = Some(Grounding {
        place: "Ashfen Marsh".into(),
        fragments: vec!["Black water and reed islands.".into()],
        ..Default::default()
    });
    let bare = svc
        .infer(crate::kit::testing::player("p"), req.clone())
        .await
        .unwrap()
        .usage
        .unwrap();
    let after_bare = spent(store.clone()).await;
    assert_eq!(after_bare, u64::from(bare.prompt_tokens));
    req.grounding.as_mut().unwrap().lore = lore.clone();
    let with = svc
        .infer(crate::kit::testing::player("p"), req)
        .await
        .unwrap()
        .usage
        .unwrap();
    let extra = with.prompt_tokens - bare.prompt_tokens;
    // Counted as the budget counts them (one token of rounding a line at most).
    let n = u32::try_from(lore.len()).unwrap();
    assert!(extra + n >= retrieval::total_cost(&lore), "{extra}");
    assert!(extra <= retrieval::total_cost(&lore) + 2, "{extra}");
    assert_eq!(
        spent(store.clone()).await - after_bare,
        u64::from(with.prompt_tokens),
        "the player paid for the passages"
    );
}

#[test]
fn lore_goes_under_its_own_heading_and_is_checked() {
    use proto::aicore::llm::v1::{Grounding, LorePassage};
    let p = LorePassage {
        document: "the-drowned-abbey".into(),
        title: "The Drowned Abbey of Saint Wren".into(),
        text: "Today only the tower and the west wall stand clear of the black water.".into(),
    };
    let g = Grounding {
        place: "Ashfen Marsh".into(),
        lore: vec![p.clone()],
        ..Default::default()
    };
    let text = grounded::render(&g);
    assert!(
        text.ends_with(
            "Lore:\n- The Drowned Abbey of Saint Wren: Today only the tower and the west wall \
             stand clear of the black water.\n"
        ),
        "{text}"
    );
    for bad in [
        vec![p.clone(); 9],
        vec![LorePassage {
            text: " ".into(),
            ..p.clone()
        }],
        vec![LorePassage {
            text: "x".repeat(1001),
            ..p.clone()
        }],
    ] {
        let g = Grounding {
            lore: bad,
            ..Default::default()
        };
        assert!(grounded::check(&g).is_some());
    }
    // Lore alone is a world to speak from.
    let only = Grounding {
        lore: vec![p.clone()],
        ..Default::default()
    };
    assert!(!grounded::is_empty(&only));
    let said = grammar::generate(1, "", &only, 200).0.concat();
    assert!(said.contains("Today only the tower"), "{said}");
}

#[tokio::test]
async fn the_built_in_narrator_says_the_season_it_is_given_and_no_other() {
    use proto::aicore::llm::v1::Grounding;
    let (_d, _c, svc, _) = service();
    let ask = |season: &str, seed: u64| {
        let mut req = request("");
        req.grounding = Some(Grounding {
            place: "Ashfen Marsh".into(),
            fragments: vec!["Black water and reed islands.".into()],
            weather: "rain".into(),
            period: "evening".into(),
            season: season.into(),
            ..Default::default()
        });
        req.seed = Some(seed);
        req
    };
    for seed in 1..=6 {
        let text = svc
            .infer(Context::default(), ask("winter", seed))
            .await
            .unwrap()
            .text;
        assert!(text.contains("winter evening"), "{text}");
        assert!(
            !["spring", "summer", "autumn"]
                .iter()
                .any(|s| text.contains(s)),
            "{text}"
        );
        // A word that is no season of the calendar is left unsaid.
        let text = svc
            .infer(Context::default(), ask("monsoon", seed))
            .await
            .unwrap()
            .text;
        assert!(
            !text.contains("monsoon") && text.contains("evening"),
            "{text}"
        );
    }
}
