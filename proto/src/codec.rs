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

/// Encodes a reply.
pub fn encode<M: Message + Serialize>(codec: Codec, msg: &M) -> Result<Bytes, CodecError> {
    match codec {
        Codec::Proto => Ok(Bytes::from(msg.encode_to_vec())),
        Codec::Json => serde_json::to_vec(msg)
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
