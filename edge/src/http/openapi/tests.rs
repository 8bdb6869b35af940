use super::*;

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_method_is_described_from_the_descriptors() {
    let doc = document().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for s in proto::SERVICES {
        for m in s.methods {
            let op = &paths[m.path]["post"];
            assert_eq!(op["operationId"], format!("{}.{}", m.service, m.name));
            let ok = &op["responses"]["200"]["content"];
            if m.server_streaming {
                assert!(ok["text/event-stream"].is_object(), "{}", m.path);
            } else {
                assert!(
                    ok["application/json"]["schema"]["$ref"].is_string()
                        || ok["application/json"]["schema"].is_object()
                );
            }
            for status in [
                "400", "401", "403", "404", "409", "413", "415", "429", "500", "503", "504",
            ] {
                assert!(
                    op["responses"][status].is_object(),
                    "{} lists {status}",
                    m.path
                );
            }
        }
    }
    for p in [
        "/v1/chat/completions",
        "/v1/events",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
}

#[test]
fn access_rules_are_security_requirements() {
    let doc = document().unwrap();
    let op = |p: &str| doc["paths"][p]["post"].clone();
    assert_eq!(
        op("/aicore.auth.v1.AuthService/Login")["security"],
        json!([])
    );
    assert_eq!(
        op("/aicore.state.v1.StateService/Get")["security"],
        json!([{ "accessToken": [] }, { "serviceKey": [] }])
    );
    assert_eq!(
        op("/aicore.router.v1.RouterService/ListRoutes")["security"],
        json!([{ "serviceKey": [] }])
    );
    assert_eq!(
        op("/aicore.time.v1.TimeService/SetScale")["security"],
        json!([{ "serviceKey": ["time.SetScale"] }])
    );
    let put = op("/aicore.state.v1.StateService/Put");
    assert!(
        put["parameters"]
            .as_array()
            .unwrap()
            .contains(&json!({ "$ref": "#/components/parameters/IdempotencyKey" })),
        "mutating methods take an Idempotency-Key"
    );
    // Service comments become tag descriptions.
    let tags = doc["tags"].as_array().unwrap();
    let state = tags.iter().find(|t| t["name"] == "state").unwrap();
    assert!(
        state["description"]
            .as_str()
            .unwrap()
            .contains("versioned key-value")
    );
}

#[test]
fn every_reference_resolves() {
    let doc = document().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 500, "{}", all.len());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap();
        let target = doc.pointer(pointer);
        assert!(target.is_some_and(|t| !t.is_null()), "{r} does not resolve");
    }
}

#[test]
fn errors_are_connect_json_with_their_codes() {
    let doc = document().unwrap();
    let e404 = &doc["components"]["responses"]["Error404"];
    let codes =
        &e404["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]["enum"];
    assert_eq!(codes, &json!(["not_found"]));
    let e409 = &doc["components"]["responses"]["Error409"]["content"]["application/json"]["schema"]
        ["allOf"][1]["properties"]["code"]["enum"];
    assert_eq!(e409, &json!(["already_exists", "aborted"]));
    assert!(doc["components"]["responses"]["Error429"]["headers"]["Retry-After"].is_object());
}

/// What client generators take (tests/tests/clients.rs runs two): bodies only in media types
/// they know (openapi-python-client warns on `application/proto` and skips it), and header
/// schemas as `enum`, never `const` (it drops the operations of a `const` parameter).
#[test]
fn generators_take_every_operation() {
    let doc = document().unwrap();
    let known = ["application/json", "text/event-stream"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for op in item.as_object().unwrap().values() {
            let mut media: Vec<&String> = Vec::new();
            if let Some(c) = op["requestBody"]["content"].as_object() {
                media.extend(c.keys());
            }
            for r in op["responses"].as_object().unwrap().values() {
                if let Some(c) = r["content"].as_object() {
                    media.extend(c.keys());
                }
            }
            for m in media {
                assert!(known.contains(&m.as_str()), "{path}: {m}");
            }
        }
    }
    for (name, p) in doc["components"]["parameters"].as_object().unwrap() {
        assert!(p["schema"].get("const").is_none(), "{name}");
    }
    assert_eq!(
        doc["components"]["schemas"]["ConnectProtocolVersion"],
        json!({ "type": "string", "enum": ["1"] })
    );
}

/// Every event type the backend declares is described: its envelope, its `payloadType`, and its
/// payload's message as the API writes it (so `quest.completed` says its currency is a string).
#[test]
fn every_backend_event_type_is_described() {
    let doc = document().unwrap();
    let schemas = &doc["components"]["schemas"];
    let union = &schemas["BackendEvent"];
    assert_eq!(union["discriminator"]["propertyName"], "type");
    assert!(!proto::EVENT_TYPES.is_empty());
    assert_eq!(
        union["oneOf"].as_array().unwrap().len(),
        proto::EVENT_TYPES.len()
    );
    for e in proto::EVENT_TYPES {
        let name = format!("BackendEvent.{}", e.r#type);
        assert_eq!(
            union["discriminator"]["mapping"][e.r#type],
            format!("#/components/schemas/{name}")
        );
        // Whole, not allOf the envelope (a generator cannot merge a string with a literal).
        assert!(schemas[&name].get("allOf").is_none());
        let typed = &schemas[&name]["properties"];
        assert_eq!(typed["type"]["enum"], json!([e.r#type]));
        assert_eq!(typed["payloadType"]["enum"], json!([e.message]));
        assert_eq!(
            typed["topic"]["type"], "string",
            "the envelope's own fields too"
        );
        assert_eq!(
            typed["payload"]["$ref"],
            format!("#/components/schemas/{}", e.message)
        );
        assert!(schemas[e.message].is_object(), "{} is described", e.message);
    }
    let reward = &schemas["aicore.quest.v1.Reward"]["properties"]["currency"];
    assert_eq!(reward["type"], "string", "money is int64: a string");
    assert_eq!(
        schemas["aicore.quest.v1.QuestCompleted"]["properties"]["reward"]["$ref"],
        "#/components/schemas/aicore.quest.v1.Reward"
    );
    let stream = &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"];
    assert!(
        stream
            .to_string()
            .contains("#/components/schemas/BackendEvent")
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        if r.starts_with("#/components/schemas/") {
            assert!(schemas[name].is_object(), "{r} resolves");
        }
    }
}
