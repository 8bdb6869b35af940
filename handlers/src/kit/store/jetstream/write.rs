//! Writes that survive a lost node. A write is one JetStream publish on the key's subject; while
//! a node is lost its answer may time out although the write committed. So every write is
//! retried within the request's deadline ([`crate::kit::retry`]) under one message id, and two
//! mechanisms keep a retry from applying twice or colliding with itself:
//!
//! - **`Nats-Msg-Id`**: fixed for the logical write (and its expected revision). Within the
//!   bucket's duplicate window (two minutes) JetStream answers a repeat with the first try's
//!   revision instead of storing it again.
//! - **Read-back**: a compare-and-set whose retry finds the key moved on reads the key's last
//!   message: if it carries this write's message id, the first try committed and its revision is
//!   the answer. Only someone else's write is a conflict (409).

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use bytes::Bytes;

use super::JetStreamStore;
use crate::kit::retry::{DEFAULT_BUDGET, Retry};
use crate::kit::store::{StoreError, Versioned};

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

/// Whether a failed publish may have left nothing behind or committed unseen: worth a retry.
fn transient(kind: &PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::TimedOut
            | PublishErrorKind::BrokenPipe
            | PublishErrorKind::StreamNotFound
            | PublishErrorKind::MaxAckPending
            | PublishErrorKind::Other
    )
}

impl JetStreamStore {
    /// The key's last message, read from any replica, retried within `retry`.
    pub(super) async fn last(
        &self,
        key: &str,
        retry: &mut Retry,
    ) -> Result<Option<Last>, StoreError> {
        let subject = format!("{}{key}", self.kv.prefix);
        loop {
            self.bucket_present().await?;
            match self
                .kv
                .stream
                .direct_get_last_for_subject(subject.as_str())
                .await
            {
                Ok(m) => return Ok(Some(Last::from_headers(m.sequence, &m.headers, m.payload))),
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
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
            let ack = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            let failure = match ack {
                // A repeat's answer names the first try's revision: that is this write's.
                Ok(ack) if ack.sequence > 0 => return Ok(ack.sequence),
                // A repeat while the first try is still being replicated: not known yet.
                Ok(_) => None,
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => None,
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(StoreError::Backend(format!(
                        "value too large for NATS: {e}"
                    )));
                }
                Err(e) if transient(&e.kind()) => Some(self.failed(e)),
                Err(e) => return Err(self.failed(e)),
            };
            if let (None, Some(n)) = (&failure, expected) {
                // Moved on, or in flight: did this write commit?
                match settle(&id, n, self.last(key, &mut retry).await?.as_ref()) {
                    Settled::Ours(revision) => return Ok(revision),
                    Settled::Conflict(current) => return Err(StoreError::Conflict { current }),
                    Settled::Absent(marker) => {
                        expected = Some(marker);
                        continue;
                    }
                    Settled::Unchanged => {}
                }
            }
            if !retry.wait().await {
                return Err(failure.unwrap_or_else(|| {
                    StoreError::Unavailable("the write was not confirmed in time".into())
                }));
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
