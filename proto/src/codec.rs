//! The two encodings of the Connect protocol: proto3 JSON and binary protobuf.

use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxStream;

/// How a message is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `application/json`, the proto3 JSON mapping.
    Json,
    /// `application/proto`, binary protobuf.
    Proto,
}

impl Codec {
    /// The Connect unary content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::Proto => "application/proto",
        }
    }
}

/// A message that could not be decoded or encoded, or a method that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The client's bytes are not a valid message of the expected type.
    #[error("invalid {codec} body for {type_name}: {detail}")]
    Decode {
        /// "JSON" or "protobuf".
        codec: &'static str,
        /// The expected message type.
        type_name: String,
        /// What is wrong, without echoing the body.
        detail: String,
    },
    /// A reply could not be encoded (e.g. a NaN in a JSON value). A bug, not the caller's fault.
    #[error("cannot encode {type_name}: {detail}")]
    Encode {
        /// The message type.
        type_name: String,
        /// What failed.
        detail: String,
    },
    /// The dispatcher was handed a method of another service.
    #[error("unknown method {0}")]
    UnknownMethod(&'static str),
}

/// `proto::aicore::state::v1::PutRequest` -> `aicore.state.v1.PutRequest`.
fn type_name<M>() -> String {
    let full = std::any::type_name::<M>();
    full.strip_prefix("proto::")
        .unwrap_or(full)
        .replace("::", ".")
}

/// Decodes a request. An empty JSON body is the empty message, as an empty protobuf body is.
pub fn decode<M: Message + Default + DeserializeOwned>(
    codec: Codec,
    body: &[u8],
) -> Result<M, CodecError> {
    match codec {
        Codec::Proto => M::decode(body).map_err(|e| CodecError::Decode {
            codec: "protobuf",
            type_name: type_name::<M>(),
            detail: e.to_string(),
        }),
        Codec::Json if body.iter().all(u8::is_ascii_whitespace) => Ok(M::default()),
        Codec::Json => serde_json::from_slice(body).map_err(|e| CodecError::Decode {
            codec: "JSON",
            type_name: type_name::<M>(),
            detail: e.to_string(),
        }),
    }
}

/// serde_json's compact output, except that whole numbers held as doubles are written as
/// integers: `10`, not `10.0`. `google.protobuf.Value` has only doubles, so a game's `{"hp":10}`
/// would otherwise come back as `10.0`, which typed JSON parsers (C#) read as a float. Exact:
/// below 2^53 every integer is a double and back; larger values keep the double's form.
struct WholeNumbers;

impl serde_json::ser::Formatter for WholeNumbers {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
            #[allow(clippy::cast_possible_truncation)]
            let whole = value as i64;
            serde_json::ser::CompactFormatter.write_i64(writer, whole)
        } else {
            serde_json::ser::CompactFormatter.write_f64(writer, value)
        }
    }

    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        if value.fract() == 0.0 && value.abs() < 16_777_216.0 {
            #[allow(clippy::cast_possible_truncation)]
            let whole = value as i64;
            serde_json::ser::CompactFormatter.write_i64(writer, whole)
        } else {
            serde_json::ser::CompactFormatter.write_f32(writer, value)
        }
    }
}

/// JSON as the edge writes it everywhere: compact, whole numbers as integers.
pub fn to_json_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, WholeNumbers);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Encodes a reply.
pub fn encode<M: Message + Serialize>(codec: Codec, msg: &M) -> Result<Bytes, CodecError> {
    match codec {
        Codec::Proto => Ok(Bytes::from(msg.encode_to_vec())),
        Codec::Json => to_json_vec(msg)
            .map(Bytes::from)
            .map_err(|e| CodecError::Encode {
                type_name: type_name::<M>(),
                detail: e.to_string(),
            }),
    }
}

/// Encodes each message of a reply stream.
pub fn encode_stream<M, E>(
    codec: Codec,
    stream: BoxStream<Result<M, E>>,
) -> BoxStream<Result<Bytes, E>>
where
    M: Message + Serialize + Send + 'static,
    E: From<CodecError> + Send + 'static,
{
    Box::pin(stream.map(move |item| item.and_then(|m| encode(codec, &m).map_err(E::from))))
}

/// JSON to protobuf for message type `M` (used by remote endpoints: transcode once, then pass
/// bytes through).
pub fn json_to_proto<M: Message + Default + DeserializeOwned>(
    json: &[u8],
) -> Result<Vec<u8>, CodecError> {
    decode::<M>(Codec::Json, json).map(|m| m.encode_to_vec())
}

/// Protobuf to JSON for message type `M`.
pub fn proto_to_json<M: Message + Default + Serialize + DeserializeOwned>(
    bin: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let msg = decode::<M>(Codec::Proto, bin)?;
    encode(Codec::Json, &msg).map(|b| b.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn whole_numbers_are_written_as_integers_and_nothing_else_changes() {
        let v: pbjson_types::Value = serde_json::from_str(
            r#"{"hp":10,"x":-2500,"zero":0,"ratio":2.5,"tiny":1e-7,"big":1e300,"edge":9007199254740992.0,"list":[1,1.5]}"#,
        )
        .unwrap();
        let out = String::from_utf8(to_json_vec(&v).unwrap()).unwrap();
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["hp"], serde_json::json!(10));
        assert!(
            out.contains(r#""hp":10,"#) || out.contains(r#""hp":10}"#),
            "{out}"
        );
        assert!(!out.contains("10.0"), "{out}");
        assert_eq!(back["x"], serde_json::json!(-2500));
        assert_eq!(back["zero"], serde_json::json!(0));
        assert_eq!(back["ratio"], serde_json::json!(2.5));
        assert_eq!(back["tiny"], serde_json::json!(1e-7));
        assert_eq!(back["big"], serde_json::json!(1e300));
        // From 2^53 on, the double's own form: no integer a double cannot hold exactly.
        assert!(out.contains("9007199254740992.0"), "{out}");
        assert_eq!(back["list"], serde_json::json!([1, 1.5]));
    }
}
