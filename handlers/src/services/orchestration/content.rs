//! Workflows as data (`handlers/data/orchestration/workflows.toml`): each step calls a method of
//! another service through the router, with an input rendered from a template; its compensation
//! is another call. Validated at load, with errors that name the file and the line: every call is
//! a unary method orchestration declares in its .proto, every template names inputs and earlier
//! steps that exist, and every rendered input fits its method's request message.

use std::collections::BTreeMap;
use std::time::Duration;

use proto::MethodDesc;
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};
use crate::kit::status::Code;

/// Most steps per workflow.
const MAX_STEPS: usize = 8;
/// Longest a step's call may take.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    workflow: Vec<Spanned<WorkflowEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowEntry {
    name: String,
    description: String,
    access: String,
    #[serde(default)]
    input: Vec<InputEntry>,
    step: Vec<StepEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputEntry {
    name: String,
    #[serde(rename = "type")]
    kind: InputType,
    description: String,
    #[serde(default)]
    max: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepEntry {
    name: String,
    call: String,
    input: toml::Table,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default)]
    attempts: Option<u32>,
    compensate: Option<CompensateEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompensateEntry {
    call: String,
    input: toml::Table,
    #[serde(default)]
    nothing_to_undo: Vec<String>,
}

/// A workflow input's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text, 1 to 200 printable characters.
    String,
    /// A whole number, 1 to `max`.
    Integer,
}

/// One input.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its name in templates (`{{input.<name>}}`).
    pub name: String,
    /// Its type.
    pub kind: InputType,
    /// What it means, for ListWorkflows.
    pub description: String,
    /// Largest value of an integer input; most characters of a string input.
    pub max: i64,
}

/// A call with a templated input.
#[derive(Debug, Clone)]
pub struct CallDef {
    /// The method.
    pub method: &'static MethodDesc,
    /// The request, as JSON with `{{...}}` placeholders.
    pub input: Json,
}

/// What undoes a step.
#[derive(Debug, Clone)]
pub struct Compensation {
    /// The call.
    pub call: CallDef,
    /// Codes that mean "there was nothing to undo" (a no-op, not a failure).
    pub nothing_to_undo: Vec<Code>,
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique in its workflow.
    pub name: String,
    /// The forward call.
    pub call: CallDef,
    /// Each attempt's time limit.
    pub timeout: Duration,
    /// Attempts on transient errors (each with the same idempotency key).
    pub attempts: u32,
    /// What undoes it, if anything must.
    pub compensate: Option<Compensation>,
}

/// Who may run a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A player, for themself (and services, naming the player).
    Player,
    /// Services only.
    Service,
}

/// One workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Unique.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Who may run it.
    pub access: Access,
    /// Its inputs, all required.
    pub inputs: Vec<Input>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// A digest of its steps' names and calls: a run started under another definition is not
    /// driven by this one.
    pub digest: String,
    line: usize,
}

/// The shipped workflows (or the operator's).
#[derive(Debug, Clone)]
pub struct Workflows {
    by_name: BTreeMap<String, Workflow>,
    file: String,
}

/// "svc/Method" of a method.
pub fn call_name(m: &MethodDesc) -> String {
    format!("{}/{}", m.service, m.name)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The placeholders of a template string: `{{expr}}`.
fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push("");
            break;
        };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Where template values come from.
pub trait Scope {
    /// The value of `expr` (`player`, `run.id`, `step.key`, `input.x`, `steps.a.b.c`).
    fn lookup(&self, expr: &str) -> Option<Json>;
}

