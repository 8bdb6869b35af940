use std::collections::HashMap;

use super::*;

fn num(n: f64) -> pbjson_types::Value {
    pbjson_types::Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn text(s: &str) -> pbjson_types::Value {
    pbjson_types::Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn say(
    l: &Locales,
    id: &str,
    locale: &str,
    args: &[(&str, pbjson_types::Value)],
) -> Result<(String, String), Status> {
    let map: HashMap<String, pbjson_types::Value> = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    l.localize(id, locale, &fluent_args(&map)?)
}

#[test]
fn every_locale_loads_and_has_every_message_of_the_default() {
    let l = Locales::embedded().unwrap();
    assert_eq!(l.list(), ["en", "de", "fr", "pl", "ja"]);
    let ids: Vec<String> = message_ids(SHIPPED[0].1.text)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert!(ids.len() >= 15, "{ids:?}");
    for (locale, ftl) in SHIPPED {
        let here: Vec<String> = message_ids(ftl.text).into_iter().map(|(i, _)| i).collect();
        assert_eq!(here, ids, "{locale} has the same messages");
    }
}

#[test]
fn polish_plurals_follow_cldr() {
    let l = Locales::embedded().unwrap();
    let crowns = |n: f64| {
        say(
            &l,
            "currency-amount",
            "pl-PL",
            &[("amount", num(n * 100.0))],
        )
        .unwrap()
    };
    assert_eq!(crowns(1.0), ("1 korona".into(), "pl".into()));
    // few: 2-4, 22-24; many: 5-21, 25-...
    for n in [2.0, 3.0, 22.0] {
        assert!(crowns(n).0.ends_with("korony"), "{n}: {:?}", crowns(n));
    }
    for n in [5.0, 12.0, 25.0] {
        assert!(crowns(n).0.ends_with("koron"), "{n}: {:?}", crowns(n));
    }
    let en = |n: f64| {
        say(
            &l,
            "currency-amount",
            "en-GB",
            &[("amount", num(n * 100.0))],
        )
        .unwrap()
        .0
    };
    assert_ne!(en(1.0), en(2.0));
}

#[test]
fn fallback_missing_messages_and_arguments() {
    let l = Locales::embedded().unwrap();
    // An unknown locale is the default's text.
    let (_, from) = say(&l, "error-session-expired", "sw", &[]).unwrap();
    assert_eq!(from, "en");
    // A message only the default has falls back to it.
    let mut sources: Vec<(String, Source)> = SHIPPED
        .iter()
        .map(|(loc, t)| {
            (
                (*loc).to_owned(),
                Source::embedded(&format!("{loc}.ftl"), t.text),
            )
        })
        .collect();
    sources[1].1.text = "level-up = Stufe { $level }!\n".into();
    let partial = Locales::parse(sources).unwrap();
    assert_eq!(
        say(&partial, "level-up", "de-AT", &[("level", num(3.0))]).unwrap(),
        ("Stufe 3!".into(), "de".into())
    );
    let (_, from) = say(&partial, "error-session-expired", "de", &[]).unwrap();
    assert_eq!(from, "en");
    assert_eq!(
        say(&l, "no-such-message", "de", &[]).unwrap_err().code(),
        crate::kit::status::Code::NotFound
    );
    let e = say(&l, "quest-accepted", "fr", &[]).unwrap_err();
    assert_eq!(e.code(), crate::kit::status::Code::InvalidArgument);
    assert!(e.message().contains("title"), "{e:?}");
    // No isolation marks around arguments.
    let (t, _) = say(&l, "quest-accepted", "de", &[("title", text("Die Glocke"))]).unwrap();
    assert!(
        t.contains("Die Glocke") && !t.contains('\u{2068}') && !t.contains('\u{2069}'),
        "{t:?}"
    );
}

#[test]
fn bad_files_name_the_line() {
    let mut sources: Vec<(String, Source)> = SHIPPED
        .iter()
        .map(|(loc, t)| {
            (
                (*loc).to_owned(),
                Source::embedded(&format!("{loc}.ftl"), t.text),
            )
        })
        .collect();
    sources[2].1.text = "# ok\n\nbroken = { $x ->\n  [one] a\n}\n".into();
    let e = Locales::parse(sources.clone()).unwrap_err();
    assert_eq!(e.file, "fr.ftl");
    assert!(e.line >= 3, "{e}");
    sources[2].1.text = "# ok\nsurprise = Bonjour\n".into();
    let e = Locales::parse(sources).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("fr.ftl", 2), "{e}");
}

#[test]
fn arguments_are_numbers_or_strings() {
    let bad = HashMap::from([(
        "x".to_owned(),
        pbjson_types::Value {
            kind: Some(Kind::NullValue(0)),
        },
    )]);
    assert!(fluent_args(&bad).is_err());
    let l = Locales::embedded().unwrap();
    // Any input: never a panic.
    for id in ["", "quest-completed", "\u{0}", "time-of-day"] {
        let _ = say(
            &l,
            id,
            "\u{202e}xx",
            &[("period", num(f64::MAX)), ("crowns", text("∞"))],
        );
    }
}

#[tokio::test]
async fn old_translations_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::kit::store::RedbStore::open(&dir.path().join("l.redb")).unwrap();
    let now = crate::kit::clock::now_ms();
    let old = now - TRANSLATION_TTL.as_millis() as u64 - 1;
    for (k, at) in [("lang.tr.a", old), ("lang.tr.b", now)] {
        let v = serde_json::to_vec(&Cached {
            text: "x".into(),
            at_ms: at,
        })
        .unwrap();
        store.put(k, Bytes::from(v), None).await.unwrap();
    }
    assert_eq!(prune_translations(&store, || false).await.unwrap(), 1);
    assert!(store.get("lang.tr.a").await.unwrap().is_none());
    assert!(fresh(&store.get("lang.tr.b").await.unwrap().unwrap().value, now).is_some());
}

