use super::*;
use crate::kit::status::Code;

const ME: &str = "0123456789abcdef0123456789abcdef";

fn ctx() -> Context {
    crate::kit::testing::player(ME)
}

fn shipped() -> Vec<String> {
    crate::services::language::Locales::embedded()
        .unwrap()
        .list()
}

fn svc() -> (tempfile::TempDir, SettingsService) {
    let (dir, store) = crate::kit::testing::temp_redb();
    (dir, SettingsService::new(store, shipped()))
}

#[test]
fn defaults_are_valid() {
    validate(&defaults(), &shipped()).unwrap();
}

/// The game offers the languages it has text in, and nothing else: a studio that loads a
/// Spanish pack offers Spanish.
#[tokio::test]
async fn languages_are_the_loaded_locales() {
    let (_d, s) = svc();
    let got = s.get(ctx(), GetRequest::default()).await.unwrap();
    assert_eq!(got.languages, ["en", "de", "fr", "pl", "ja"]);
    let mut doc = defaults();
    for ok in ["de", "de-DE", "pl-PL", "ja", "en-GB"] {
        doc.language = ok.into();
        validate(&doc, &shipped()).unwrap();
    }
    for bad in ["es-ES", "ko-KR", "", "de_DE", "de--DE", "zz"] {
        doc.language = bad.into();
        let e = validate(&doc, &shipped()).unwrap_err();
        assert!(e.message().contains("en, de, fr, pl, ja"), "{bad}: {e:?}");
    }
    doc.language = "es-ES".into();
    validate(&doc, &["en".into(), "es".into()]).unwrap();
}

#[tokio::test]
async fn update_validates_and_versions() {
    let (_d, s) = svc();
    let got = s.get(ctx(), GetRequest::default()).await.unwrap();
    assert_eq!(got.version, 0);
    let patch = SettingsPatch {
        field_of_view: Some(100),
        ..Default::default()
    };
    let up = s
        .update(
            ctx(),
            UpdateRequest {
                patch: Some(patch),
                expected_version: Some(0),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(up.settings.as_ref().unwrap().field_of_view, 100);
    assert!(up.version > 0);
    let stale = SettingsPatch {
        master_volume: Some(5),
        ..Default::default()
    };
    let e = s
        .update(
            ctx(),
            UpdateRequest {
                patch: Some(stale),
                expected_version: Some(0),
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);

    let bad = SettingsPatch {
        field_of_view: Some(200),
        master_volume: Some(101),
        language: Some("xx".into()),
        ..Default::default()
    };
    let e = s
        .update(
            ctx(),
            UpdateRequest {
                patch: Some(bad),
                expected_version: None,
                player_id: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("fieldOfView")
            && e.message().contains("masterVolume")
            && e.message().contains("language")
    );
    let bad_enum = SettingsPatch {
        difficulty: Some(99),
        ..Default::default()
    };
    assert_eq!(
        s.update(
            ctx(),
            UpdateRequest {
                patch: Some(bad_enum),
                expected_version: None,
                player_id: String::new()
            }
        )
        .await
        .unwrap_err()
        .code(),
        Code::InvalidArgument
    );
    let reset = s
        .reset(
            ctx(),
            ResetRequest {
                expected_version: Some(up.version),
                player_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(reset.settings.unwrap(), defaults());
    assert!(reset.version > up.version);
}

#[test]
fn bindings_are_set_and_removed() {
    let mut p = SettingsPatch::default();
    p.key_bindings.insert("jump".into(), "Space".into());
    let s = apply(defaults(), p);
    assert_eq!(s.key_bindings["jump"], "Space");
    let mut p = SettingsPatch::default();
    p.key_bindings.insert("jump".into(), String::new());
    assert!(apply(s, p).key_bindings.is_empty());
}
