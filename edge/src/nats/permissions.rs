//! NATS permissions per role, made from the service descriptors (`edge nats-auth`): one NATS user
//! for the edges and one per worker group, as a nats-server `authorization { users = [...] }`
//! block whose passwords are variables the operator defines (never a secret in the output).
//!
//! - **edge** (`edge`): publishes any service's requests (`svc.>` and overridden prefixes), the
//!   replies of the services it hosts, `$SRV` pings; subscribes to the same subjects (it answers
//!   for what it hosts), its own inboxes `_INBOX.edge.>` and streams' cancels.
//! - **worker group** (`worker-<group>`): subscribes to its own services' method subjects *only
//!   in their queue groups* (so it cannot listen in on a whole subject), to their `$SRV`
//!   discovery subjects, its own inboxes `_INBOX.worker-<group>.>` and streams' cancels;
//!   publishes only the subjects of the methods its services declare they call (`calls` in their
//!   `.proto`, DESIGN section 8) hosted elsewhere, the worker registry's `Register`, `Heartbeat`
//!   and `Deregister` (it announces itself), and replies (`_INBOX.>`).
//! - both: the JetStream API of the store's key-value bucket and of the event stream only
//!   (info, create, message and direct gets, ephemeral consumers, flow control; never delete,
//!   purge or update), the bucket's `$KV.<bucket>.>` and the event subjects.
//!
//! Each process reads its replies on `_INBOX.<user>` (see [`super::connect`]), so no role reads
//! another's replies.

use std::collections::BTreeSet;

use proto::{MethodDesc, ServiceDesc};

use super::RoutesConfig;

/// A worker group: its name and the services its workers host.
#[derive(Debug, Clone)]
pub struct Group {
    /// `[a-z0-9_-]`, 1 to 32 characters.
    pub name: String,
    /// The services, sorted by name.
    pub services: Vec<&'static ServiceDesc>,
}

impl Group {
    /// `name=svc,svc`.
    pub fn parse(text: &str) -> Result<Group, String> {
        let Some((name, services)) = text.split_once('=') else {
            return Err(format!(
                "worker group {text:?} is not `name=service,service` (e.g. ai=llm,story)"
            ));
        };
        let name = name.trim();
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
        if !ok {
            return Err(format!(
                "worker group name {name:?} must be 1 to 32 lowercase letters, digits, '-' or '_'"
            ));
        }
        let mut found = Vec::new();
        for s in services.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let desc = ServiceDesc::by_short(s).ok_or_else(|| {
                let known: Vec<_> = proto::SERVICES.iter().map(|s| s.short).collect();
                format!(
                    "worker group {name}: there is no service {s:?}; known: {}",
                    known.join(", ")
                )
            })?;
            if !found.iter().any(|d: &&ServiceDesc| d.short == desc.short) {
                found.push(desc);
            }
        }
        if found.is_empty() {
            return Err(format!("worker group {name} names no service"));
        }
        found.sort_by_key(|d| d.short);
        Ok(Group {
            name: name.to_owned(),
            services: found,
        })
    }

    /// The NATS user of its workers.
    pub fn user(&self) -> String {
        format!("worker-{}", self.name)
    }

    /// `name=svc,svc`, services sorted: how the output names the group.
    pub fn spec(&self) -> String {
        let services: Vec<&str> = self.services.iter().map(|d| d.short).collect();
        format!("{}={}", self.name, services.join(","))
    }
}

/// What the permissions are made from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The worker groups.
    pub groups: Vec<Group>,
    /// Subjects (and their per-service overrides).
    pub routes: &'a RoutesConfig,
    /// The store's key-value bucket.
    pub bucket: &'a str,
    /// The event bus's JetStream stream.
    pub events_stream: &'a str,
    /// The event bus's subject prefix.
    pub events_prefix: &'a str,
    /// More subjects a role may publish, `(role, subject)`: `edge` or a group's name (e.g. the
    /// NATS subject of a model the `llm` service reaches outside `svc.>`).
    pub extra_publish: Vec<(String, String)>,
    /// A file of password variables to include before the block (relative to the output).
    pub passwords_include: Option<&'a str>,
}