/// airouter answers model "m"; llm answers with the user's text reversed, counting calls.
struct FakeModels {
    infers: std::sync::atomic::AtomicUsize,
}

impl crate::kit::calls::Route for FakeModels {
    fn call(
        &self,
        _ctx: Context,
        method: &'static proto::MethodDesc,
        body: Bytes,
    ) -> proto::BoxFuture<Result<proto::Encoded<Status>, Status>> {
        use prost::Message as _;
        let reply = if method.path.ends_with("/Route") {
            // Only a model that can translate is asked for.
            let req = proto::aicore::airouter::v1::RouteRequest::decode(body).unwrap();
            assert_eq!(req.capability, Capability::Translate as i32);
            proto::aicore::airouter::v1::RouteResponse {
                model: "m".into(),
                ..Default::default()
            }
            .encode_to_vec()
        } else {
            self.infers
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let req = InferRequest::decode(body).unwrap();
            assert_eq!(req.capability, Capability::Translate as i32);
            proto::aicore::llm::v1::InferResponse {
                model: "m".into(),
                text: req.messages[1].content.chars().rev().collect(),
                finish_reason: "stop".into(),
                ..Default::default()
            }
            .encode_to_vec()
        };
        Box::pin(async move { Ok(proto::Encoded::Unary(Bytes::from(reply))) })
    }
}

