//! The backend's event types in the description: one component per declared type (the `Event`
//! envelope with that `type`, its `payloadType` and its payload's message), and `BackendEvent`,
//! their union with a discriminator on `type`, so a client generator can decode each payload
//! by its type. Types not declared (game.*, scheduled, players') keep the envelope's free-form
//! payload.

use prost_reflect::DescriptorPool;
use serde_json::{Map, Value, json};

use super::schema::{Schemas, comment};

/// The envelope's component name.
pub const EVENT: &str = "aicore.events.v1.Event";
/// The union of the declared types.
pub const BACKEND_EVENT: &str = "BackendEvent";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The components for the declared event types; the payload messages go into `schemas`.
pub fn components(
    schemas: &mut Schemas,
    pool: &DescriptorPool,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut one_of = Vec::new();
    let mut mapping = Map::new();
    let mut table = String::from("| type | payloadType |\n|---|---|\n");
    for e in proto::EVENT_TYPES {
        let message = pool
            .get_message_by_name(e.message)
            .ok_or_else(|| format!("event type {}: no message {}", e.r#type, e.message))?;
        let payload = schemas.message(&message);
        let name = format!("{BACKEND_EVENT}.{}", e.r#type);
        let doc = comment(&message.parent_file(), message.path()).unwrap_or_default();
        out.insert(
            name.clone(),
            json!({
                "description": doc,
                "allOf": [
                    reference(EVENT),
                    {
                        "type": "object",
                        "required": ["type", "payloadType", "payload"],
                        "properties": {
                            "type": { "const": e.r#type },
                            "payloadType": { "const": e.message },
                            "payload": payload,
                        }
                    }
                ]
            }),
        );
        one_of.push(reference(&name));
        mapping.insert(
            e.r#type.to_owned(),
            Value::String(format!("#/components/schemas/{name}")),
        );
        table.push_str(&format!("| `{}` | `{}` |\n", e.r#type, e.message));
    }
    out.insert(
        BACKEND_EVENT.into(),
        json!({
            "description": format!(
                "An event the backend publishes, by its `type`; `payload` is the proto3 JSON of \
                 the message `payloadType` names (64-bit integers as strings, enums by name), as \
                 the API answers the same facts.\n\n{table}"
            ),
            "oneOf": one_of,
            "discriminator": { "propertyName": "type", "mapping": mapping },
        }),
    );
    Ok(out)
}

/// Writes each declared type's component out whole: the envelope's properties, with `type` and
/// `payloadType` narrowed to one value (`enum`, not `const`) and `payload` its message. Not
/// `allOf` the envelope: openapi-python-client cannot merge a `string` with a literal and drops
/// the whole component.
fn standalone(components: &mut Map<String, Value>) {
    let Some(envelope) = components
        .get(EVENT)
        .and_then(|e| e.get("properties"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    for e in proto::EVENT_TYPES {
        let name = format!("{BACKEND_EVENT}.{}", e.r#type);
        let Some(Value::Object(variant)) = components.get_mut(&name) else {
            continue;
        };
        let Some(narrowed) = variant
            .get("allOf")
            .and_then(|a| a.get(1))
            .and_then(|o| o.get("properties"))
            .and_then(Value::as_object)
            .cloned()
        else {
            continue;
        };
        let mut properties = envelope.clone();
        for (key, value) in narrowed {
            let merged = match value.get("const") {
                Some(one) => json!({ "type": "string", "enum": [one] }),
                None => value,
            };
            properties.insert(key, merged);
        }
        variant.remove("allOf");
        variant.insert("type".into(), json!("object"));
        variant.insert("additionalProperties".into(), json!(false));
        variant.insert("required".into(), json!(["type", "payloadType", "payload"]));
        variant.insert("properties".into(), Value::Object(properties));
    }
}

/// Says on the envelope where the typed payloads are described, and writes the typed variants
/// out whole (see `standalone`).
pub fn annotate_envelope(components: &mut Map<String, Value>) {
    standalone(components);
    if let Some(Value::Object(event)) = components.get_mut(EVENT) {
        let before = event
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let note = format!(
            "The types the backend publishes, and their payloads, are `{BACKEND_EVENT}`; other \
             types (`game.*`, scheduled events, players' own) carry free-form JSON and an empty \
             `payloadType`."
        );
        let text = if before.is_empty() {
            note
        } else {
            format!("{before}\n\n{note}")
        };
        event.insert("description".into(), Value::String(text));
    }
}