/// One NATS user and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// The user name.
    pub user: String,
    /// The config variable holding its password.
    pub password_var: String,
    /// What it is, as a comment.
    pub about: String,
    /// Subjects it may publish.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to (`subject queue` for a queue group only).
    pub subscribe: Vec<String>,
}

/// The password variable of `user`: `NATS_PASSWORD_` and the name in capitals.
pub fn password_var(user: &str) -> String {
    format!(
        "NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

fn method(call: &str) -> Option<&'static MethodDesc> {
    let (svc, name) = call.split_once('.')?;
    ServiceDesc::by_short(svc)?
        .methods
        .iter()
        .find(|m| m.name == name)
}

/// The JetStream API of the store's bucket and the event stream, and their subjects.
fn jetstream(input: &Input) -> Vec<String> {
    let kv = format!("KV_{}", input.bucket);
    let mut out = vec!["$JS.API.INFO".to_owned()];
    for stream in [kv.as_str(), input.events_stream] {
        for api in [
            "STREAM.INFO.{}",
            "STREAM.CREATE.{}",
            "STREAM.MSG.GET.{}",
            "DIRECT.GET.{}",
            "DIRECT.GET.{}.>",
            "CONSUMER.CREATE.{}",
            "CONSUMER.CREATE.{}.>",
            "CONSUMER.INFO.{}.>",
            "CONSUMER.DELETE.{}.>",
        ] {
            out.push(format!("$JS.API.{}", api.replace("{}", stream)));
        }
        out.push(format!("$JS.FC.{stream}.>"));
    }
    out.push(format!("$KV.{}.>", input.bucket));
    out.push(format!("{}.>", input.events_prefix));
    out
}

/// Subject prefixes outside `svc.>` (per-service overrides), as `<prefix>.>`.
fn overridden(input: &Input) -> Vec<String> {
    proto::SERVICES
        .iter()
        .map(|s| input.routes.prefix(s))
        .filter(|p| !p.starts_with("svc."))
        .map(|p| format!("{p}.>"))
        .collect()
}

fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        })
}

/// The roles: the edges first, then each group by name.
pub fn roles(input: &Input) -> Result<Vec<Role>, String> {
    let mut groups = input.groups.clone();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut users = BTreeSet::new();
    for g in &groups {
        if !users.insert(password_var(&g.user())) {
            return Err(format!(
                "worker group {} is given twice (or two names differ only by '-' and '_')",
                g.name
            ));
        }
    }
    for (role, subject) in &input.extra_publish {
        if role != "edge" && !groups.iter().any(|g| &g.name == role) {
            return Err(format!(
                "--publish {role}={subject}: {role:?} is neither `edge` nor a worker group"
            ));
        }
        if !valid_subject(subject) {
            return Err(format!("--publish {role}={subject}: not a NATS subject"));
        }
    }
    let extra = |role: &str| -> Vec<String> {
        input
            .extra_publish
            .iter()
            .filter(|(r, _)| r == role)
            .map(|(_, s)| s.clone())
            .collect()
    };
    let js = jetstream(input);
    let mut edge_subjects = vec!["svc.>".to_owned()];
    edge_subjects.extend(overridden(input));
    let edge = Role {
        user: "edge".into(),
        password_var: password_var("edge"),
        about: "edges: request any service, answer the services they host".into(),
        publish: [
            edge_subjects.clone(),
            vec!["_INBOX.>".into(), "$SRV.>".into()],
            js.clone(),
            extra("edge"),
        ]
        .concat(),
        subscribe: [
            edge_subjects,
            vec![
                format!("{}.>", super::inbox_prefix("edge")),
                "_INBOX.*.*.cancel".into(),
                "$SRV.>".into(),
            ],
        ]
        .concat(),
    };
    let mut out = vec![edge];
    for g in &groups {
        out.push(group_role(input, g, &js, extra(&g.name)));
    }
    Ok(out)
}

