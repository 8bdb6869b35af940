//! The wire contract of Edge: generated messages for the 22 services (prost, with the proto3 JSON
//! mapping from pbjson) and one descriptor per service, from which the HTTP routes, the route table
//! and the NATS subjects are derived. Nothing here knows about HTTP.

pub mod canonical;
pub mod codec;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

pub use codec::{Codec, CodecError};

include!(concat!(env!("OUT_DIR"), "/aicore.rs"));

/// The compiled `FileDescriptorSet` of every .proto file (with imports), for reflection and docs.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A boxed, sendable stream.
pub type BoxStream<T> = Pin<Box<dyn futures_util::Stream<Item = T> + Send + 'static>>;

/// A service's admission priority under load, from the `aicore.options.v1.priority` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// May fill up to 60% of the in-flight limit.
    Low,
    /// Up to 85%.
    Normal,
    /// All of it.
    High,
}

/// A method's rate-limit class, from the `rate_class` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// General, or the write budget when a player calls a mutating method.
    Default,
    /// Public account methods: a budget per client address.
    Auth,
    /// Methods that reach a model.
    Llm,
    /// Queries that examine many records: a player's query budget.
    Query,
}

/// Who may call a method, from the `aicore.options.v1.access` method option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Any authenticated principal.
    Player,
    /// No token needed.
    Public,
    /// Service principals only.
    Service,
    /// Service principals holding the method's scope explicitly.
    Admin,
}

impl Access {
    /// The name used in docs and the route table.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Player => "player",
            Access::Public => "public",
            Access::Service => "service",
            Access::Admin => "admin",
        }
    }
}

/// Converts a method's request and response between the JSON and protobuf encodings, so a remote
/// endpoint can pass protobuf through and transcode JSON exactly once.
#[derive(Clone, Copy)]
pub struct Transcode {
    /// Request or response JSON to protobuf bytes.
    pub json_to_proto: fn(&[u8]) -> Result<Vec<u8>, CodecError>,
    /// Response protobuf bytes to JSON.
    pub proto_to_json: fn(&[u8]) -> Result<Vec<u8>, CodecError>,
}

impl std::fmt::Debug for Transcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transcode")
    }
}

/// One RPC method, from the descriptors.
#[derive(Debug)]
pub struct MethodDesc {
    /// Index of its service in [`SERVICES`].
    pub service_index: usize,
    /// Index within its service.
    pub index: usize,
    /// The service's short name, e.g. `state`.
    pub service: &'static str,
    /// e.g. `Put`.
    pub name: &'static str,
    /// e.g. `put`, `get_balance`: used in NATS subjects.
    pub snake: &'static str,
    /// The Connect path, e.g. `/aicore.state.v1.StateService/Put`.
    pub path: &'static str,
    /// Fully qualified input message name.
    pub input_type: &'static str,
    /// Fully qualified output message name.
    pub output_type: &'static str,
    /// Server streaming (SSE) rather than unary.
    pub server_streaming: bool,
    /// Who may call it.
    pub access: Access,
    /// Whether it changes state (and takes an Idempotency-Key).
    pub mutates: bool,
    /// Whether its handler answers a repeated Idempotency-Key itself (no edge record).
    pub keys_itself: bool,
    /// Its rate-limit class (the `method_rate_class` option, else its service's `rate_class`).
    pub rate_class: RateClass,
    /// JSON/protobuf transcoding of the request (json_to_proto) and response (proto_to_json).
    pub transcode: Transcode,
}

impl MethodDesc {
    /// The service this method belongs to.
    pub fn service_desc(&self) -> &'static ServiceDesc {
        &SERVICES[self.service_index]
    }
}

/// One service, from the descriptors.
#[derive(Debug)]
pub struct ServiceDesc {
    /// Index in [`SERVICES`].
    pub index: usize,
    /// Short name, the second segment of the package: `state`.
    pub short: &'static str,
    /// `aicore.state.v1`.
    pub package: &'static str,
    /// `StateService`.
    pub name: &'static str,
    /// `aicore.state.v1.StateService`.
    pub full_name: &'static str,
    /// The leading comment of the service in its .proto file.
    pub doc: &'static str,
    /// The methods of other services it calls, as `<svc>.<Method>` (its `calls` option), sorted:
    /// exactly the scopes of the service principal its calls carry.
    pub calls: &'static [&'static str],
    /// Its admission priority under load (the `priority` service option).
    pub priority: Priority,
    /// Its methods in declaration order.
    pub methods: &'static [MethodDesc],
}

