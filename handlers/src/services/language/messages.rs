//! The messages the game asks for by id and the arguments it passes with them: the contract
//! between the game's code and every locale file. A locale file must define each of them, use
//! no variable the game does not pass, and give a selector on a number a variant for each of
//! its language's CLDR plural categories (else Polish "5 koron" would read as "5 korony").
//! A message a pack adds beyond the contract may be missing from a locale (it falls back to the
//! default) but uses only the variables the default locale's uses.

use std::collections::{BTreeMap, BTreeSet};

use fluent_bundle::FluentResource;
use fluent_syntax::ast;
use intl_pluralrules::{PluralCategory, PluralRuleType, PluralRules};
use unic_langid::LanguageIdentifier;

use super::{DEFAULT, message_ids};
use crate::kit::content::{DataError, Source};

/// What an argument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A JSON number: plural selectors choose on it.
    Number,
    /// A JSON string.
    Text,
}

use Arg::{Number, Text};

/// A message the game asks for, and its arguments.
#[derive(Debug)]
pub struct Declared {
    /// The message id.
    pub id: &'static str,
    /// Every argument the game passes, by name.
    pub args: &'static [(&'static str, Arg)],
}

/// The messages the game asks for.
pub const MESSAGES: &[Declared] = &[
    Declared {
        id: "quest-accepted",
        args: &[("title", Text)],
    },
    Declared {
        id: "quest-progress",
        args: &[("objective", Text), ("count", Number), ("target", Number)],
    },
    Declared {
        id: "quest-completed",
        args: &[("title", Text), ("currency", Number), ("xp", Number)],
    },
    Declared {
        id: "quest-abandoned",
        args: &[("title", Text)],
    },
    Declared {
        id: "quest-unavailable",
        args: &[("level", Number)],
    },
    Declared {
        id: "currency-amount",
        args: &[("amount", Number)],
    },
    Declared {
        id: "items-received",
        args: &[("count", Number)],
    },
    Declared {
        id: "level-up",
        args: &[("level", Number)],
    },
    Declared {
        id: "error-not-enough-gold",
        args: &[("price", Number), ("balance", Number)],
    },
    Declared {
        id: "error-rate-limited",
        args: &[("seconds", Number)],
    },
    Declared {
        id: "error-session-expired",
        args: &[],
    },
    Declared {
        id: "error-server-busy",
        args: &[],
    },
    Declared {
        id: "time-of-day",
        args: &[("period", Text)],
    },
    Declared {
        id: "game-clock",
        args: &[("hour", Number), ("minute", Number)],
    },
    Declared {
        id: "weather-now",
        args: &[("condition", Text)],
    },
    Declared {
        id: "days-until-festival",
        args: &[("days", Number)],
    },
    Declared {
        id: "player-joined",
        args: &[("name", Text)],
    },
    Declared {
        id: "friends-online",
        args: &[("count", Number)],
    },
];

/// Refuses a declared number passed as anything else: the locale files choose plurals on it, so
/// "3" as a string would silently read as the `other` form.
pub fn check_args(
    id: &str,
    args: &std::collections::HashMap<String, pbjson_types::Value>,
) -> Result<(), crate::kit::status::Status> {
    let Some(d) = MESSAGES.iter().find(|d| d.id == id) else {
        return Ok(());
    };
    for (name, kind) in d.args {
        let given = args.get(*name).and_then(|v| v.kind.as_ref());
        if *kind == Number
            && given.is_some_and(|k| !matches!(k, pbjson_types::value::Kind::NumberValue(_)))
        {
            return Err(crate::kit::status::Status::invalid_argument(format!(
                "argument {name} of message {id} is a number"
            )));
        }
    }
    Ok(())
}

