//! The backend's event types, from the `aicore.options.v1.event_type` message option.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;

use prost_reflect::{DescriptorPool, Value};

/// `EVENT_TYPES` and an `EventMessage` impl per message carrying the `event_type` option: the one
/// binding of a backend event's type to its payload. A type is declared once, in the package of
/// the service whose word it is (its first segment names that service, or is `player`).
pub fn code(code: &mut String, pool: &DescriptorPool) -> Result<(), Box<dyn Error>> {
    let ext = pool
        .get_extension_by_name("aicore.options.v1.event_type")
        .ok_or("aicore.options.v1.event_type extension missing")?;
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for m in pool.all_messages() {
        if !m.package_name().starts_with("aicore.") {
            continue;
        }
        let Value::String(kind) = m.options().get_extension(&ext).as_ref().clone() else {
            continue;
        };
        if kind.is_empty() {
            continue;
        }
        let svc = m.package_name().split('.').nth(1).unwrap_or("");
        let head = kind.split('.').next().unwrap_or("");
        let well_formed = kind.len() <= 64
            && kind.contains('.')
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'));
        if !well_formed || (head != svc && head != "player") {
            return Err(format!(
                "{}: event_type {kind:?} must be lowercase \"{svc}.<name>\" (or \"player.<name>\")",
                m.full_name()
            )
            .into());
        }
        if let Some(other) = types.insert(kind.clone(), m.full_name().to_owned()) {
            return Err(format!(
                "event_type {kind:?} is declared by {other} and {}",
                m.full_name()
            )
            .into());
        }
    }
    writeln!(
        code,
        "/// Every event type the backend publishes with a declared payload (the `event_type` message option), by type."
    )?;
    writeln!(code, "pub static EVENT_TYPES: &[crate::EventTypeDesc] = &[")?;
    for (kind, message) in &types {
        writeln!(
            code,
            "  crate::EventTypeDesc {{ r#type: {kind:?}, message: {message:?}, json_to_proto: crate::codec::json_to_proto::<{}> }},",
            super::rust_type(message)
        )?;
    }
    writeln!(code, "];")?;
    for (kind, message) in &types {
        writeln!(
            code,
            "impl crate::EventMessage for {} {{ const TYPE: &'static str = {kind:?}; const MESSAGE: &'static str = {message:?}; }}",
            super::rust_type(message)
        )?;
    }
    Ok(())
}
