//! Writes that survive a lost node. A write is one JetStream publish on the key's subject with a
//! `Nats-Msg-Id` fixed for the logical write and its expected revision. While a node is lost its
//! answer can come late, or never although it committed. The rules, so that a write is never
//! applied twice nor collides with itself:
//!
//! - **Never sent twice while it may be in flight.** nats-server 2.9 does not recognise a message
//!   id whose first copy is still being replicated, and checks the expected revision of two such
//!   copies against the same state: both would be stored (the test on a three-node cluster saw
//!   it). So the answer is awaited up to the request's deadline; the write is sent again only
//!   when no server took it (no responders) or its expectation failed.
//! - **Read-back.** A write whose answer never came, or whose expectation failed, reads the key's
//!   last message: if it carries this write's message id, the write committed and that revision
//!   is the answer. Only someone else's write is a conflict (409); an unknown outcome is 503.
//! - **Duplicate window.** A repeat of a committed write within two minutes is answered with the
//!   first copy's revision by JetStream itself.

use std::future::IntoFuture as _;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
use bytes::Bytes;

use super::JetStreamStore;
use crate::kit::retry::{DEFAULT_BUDGET, Retry};
use crate::kit::store::{StoreError, Versioned};

/// How long one read waits: any replica answers it, and a request routed to a frozen one is
/// better asked again (another may take it) than waited for.
pub(crate) const READ_TRY: Duration = Duration::from_secs(1);

/// The header naming a write.
pub(super) const MSG_ID: &str = "Nats-Msg-Id";
const KV_OPERATION: &str = "KV-Operation";

/// What a write stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Put,
    Delete,
}

/// A key's last message, as a read-back sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Last {
    pub revision: u64,
    pub msg_id: Option<String>,
    /// A delete or purge marker: the key is absent.
    pub marker: bool,
    pub value: Bytes,
}

impl Last {
    fn from_headers(revision: u64, headers: &HeaderMap, value: Bytes) -> Self {
        Last {
            revision,
            msg_id: headers.get(MSG_ID).map(|v| v.as_str().to_owned()),
            marker: headers
                .get(KV_OPERATION)
                .is_some_and(|op| op.as_str() != "PUT"),
            value,
        }
    }

    /// The value, unless the key is absent.
    pub fn versioned(self) -> Option<Versioned> {
        (!self.marker).then_some(Versioned {
            value: self.value,
            version: self.revision,
        })
    }
}

/// What a read-back says about a write that expected `expected`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Settled {
    /// This write committed, at this revision.
    Ours(u64),
    /// The key is where the write expected it: the write did not commit (yet); try again.
    Unchanged,
    /// Absent behind a marker at this revision, where the write wanted it absent: try again
    /// expecting the marker's revision.
    Absent(u64),
    /// Someone else's write: the key's current revision (None: absent).
    Conflict(Option<u64>),
}

/// Reads a write's fate from the key's last message (`None`: no message at all).
pub(super) fn settle(id: &str, expected: u64, last: Option<&Last>) -> Settled {
    match last {
        Some(l) if l.msg_id.as_deref() == Some(id) => Settled::Ours(l.revision),
        None if expected == 0 => Settled::Unchanged,
        None => Settled::Conflict(None),
        Some(l) if l.revision == expected => Settled::Unchanged,
        Some(l) if l.marker && expected == 0 => Settled::Absent(l.revision),
        Some(l) if l.marker => Settled::Conflict(None),
        Some(l) => Settled::Conflict(Some(l.revision)),
    }
}

/// The message id of write `base` expecting `expected`: a new expectation is a new publish.
pub(super) fn msg_id(base: &str, expected: Option<u64>) -> String {
    match expected {
        Some(n) => format!("{base}.{n}"),
        None => base.to_owned(),
    }
}

