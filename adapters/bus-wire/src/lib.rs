//! How a committed batch crosses a network bus (NATS, Redis): JSON
//! `{"v":1,"events":[...]}`, each event in the wire form clients already
//! get (with `seq`), split into pieces that fit the bus's largest message.
//!
//! A piece is a run of consecutive events of the batch, so a receiver that
//! gets only some pieces (a node died mid-batch) holds a prefix or a middle
//! run, which the domain's sequencer handles like any lost batch.
//!
//! [`FeedSender`] turns what a bus adapter receives into a feed.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod feed;

pub use feed::{feed, FeedSender};

use std::borrow::Cow;
use std::sync::Arc;

use ep_ports::{Event, EventBatch, EventId, Payload, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The version this build writes and reads.
const VERSION: u32 = 1;
const HEAD: &[u8] = br#"{"v":1,"events":["#;
const TAIL: &[u8] = b"]}";

/// Why a message from the bus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not a batch in this format (another program on the subject, a
    /// newer build's format, a corrupted message).
    #[error("not an event batch this build can read: {0}")]
    Unreadable(String),
}

/// The batch as messages of at most `max_bytes` each (at least one event
/// per message, so one event larger than that still goes, alone).
pub fn encode(batch: &EventBatch, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut piece = HEAD.to_vec();
    let mut in_piece = 0;
    for event in batch.iter() {
        // An Event always serializes (string keys, no maps with other keys).
        let json = serde_json::to_vec(&**event).unwrap_or_default();
        if in_piece > 0 && piece.len() + 1 + json.len() + TAIL.len() > max_bytes {
            piece.extend_from_slice(TAIL);
            pieces.push(std::mem::replace(&mut piece, HEAD.to_vec()));
            in_piece = 0;
        }
        if in_piece > 0 {
            piece.push(b',');
        }
        piece.extend_from_slice(&json);
        in_piece += 1;
    }
    if in_piece > 0 {
        piece.extend_from_slice(TAIL);
        pieces.push(piece);
    }
    pieces
}

#[derive(Deserialize)]
struct Wire<'a> {
    v: u32,
    #[serde(borrow)]
    events: Vec<WireEvent<'a>>,
}

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow, default)]
    occurred_at: Option<Cow<'a, str>>,
    seq: u64,
}

fn unreadable(what: impl std::fmt::Display) -> WireError {
    WireError::Unreadable(what.to_string())
}

/// The events of one message.
///
/// # Errors
/// `Unreadable` for anything [`encode`] did not write.
pub fn decode(bytes: &[u8]) -> Result<EventBatch, WireError> {
    let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(unreadable)?;
    if wire.v != VERSION {
        return Err(unreadable(format!("format version {}", wire.v)));
    }
    let mut events = Vec::with_capacity(wire.events.len());
    for e in wire.events {
        let occurred_at = match e.occurred_at {
            None => None,
            Some(text) => Some(
                Timestamp::parse_canonical(&text)
                    .ok_or_else(|| unreadable(format!("occurred_at {text}")))?,
            ),
        };
        events.push(Arc::new(Event {
            occurred_at,
            id: EventId::new(e.id.into_owned()),
            event_type: ep_ports::EventType::named(&e.event_type).map_err(unreadable)?,
            source: e.source.into_owned(),
            session_id: e.session_id.map(Cow::into_owned),
            user_id: e.user_id.map(Cow::into_owned),
            payload: Payload::from_json(e.payload.get().to_owned()).map_err(unreadable)?,
            timestamp: Timestamp::parse_canonical(&e.timestamp)
                .ok_or_else(|| unreadable(format!("timestamp {}", e.timestamp)))?,
            seq: e.seq,
        }));
    }
    Ok(events.into())
}

#[cfg(test)]
mod tests {
    use ep_conformance::broadcaster::batch;

    use super::*;

    fn seqs(batch: &EventBatch) -> Vec<u64> {
        batch.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_batch_round_trips_with_every_field() {
        let sent = batch(7, 3, 50);
        let pieces = encode(&sent, 1024 * 1024);
        assert_eq!(pieces.len(), 1);
        let got = decode(&pieces[0]).expect("decodes");
        assert_eq!(
            got.iter().map(|e| &**e).collect::<Vec<_>>(),
            sent.iter().map(|e| &**e).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_large_batch_is_split_into_runs_that_each_fit() {
        let sent = batch(1, 100, 1_000);
        let pieces = encode(&sent, 10_000);
        assert!(pieces.len() > 10);
        let mut all = Vec::new();
        for piece in &pieces {
            assert!(piece.len() <= 10_000);
            all.extend(seqs(&decode(piece).expect("decodes")));
        }
        assert_eq!(all, (1..=100).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_larger_than_a_message_goes_alone() {
        let sent = batch(1, 2, 5_000);
        let pieces = encode(&sent, 1_000);
        assert_eq!(pieces.len(), 2);
        assert_eq!(seqs(&decode(&pieces[1]).expect("decodes")), [2]);
        assert!(encode(&Vec::new().into(), 1_000).is_empty());
    }

    #[test]
    fn anything_else_is_unreadable_not_a_panic() {
        for bad in [
            &b""[..],
            b"null",
            b"{\"v\":2,\"events\":[]}",
            b"{\"v\":1,\"events\":[{\"id\":1}]}",
            b"\xff\xfe",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let mut wrong_type =
            String::from_utf8(encode(&batch(1, 1, 0), 10_000).remove(0)).expect("utf-8");
        // A type another node declared is carried; a name no registry can
        // hold is not.
        let declared = wrong_type.replace("timer_tick", "hint_requested");
        assert!(decode(declared.as_bytes()).is_ok());
        wrong_type = wrong_type.replace("timer_tick", "Timer Tock");
        assert!(decode(wrong_type.as_bytes()).is_err());
    }
}
