use super::*;
use crate::kit::content::Content as _;
use crate::kit::content::Source;

fn parse(text: &str) -> Result<Workflows, crate::kit::content::DataError> {
    Workflows::parse(&Source::embedded("workflows.toml", text))
}

const HEAD: &str = "[[workflow]]\nname = \"w\"\ndescription = \"d\"\naccess = \"player\"\n";

#[test]
fn the_shipped_workflows_load_and_every_step_is_declared() {
    let w = Workflows::load(None).unwrap();
    let names: Vec<_> = w.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["buy_item", "grant_reward", "start_expedition"]);
    let orchestration = proto::ServiceDesc::by_short("orchestration").unwrap();
    for wf in w.iter() {
        for s in &wf.steps {
            assert!(orchestration.declares(s.call.method));
            if let Some(c) = &s.compensate {
                assert!(orchestration.declares(c.call.method));
            }
        }
    }
    assert_eq!(w.get("grant_reward").unwrap().access, Access::Service);
}

/// Money and items are payment's (DESIGN section 10): the shipped workflows move them through
/// payment alone, each money step undone by a Reverse of its own key.
#[test]
fn the_shipped_workflows_keep_money_and_items_in_payment() {
    let w = Workflows::load(None).unwrap();
    let calls = |name: &str| -> Vec<(String, Option<String>)> {
        w.get(name)
            .unwrap()
            .steps
            .iter()
            .map(|s| {
                (
                    s.call.method.name.to_owned(),
                    s.compensate.as_ref().map(|c| c.call.method.name.to_owned()),
                )
            })
            .collect()
    };
    let reverse = Some("Reverse".to_owned());
    assert_eq!(
        calls("grant_reward"),
        [("Grant".into(), reverse.clone()), ("Publish".into(), None)]
    );
    assert_eq!(
        calls("buy_item"),
        [("Purchase".into(), reverse), ("Publish".into(), None)]
    );
    for wf in w.iter() {
        for s in &wf.steps {
            assert_ne!(
                s.call.method.service, "aicore.state.v1.StateService",
                "{}",
                wf.name
            );
            let input = s.call.input.to_string();
            assert!(!input.contains("trusted/"), "{}: {input}", wf.name);
            if let Some(c) = &s.compensate
                && c.call.method.name == "Reverse"
            {
                assert_eq!(
                    c.call.input["idempotencyKey"], "{{step.key}}",
                    "{}",
                    wf.name
                );
            }
        }
    }
}