impl JetStreamStore {
    /// The key's last message, read from any replica, retried within `retry`. On a replicated
    /// bucket a key that replica lacks is asked of the leader: a replica a few milliseconds
    /// behind would otherwise deny what was just created through another edge (an account
    /// registered, then logged into: "invalid username or password"). A key that exists may still
    /// be read a moment old; a compare-and-set against it is checked by the leader.
    pub(super) async fn last(
        &self,
        key: &str,
        retry: &mut Retry,
    ) -> Result<Option<Last>, StoreError> {
        let subject = format!("{}{key}", self.kv.prefix);
        loop {
            self.bucket_present().await?;
            let read = self.kv.stream.direct_get_last_for_subject(subject.as_str());
            // A read routed to a frozen replica is asked again rather than waited for.
            let read = tokio::time::timeout(READ_TRY, read)
                .await
                .unwrap_or_else(|_| Err(DirectGetErrorKind::TimedOut.into()));
            match read {
                Ok(m) => return Ok(Some(Last::from_headers(m.sequence, &m.headers, m.payload))),
                Err(e) if e.kind() == DirectGetErrorKind::NotFound && !self.replicated => {
                    return Ok(None);
                }
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                    let read = self.kv.stream.get_last_raw_message_by_subject(&subject);
                    match tokio::time::timeout(READ_TRY, read).await {
                        Ok(Ok(m)) => {
                            return Ok(Some(Last::from_headers(m.sequence, &m.headers, m.payload)));
                        }
                        Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                            return Ok(None);
                        }
                        Ok(Err(e)) => {
                            let e = self.failed(e);
                            if !retry.wait().await {
                                return Err(e);
                            }
                        }
                        Err(_) => {
                            let e = self.failed("the leader did not answer a read in time");
                            if !retry.wait().await {
                                return Err(e);
                            }
                        }
                    }
                }
                Err(e) => {
                    let e = self.failed(e);
                    if !retry.wait().await {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Writes `value` (or a delete marker) at `key` if it is at `expected` (see
    /// [`crate::kit::store::Store::put`]); returns the new revision.
    pub(super) async fn write(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<u64>,
        op: Op,
    ) -> Result<u64, StoreError> {
        let base = uuid::Uuid::new_v4().simple().to_string();
        self.write_as(&base, key, value, expected, op).await
    }

    /// [`JetStreamStore::write`] under message id `base` (tests replay a lost answer with it).
    pub(super) async fn write_as(
        &self,
        base: &str,
        key: &str,
        value: Bytes,
        mut expected: Option<u64>,
        op: Op,
    ) -> Result<u64, StoreError> {
        let subject = format!("{}{key}", self.kv.prefix);
        let mut retry = Retry::new(DEFAULT_BUDGET);
        loop {
            self.bucket_present().await?;
            let id = msg_id(base, expected);
            let mut message = PublishMessage::build()
                .payload(value.clone())
                .message_id(&id);
            if let Some(n) = expected {
                message = message.expected_last_subject_sequence(n);
            }
            if op == Op::Delete {
                message = message.header(KV_OPERATION, "DEL");
            }
            let wait = retry.left().max(Duration::from_millis(200));
            let ack = match self.publisher.send_publish(subject.clone(), message).await {
                Ok(ack) => tokio::time::timeout(wait, ack.into_future())
                    .await
                    .unwrap_or_else(|_| Err(PublishErrorKind::TimedOut.into())),
                Err(e) => Err(e),
            };
            let outcome_unknown = match ack {
                // A repeat's answer names the first copy's revision: that is this write's.
                Ok(ack) if ack.sequence > 0 => return Ok(ack.sequence),
                // A repeat while the first copy is being replicated: its outcome comes later.
                Ok(_) => true,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => false,
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(StoreError::Backend(format!(
                        "value too large for NATS: {e}"
                    )));
                }
                // No server took it (no leader yet): nothing is in flight, so it may go again.
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    let e = self.failed(e);
                    if !retry.wait().await {
                        return Err(e);
                    }
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, key, "a write's answer did not come; reading back");
                    true
                }
            };
            // Did this write commit? (Read from any replica, retried.)
            let last = self.last(key, &mut retry).await?;
            let settled = match expected {
                Some(n) => settle(&id, n, last.as_ref()),
                None => match last {
                    Some(l) if l.msg_id.as_deref() == Some(id.as_str()) => {
                        Settled::Ours(l.revision)
                    }
                    _ => Settled::Unchanged,
                },
            };
            match settled {
                Settled::Ours(revision) => return Ok(revision),
                // The answer was lost and someone else wrote since: this write did not commit
                // before them, and may not commit after (its expectation fails).
                Settled::Conflict(current) => return Err(StoreError::Conflict { current }),
                Settled::Absent(marker) if !outcome_unknown => expected = Some(marker),
                _ if outcome_unknown => {
                    return Err(StoreError::Unavailable(
                        "the write was sent but not confirmed in time; it may still apply".into(),
                    ));
                }
                // The expectation failed against a replica a moment behind: look again.
                _ => {
                    if !retry.wait().await {
                        return Err(StoreError::Unavailable(
                            "the write was not confirmed in time".into(),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(revision: u64, id: &str, marker: bool) -> Last {
        Last {
            revision,
            msg_id: Some(id.to_owned()),
            marker,
            value: Bytes::new(),
        }
    }

    #[test]
    fn a_read_back_recognises_its_own_write_and_only_others_conflict() {
        // The first try committed, its answer was lost: ours, whatever came after expected.
        assert_eq!(
            settle("w.5", 5, Some(&last(9, "w.5", false))),
            Settled::Ours(9)
        );
        assert_eq!(
            settle("w.0", 0, Some(&last(3, "w.0", false))),
            Settled::Ours(3)
        );
        // Someone else's write: a conflict naming the current revision.
        assert_eq!(
            settle("w.5", 5, Some(&last(9, "x", false))),
            Settled::Conflict(Some(9))
        );
        assert_eq!(
            settle("w.0", 0, Some(&last(4, "x", false))),
            Settled::Conflict(Some(4))
        );
        // Still where the write expected it: not committed yet, try again.
        assert_eq!(
            settle("w.5", 5, Some(&last(5, "x", false))),
            Settled::Unchanged
        );
        assert_eq!(settle("w.0", 0, None), Settled::Unchanged);
        // Absent behind a marker: a create goes on over it, an update conflicts.
        assert_eq!(
            settle("w.0", 0, Some(&last(7, "x", true))),
            Settled::Absent(7)
        );
        assert_eq!(
            settle("w.5", 5, Some(&last(7, "x", true))),
            Settled::Conflict(None)
        );
        assert_eq!(settle("w.5", 5, None), Settled::Conflict(None));
    }

    #[test]
    fn each_expectation_is_its_own_publish() {
        assert_eq!(msg_id("abc", None), "abc");
        assert_eq!(msg_id("abc", Some(0)), "abc.0");
        assert_ne!(msg_id("abc", Some(0)), msg_id("abc", Some(7)));
    }
}
