//! Gives accepted events their id and timestamp, both strictly ordered.

use ep_ports::{EventId, Timestamp};
use uuid::Uuid;

/// Mints `(id, timestamp)` pairs in the order events are accepted.
///
/// Timestamps never go backwards (a wall clock stepped back repeats the last
/// one) and ids strictly increase, so the order of acceptance, of ids, of
/// timestamps and of store sequence numbers are all the same. The router calls
/// it under the same lock that enqueues, which is what makes that true.
#[derive(Debug, Default)]
pub(crate) struct Stamper {
    last_micros: i64,
    last_id: u128,
}

impl Stamper {
    /// The next id and timestamp, given the wall clock's `now`.
    pub(crate) fn stamp(&mut self, now: Timestamp) -> (EventId, Timestamp) {
        let micros = now.as_micros().max(self.last_micros);
        self.last_micros = micros;
        let secs = micros.div_euclid(1_000_000);
        let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
        let fresh = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(secs).unwrap_or(0),
            nanos,
        ))
        .as_u128();
        // Within one millisecond v7 ids are random: bump the random tail past
        // the previous id to keep the order strict. 2^62 bumps never overflow
        // into the version or variant bits in practice.
        let id = if fresh > self.last_id {
            fresh
        } else {
            self.last_id + 1
        };
        self.last_id = id;
        let mut text = String::with_capacity(EventId::PREFIX.len() + 32);
        text.push_str(EventId::PREFIX);
        text.push_str(
            Uuid::from_u128(id)
                .simple()
                .encode_lower(&mut Uuid::encode_buffer()),
        );
        (EventId::new(text), Timestamp::from_micros(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_timestamps_never_go_back() {
        let mut s = Stamper::default();
        let t = Timestamp::from_micros(1_795_773_521_270_000);
        let (a, ta) = s.stamp(t);
        let (b, tb) = s.stamp(t);
        let (c, tc) = s.stamp(Timestamp::from_micros(t.as_micros() - 5_000_000));
        assert!(a < b && b < c);
        assert_eq!((ta, tb, tc), (t, t, t));
        assert!(a.as_str().starts_with("evt_"));
        assert_eq!(a.as_str().len(), 36);
    }
}