fn group_role(input: &Input, g: &Group, js: &[String], extra: Vec<String>) -> Role {
    let hosted = |m: &MethodDesc| g.services.iter().any(|s| s.short == m.service);
    // What its services call elsewhere, and the registry it announces itself to.
    let mut calls: BTreeSet<String> = g
        .services
        .iter()
        .flat_map(|s| s.calls.iter())
        .filter_map(|c| method(c))
        .filter(|m| !hosted(m))
        .map(|m| input.routes.subject(m))
        .collect();
    calls.extend(
        ["Register", "Heartbeat", "Deregister"]
            .iter()
            .filter_map(|m| method(&format!("capability.{m}")))
            .filter(|m| !hosted(m))
            .map(|m| input.routes.subject(m)),
    );
    let mut publish = vec!["_INBOX.>".to_owned()];
    publish.extend(calls);
    publish.extend(js.iter().cloned());
    publish.extend(extra);
    let mut subscribe = Vec::new();
    for s in &g.services {
        for m in s.methods {
            subscribe.push(format!("{} {}", input.routes.subject(m), s.short));
        }
    }
    subscribe.push(format!("{}.>", super::inbox_prefix(&g.user())));
    if g.services
        .iter()
        .any(|s| s.methods.iter().any(|m| m.server_streaming))
    {
        subscribe.push("_INBOX.*.*.cancel".into());
    }
    subscribe.extend(["$SRV.PING", "$SRV.INFO", "$SRV.STATS"].map(str::to_owned));
    for s in &g.services {
        subscribe.push(format!("$SRV.*.{}", s.short));
        subscribe.push(format!("$SRV.*.{}.*", s.short));
    }
    let services: Vec<&str> = g.services.iter().map(|s| s.short).collect();
    Role {
        user: g.user(),
        password_var: password_var(&g.user()),
        about: format!("worker group {}: {}", g.name, services.join(", ")),
        publish,
        subscribe,
    }
}

