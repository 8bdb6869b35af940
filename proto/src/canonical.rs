//! One byte form per message: map entries sorted. prost encodes a map (and so every
//! `google.protobuf.Struct`) in hash order, which differs between two encodings of the same
//! value, so bytes cannot be compared or hashed as they come (an idempotency fingerprint would
//! call a faithful retry "a different request"). This re-encodes a message with the map entries
//! of every level sorted, guided by the descriptors; everything else is kept as it was.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message as _;
use prost_types::{FileDescriptorSet, field_descriptor_proto::Type};

/// Per message type: its message-typed fields (number -> type name), and whether it is a map
/// entry.
struct Shape {
    messages: HashMap<u32, String>,
    map_entry: bool,
}

fn index() -> &'static HashMap<String, Shape> {
    static INDEX: OnceLock<HashMap<String, Shape>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut out = HashMap::new();
        let Ok(set) = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET) else {
            return out;
        };
        fn add(out: &mut HashMap<String, Shape>, scope: &str, m: &prost_types::DescriptorProto) {
            let name = format!("{scope}.{}", m.name());
            let messages = m
                .field
                .iter()
                .filter(|f| f.r#type() == Type::Message)
                .map(|f| (f.number() as u32, f.type_name().to_owned()))
                .collect();
            let map_entry = m.options.as_ref().is_some_and(|o| o.map_entry());
            for nested in &m.nested_type {
                add(out, &name, nested);
            }
            out.insert(
                name,
                Shape {
                    messages,
                    map_entry,
                },
            );
        }
        for file in &set.file {
            let scope = if file.package().is_empty() {
                String::new()
            } else {
                format!(".{}", file.package())
            };
            for m in &file.message_type {
                add(&mut out, &scope, m);
            }
        }
        out
    })
}

/// One field as it sits on the wire: its number, and its whole encoding (tag included).
struct Field<'a> {
    number: u32,
    raw: &'a [u8],
    /// The payload of a length-delimited field.
    payload: Option<&'a [u8]>,
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let start = at;
        let tag = varint(buf, &mut at)?;
        let number = u32::try_from(tag >> 3).ok()?;
        let payload = match tag & 7 {
            0 => {
                varint(buf, &mut at)?;
                None
            }
            1 => {
                at = at.checked_add(8).filter(|&e| e <= buf.len())?;
                None
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                let end = at.checked_add(len).filter(|&e| e <= buf.len())?;
                let p = &buf[at..end];
                at = end;
                Some(p)
            }
            5 => {
                at = at.checked_add(4).filter(|&e| e <= buf.len())?;
                None
            }
            // Groups are not used by proto3.
            _ => return None,
        };
        out.push(Field {
            number,
            raw: &buf[start..at],
            payload,
        });
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn canon(type_name: &str, buf: &[u8], depth: usize) -> Option<Vec<u8>> {
    let shapes = index();
    let Some(shape) = shapes.get(type_name) else {
        return Some(buf.to_vec());
    };
    if depth > 64 {
        return None;
    }
    let mut out = Vec::with_capacity(buf.len());
    let mut fields = fields(buf)?;
    // Field order as prost writes it; repeated ones keep their order, except map entries.
    fields.sort_by_key(|f| f.number);
    let mut i = 0;
    while i < fields.len() {
        let number = fields[i].number;
        let run_end = fields[i..]
            .iter()
            .position(|f| f.number != number)
            .map_or(fields.len(), |n| i + n);
        match (shape.messages.get(&number), fields[i].payload) {
            (Some(child), Some(_)) => {
                let is_map = shapes.get(child).is_some_and(|s| s.map_entry);
                let mut encoded = Vec::with_capacity(run_end - i);
                for f in &fields[i..run_end] {
                    encoded.push(canon(child, f.payload?, depth + 1)?);
                }
                if is_map {
                    encoded.sort();
                }
                for e in encoded {
                    put_varint(&mut out, (u64::from(number) << 3) | 2);
                    put_varint(&mut out, e.len() as u64);
                    out.extend_from_slice(&e);
                }
            }
            _ => {
                for f in &fields[i..run_end] {
                    out.extend_from_slice(f.raw);
                }
            }
        }
        i = run_end;
    }
    Some(out)
}

/// `bytes`, a `type_name` message (e.g. `aicore.events.v1.PublishRequest`), with the entries of
/// every map at every level sorted. Bytes that do not parse are returned as they are.
pub fn canonical(type_name: &str, bytes: &[u8]) -> Vec<u8> {
    let name = if type_name.starts_with('.') {
        type_name.to_owned()
    } else {
        format!(".{type_name}")
    };
    canon(&name, bytes, 0).unwrap_or_else(|| bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aicore::events::v1::PublishRequest;

    fn publish(order: &[&str]) -> Vec<u8> {
        let mut fields = std::collections::HashMap::new();
        for k in order {
            fields.insert(
                (*k).to_owned(),
                pbjson_types::Value {
                    kind: Some(pbjson_types::value::Kind::StringValue(k.repeat(3))),
                },
            );
        }
        let payload = pbjson_types::Value {
            kind: Some(pbjson_types::value::Kind::StructValue(
                pbjson_types::Struct { fields },
            )),
        };
        PublishRequest {
            topic: "t".into(),
            r#type: "x".into(),
            payload: Some(payload),
        }
        .encode_to_vec()
    }

    #[test]
    fn equal_messages_have_equal_canonical_bytes() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let a = publish(&refs);
        let mut found_other_order = false;
        for _ in 0..20 {
            let b = publish(&refs);
            found_other_order |= a != b;
            assert_eq!(
                canonical("aicore.events.v1.PublishRequest", &a),
                canonical("aicore.events.v1.PublishRequest", &b)
            );
        }
        assert!(
            found_other_order,
            "the hash order did differ (else this proves nothing)"
        );
        // Still the same message.
        let back =
            PublishRequest::decode(&canonical("aicore.events.v1.PublishRequest", &a)[..]).unwrap();
        assert_eq!(back, PublishRequest::decode(&a[..]).unwrap());
        // Different values stay different; garbage comes back as it is.
        assert_ne!(
            canonical("aicore.events.v1.PublishRequest", &publish(&["a"])),
            canonical("aicore.events.v1.PublishRequest", &publish(&["b"]))
        );
        assert_eq!(
            canonical("aicore.events.v1.PublishRequest", &[0xff]),
            [0xff]
        );
    }
}
