use super::*;

fn model(name: &str, cost: u64, latency: u32, tasks: &[&str]) -> Model {
    Model {
        name: name.into(),
        provider: "openai".into(),
        output_cost_per_1k: cost,
        typical_latency_ms: latency,
        context_length: 8192,
        tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
        status: ModelStatus::Active as i32,
        ..Default::default()
    }
}

#[test]
fn task_then_constraints_then_cost() {
    let mut grammar = crate::services::models::builtin_grammar();
    grammar.is_default = true;
    let models = vec![
        model("big", 900, 800, &["narration"]),
        model("small", 100, 200, &["dialogue"]),
        model("mid", 300, 300, &["dialogue"]),
        grammar,
    ];
    let r = rank(
        &models,
        &RouteRequest {
            task: "dialogue".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.model, "small");
    assert_eq!(r.fallbacks, ["mid", "grammar", "big"]);

    let r = rank(
        &models,
        &RouteRequest {
            task: "dialogue".into(),
            latency_budget_ms: 250,
            ..Default::default()
        },
    );
    assert_eq!(r.model, "small");
    assert_eq!(r.fallbacks, ["grammar"]);

    let r = rank(
        &models,
        &RouteRequest {
            task: "narration".into(),
            cost_ceiling_per_1k: 500,
            ..Default::default()
        },
    );
    assert_eq!(r.model, "grammar", "big is over the ceiling: {r:?}");

    // Nothing fits: the closest is still returned, and says so.
    let r = rank(
        &models[..3],
        &RouteRequest {
            min_context_length: 100_000,
            ..Default::default()
        },
    );
    assert_eq!(r.model, "small");
    assert!(r.reason.contains("closest"));
}

#[test]
fn retired_models_are_never_chosen() {
    let mut retired = model("cheap", 1, 1, &[]);
    retired.status = ModelStatus::Retired as i32;
    let r = rank(&[retired], &RouteRequest::default());
    assert!(r.model.is_empty());
}

#[test]
fn a_model_without_the_capability_is_never_chosen() {
    use proto::aicore::models::v1::Capability;
    let mut grammar = crate::services::models::builtin_grammar();
    grammar.is_default = true;
    let mut translator = model("translator", 900, 900, &[]);
    translator.capabilities = vec![Capability::Translate as i32];
    let models = vec![grammar, model("cheap", 1, 1, &["translation"]), translator];
    let ask = RouteRequest {
        task: "translation".into(),
        capability: Capability::Translate as i32,
        ..Default::default()
    };
    let r = rank(&models, &ask);
    assert_eq!(r.model, "translator");
    assert!(r.fallbacks.is_empty(), "not even the default: {r:?}");
    // A chat never goes to the model that only translates.
    let r = rank(&models, &RouteRequest::default());
    assert_ne!(r.model, "translator");
    assert!(!r.fallbacks.contains(&"translator".to_owned()));
    // None can: nothing is chosen, and the error names the setting.
    assert!(rank(&models[..2], &ask).model.is_empty());
    let e = none_can(Capability::Translate);
    assert_eq!(e.code(), crate::kit::status::Code::FailedPrecondition);
    assert!(
        e.message()
            .contains(r#"[[llm.models]] with capabilities = ["chat", "translate"]"#)
            && e.message().contains("CAPABILITY_TRANSLATE"),
        "{}",
        e.message()
    );
}