/// The nats-server configuration block, with a header saying how it was made.
pub fn render(input: &Input) -> Result<String, String> {
    let roles = roles(input)?;
    let mut groups = input.groups.clone();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let specs: Vec<String> = groups.iter().map(Group::spec).collect();
    let vars: Vec<&str> = roles.iter().map(|r| r.password_var.as_str()).collect();
    let mut out = String::new();
    out.push_str(
        "# NATS users and permissions for edge, made by `edge nats-auth` from the service\n\
         # descriptors (subjects, and the methods each service declares it calls). Make it again\n\
         # after changing services, their calls, subject overrides or worker groups.\n",
    );
    out.push_str(&format!("# worker groups: {}\n", specs.join(" ")));
    out.push_str(&format!(
        "# Passwords are variables, plain or bcrypt (`nats server passwd`), defined in the file\n\
         # included below or in nats-server's environment: {}.\n",
        vars.join(", ")
    ));
    if let Some(file) = input.passwords_include {
        if file.is_empty() || file.contains(['"', '\\', '\n', '\r']) {
            return Err(format!("--passwords-include {file:?} is not a file name"));
        }
        out.push_str(&format!("include \"{file}\"\n"));
    }
    out.push_str("authorization {\n  users = [\n");
    for r in &roles {
        out.push_str(&format!("    # {}\n", r.about));
        out.push_str(&format!(
            "    {{\n      user: \"{}\"\n      password: ${}\n      permissions: {{\n",
            r.user, r.password_var
        ));
        for (what, list) in [("publish", &r.publish), ("subscribe", &r.subscribe)] {
            out.push_str(&format!("        {what}: {{\n          allow: [\n"));
            for s in list {
                out.push_str(&format!("            \"{s}\"\n"));
            }
            out.push_str("          ]\n        }\n");
        }
        out.push_str("      }\n    }\n");
    }
    out.push_str("  ]\n}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(routes: &'a RoutesConfig, groups: &[&str]) -> Input<'a> {
        Input {
            groups: groups.iter().map(|g| Group::parse(g).unwrap()).collect(),
            routes,
            bucket: "edge",
            events_stream: "EDGE_EVENTS",
            events_prefix: "edge.events",
            extra_publish: Vec::new(),
            passwords_include: None,
        }
    }

    #[test]
    fn a_group_subscribes_to_its_own_subjects_and_publishes_what_its_services_call() {
        let routes = RoutesConfig::default();
        let roles = roles(&input(&routes, &["wx=weather", "st=state"])).unwrap();
        let users: Vec<&str> = roles.iter().map(|r| r.user.as_str()).collect();
        assert_eq!(users, ["edge", "worker-st", "worker-wx"]);
        let wx = &roles[2];
        assert_eq!(wx.password_var, "NATS_PASSWORD_WORKER_WX");
        // weather declares time.Now and world.GetRegion; it registers itself too.
        for s in [
            "svc.time.v1.now",
            "svc.world.v1.get_region",
            "svc.capability.v1.register",
            "_INBOX.>",
            "$KV.edge.>",
        ] {
            assert!(wx.publish.iter().any(|p| p == s), "{s}: {:?}", wx.publish);
        }
        assert!(!wx.publish.iter().any(|p| p.starts_with("svc.state.")));
        assert!(!wx.publish.iter().any(|p| p.ends_with("DELETE.KV_edge")));
        assert!(!wx.publish.iter().any(|p| p == "svc.>" || p == ">"));
        // Its own subjects, in its queue group only; its own inboxes.
        assert!(
            wx.subscribe
                .contains(&"svc.weather.v1.current weather".to_owned())
        );
        assert!(wx.subscribe.contains(&"_INBOX.worker-wx.>".to_owned()));
        assert!(!wx.subscribe.iter().any(|s| s.starts_with("svc.state")));
        assert!(!wx.subscribe.iter().any(|s| s == "_INBOX.>"));
        let st = &roles[1];
        assert!(st.subscribe.contains(&"svc.state.v1.get state".to_owned()));
        // The edge requests anything and reads only its own inboxes.
        assert!(roles[0].publish.contains(&"svc.>".to_owned()));
        assert!(roles[0].subscribe.contains(&"_INBOX.edge.>".to_owned()));
    }

    #[test]
    fn subject_overrides_and_extra_subjects_are_followed() {
        let mut routes = RoutesConfig::default();
        routes
            .subjects
            .insert("world".into(), "legacy.world.v1".into());
        let mut i = input(&routes, &["wx=weather"]);
        i.extra_publish = vec![("wx".into(), "models.infer".into())];
        let roles = roles(&i).unwrap();
        assert!(
            roles[1]
                .publish
                .contains(&"legacy.world.v1.get_region".to_owned())
        );
        assert!(roles[1].publish.contains(&"models.infer".to_owned()));
        assert!(roles[0].publish.contains(&"legacy.world.v1.>".to_owned()));
        assert!(roles[0].subscribe.contains(&"legacy.world.v1.>".to_owned()));
        i.extra_publish = vec![("nobody".into(), "x".into())];
        assert!(super::roles(&i).is_err());
    }

    #[test]
    fn groups_are_checked_and_the_output_holds_no_secret() {
        assert!(Group::parse("ai").is_err());
        assert!(Group::parse("AI=llm").is_err());
        assert!(Group::parse("ai=nope").is_err());
        assert!(Group::parse("ai=").is_err());
        assert_eq!(
            Group::parse("ai=story,llm,llm").unwrap().spec(),
            "ai=llm,story"
        );
        let routes = RoutesConfig::default();
        assert!(roles(&input(&routes, &["a-b=llm", "a_b=story"])).is_err());
        let mut i = input(&routes, &["ai=llm,story"]);
        i.passwords_include = Some("secrets/auth.conf");
        let text = render(&i).unwrap();
        assert!(
            text.contains("\ninclude \"secrets/auth.conf\"\nauthorization {"),
            "{text}"
        );
        assert!(text.contains("# worker groups: ai=llm,story\n"), "{text}");
        assert!(
            text.contains("password: $NATS_PASSWORD_WORKER_AI\n"),
            "{text}"
        );
        assert!(text.contains("\"svc.llm.v1.infer llm\""), "{text}");
        assert!(text.contains("\"$JS.API.DIRECT.GET.KV_edge.>\""), "{text}");
    }
}
