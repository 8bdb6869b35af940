//! Test doubles for calls between services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proto::aicore::events::v1::{PublishRequest, PublishResponse};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::{Calls, Route};
use crate::kit::context::Context;
use crate::kit::status::Status;

/// The event bus as a caller sees it: records each publish, and answers a repeated idempotency
/// key with the first outcome (as the edge's idempotency records do).
#[derive(Default)]
pub struct Bus {
    /// (topic, type, payload JSON, idempotency key) of each event, in order.
    pub published: Mutex<Vec<(String, String, serde_json::Value, String)>>,
    by_key: Mutex<HashMap<String, u64>>,
    /// Calls offered, repeats included.
    pub calls: Mutex<u32>,
    /// When set, every publish fails with this.
    pub fail: Mutex<Option<Status>>,
}

impl Bus {
    /// A bus connected as the route of fresh [`Calls`].
    pub fn connected() -> (Calls, Arc<Bus>) {
        let bus = Arc::new(Bus::default());
        let calls = Calls::new();
        calls.connect(Arc::clone(&bus) as Arc<dyn Route>);
        (calls, bus)
    }

    /// The `i`th event's payload as its declared message `M`, checked to be exactly `M`'s proto3
    /// JSON (what the API writes: 64-bit integers as strings, enums by name), under `M`'s type.
    pub fn payload<M>(&self, i: usize) -> M
    where
        M: proto::EventMessage + serde::Serialize + serde::de::DeserializeOwned,
    {
        let (_, kind, json, _) = self.published.lock().unwrap()[i].clone();
        assert_eq!(kind, M::TYPE);
        let json = as_written(&json);
        let msg: M = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            as_written(&serde_json::to_value(&msg).unwrap()),
            json,
            "{kind} is {}",
            M::MESSAGE
        );
        msg
    }

    /// Topics and types published so far.
    pub fn events(&self) -> Vec<(String, String)> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|(t, k, _, _)| (t.clone(), k.clone()))
            .collect()
    }
}

impl Route for Bus {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        *self.calls.lock().unwrap() += 1;
        if let Some(status) = self.fail.lock().unwrap().clone() {
            return Box::pin(async move { Err(status) });
        }
        assert_eq!(method.path, "/aicore.events.v1.EventBusService/Publish");
        let req: PublishRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
        check_declared(&req);
        let key = ctx.idempotency_key.clone().expect("a derived key");
        let mut by_key = self.by_key.lock().unwrap();
        let seq = match by_key.get(&key) {
            Some(seq) => *seq,
            None => {
                let mut p = self.published.lock().unwrap();
                let payload = serde_json::to_value(req.payload.unwrap_or_default()).unwrap();
                p.push((req.topic.clone(), req.r#type.clone(), payload, key.clone()));
                let seq = p.len() as u64;
                by_key.insert(key, seq);
                seq
            }
        };
        let reply = proto::codec::encode(Codec::Proto, &PublishResponse { sequence: seq });
        Box::pin(async move { Ok(Encoded::Unary(reply.map_err(Status::from)?)) })
    }
}

/// Asserts that an event of a type the backend declares carries that type's message, as the bus
/// checks it: every test of a publisher checks the shape of what it publishes.
pub fn check_declared(req: &PublishRequest) {
    if let Some(declared) = proto::EventTypeDesc::by_type(&req.r#type) {
        let json = proto::codec::to_json_vec(&req.payload.clone().unwrap_or_default()).unwrap();
        if let Err(e) = (declared.json_to_proto)(&json) {
            panic!(
                "{} published a payload that is not a {}: {e}",
                req.r#type, declared.message
            );
        }
    }
}

/// A payload as the edge writes it (whole numbers held as doubles written as integers), so it
/// compares with a message's own JSON.
pub fn as_written(json: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&proto::codec::to_json_vec(json).unwrap()).unwrap()
}