/// Renders `template` in `scope`: a string that is exactly one placeholder takes the value's
/// type; placeholders inside longer text are replaced by the value's text, in one pass (a value
/// that holds `{{...}}` is never expanded again).
pub fn render(template: &Json, scope: &dyn Scope) -> Result<Json, String> {
    Ok(match template {
        Json::String(s) => {
            let found = placeholders(s);
            let whole = s.trim();
            if found.len() == 1 && whole.starts_with("{{") && whole.ends_with("}}") {
                let expr = found[0];
                scope
                    .lookup(expr)
                    .ok_or_else(|| format!("{{{{{expr}}}}} has no value"))?
            } else {
                let mut out = String::with_capacity(s.len());
                let mut rest = s.as_str();
                while let Some(start) = rest.find("{{") {
                    out.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    let end = after
                        .find("}}")
                        .ok_or_else(|| format!("{s:?} has an unclosed {{{{"))?;
                    let expr = after[..end].trim();
                    let v = scope
                        .lookup(expr)
                        .ok_or_else(|| format!("{{{{{expr}}}}} has no value"))?;
                    match v {
                        Json::String(t) => out.push_str(&t),
                        other => out.push_str(&other.to_string()),
                    }
                    rest = &after[end + 2..];
                }
                out.push_str(rest);
                Json::String(out)
            }
        }
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|i| render(i, scope))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render(v, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The scope used to check templates at load: inputs get a value of their type, and everything
/// else a neutral null (which every proto3 JSON field accepts).
struct Checking<'a> {
    inputs: &'a [Input],
    steps_before: &'a [String],
}

impl Scope for Checking<'_> {
    fn lookup(&self, expr: &str) -> Option<Json> {
        match expr.split_once('.') {
            None if expr == "player" => Some(Json::String("p".into())),
            Some(("run", "id")) | Some(("step", "key")) => Some(Json::String("k".into())),
            Some(("input", name)) => {
                self.inputs
                    .iter()
                    .find(|i| i.name == name)
                    .map(|i| match i.kind {
                        InputType::String => Json::String("text".into()),
                        InputType::Integer => Json::from(1),
                    })
            }
            Some(("steps", path)) => {
                let step = path.split('.').next().unwrap_or_default();
                self.steps_before
                    .iter()
                    .any(|s| s == step)
                    .then_some(Json::Null)
            }
            _ => None,
        }
    }
}

impl Workflows {
    /// A workflow by name.
    pub fn get(&self, name: &str) -> Option<&Workflow> {
        self.by_name.get(name)
    }

    /// Every workflow, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Workflow> {
        self.by_name.values()
    }

    /// Checks the quests and items a step names outright (a `questId` or `sku` that is not a
    /// `{{...}}` template): `is_quest` and `is_sku` say whether they exist. The error names the
    /// workflow's line.
    pub fn check_refs(
        &self,
        is_quest: impl Fn(&str) -> bool,
        is_sku: impl Fn(&str) -> bool,
    ) -> Result<(), DataError> {
        fn literals<'a>(v: &'a Json, out: &mut Vec<(&'a str, &'a str)>) {
            match v {
                Json::Object(m) => {
                    for (k, v) in m {
                        match v {
                            Json::String(s) if !s.contains("{{") => out.push((k, s)),
                            _ => literals(v, out),
                        }
                    }
                }
                Json::Array(a) => a.iter().for_each(|v| literals(v, out)),
                _ => {}
            }
        }
        let mut workflows: Vec<&Workflow> = self.by_name.values().collect();
        workflows.sort_by_key(|w| w.line);
        for w in workflows {
            for s in &w.steps {
                let mut found = Vec::new();
                let calls = std::iter::once(&s.call).chain(s.compensate.as_ref().map(|c| &c.call));
                calls.for_each(|c| literals(&c.input, &mut found));
                let bad = found.into_iter().find_map(|(k, v)| match k {
                    "questId" if !is_quest(v) => Some(format!("quest {v:?}, which does not exist")),
                    "sku" if !is_sku(v) => {
                        Some(format!("item {v:?}, which is not in the price catalog"))
                    }
                    _ => None,
                });
                if let Some(what) = bad {
                    return Err(DataError {
                        file: self.file.clone(),
                        line: w.line,
                        message: format!("workflow {}: step {} names {what}", w.name, s.name),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Content for Workflows {
    const SHIPPED: Embedded = crate::embedded!("orchestration/workflows.toml");

    /// Parses and validates workflows.
    fn parse(src: &Source) -> Result<Workflows, DataError> {
        let file: File = src.toml()?;
        let orchestration = proto::ServiceDesc::by_short("orchestration")
            .ok_or_else(|| src.error(None, "the orchestration service is not described"))?;
        let mut by_name = BTreeMap::new();
        for spanned in file.workflow {
            let span = Some(spanned.span());
            let e = spanned.into_inner();
            let bad = |m: String| src.error(span.clone(), m);
            if !valid_name(&e.name) || by_name.contains_key(&e.name) {
                return Err(bad(format!(
                    "workflow name {:?} must be unique, 1 to 48 lowercase letters, digits or '_'",
                    e.name
                )));
            }
            let w = &e.name;
            if e.description.trim().is_empty() || e.description.chars().count() > 300 {
                return Err(bad(format!(
                    "workflow {w}: description must be 1 to 300 characters"
                )));
            }
            let access = match e.access.as_str() {
                "player" => Access::Player,
                "service" => Access::Service,
                other => {
                    return Err(bad(format!(
                        "workflow {w}: access {other:?} must be \"player\" or \"service\""
                    )));
                }
            };
            let mut inputs: Vec<Input> = Vec::new();
            for i in e.input {
                if !valid_name(&i.name) || inputs.iter().any(|x| x.name == i.name) {
                    return Err(bad(format!(
                        "workflow {w}: input {:?} must be a unique name",
                        i.name
                    )));
                }
                let max = match (i.kind, i.max) {
                    (InputType::Integer, Some(m)) if m >= 1 => m,
                    (InputType::Integer, _) => {
                        return Err(bad(format!(
                            "workflow {w}: integer input {} needs max >= 1",
                            i.name
                        )));
                    }
                    (InputType::String, None) => 200,
                    (InputType::String, Some(m)) if (1..=200).contains(&m) => m,
                    (InputType::String, Some(_)) => {
                        return Err(bad(format!(
                            "workflow {w}: string input {}: max is 1 to 200 characters",
                            i.name
                        )));
                    }
                };
                inputs.push(Input {
                    name: i.name,
                    kind: i.kind,
                    description: i.description,
                    max,
                });
            }
            if e.step.is_empty() || e.step.len() > MAX_STEPS {
                return Err(bad(format!("workflow {w}: 1 to {MAX_STEPS} steps")));
            }
            let mut steps: Vec<Step> = Vec::new();
            let mut names: Vec<String> = Vec::new();
            for s in e.step {
                if !valid_name(&s.name) || names.contains(&s.name) {
                    return Err(bad(format!(
                        "workflow {w}: step name {:?} must be unique",
                        s.name
                    )));
                }
                let check_call = |call: &str, input: toml::Table, before: &[String]| {
                    let method = crate::services::router::method_named(call)
                        .filter(|m| !m.server_streaming && orchestration.declares(m))
                        .ok_or_else(|| {
                            bad(format!(
                                "workflow {w}: step {}: {call:?} must be a unary method orchestration declares calling in its .proto (option calls)",
                                s.name
                            ))
                        })?;
                    let input = serde_json::to_value(input).map_err(|e| bad(e.to_string()))?;
                    let scope = Checking {
                        inputs: &inputs,
                        steps_before: before,
                    };
                    let rendered = render(&input, &scope)
                        .map_err(|m| bad(format!("workflow {w}: step {}: {m}", s.name)))?;
                    let bytes = serde_json::to_vec(&rendered).map_err(|e| bad(e.to_string()))?;
                    (method.transcode.json_to_proto)(&bytes).map_err(|e| {
                        bad(format!(
                            "workflow {w}: step {}: the input does not fit {}: {e}",
                            s.name, method.input_type
                        ))
                    })?;
                    Ok::<_, DataError>(CallDef { method, input })
                };
                let call = check_call(&s.call, s.input, &names)?;
                // A player's run may do only what the player could do themself.
                if access == Access::Player
                    && !matches!(
                        call.method.access,
                        proto::Access::Player | proto::Access::Public
                    )
                {
                    return Err(bad(format!(
                        "workflow {w}: step {}: {} is for services; a player workflow may call only what players may",
                        s.name,
                        call_name(call.method)
                    )));
                }
                let compensate = match s.compensate {
                    Some(c) => {
                        let nothing_to_undo = c
                            .nothing_to_undo
                            .iter()
                            .map(|n| {
                                Code::parse(n).ok_or_else(|| {
                                    bad(format!(
                                        "workflow {w}: step {}: no status code {n:?}",
                                        s.name
                                    ))
                                })
                            })
                            .collect::<Result<_, _>>()?;
                        Some(Compensation {
                            call: check_call(&c.call, c.input, &names)?,
                            nothing_to_undo,
                        })
                    }
                    None => None,
                };
                let timeout = s.timeout.unwrap_or(Duration::from_secs(5));
                if timeout.is_zero() || timeout > MAX_TIMEOUT {
                    return Err(bad(format!(
                        "workflow {w}: step {}: timeout must be up to 30s",
                        s.name
                    )));
                }
                let attempts = s.attempts.unwrap_or(3);
                if !(1..=10).contains(&attempts) {
                    return Err(bad(format!(
                        "workflow {w}: step {}: attempts must be 1 to 10",
                        s.name
                    )));
                }
                names.push(s.name.clone());
                steps.push(Step {
                    name: s.name,
                    call,
                    timeout,
                    attempts,
                    compensate,
                });
            }
            let shape: Vec<String> = steps
                .iter()
                .map(|s| {
                    format!(
                        "{}={}/{}",
                        s.name,
                        call_name(s.call.method),
                        s.compensate
                            .as_ref()
                            .map(|c| call_name(c.call.method))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let digest = {
                use sha2::Digest as _;
                format!("{:x}", sha2::Sha256::digest(shape.join("\n").as_bytes()))
            };
            by_name.insert(
                e.name.clone(),
                Workflow {
                    name: e.name,
                    description: e.description,
                    access,
                    inputs,
                    steps,
                    digest,
                    line: src.error(span.clone(), "").line,
                },
            );
        }
        if by_name.is_empty() {
            return Err(src.error(None, "no workflows"));
        }
        Ok(Workflows {
            by_name,
            file: src.file.clone(),
        })
    }
}
