//! JSON Schema (2020-12, as OpenAPI 3.1 uses it) for messages in their proto3 JSON form: field
//! names in lowerCamelCase, 64-bit integers as strings, enums as names, bytes as base64 and the
//! well-known types as the mapping writes them. Comments in the .proto files become descriptions.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};
use serde_json::{Map, Value, json};

/// Collects one component schema per message and enum reached from the methods.
pub struct Schemas {
    components: BTreeMap<String, Value>,
}

/// The `$ref` of a component.
fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The leading (else trailing) comment at `path` in `file`, trimmed; None when there is none.
pub fn comment(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let loc = info.location.iter().find(|l| l.path == path)?;
    let text = loc
        .leading_comments
        .as_deref()
        .or(loc.trailing_comments.as_deref())?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}

fn describe(mut schema: Value, doc: Option<String>) -> Value {
    if let (Some(doc), Some(obj)) = (doc, schema.as_object_mut()) {
        // A `$ref` with siblings is fine in 3.1 (JSON Schema 2020-12).
        obj.insert("description".into(), Value::String(doc));
    }
    schema
}

/// A 64-bit integer: a decimal string in proto3 JSON (numbers are accepted on input too, but
/// the edge always writes strings).
fn int64(signed: bool) -> Value {
    let (format, pattern) = if signed {
        ("int64", "^-?[0-9]{1,19}$")
    } else {
        ("uint64", "^[0-9]{1,20}$")
    };
    json!({ "type": "string", "format": format, "pattern": pattern })
}

fn int32(min: i64, max: i64, format: &str) -> Value {
    json!({ "type": "integer", "format": format, "minimum": min, "maximum": max })
}

/// The well-known types, as the proto3 JSON mapping writes them.
fn well_known(full_name: &str) -> Option<Value> {
    let v = match full_name {
        "google.protobuf.Timestamp" => json!({
            "type": "string", "format": "date-time",
            "description": "RFC 3339, UTC (`Z`), e.g. `2026-01-02T03:04:05.678Z`."
        }),
        "google.protobuf.Duration" => json!({
            "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "Seconds with an `s` suffix, e.g. `1.5s`."
        }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({ "description": "Any JSON value." }),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.FieldMask" => json!({
            "type": "string", "description": "Comma-separated lowerCamelCase field paths."
        }),
        "google.protobuf.Any" => json!({
            "type": "object", "required": ["@type"],
            "properties": { "@type": { "type": "string" } }, "additionalProperties": true
        }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
            json!({ "type": ["number", "null"] })
        }
        "google.protobuf.Int64Value" => nullable(int64(true)),
        "google.protobuf.UInt64Value" => nullable(int64(false)),
        "google.protobuf.Int32Value" => json!({ "type": ["integer", "null"], "format": "int32" }),
        "google.protobuf.UInt32Value" => {
            json!({ "type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX })
        }
        "google.protobuf.BoolValue" => json!({ "type": ["boolean", "null"] }),
        "google.protobuf.StringValue" => json!({ "type": ["string", "null"] }),
        "google.protobuf.BytesValue" => {
            json!({ "type": ["string", "null"], "contentEncoding": "base64" })
        }
        _ => return None,
    };
    Some(v)
}

fn nullable(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        let types = json!([obj.get("type"), "null"]);
        obj.insert("type".into(), types);
    }
    schema
}

impl Schemas {
    pub fn new() -> Self {
        Schemas {
            components: BTreeMap::new(),
        }
    }

    /// The components collected so far, by full proto name.
    pub fn into_components(self) -> Map<String, Value> {
        self.components.into_iter().collect()
    }

    /// A message's schema: inline for a well-known type, else a `$ref` to its component.
    pub fn message(&mut self, m: &MessageDescriptor) -> Value {
        if let Some(wkt) = well_known(m.full_name()) {
            return wkt;
        }
        let name = m.full_name().to_owned();
        if !self.components.contains_key(&name) {
            // Placed before the fields so recursive messages end at their `$ref`.
            self.components.insert(name.clone(), Value::Null);
            let schema = self.object(m);
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> Value {
        if e.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let name = e.full_name().to_owned();
        if !self.components.contains_key(&name) {
            let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
            let schema = describe(
                json!({ "type": "string", "enum": names }),
                comment(&e.parent_file(), e.path()),
            );
            self.components.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn object(&mut self, m: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for f in m.fields() {
            let schema = describe(self.field(&f), comment(&m.parent_file(), f.path()));
            properties.insert(f.json_name().to_owned(), schema);
        }
        // The edge refuses fields a message does not have (400), so the schema does too.
        let mut schema =
            json!({ "type": "object", "properties": properties, "additionalProperties": false });
        let oneofs: Vec<String> = m
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| {
                let names: Vec<String> =
                    o.fields().map(|f| format!("`{}`", f.json_name())).collect();
                format!("At most one of {}.", names.join(", "))
            })
            .collect();
        let doc = comment(&m.parent_file(), m.path());
        let doc = match (doc, oneofs.is_empty()) {
            (doc, true) => doc,
            (Some(d), false) => Some(format!("{d}\n\n{}", oneofs.join(" "))),
            (None, false) => Some(oneofs.join(" ")),
        };
        schema = describe(schema, doc);
        schema
    }

    fn field(&mut self, f: &FieldDescriptor) -> Value {
        if f.is_map()
            && let Kind::Message(entry) = f.kind()
        {
            let v = self.single(&entry.map_entry_value_field());
            return json!({ "type": "object", "additionalProperties": v });
        }
        let one = self.single(f);
        if f.is_list() {
            json!({ "type": "array", "items": one })
        } else {
            one
        }
    }

    fn single(&mut self, f: &FieldDescriptor) -> Value {
        match f.kind() {
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                int32(i64::from(i32::MIN), i64::from(i32::MAX), "int32")
            }
            Kind::Uint32 | Kind::Fixed32 => int32(0, i64::from(u32::MAX), "uint32"),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int64(true),
            Kind::Uint64 | Kind::Fixed64 => int64(false),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Message(m) => self.message(&m),
            Kind::Enum(e) => self.enumeration(&e),
        }
    }
}

/// The descriptors of every .proto file, with comments.
pub fn pool() -> Result<DescriptorPool, String> {
    DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto3_json_mapping() {
        let pool = pool().unwrap();
        let mut s = Schemas::new();
        let put = pool
            .get_message_by_name("aicore.state.v1.PutRequest")
            .unwrap();
        assert_eq!(
            s.message(&put),
            json!({"$ref": "#/components/schemas/aicore.state.v1.PutRequest"})
        );
        let c = s.into_components();
        let props = &c["aicore.state.v1.PutRequest"]["properties"];
        assert_eq!(
            props["expectedVersion"]["type"], "string",
            "uint64 is a string"
        );
        assert_eq!(props["value"]["description"], "Any JSON value.");
        assert!(props["playerId"].is_object(), "json names");
        assert!(
            props["expectedVersion"]["description"]
                .as_str()
                .unwrap()
                .contains("the key must not exist"),
            "field comments become descriptions"
        );
    }
}