#[tokio::test]
async fn translations_are_cached_per_text_and_locales() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(crate::kit::store::RedbStore::open(&dir.path().join("l.redb")).unwrap());
    let fake = Arc::new(FakeModels {
        infers: std::sync::atomic::AtomicUsize::new(0),
    });
    let calls = crate::kit::calls::Calls::new();
    calls.connect(Arc::clone(&fake) as Arc<dyn crate::kit::calls::Route>);
    let svc = LanguageService::new(
        Arc::new(Locales::embedded().unwrap()),
        Arc::clone(&store),
        calls.from(proto::aicore::language::v1::LANGUAGE_SERVICE),
    );
    let ask = |text: &str, target: &str| TranslateRequest {
        text: text.into(),
        source_locale: "en".into(),
        target_locale: target.into(),
    };
    let a = svc
        .translate(Context::default(), ask("abc", "de"))
        .await
        .unwrap();
    assert_eq!((a.text.as_str(), a.model.as_str()), ("cba", "m"));
    let b = svc
        .translate(Context::default(), ask("abc", "de"))
        .await
        .unwrap();
    assert_eq!(b, a);
    assert_eq!(
        fake.infers.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second from the cache"
    );
    svc.translate(Context::default(), ask("abc", "fr"))
        .await
        .unwrap();
    assert_eq!(
        fake.infers.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "another target, another entry"
    );
    assert_eq!(
        store
            .list(CACHE_PREFIX, None, 10)
            .await
            .unwrap()
            .entries
            .len(),
        2
    );
    assert_eq!(
        prune_translations(store.as_ref(), || false).await.unwrap(),
        0,
        "fresh ones stay"
    );
}

#[test]
fn clocks_and_decimals_are_written_the_locales_way() {
    let l = Locales::embedded().unwrap();
    let clock = [("hour", num(7.0)), ("minute", num(5.0))];
    assert_eq!(
        say(&l, "game-clock", "en", &clock).unwrap().0,
        "It is 7:05."
    );
    assert_eq!(
        say(&l, "game-clock", "de", &clock).unwrap().0,
        "Es ist 7:05 Uhr."
    );
    assert_eq!(
        say(&l, "game-clock", "fr", &clock).unwrap().0,
        "Il est 7 h 05."
    );
    assert!(
        say(&l, "game-clock", "ja", &clock)
            .unwrap()
            .0
            .contains("7時5分")
    );
    // Money comes in minor units, as the API gives it (250 = 2.50 crowns).
    let half = [("amount", num(250.0))];
    assert_eq!(
        say(&l, "currency-amount", "en", &half).unwrap().0,
        "2.50 crowns"
    );
    let de = say(&l, "currency-amount", "de", &half).unwrap().0;
    assert!(de.starts_with("2,50 "), "{de}");
    let whole = [("amount", num(300.0))];
    assert_eq!(
        say(&l, "currency-amount", "en", &whole).unwrap().0,
        "3 crowns"
    );
    let one = [("amount", num(100.0))];
    assert_eq!(say(&l, "currency-amount", "en", &one).unwrap().0, "1 crown");
    let many = [("amount", num(1_250_000.0))];
    let de = say(&l, "currency-amount", "de", &many).unwrap().0;
    assert!(de.starts_with("12.500 "), "{de}");
}

#[test]
fn a_partial_locale_says_how_many_messages_it_lacks() {
    let shipped = Locales::embedded().unwrap();
    assert!(shipped.details().iter().all(|(_, missing)| *missing == 0));
    let partial = Locales::parse(vec![
        ("en".into(), SHIPPED[0].1.source()),
        (
            "es".into(),
            Source::embedded(
                "es.ftl",
                "level-up = ¡Subes de nivel! Ahora eres nivel { $level }.\n",
            ),
        ),
    ])
    .unwrap();
    let details = partial.details();
    assert_eq!(details[0], ("en".to_owned(), 0));
    assert_eq!(details[1].0, "es");
    assert_eq!(details[1].1, message_ids(SHIPPED[0].1.text).len() - 1);
    // The missing ones come out in English.
    let (text, locale) = say(&partial, "error-server-busy", "es-ES", &[]).unwrap();
    assert_eq!(locale, "en");
    assert!(text.starts_with("The server is busy"), "{text}");
}

