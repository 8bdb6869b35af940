use super::*;
use crate::kit::store::RedbStore;

fn catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    (dir, Catalog::new(Arc::new(store)))
}

fn openai(name: &str) -> Model {
    Model {
        name: name.into(),
        provider: "openai".into(),
        endpoint: "http://127.0.0.1:9/v1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_are_briefly_cached_and_changes_here_seen_at_once() {
    let (_d, a) = catalog();
    let b = Catalog::new(Arc::clone(&a.store));
    assert_eq!(a.list(false).await.unwrap().len(), 1);
    // A change through this replica: seen at once.
    a.register(openai("m1")).await.unwrap();
    assert!(a.find("m1").await.unwrap().is_some());
    assert_eq!(a.list(false).await.unwrap().len(), 2);
    // Through another replica: within FRESH_FOR.
    b.register(openai("m2")).await.unwrap();
    b.retire("m1").await.unwrap();
    tokio::time::sleep(FRESH_FOR + std::time::Duration::from_millis(50)).await;
    let names: Vec<String> = a
        .list(false)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["grammar", "m2"]);
    assert_eq!(
        a.find("m1").await.unwrap().unwrap().status,
        ModelStatus::Retired as i32
    );
}

#[tokio::test]
async fn grammar_is_built_in_and_the_default() {
    let (_d, c) = catalog();
    let m = c.get(GRAMMAR).await.unwrap().unwrap();
    assert!(m.is_default);
    assert_eq!(m.provider, "grammar");
    assert_eq!(c.list(false).await.unwrap().len(), 1);
    assert_eq!(
        c.retire(GRAMMAR).await.unwrap_err().code(),
        crate::kit::status::Code::FailedPrecondition
    );
}

#[tokio::test]
async fn register_default_retire() {
    let (_d, c) = catalog();
    c.register(openai("vllm-small")).await.unwrap();
    c.set_default("vllm-small").await.unwrap();
    assert_eq!(c.default_name().await.unwrap(), "vllm-small");
    assert!(!c.get(GRAMMAR).await.unwrap().unwrap().is_default);
    c.retire(GRAMMAR).await.unwrap();
    assert_eq!(c.list(false).await.unwrap().len(), 1);
    assert_eq!(c.list(true).await.unwrap().len(), 2);
    assert_eq!(
        c.set_default(GRAMMAR).await.unwrap_err().code(),
        crate::kit::status::Code::FailedPrecondition
    );
    assert_eq!(
        c.set_default("nope").await.unwrap_err().code(),
        crate::kit::status::Code::NotFound
    );
}

#[test]
fn validation_names_every_problem() {
    let bad = Model {
        name: "has space".into(),
        provider: "openai".into(),
        endpoint: "ftp://x".into(),
        ..Default::default()
    };
    let msg = validate(&bad).unwrap_err().message().to_owned();
    assert!(msg.contains("name") && msg.contains("endpoint"), "{msg}");
    let nats = Model {
        name: "remote".into(),
        provider: "nats".into(),
        endpoint: "svc.llm..x".into(),
        ..Default::default()
    };
    assert!(validate(&nats).is_err());
    assert!(validate(&openai("ok")).is_ok());
}

#[test]
fn the_builtin_model_says_it_is_no_language_model() {
    let d = super::builtin_grammar().description;
    assert!(
        d.contains("not a language model") && d.contains("grounding"),
        "{d}"
    );
    assert!(d.chars().count() <= 500);
    let mut m = openai("described");
    m.description = "d".repeat(501);
    let e = validate(&m).unwrap_err();
    assert!(e.message().contains("description"), "{e}");
}

#[tokio::test]
async fn models_declare_what_they_can_do() {
    use proto::aicore::models::v1::Capability;
    let grammar = builtin_grammar();
    assert!(can(&grammar, Capability::Chat) && can(&grammar, Capability::Unspecified));
    assert!(!can(&grammar, Capability::Translate), "it only repeats");
    let (_d, c) = catalog();
    // None declared: chat, and it says so.
    let m = c.register(openai("m1")).await.unwrap();
    assert_eq!(m.capabilities, [Capability::Chat as i32]);
    let mut both = openai("m2");
    both.capabilities = vec![
        Capability::Translate as i32,
        Capability::Chat as i32,
        Capability::Translate as i32,
    ];
    let m = c.register(both).await.unwrap();
    assert_eq!(
        m.capabilities,
        [Capability::Chat as i32, Capability::Translate as i32]
    );
    assert!(can(&m, Capability::Translate));
    for bad in [vec![0], vec![7], vec![1; 9]] {
        let mut m = openai("m3");
        m.capabilities = bad;
        let e = c.register(m).await.unwrap_err();
        assert_eq!(e.code(), crate::kit::status::Code::InvalidArgument);
        assert!(e.message().contains("capabilities"), "{e}");
    }
    assert_eq!(
        capability_from_word("translate"),
        Some(Capability::Translate)
    );
    assert_eq!(capability_from_word("Translate"), None);
}