#[test]
fn bad_workflows_are_refused_with_the_line() {
    let cases = [
        // A call orchestration does not declare.
        (
            format!(
                "{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"auth.Register\"\ninput = {{}}\n"
            ),
            "declares",
        ),
        // A template naming an input that does not exist.
        (
            format!(
                "{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"payment.Purchase\"\ninput = {{ sku = \"{{{{input.nope}}}}\" }}\n"
            ),
            "has no value",
        ),
        // A later step's output, before it ran.
        (
            format!(
                "{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"payment.Purchase\"\ninput = {{ sku = \"{{{{steps.b.x}}}}\" }}\n[[workflow.step]]\nname = \"b\"\ncall = \"events.Publish\"\ninput = {{}}\n"
            ),
            "has no value",
        ),
        // A field the request message does not have.
        (
            format!(
                "{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"payment.Purchase\"\ninput = {{ price = 1 }}\n"
            ),
            "does not fit",
        ),
        (
            format!(
                "{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"payment.Purchase\"\ninput = {{}}\ncompensate = {{ call = \"payment.Reverse\", input = {{}}, nothing_to_undo = [\"maybe\"] }}\n"
            ),
            "no status code",
        ),
        (
            format!(
                "{}[[workflow.step]]\nname = \"a\"\ncall = \"events.Publish\"\ninput = {{}}\n",
                HEAD.replace("player", "anyone")
            ),
            "access",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(e.line, 1, "{e}");
    }
    let e = parse(&format!(
        "\n\n{HEAD}[[workflow.step]]\nname = \"a\"\ncall = \"nope.Nope\"\ninput = {{}}\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}

struct Vars;

impl Scope for Vars {
    fn lookup(&self, expr: &str) -> Option<Json> {
        match expr {
            "player" => Some(Json::from("p1")),
            "input.n" => Some(Json::from(4)),
            _ => None,
        }
    }
}

#[test]
fn templates_keep_types_when_whole_and_interpolate_inside_text() {
    let t = serde_json::json!({"a": "{{input.n}}", "b": "pack/{{player}}/{{input.n}}", "c": [1, "{{player}}"]});
    let out = render(&t, &Vars).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"a": 4, "b": "pack/p1/4", "c": [1, "p1"]})
    );
    assert!(render(&serde_json::json!("{{nope}}"), &Vars).is_err());
    assert_eq!(integral(serde_json::json!(4.0)), serde_json::json!(4));
    assert_eq!(integral(serde_json::json!(4.5)), serde_json::json!(4.5));
}

#[test]
fn only_certain_failures_count_as_applying_nothing() {
    assert!(applied_nothing(Code::FailedPrecondition));
    assert!(
        !applied_nothing(Code::DeadlineExceeded),
        "a timeout is possibly done"
    );
    assert!(!applied_nothing(Code::Internal));
    assert!(transient(Code::Aborted) && !transient(Code::InvalidArgument));
}

#[test]
fn values_are_never_expanded_twice_and_spaces_inside_braces_are_fine() {
    struct Sneaky;
    impl Scope for Sneaky {
        fn lookup(&self, expr: &str) -> Option<Json> {
            match expr {
                "input.name" => Some(Json::from("{{player}}")),
                "player" => Some(Json::from("p1")),
                "run.id" => Some(Json::from("run-1")),
                _ => None,
            }
        }
    }
    let t = serde_json::json!("{{ input.name }} / {{player}} / {{ run.id }}");
    assert_eq!(
        render(&t, &Sneaky).unwrap(),
        serde_json::json!("{{player}} / p1 / run-1")
    );
    assert!(render(&serde_json::json!("a {{player"), &Sneaky).is_err());
}

#[test]
fn a_player_workflow_may_call_only_what_players_may() {
    let text = format!(
        "{HEAD}[[workflow.step]]\nname = \"mint\"\ncall = \"payment.Grant\"\ninput = {{ currency = 1 }}\n"
    );
    let e = parse(&text).unwrap_err();
    assert!(e.to_string().contains("for services"), "{e}");
    // A compensation may not read its own step's answer (a timed-out step has none).
    let text = format!(
        "{HEAD}[[workflow.step]]\nname = \"pay\"\ncall = \"payment.Purchase\"\ninput = {{}}\ncompensate = {{ call = \"payment.Reverse\", input = {{ idempotencyKey = \"{{{{steps.pay.transaction.id}}}}\" }} }}\n"
    );
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("has no value")
    );
}

#[tokio::test]
async fn runs_that_applied_nothing_are_pruned_after_a_day_the_rest_after_a_month() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let day = 86_400_000_i64;
    let now = now_ms();
    for (id, status, finished) in [
        ("failed-old", RunStatus::Failed, now - 2 * day),
        ("failed-new", RunStatus::Failed, now - day / 2),
        ("done-2d", RunStatus::Succeeded, now - 2 * day),
        ("done-old", RunStatus::Succeeded, now - 31 * day),
        ("running", RunStatus::Running, 0),
    ] {
        let record = Record {
            run: Run {
                id: id.into(),
                status: status.into(),
                finished_at_ms: finished,
                ..Run::default()
            },
            owner: String::new(),
            lease_until_ms: 0,
            started_by: "player:p".into(),
            fingerprint: String::new(),
            compensating: false,
            digest: String::new(),
            uncertain: Vec::new(),
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        store.put(&run_key(id), bytes.into(), None).await.unwrap();
    }
    assert_eq!(prune_finished(store.as_ref(), || false).await.unwrap(), 2);
    for (id, kept) in [
        ("failed-old", false),
        ("failed-new", true),
        ("done-2d", true),
        ("done-old", false),
        ("running", true),
    ] {
        assert_eq!(
            store.get(&run_key(id)).await.unwrap().is_some(),
            kept,
            "{id}"
        );
    }
}