/// The API's words are the messages' selectors: a client passes Weather's `condition` and Now's
/// `period` as they come, and every value has a line of its own in every locale (none falls to
/// the default branch unnoticed).
#[test]
fn every_condition_and_period_has_its_own_line_in_every_locale() {
    use proto::aicore::weather::v1::Condition;
    let l = Locales::embedded().unwrap();
    let conditions = [
        Condition::Clear,
        Condition::Cloudy,
        Condition::Rain,
        Condition::Storm,
        Condition::Snow,
        Condition::Fog,
    ];
    for locale in l.list() {
        let mut lines = std::collections::BTreeSet::new();
        for c in conditions {
            let (text, from) = say(
                &l,
                "weather-now",
                &locale,
                &[("condition", text(c.as_str_name()))],
            )
            .unwrap();
            assert_eq!(from, locale);
            lines.insert(text);
        }
        assert_eq!(lines.len(), conditions.len(), "{locale}: {lines:?}");
        // A word from elsewhere ("rain") claims no weather at all, rather than fog.
        let stray = say(&l, "weather-now", &locale, &[("condition", text("rain"))])
            .unwrap()
            .0;
        assert!(!lines.contains(&stray), "{locale}: {stray}");
        let mut periods = std::collections::BTreeSet::new();
        for (period, _) in crate::kit::clock::PERIODS {
            periods.insert(
                say(&l, "time-of-day", &locale, &[("period", text(period))])
                    .unwrap()
                    .0,
            );
        }
        assert_eq!(periods.len(), 5, "{locale}: {periods:?}");
        let seasons: std::collections::BTreeSet<String> = crate::kit::clock::SEASONS
            .iter()
            .map(|season| {
                say(&l, "season-now", &locale, &[("season", text(season))])
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(seasons.len(), 4, "{locale}: {seasons:?}");
    }
}

#[test]
fn accept_language_picks_the_best_loaded_locale() {
    let l = Locales::embedded().unwrap();
    assert_eq!(l.from_accept_language("de-CH, de;q=0.9, en;q=0.5"), "de");
    assert_eq!(l.from_accept_language("es-ES, fr;q=0.8, en;q=0.7"), "fr");
    assert_eq!(l.from_accept_language("en;q=0.4, pl;q=0.9"), "pl");
    assert_eq!(l.from_accept_language("es, it"), "en");
    assert_eq!(l.from_accept_language("pl;q=0, ja"), "ja");
    assert_eq!(l.from_accept_language("*"), "en");
    assert_eq!(l.from_accept_language(";;;,,q=x"), "en");
    assert_eq!(l.from_accept_language("en-GB, de"), "en");
}

/// The real AI router over a catalog; llm counted, never expected.
struct RealRouter {
    router: crate::services::airouter::AiRouterService,
    infers: std::sync::atomic::AtomicUsize,
}

impl crate::kit::calls::Route for RealRouter {
    fn call(
        &self,
        _ctx: Context,
        method: &'static proto::MethodDesc,
        body: Bytes,
    ) -> proto::BoxFuture<Result<proto::Encoded<Status>, Status>> {
        use prost::Message as _;
        if !method.path.ends_with("/Route") {
            self.infers
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Box::pin(async { Err(Status::internal("a model was asked")) });
        }
        let router = self.router.clone();
        Box::pin(async move {
            let req = proto::aicore::airouter::v1::RouteRequest::decode(body).unwrap();
            let resp = router.route(&req).await?;
            Ok(proto::Encoded::Unary(Bytes::from(resp.encode_to_vec())))
        })
    }
}

#[tokio::test]
async fn with_no_model_that_can_translate_translate_says_what_to_configure() {
    let (_dir, store) = crate::kit::testing::temp_store();
    // The catalog as shipped: the built-in grammar model only, which cannot translate.
    let catalog = crate::services::models::Catalog::new(Arc::clone(&store));
    let fake = Arc::new(RealRouter {
        router: crate::services::airouter::AiRouterService::new(catalog),
        infers: std::sync::atomic::AtomicUsize::new(0),
    });
    let calls = crate::kit::calls::Calls::new();
    calls.connect(Arc::clone(&fake) as Arc<dyn crate::kit::calls::Route>);
    let svc = LanguageService::new(
        Arc::new(Locales::embedded().unwrap()),
        store,
        calls.from(proto::aicore::language::v1::LANGUAGE_SERVICE),
    );
    let e = svc
        .translate(
            crate::kit::testing::player("p"),
            TranslateRequest {
                text: "The bell tolls beneath the fen.".into(),
                source_locale: "en".into(),
                target_locale: "de".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), crate::kit::status::Code::FailedPrecondition);
    assert!(
        e.message().contains("no active model can translate")
            && e.message().contains("[[llm.models]]")
            && e.message().contains("CAPABILITY_TRANSLATE"),
        "{}",
        e.message()
    );
    // The game's own messages are translated in the locale files, model or none.
    let shipped = svc
        .translate(
            crate::kit::testing::player("p"),
            TranslateRequest {
                text: " Your session has expired. Please log in again.".into(),
                source_locale: "en-GB".into(),
                target_locale: "de-DE".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        shipped.text,
        "Deine Sitzung ist abgelaufen. Bitte melde dich erneut an."
    );
    assert!(shipped.model.is_empty());
    let l = Locales::embedded().unwrap();
    let back = l.shipped_translation(&shipped.text, "de", "fr").unwrap();
    assert_eq!(back, "Votre session a expiré. Veuillez vous reconnecter.");
    // Not a message, a locale not loaded, a message with variables: not from the files.
    assert!(l.shipped_translation("Your session", "en", "de").is_none());
    assert!(
        l.shipped_translation("Your session has expired. Please log in again.", "en", "es")
            .is_none()
    );
    assert_eq!(
        fake.infers.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no model was asked: English never comes back as German"
    );
}

#[test]
fn every_locale_keeps_the_game_s_messages_contract() {
    let shipped = || -> Vec<(String, Source)> {
        SHIPPED
            .iter()
            .map(|(loc, t)| {
                (
                    (*loc).to_owned(),
                    Source::embedded(&format!("{loc}.ftl"), t.text),
                )
            })
            .collect()
    };
    assert_eq!(contract_problems(&shipped()), []);
    let mut sources = shipped();
    // de without level-up, with a variable the game never passes, and a number chosen by words.
    sources[1].1.text = sources[1]
        .1
        .text
        .replace("level-up", "level-upp")
        .replace("{ $title }", "{ $titel }");
    sources[3].1.text += "extra = { $count ->\n    [one] jeden\n   *[other] wiele\n}\n";
    // A declared number is a plural selector whatever its keys say.
    sources[0].1.text =
        sources[0]
            .1
            .text
            .replacen("[one] { $count } friend", "[some] { $count } friend", 1);
    let problems = contract_problems(&sources);
    let has = |file: &str, what: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.file == file && p.message.contains(what)),
            "no {file}: {what} in {problems:#?}"
        );
    };
    has("de.ftl", "message level-up is missing");
    has("de.ftl", "uses $titel");
    has("en.ftl", "[some] is no plural category");
    has("en.ftl", "no [one] variant");
    // A message beyond the contract: plural categories still apply, in every locale.
    has("pl.ftl", "no [few] variant");
    has("pl.ftl", "no [many] variant");
    assert!(Arg::Number != Arg::Text && MESSAGES.len() >= 18);
}

#[test]
fn a_declared_number_must_come_as_a_number() {
    let args = |v: pbjson_types::Value| HashMap::from([("count".to_owned(), v)]);
    messages::check_args("items-received", &args(num(3.0))).unwrap();
    let e = messages::check_args("items-received", &args(text("3"))).unwrap_err();
    assert_eq!(e.code(), crate::kit::status::Code::InvalidArgument);
    assert!(e.message().contains("count"), "{e:?}");
    // Text arguments, and messages the game does not declare, take what they are given.
    messages::check_args(
        "quest-accepted",
        &HashMap::from([("title".to_owned(), num(1.0))]),
    )
    .unwrap();
    messages::check_args("a-pack-message", &args(text("3"))).unwrap();
}
