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
    /// The millisecond `last_id` was minted from random bits in.
    last_millis: i64,
}

impl Stamper {
    /// The next id and timestamp, given the wall clock's `now`.
    pub(crate) fn stamp(&mut self, now: Timestamp) -> (EventId, Timestamp) {
        let micros = now.as_micros().max(self.last_micros);
        self.last_micros = micros;
        let millis = micros.div_euclid(1_000);
        // Within one millisecond v7 ids share their time prefix and would be
        // random after it: the first id of a millisecond takes fresh random
        // bits (one getrandom call per millisecond, not per event), the next
        // ones bump the tail, which keeps the order strict. 2^62 bumps never
        // overflow into the version or variant bits in practice.
        let id = if millis > self.last_millis || self.last_id == 0 {
            self.last_millis = millis;
            let secs = micros.div_euclid(1_000_000);
            let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
            let fresh = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(secs).unwrap_or(0),
                nanos,
            ))
            .as_u128();
            fresh.max(self.last_id + 1)
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

    #[test]
    fn ids_within_a_millisecond_stay_version_7_and_a_new_millisecond_starts_fresh() {
        let mut s = Stamper::default();
        let t = 1_795_773_521_270_000;
        let ids: Vec<EventId> = (0..1_000)
            .map(|i| s.stamp(Timestamp::from_micros(t + i % 1_000)).0)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let uuid = |id: &EventId| Uuid::parse_str(&id.as_str()[EventId::PREFIX.len()..]).unwrap();
        for id in &ids {
            let u = uuid(id);
            assert_eq!(u.get_version_num(), 7);
            let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
            assert_eq!(
                secs * 1_000 + u64::from(nanos / 1_000_000),
                1_795_773_521_270
            );
        }
        let (next, _) = s.stamp(Timestamp::from_micros(t + 1_000));
        let (secs, nanos) = uuid(&next).get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1_000 + u64::from(nanos / 1_000_000),
            1_795_773_521_271
        );
        assert!(next > ids[999]);
    }
}
