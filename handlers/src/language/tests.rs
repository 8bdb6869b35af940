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
    let ids: Vec<String> = message_ids(SHIPPED[0].1)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert!(ids.len() >= 15, "{ids:?}");
    for (locale, ftl) in SHIPPED {
        let here: Vec<String> = message_ids(ftl).into_iter().map(|(i, _)| i).collect();
        assert_eq!(here, ids, "{locale} has the same messages");
    }
}

#[test]
fn polish_plurals_follow_cldr() {
    let l = Locales::embedded().unwrap();
    let crowns = |n: f64| say(&l, "currency-amount", "pl-PL", &[("crowns", num(n))]).unwrap();
    assert_eq!(crowns(1.0), ("1 korona".into(), "pl".into()));
    // few: 2-4, 22-24; many: 5-21, 25-...
    for n in [2.0, 3.0, 22.0] {
        assert!(crowns(n).0.ends_with("korony"), "{n}: {:?}", crowns(n));
    }
    for n in [5.0, 12.0, 25.0] {
        assert!(crowns(n).0.ends_with("koron"), "{n}: {:?}", crowns(n));
    }
    let en = |n: f64| {
        say(&l, "currency-amount", "en-GB", &[("crowns", num(n))])
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
                Source::embedded(&format!("{loc}.ftl"), t),
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
        crate::Code::NotFound
    );
    let e = say(&l, "quest-accepted", "fr", &[]).unwrap_err();
    assert_eq!(e.code(), crate::Code::InvalidArgument);
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
                Source::embedded(&format!("{loc}.ftl"), t),
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
    let store = crate::store::RedbStore::open(&dir.path().join("l.redb")).unwrap();
    let now = crate::now_ms();
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