impl ServiceDesc {
    /// The service by short name (`state`).
    pub fn by_short(short: &str) -> Option<&'static ServiceDesc> {
        SERVICES.iter().find(|s| s.short == short)
    }

    /// Whether it declares calling `method`.
    pub fn declares(&self, method: &MethodDesc) -> bool {
        self.calls.iter().any(|c| {
            c.split_once('.')
                .is_some_and(|(svc, m)| svc == method.service && m == method.name)
        })
    }

    /// The services that declare calling one of its methods.
    pub fn called_by(&self) -> impl Iterator<Item = &'static ServiceDesc> + '_ {
        SERVICES.iter().filter(move |s| {
            s.calls
                .iter()
                .any(|c| c.split_once('.').is_some_and(|(svc, _)| svc == self.short))
        })
    }
}

/// An event type the backend publishes, and the message its payload is (from the
/// `aicore.options.v1.event_type` message option).
#[derive(Debug)]
pub struct EventTypeDesc {
    /// e.g. `quest.completed`.
    pub r#type: &'static str,
    /// The payload's message, e.g. `aicore.quest.v1.QuestCompleted`.
    pub message: &'static str,
    /// Decodes a payload's proto3 JSON as the message (to check it is one).
    pub json_to_proto: fn(&[u8]) -> Result<Vec<u8>, CodecError>,
}

impl EventTypeDesc {
    /// The declared event type `kind`, if the backend declares it.
    pub fn by_type(kind: &str) -> Option<&'static EventTypeDesc> {
        EVENT_TYPES.iter().find(|e| e.r#type == kind)
    }
}

/// A message that is the payload of a backend event type: publishers take the type from here,
/// so a type and its shape are bound in the .proto file alone.
pub trait EventMessage {
    /// The event type, e.g. `quest.completed`.
    const TYPE: &'static str;
    /// The message's full name, e.g. `aicore.quest.v1.QuestCompleted`.
    const MESSAGE: &'static str;
}

/// Encoded messages of a stream, or the status that ended it.
pub type ByteStream<E> = BoxStream<Result<bytes::Bytes, E>>;

/// How a typed client reaches a service: encoded requests in, encoded replies out. The
/// handlers implement it over the router, so a client works the same in-process or over NATS.
pub trait Transport: Send + Sync {
    /// What the caller passes with each call.
    type Context: Send + 'static;
    /// The status type; codec failures convert into it.
    type Error: From<CodecError> + Send + 'static;
    /// One unary call with a protobuf body; the protobuf reply.
    fn unary(
        &self,
        ctx: Self::Context,
        method: &'static MethodDesc,
        body: bytes::Bytes,
    ) -> BoxFuture<Result<bytes::Bytes, Self::Error>>;
    /// One streaming call with a protobuf body; the protobuf messages.
    fn stream(
        &self,
        ctx: Self::Context,
        method: &'static MethodDesc,
        body: bytes::Bytes,
    ) -> BoxFuture<Result<ByteStream<Self::Error>, Self::Error>>;
}

static BY_PATH: LazyLock<HashMap<&'static str, &'static MethodDesc>> = LazyLock::new(|| {
    SERVICES
        .iter()
        .flat_map(|s| s.methods.iter())
        .map(|m| (m.path, m))
        .collect()
});

/// The method served at a Connect path, e.g. `/aicore.state.v1.StateService/Get`.
pub fn method_by_path(path: &str) -> Option<&'static MethodDesc> {
    BY_PATH.get(path).copied()
}

/// A handler's reply, already encoded in the caller's codec.
pub enum Encoded<E> {
    /// One message.
    Unary(bytes::Bytes),
    /// A stream of messages, each encoded on its own.
    Stream(BoxStream<Result<bytes::Bytes, E>>),
}

