//! The router's remote endpoint: request/reply to workers over NATS. Protobuf bodies pass through
//! untouched; JSON is transcoded to protobuf once on the way out and the reply once on the way back.

use std::time::Duration;

use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use handlers::Status;
use proto::{BoxFuture, Codec, Encoded, ServiceDesc};

use crate::nats::RoutesConfig;
use crate::nats::headers;
use crate::nats::signing::signed;
use crate::router::{Call, Endpoint, Reply};

/// Sends one service's calls to its workers.
pub struct NatsEndpoint(std::sync::Arc<Inner>);

struct Inner {
    responders: crate::nats::probe::Responders,
    up: tokio::sync::watch::Receiver<bool>,
    client: async_nats::Client,
    service: &'static ServiceDesc,
    /// One subject per method, by index (a `Subject` clone is a reference count, not a copy).
    subjects: Vec<async_nats::Subject>,
    timeout: Duration,
    /// Signs each request, when keys are configured.
    keys: Option<std::sync::Arc<crate::nats::signing::SigningKeys>>,
}

impl NatsEndpoint {
    /// Routes `service` over `client`, with `timeout` as the longest wait for a reply.
    pub fn new(
        nats: crate::nats::Nats,
        service: &'static ServiceDesc,
        routes: &RoutesConfig,
        timeout: Duration,
    ) -> Self {
        let subjects = service
            .methods
            .iter()
            .map(|m| async_nats::Subject::from(routes.subject(m)))
            .collect();
        NatsEndpoint(std::sync::Arc::new(Inner {
            responders: crate::nats::probe::unknown(),
            up: nats.up,
            client: nats.client,
            service,
            subjects,
            timeout,
            keys: nats.keys,
        }))
    }
}

impl NatsEndpoint {
    /// The counter the responder prober updates.
    pub fn responders(&self) -> crate::nats::probe::Responders {
        std::sync::Arc::clone(&self.0.responders)
    }
}

impl Endpoint for NatsEndpoint {
    fn call(&self, call: Call) -> BoxFuture<Result<Reply, Status>> {
        let this = std::sync::Arc::clone(&self.0);
        Box::pin(async move {
            let client = &this.client;
            let subject = this
                .subjects
                .get(call.method.index)
                .cloned()
                .unwrap_or_else(|| async_nats::Subject::from_static(""));
            let limit = this.timeout;
            let service = this.service.short;
            if !crate::nats::connected(client) {
                return Err(Status::unavailable(
                    format!("{service} is remote and NATS is not connected"),
                    Duration::from_secs(1),
                ));
            }
            let payload = match call.codec {
                Codec::Proto => call.body,
                Codec::Json => Bytes::from((call.method.transcode.json_to_proto)(&call.body)?),
            };
            // An atomic load; `server_info()` would clone the whole INFO (a dozen strings) per call.
            let max = client.max_payload();
            if payload.len() > max {
                return Err(Status::payload_too_large(format!(
                    "request is {} bytes; the message bus carries at most {max}",
                    payload.len()
                )));
            }
            let timeout = call.ctx.remaining().map_or(limit, |r| r.min(limit));
            if timeout.is_zero() {
                return Err(Status::deadline_exceeded(
                    "the deadline passed before the call was sent",
                ));
            }
            if call.method.server_streaming {
                // The stream's own lifetime is its deadline; the bus timeout bounds its start.
                let life = call.ctx.remaining().unwrap_or(Duration::from_secs(3600));
                let stream = crate::nats::stream::open(
                    client,
                    &this.up,
                    subject.clone(),
                    signed(
                        this.keys.as_deref(),
                        &subject,
                        headers::request_headers(&call.ctx, life),
                    ),
                    payload,
                    limit,
                    service,
                )
                .await?;
                return Ok(Encoded::Stream(crate::nats::stream::for_codec(
                    stream,
                    call.codec,
                    call.method,
                    service,
                )));
            }
            let request = async_nats::Request::new()
                .payload(payload)
                .headers(signed(
                    this.keys.as_deref(),
                    &subject,
                    headers::request_headers(&call.ctx, timeout),
                ))
                .timeout(Some(timeout));
            let mut up = this.up.clone();
            let reply = tokio::select! {
                reply = client.send_request(subject, request) => reply,
                // A request caught by a disconnect would otherwise wait out its whole timeout.
                _ = up.wait_for(|up| !*up) => return Err(Status::unavailable(
                    format!("the connection to {service}'s workers was lost; the call may or may not have been applied"),
                    Duration::from_secs(1),
                )),
            };
            let reply = reply.map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => Status::unavailable(
                    format!("no worker is serving {service}"),
                    Duration::from_secs(1),
                ),
                RequestErrorKind::TimedOut => Status::deadline_exceeded(format!(
                    "the {service} worker did not answer within {} ms",
                    timeout.as_millis()
                )),
                RequestErrorKind::MaxPayloadExceeded => {
                    Status::payload_too_large("the request is larger than the message bus carries")
                }
                RequestErrorKind::InvalidSubject => {
                    Status::internal(format!("invalid NATS subject configured for {service}"))
                }
                RequestErrorKind::Other => {
                    tracing::warn!(error = %e, service, "NATS request failed");
                    Status::unavailable(
                        "the message bus failed the request",
                        Duration::from_secs(1),
                    )
                }
            })?;
            if let Some(status) = headers::status_from_reply(reply.headers.as_ref()) {
                return Err(status);
            }
            match call.codec {
                Codec::Proto => Ok(Encoded::Unary(reply.payload)),
                Codec::Json => (call.method.transcode.proto_to_json)(&reply.payload)
                    .map(|json| Encoded::Unary(Bytes::from(json)))
                    .map_err(|e| {
                        tracing::warn!(error = %e, service, "undecodable reply from a worker");
                        Status::bad_gateway(format!(
                            "the {service} worker sent a reply that is not a valid {}",
                            call.method.output_type
                        ))
                    }),
            }
        })
    }

    fn kind(&self) -> &'static str {
        "nats"
    }

    fn healthy(&self) -> bool {
        // Connected, and workers answered the last ping (or none was sent yet).
        crate::nats::connected(&self.0.client)
            && self.0.responders.load(std::sync::atomic::Ordering::Relaxed) != 0
    }

    fn responders(&self) -> Option<i64> {
        Some(self.0.responders.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn enforces_deadline(&self) -> bool {
        // The NATS request's own timeout is the remaining deadline.
        true
    }
}