/// The functions whose value is a number (a selector on them is a plural selector).
const NUMBER_FUNCTIONS: [&str; 2] = ["NUMBER", "CROWNS"];
const CLDR: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// Every problem of every locale against the contract (and of other locales against the default
/// locale's variables). A file that is no valid Fluent is skipped: its parse says why.
pub fn contract_problems(sources: &[(String, Source)]) -> Vec<DataError> {
    let mut problems = Vec::new();
    let parsed: Vec<(&str, &Source, Messages)> = sources
        .iter()
        .filter_map(|(l, s)| {
            let r = FluentResource::try_new(s.text.clone()).ok()?;
            Some((l.as_str(), s, Messages::of(&r, &s.text)))
        })
        .collect();
    let default = parsed
        .iter()
        .find(|(l, _, _)| *l == DEFAULT)
        .map(|(_, _, m)| m);
    for (locale, src, messages) in &parsed {
        let at = |line: usize, message: String| DataError {
            file: src.file.clone(),
            line,
            message,
        };
        for d in MESSAGES {
            if !messages.by_id.contains_key(d.id) {
                problems.push(at(
                    1,
                    format!("message {} is missing (the game asks for it)", d.id),
                ));
            }
        }
        let categories = plural_categories(locale);
        for (id, m) in &messages.by_id {
            let declared = MESSAGES.iter().find(|d| d.id == id);
            let allowed: Option<BTreeSet<&str>> = match declared {
                Some(d) => Some(d.args.iter().map(|(n, _)| *n).collect()),
                None => default
                    .and_then(|dm| dm.by_id.get(id))
                    .map(|dm| dm.vars.iter().map(String::as_str).collect()),
            };
            if let Some(allowed) = allowed {
                for v in m.vars.iter().filter(|v| !allowed.contains(v.as_str())) {
                    let passes: Vec<String> = allowed.iter().map(|a| format!("${a}")).collect();
                    problems.push(at(
                        m.line,
                        format!(
                            "message {id} uses ${v}, which the game does not pass (it passes {})",
                            if passes.is_empty() {
                                "none".to_owned()
                            } else {
                                passes.join(", ")
                            }
                        ),
                    ));
                }
            }
            let Some(categories) = &categories else {
                continue;
            };
            for select in &m.selects {
                let numeric = match &select.on {
                    On::Variable(v) => {
                        declared.is_some_and(|d| d.args.iter().any(|(n, a)| n == v && *a == Number))
                    }
                    On::Number => true,
                    On::Other => false,
                } || (!select.keys.is_empty()
                    && select.keys.iter().all(|k| CLDR.contains(&k.as_str()))
                    && select.keys.iter().any(|k| k != "other"));
                if !numeric {
                    continue;
                }
                let names = categories;
                // A CLDR category the rules here never pick is dead but harmless (CLDR adds
                // some over the years, as French "many"); any other key is a mistake.
                for k in select.keys.iter().filter(|k| !CLDR.contains(&k.as_str())) {
                    problems.push(at(
                        m.line,
                        format!(
                            "message {id}: [{k}] is no plural category (a selector on a number \
                             chooses among {})",
                            names.join(", ")
                        ),
                    ));
                }
                for c in names {
                    if !select.keys.iter().any(|k| k == c) {
                        problems.push(at(
                            m.line,
                            format!(
                                "message {id}: a selector on a number has no [{c}] variant \
                                 ({locale} has {})",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The CLDR cardinal categories a number can take in `locale` (`None`: no rules known), in
/// CLDR order; found by asking the rules about integers and decimals, as intl_pluralrules lists
/// none.
fn plural_categories(locale: &str) -> Option<Vec<&'static str>> {
    let langid: LanguageIdentifier = locale.parse().ok()?;
    let rules = PluralRules::create(langid, PluralRuleType::CARDINAL).ok()?;
    let mut samples: Vec<String> = (0..=1000).map(|n| n.to_string()).collect();
    samples.extend(
        [
            "1000000", "0.5", "1.5", "2.5", "3.5", "5.5", "10.5", "100.5",
        ]
        .map(String::from),
    );
    let found: BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| rules.select(s.as_str()).ok())
        .map(|c| name(&c))
        .collect();
    Some(CLDR.into_iter().filter(|c| found.contains(c)).collect())
}

fn name(c: &PluralCategory) -> &'static str {
    match c {
        PluralCategory::ZERO => "zero",
        PluralCategory::ONE => "one",
        PluralCategory::TWO => "two",
        PluralCategory::FEW => "few",
        PluralCategory::MANY => "many",
        PluralCategory::OTHER => "other",
    }
}

/// What a selector chooses on.
enum On {
    Variable(String),
    /// A function that gives a number (`NUMBER($n)`, `CROWNS($c)`).
    Number,
    Other,
}

struct Select {
    on: On,
    /// The variants' identifier keys (numeric keys are not listed).
    keys: Vec<String>,
}

/// One message: its line, the variables it uses (with those of the messages it references),
/// and its selectors.
struct Message {
    line: usize,
    vars: BTreeSet<String>,
    selects: Vec<Select>,
}

struct Messages {
    by_id: BTreeMap<String, Message>,
}

impl Messages {
    fn of(resource: &FluentResource, text: &str) -> Messages {
        let lines: BTreeMap<String, usize> = message_ids(text).into_iter().collect();
        let mut direct: BTreeMap<String, Walk> = BTreeMap::new();
        for entry in resource.entries() {
            if let ast::Entry::Message(m) = entry {
                let mut w = Walk::default();
                if let Some(p) = &m.value {
                    w.pattern(p);
                }
                for a in &m.attributes {
                    w.pattern(&a.value);
                }
                direct.insert(m.id.name.to_owned(), w);
            }
        }
        // The variables of referenced messages are passed the same arguments: they count.
        let closure = |id: &str| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![id.to_owned()];
            let mut vars = BTreeSet::new();
            while let Some(next) = todo.pop() {
                if !seen.insert(next.clone()) {
                    continue;
                }
                if let Some(w) = direct.get(&next) {
                    vars.extend(w.vars.iter().cloned());
                    todo.extend(w.refs.iter().cloned());
                }
            }
            vars
        };
        let vars: BTreeMap<String, BTreeSet<String>> =
            direct.keys().map(|id| (id.clone(), closure(id))).collect();
        let by_id = direct
            .into_iter()
            .map(|(id, w)| {
                let m = Message {
                    line: lines.get(&id).copied().unwrap_or(1),
                    vars: vars.get(&id).cloned().unwrap_or_default(),
                    selects: w.selects,
                };
                (id, m)
            })
            .collect();
        Messages { by_id }
    }
}

#[derive(Default)]
struct Walk {
    vars: BTreeSet<String>,
    refs: BTreeSet<String>,
    selects: Vec<Select>,
}

impl Walk {
    fn pattern(&mut self, p: &ast::Pattern<&str>) {
        for e in &p.elements {
            if let ast::PatternElement::Placeable { expression } = e {
                self.expression(expression);
            }
        }
    }

    fn expression(&mut self, e: &ast::Expression<&str>) {
        match e {
            ast::Expression::Inline(i) => self.inline(i),
            ast::Expression::Select { selector, variants } => {
                let on = match selector {
                    ast::InlineExpression::VariableReference { id } => {
                        On::Variable(id.name.to_owned())
                    }
                    ast::InlineExpression::FunctionReference { id, .. }
                        if NUMBER_FUNCTIONS.contains(&id.name) =>
                    {
                        On::Number
                    }
                    _ => On::Other,
                };
                self.inline(selector);
                let keys = variants
                    .iter()
                    .filter_map(|v| match &v.key {
                        ast::VariantKey::Identifier { name } => Some((*name).to_owned()),
                        ast::VariantKey::NumberLiteral { .. } => None,
                    })
                    .collect();
                self.selects.push(Select { on, keys });
                for v in variants {
                    self.pattern(&v.value);
                }
            }
        }
    }

    fn inline(&mut self, i: &ast::InlineExpression<&str>) {
        match i {
            ast::InlineExpression::VariableReference { id } => {
                self.vars.insert(id.name.to_owned());
            }
            ast::InlineExpression::MessageReference { id, .. } => {
                self.refs.insert(id.name.to_owned());
            }
            ast::InlineExpression::FunctionReference { arguments, .. }
            | ast::InlineExpression::TermReference {
                arguments: Some(arguments),
                ..
            } => {
                for a in &arguments.positional {
                    self.inline(a);
                }
                for a in &arguments.named {
                    self.inline(&a.value);
                }
            }
            ast::InlineExpression::Placeable { expression } => self.expression(expression),
            _ => {}
        }
    }
}