/// An object-safe view of a generated service dispatcher: decode, call the typed handler, encode.
pub trait Dispatch<C, E>: Send + Sync + 'static {
    /// The service it serves.
    fn descriptor(&self) -> &'static ServiceDesc;
    /// Runs `method` on `body` (encoded with `codec`).
    fn call(
        &self,
        ctx: C,
        method: &'static MethodDesc,
        codec: Codec,
        body: bytes::Bytes,
    ) -> BoxFuture<Result<Encoded<E>, E>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_22_services_are_described() {
        assert_eq!(SERVICES.len(), 22);
        let shorts: std::collections::HashSet<_> = SERVICES.iter().map(|s| s.short).collect();
        assert_eq!(shorts.len(), 22, "one service per package");
        for s in SERVICES {
            assert!(!s.methods.is_empty(), "{} has methods", s.full_name);
            assert!(s.full_name.ends_with("Service"));
        }
    }

    #[test]
    fn paths_and_options_come_from_the_protos() {
        let put = method_by_path("/aicore.state.v1.StateService/Put").expect("state Put");
        assert_eq!(put.service, "state");
        assert_eq!(put.input_type, "aicore.state.v1.PutRequest");
        assert!(put.mutates);
        assert_eq!(put.access, Access::Player);
        let login = method_by_path("/aicore.auth.v1.AuthService/Login").expect("auth Login");
        assert_eq!(login.access, Access::Public);
        let stream = method_by_path("/aicore.llm.v1.LlmService/InferStream").expect("InferStream");
        assert!(stream.server_streaming);
        assert_eq!(stream.snake, "infer_stream");
        let set_scale = method_by_path("/aicore.time.v1.TimeService/SetScale").expect("SetScale");
        assert_eq!(set_scale.access, Access::Admin);
        assert!(method_by_path("/aicore.state.v1.StateService/Nope").is_none());
    }

    /// Every type the backend publishes with a fixed shape (grep `TYPE` in handlers for the
    /// publishers): a declared message each, and nothing else declared.
    #[test]
    fn every_backend_event_type_has_its_message() {
        let declared: Vec<(&str, &str)> =
            EVENT_TYPES.iter().map(|e| (e.r#type, e.message)).collect();
        assert_eq!(
            declared,
            [
                ("npc.changed", "aicore.npc.v1.NpcChanged"),
                (
                    "payment.inventory_changed",
                    "aicore.payment.v1.InventoryChanged"
                ),
                ("player.leveled", "aicore.quest.v1.PlayerLeveled"),
                ("quest.completed", "aicore.quest.v1.QuestCompleted"),
                ("time.day_began", "aicore.time.v1.DayBegan"),
                ("time.period_began", "aicore.time.v1.PeriodBegan"),
                ("weather.changed", "aicore.weather.v1.Weather"),
                ("world.entity.removed", "aicore.world.v1.EntityRemoved"),
                ("world.entity.upserted", "aicore.world.v1.Entity"),
            ]
        );
        use aicore::quest::v1::QuestCompleted;
        assert_eq!(<QuestCompleted as EventMessage>::TYPE, "quest.completed");
        let e = EventTypeDesc::by_type("quest.completed").expect("declared");
        assert_eq!(e.message, <QuestCompleted as EventMessage>::MESSAGE);
        (e.json_to_proto)(br#"{"questId":"q","reward":{"currency":"250"}}"#).expect("its shape");
        assert!(
            (e.json_to_proto)(br#"{"currency":250}"#).is_err(),
            "not its shape"
        );
        assert!(EventTypeDesc::by_type("game.boss_defeated").is_none());
    }

    #[test]
    fn transcoding_round_trips() {
        let put = method_by_path("/aicore.state.v1.StateService/Put").expect("state Put");
        let json = br#"{"key":"a.b","value":{"hp":3,"tags":["x"]},"expectedVersion":"0"}"#;
        let bin = (put.transcode.json_to_proto)(json).expect("json to proto");
        let msg: aicore::state::v1::PutRequest =
            codec::decode(Codec::Proto, &bin).expect("decodes");
        assert_eq!(msg.key, "a.b");
        assert_eq!(msg.expected_version, Some(0));
        let err = (put.transcode.json_to_proto)(br#"{"key":1"#).expect_err("malformed");
        assert!(
            err.to_string().contains("aicore.state.v1.PutRequest"),
            "{err}"
        );
    }
}
