//! The writer task: drains the queue, commits each batch in one transaction
//! (group commit), answers the publishers, then broadcasts in sequence order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ep_ports::{Appended, Event, EventBatch, EventStore, NewEvent, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::bus_gate::BusGate;
use crate::commit_health::CommitHealth;

/// What the writer is handed: one accepted event, or a group that is
/// committed in one transaction (a batch publish), and where to send the
/// outcome.
pub(crate) enum Pending {
    /// One event.
    One {
        event: NewEvent,
        reply: oneshot::Sender<Result<Stored, StoreError>>,
    },
    /// Events committed in one transaction, answered together. With
    /// `all_or_none` (a Caliper envelope) an idempotency conflict of one
    /// stores none of them; without it (a batch publish) only that one is
    /// not stored. An all-or-none group is committed on its own.
    Group {
        events: Vec<NewEvent>,
        all_or_none: bool,
        reply: oneshot::Sender<Result<Vec<Stored>, StoreError>>,
    },
}

/// What became of one accepted event once its batch was committed.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    /// Stored now.
    New(Arc<Event>),
    /// Its idempotency key was held by this earlier event of the same
    /// content: nothing was stored.
    Repeat(Arc<Event>),
    /// Its idempotency key was held by this earlier event of other content:
    /// nothing was stored.
    Conflict(Arc<Event>),
    /// Not stored: another event of its all-or-none group conflicted.
    Withheld,
}

/// A committed publish: the stored event, and whether an earlier publish
/// with the same idempotency key stored it (a repeat: nothing new was
/// stored). Derefs to the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stored event.
    pub event: Arc<Event>,
    /// Stored by an earlier publish with the same idempotency key.
    pub repeat: bool,
}

impl Published {
    pub(crate) fn from_stored(stored: Stored) -> Result<Self, crate::PublishError> {
        match stored {
            Stored::New(event) => Ok(Self {
                event,
                repeat: false,
            }),
            Stored::Repeat(event) => Ok(Self {
                event,
                repeat: true,
            }),
            Stored::Conflict(event) => Err(crate::PublishError::Conflict(event.id.clone())),
            // Its group answers with the conflict that withheld it.
            Stored::Withheld => Err(crate::PublishError::Store(StoreError::Unavailable(
                "not stored: another event of its group conflicted".into(),
            ))),
        }
    }

    /// The answer to an all-or-none group: its conflict if one conflicted
    /// (then nothing of it was stored), else each event's.
    pub(crate) fn all_or_none(stored: Vec<Stored>) -> Result<Vec<Self>, crate::PublishError> {
        for outcome in &stored {
            if let Stored::Conflict(holder) = outcome {
                return Err(crate::PublishError::Conflict(holder.id.clone()));
            }
        }
        stored.into_iter().map(Self::from_stored).collect()
    }
}

impl std::ops::Deref for Published {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// Whether `stored` says what `sent` says (all but id, receipt time, seq).
fn same_content(stored: &Event, sent: &NewEvent) -> bool {
    stored.event_type == sent.event_type
        && stored.source == sent.source
        && stored.session_id == sent.session_id
        && stored.user_id == sent.user_id
        && stored.payload == sent.payload
        && stored.occurred_at == sent.occurred_at
}

/// Where the outcome of each part of a committed batch goes.
enum Reply {
    One(oneshot::Sender<Result<Stored, StoreError>>),
    Group(usize, oneshot::Sender<Result<Vec<Stored>, StoreError>>),
}

/// Yields this many times, collecting what arrives, before committing a
/// batch that is not full.
const LINGER_YIELDS: usize = 4;

/// Lets the publishers that are already running queue their events before a
/// batch is committed: a commit has a large fixed cost (every index leaf it
/// touches is written to the WAL), so a batch of 60 costs little more than
/// one of 20. Yielding (not sleeping) keeps an idle service's single event
/// from waiting: with nothing else runnable, the yields return at once.
async fn linger(queue: &mut mpsc::Receiver<Pending>, batch: &mut Batch) {
    for _ in 0..LINGER_YIELDS {
        if batch.full() {
            return;
        }
        tokio::task::yield_now().await;
        batch.take_ready(queue);
    }
}

impl Pending {
    /// How many events it holds.
    fn len(&self) -> usize {
        match self {
            Pending::One { .. } => 1,
            Pending::Group { events, .. } => events.len(),
        }
    }

    /// Whether it is committed in a transaction of its own.
    fn alone(&self) -> bool {
        matches!(
            self,
            Pending::Group {
                all_or_none: true,
                ..
            }
        )
    }
}

/// What the next transaction will hold: whole `Pending`s, at most
/// `max_batch` events unless a single group is larger; what did not fit
/// waits in `carry` for the next one.
struct Batch {
    pending: Vec<Pending>,
    events: usize,
    max_batch: usize,
    carry: Option<Pending>,
}

impl Batch {
    fn full(&self) -> bool {
        self.carry.is_some()
            || self.events >= self.max_batch
            || self.pending.first().is_some_and(Pending::alone)
    }

    /// Adds `p`, or keeps it for the next transaction if it does not fit
    /// (or is committed alone).
    fn add(&mut self, p: Pending) {
        if self.events > 0 && (p.alone() || self.events + p.len() > self.max_batch) {
            self.carry = Some(p);
        } else {
            self.events += p.len();
            self.pending.push(p);
        }
    }

    /// Adds what is already queued, while there is room.
    fn take_ready(&mut self, queue: &mut mpsc::Receiver<Pending>) {
        while !self.full() {
            match queue.try_recv() {
                Ok(p) => self.add(p),
                Err(_) => break,
            }
        }
    }

    /// Waits for the first of the next transaction (the carried one, if
    /// any); `false` once the queue is closed and drained.
    async fn start(&mut self, queue: &mut mpsc::Receiver<Pending>) -> bool {
        self.events = 0;
        let first = match self.carry.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => return false,
            },
        };
        self.add(first);
        self.take_ready(queue);
        true
    }
}

/// Appends a batch and tells each event's outcome: stored now, or the
/// earlier holder of its idempotency key, of the same content (a repeat) or
/// not (a conflict).
async fn append_batch(
    store: &dyn EventStore,
    events: Vec<NewEvent>,
) -> Result<Vec<Stored>, StoreError> {
    // What each keyed event was, to tell a repeat from a conflict when the
    // store answers with an earlier holder of its key. An event without a
    // key is always stored new: a batch without keys (the usual one) keeps
    // nothing.
    let sent: Vec<Option<NewEvent>> = if events.iter().any(|e| e.idempotency.is_some()) {
        events
            .iter()
            .map(|e| e.idempotency.is_some().then(|| e.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let stored = store.append(events).await?;
    Ok(stored
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let event = Arc::new(event);
            match sent.get(i).and_then(Option::as_ref) {
                None => Stored::New(event),
                Some(sent) if event.id == sent.id => Stored::New(event),
                Some(sent) if same_content(&event, sent) => Stored::Repeat(event),
                Some(_) => Stored::Conflict(event),
            }
        })
        .collect())
}

/// Commits a group all or none. A key given twice within the group answers
/// its first giver (a conflict if they differ); a key held by an earlier
/// event of the same content answers that event and the rest of the group
/// is appended again; a key held by one of other content stores nothing:
/// that event is the conflict and every other one is withheld.
async fn append_all_or_none(
    store: &dyn EventStore,
    events: Vec<NewEvent>,
) -> Result<Vec<Stored>, StoreError> {
    let n = events.len();
    let conflicted = |at: usize, holder: Arc<Event>| -> Vec<Stored> {
        (0..n)
            .map(|i| {
                if i == at {
                    Stored::Conflict(Arc::clone(&holder))
                } else {
                    Stored::Withheld
                }
            })
            .collect()
    };
    // Within the group: the store is given each key once.
    let mut same_as: Vec<Option<usize>> = vec![None; n];
    let mut givers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (j, event) in events.iter().enumerate() {
        let Some(key) = &event.idempotency else {
            continue;
        };
        match givers.get(key.key.as_str()) {
            // (A key given twice in one group is rare: a copy costs nothing.)
            Some(&i) if same_content(&events[i].clone().into_event(0), event) => {
                same_as[j] = Some(i);
            }
            Some(&i) => return Ok(conflicted(j, Arc::new(events[i].clone().into_event(0)))),
            None => {
                givers.insert(key.key.as_str(), j);
            }
        }
    }
    let mut outcomes: Vec<Option<Stored>> = vec![None; n];
    loop {
        let todo: Vec<usize> = (0..n)
            .filter(|&i| outcomes[i].is_none() && same_as[i].is_none())
            .collect();
        if todo.is_empty() {
            break;
        }
        let attempt = todo.iter().map(|&i| events[i].clone()).collect();
        match store.append_unless_held(attempt).await? {
            Appended::Stored(stored) => {
                for (&i, event) in todo.iter().zip(stored) {
                    outcomes[i] = Some(Stored::New(Arc::new(event)));
                }
                break;
            }
            Appended::Held(held) => {
                if held.is_empty() {
                    return Err(StoreError::Corrupt(
                        "the store stored nothing of a group and named no held key".into(),
                    ));
                }
                // Each round settles at least one event: the loop ends.
                for (k, holder) in held {
                    let Some(&i) = todo.get(k) else {
                        return Err(StoreError::Corrupt(
                            "the store named a held key outside the group".into(),
                        ));
                    };
                    let holder = Arc::new(holder);
                    if !same_content(&holder, &events[i]) {
                        return Ok(conflicted(i, holder));
                    }
                    outcomes[i] = Some(Stored::Repeat(holder));
                }
            }
        }
    }
    for (j, first) in same_as.iter().enumerate() {
        if let Some(i) = *first {
            outcomes[j] = match &outcomes[i] {
                Some(Stored::New(e) | Stored::Repeat(e)) => Some(Stored::Repeat(Arc::clone(e))),
                _ => None,
            };
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Stored::Withheld))
        .collect())
}

/// Runs until the queue is closed and drained.
///
/// When idle, one event is committed as soon as it arrives; under load,
/// whatever queued up during the previous commit (up to `max_batch`) goes into
/// the next transaction, so batches grow with the load by themselves.
pub(crate) async fn run_writer(
    mut queue: mpsc::Receiver<Pending>,
    store: Arc<dyn EventStore>,
    mut bus: BusGate,
    depth: Arc<AtomicUsize>,
    health: Arc<CommitHealth>,
    max_batch: usize,
) {
    let mut batch = Batch {
        pending: Vec::with_capacity(max_batch),
        events: 0,
        max_batch,
        carry: None,
    };
    while batch.start(&mut queue).await {
        linger(&mut queue, &mut batch).await;
        let all_or_none = batch.pending.first().is_some_and(Pending::alone);
        let mut events = Vec::with_capacity(batch.events);
        let mut replies = Vec::with_capacity(batch.pending.len());
        for p in batch.pending.drain(..) {
            match p {
                Pending::One { event, reply } => {
                    events.push(event);
                    replies.push(Reply::One(reply));
                }
                Pending::Group {
                    events: group,
                    reply,
                    ..
                } => {
                    replies.push(Reply::Group(group.len(), reply));
                    events.extend(group);
                }
            }
        }
        let n = events.len();
        let started = tokio::time::Instant::now();
        let outcome = if all_or_none {
            append_all_or_none(store.as_ref(), events).await
        } else {
            append_batch(store.as_ref(), events).await
        };
        tracing::trace!(
            events = n,
            micros = started.elapsed().as_micros() as u64,
            "batch appended"
        );
        match outcome {
            Ok(outcomes) => {
                health.succeeded();
                // Only what was stored now is new to subscribers.
                let batch: EventBatch = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Stored::New(event) => Some(Arc::clone(event)),
                        Stored::Repeat(_) | Stored::Conflict(_) | Stored::Withheld => None,
                    })
                    .collect();
                depth.fetch_sub(n, Ordering::AcqRel);
                // A publisher that went away still had its events stored.
                let mut outcomes = outcomes.into_iter();
                for reply in replies {
                    match reply {
                        Reply::One(tx) => {
                            if let Some(outcome) = outcomes.next() {
                                let _ = tx.send(Ok(outcome));
                            }
                        }
                        Reply::Group(k, tx) => {
                            let _ = tx.send(Ok(outcomes.by_ref().take(k).collect()));
                        }
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                bus.publish(batch).await;
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "a batch could not be committed; its publishers get an error");
                health.failed(&e);
                depth.fetch_sub(n, Ordering::AcqRel);
                for reply in replies {
                    let _ = match reply {
                        Reply::One(tx) => tx.send(Err(e.clone())).is_ok(),
                        Reply::Group(_, tx) => tx.send(Err(e.clone())).is_ok(),
                    };
                }
            }
        }
    }
    tracing::debug!("publish queue closed and drained; writer stops");
}

#[cfg(test)]
mod tests {
    use ep_ports::{EventId, EventType, IdempotencyKey, MockEventStore, Payload, Timestamp};

    use super::*;

    /// An `answer_submitted` with id `evt_<n>`, key `key` (if any) and
    /// payload `{"answer": answer}`.
    fn sent(n: u64, key: Option<&str>, answer: u64) -> NewEvent {
        NewEvent {
            id: EventId::new(format!("evt_{n:032x}")),
            event_type: EventType::ANSWER_SUBMITTED,
            source: "lms".into(),
            session_id: Some("s1".into()),
            user_id: Some("u1".into()),
            payload: Payload::from_json(format!(r#"{{"answer":{answer}}}"#)).expect("payload"),
            timestamp: Timestamp::from_micros(1_000 + n as i64),
            occurred_at: None,
            idempotency: key.map(|k| IdempotencyKey {
                key: k.into(),
                since: Timestamp::from_micros(0),
            }),
        }
    }

    /// What a store holds for `event` after an earlier publish: another id
    /// and receipt time, the same content.
    fn stored_before(event: &NewEvent, seq: u64) -> Event {
        let mut earlier = event.clone();
        earlier.id = EventId::new(format!("evt_earlier_{seq}"));
        earlier.timestamp = Timestamp::from_micros(1);
        earlier.into_event(seq)
    }

    fn ids(batch: &[NewEvent]) -> Vec<String> {
        batch.iter().map(|e| e.id.to_string()).collect()
    }

    /// What each outcome is, by name, with the event's id where it has one.
    fn kinds(outcomes: &[Stored]) -> Vec<String> {
        outcomes
            .iter()
            .map(|o| match o {
                Stored::New(e) => format!("new {}", e.id),
                Stored::Repeat(e) => format!("repeat {}", e.id),
                Stored::Conflict(e) => format!("conflict {}", e.id),
                Stored::Withheld => "withheld".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_held_key_of_the_same_content_answers_its_holder_and_the_rest_is_stored() {
        let group = vec![
            sent(1, None, 1),
            sent(2, Some("k"), 2),
            sent(3, Some("j"), 3),
        ];
        let holder = stored_before(&group[1], 7);
        let mut store = MockEventStore::new();
        let mut seq = mockall::Sequence::new();
        let (first, held) = (ids(&group), holder.clone());
        store
            .expect_append_unless_held()
            .withf(move |b| ids(b) == first)
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Appended::Held(vec![(1, held.clone())])));
        let rest = vec![group[0].id.to_string(), group[2].id.to_string()];
        store
            .expect_append_unless_held()
            .withf(move |b| ids(b) == rest)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|b| {
                Ok(Appended::Stored(
                    b.into_iter()
                        .zip(8..)
                        .map(|(e, s)| e.into_event(s))
                        .collect(),
                ))
            });
        let outcomes = append_all_or_none(&store, group.clone()).await.expect("ok");
        assert_eq!(
            kinds(&outcomes),
            [
                format!("new {}", group[0].id),
                format!("repeat {}", holder.id),
                format!("new {}", group[2].id),
            ]
        );
    }

    #[tokio::test]
    async fn a_held_key_of_other_content_stores_nothing_and_is_the_answer() {
        let group = vec![sent(1, Some("j"), 1), sent(2, Some("k"), 2)];
        let other = stored_before(&sent(2, Some("k"), 99), 7);
        let mut store = MockEventStore::new();
        let held = other.clone();
        store
            .expect_append_unless_held()
            .times(1)
            .returning(move |_| Ok(Appended::Held(vec![(1, held.clone())])));
        let outcomes = append_all_or_none(&store, group).await.expect("ok");
        assert_eq!(
            kinds(&outcomes),
            ["withheld".to_owned(), format!("conflict {}", other.id)]
        );
        let answer = Published::all_or_none(outcomes).expect_err("a conflict");
        assert_eq!(answer, crate::PublishError::Conflict(other.id));
    }

    #[tokio::test]
    async fn a_conflict_found_after_a_repeat_still_stores_nothing() {
        // Another writer took "j" between the two attempts.
        let group = vec![sent(1, Some("j"), 1), sent(2, Some("k"), 2)];
        let same = stored_before(&group[1], 7);
        let other = stored_before(&sent(1, Some("j"), 99), 8);
        let mut store = MockEventStore::new();
        let mut seq = mockall::Sequence::new();
        store
            .expect_append_unless_held()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Appended::Held(vec![(1, same.clone())])));
        let held = other.clone();
        store
            .expect_append_unless_held()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Appended::Held(vec![(0, held.clone())])));
        let outcomes = append_all_or_none(&store, group).await.expect("ok");
        assert_eq!(
            kinds(&outcomes),
            [format!("conflict {}", other.id), "withheld".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_key_given_twice_in_a_group_is_given_to_the_store_once() {
        let group = vec![sent(1, Some("k"), 1), sent(2, Some("k"), 1)];
        let mut store = MockEventStore::new();
        let first = vec![group[0].id.to_string()];
        store
            .expect_append_unless_held()
            .withf(move |b| ids(b) == first)
            .times(1)
            .returning(|b| Ok(Appended::Stored(vec![b[0].clone().into_event(5)])));
        let outcomes = append_all_or_none(&store, group.clone()).await.expect("ok");
        assert_eq!(
            kinds(&outcomes),
            [
                format!("new {}", group[0].id),
                format!("repeat {}", group[0].id)
            ]
        );

        // Of other content: nothing reaches the store.
        let clash = vec![sent(1, Some("k"), 1), sent(2, Some("k"), 2)];
        let outcomes = append_all_or_none(&MockEventStore::new(), clash.clone())
            .await
            .expect("ok");
        assert_eq!(
            kinds(&outcomes),
            ["withheld".to_owned(), format!("conflict {}", clash[0].id)]
        );
    }

    #[tokio::test]
    async fn a_store_that_holds_nothing_and_stores_nothing_is_an_error_not_a_loop() {
        let mut store = MockEventStore::new();
        store
            .expect_append_unless_held()
            .times(1)
            .returning(|_| Ok(Appended::Held(Vec::new())));
        let err = append_all_or_none(&store, vec![sent(1, Some("k"), 1)]).await;
        assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");

        let mut store = MockEventStore::new();
        let held = stored_before(&sent(1, Some("k"), 1), 3);
        store
            .expect_append_unless_held()
            .times(1)
            .returning(move |_| Ok(Appended::Held(vec![(5, held.clone())])));
        let err = append_all_or_none(&store, vec![sent(1, Some("k"), 1)]).await;
        assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");
    }

    #[tokio::test]
    async fn append_tells_new_repeat_and_conflict_apart() {
        let fresh = sent(1, None, 1);
        let keyed_new = sent(2, Some("a"), 2);
        let repeat = sent(3, Some("b"), 3);
        let conflict = sent(4, Some("c"), 4);
        let (same, other) = (
            stored_before(&repeat, 7),
            stored_before(&sent(4, Some("c"), 99), 8),
        );
        let mut store = MockEventStore::new();
        let (s, o) = (same.clone(), other.clone());
        store.expect_append().times(1).returning(move |b| {
            let mut b = b.into_iter();
            Ok(vec![
                b.next().expect("1").into_event(9),
                b.next().expect("2").into_event(10),
                s.clone(),
                o.clone(),
            ])
        });
        let outcomes = append_batch(
            &store,
            vec![fresh.clone(), keyed_new.clone(), repeat, conflict],
        )
        .await
        .expect("ok");
        assert_eq!(
            kinds(&outcomes),
            [
                format!("new {}", fresh.id),
                format!("new {}", keyed_new.id),
                format!("repeat {}", same.id),
                format!("conflict {}", other.id),
            ]
        );
    }

    /// Runs the writer over `pending` (queued before it starts) with
    /// batches of at most `max_batch` events, against a store that checks
    /// each transaction's ids against the next of `expected`: `(false,
    /// ids)` an append, `(true, ids)` an all-or-none append.
    async fn write(pending: Vec<Pending>, max_batch: usize, expected: Vec<(bool, Vec<u64>)>) {
        let (tx, rx) = mpsc::channel(pending.len().max(1));
        let n: usize = pending.iter().map(Pending::len).sum();
        for p in pending {
            tx.send(p).await.expect("queue");
        }
        drop(tx);
        let mut store = MockEventStore::new();
        let mut seq = mockall::Sequence::new();
        let next = Arc::new(AtomicUsize::new(1));
        let stamp = move |b: Vec<NewEvent>| -> Vec<Event> {
            b.into_iter()
                .map(|e| e.into_event(next.fetch_add(1, Ordering::SeqCst) as u64))
                .collect()
        };
        for (alone, batch) in expected {
            let want: Vec<String> = batch.iter().map(|n| format!("evt_{n:032x}")).collect();
            let stamp = stamp.clone();
            if alone {
                store
                    .expect_append_unless_held()
                    .withf(move |b| ids(b) == want)
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |b| Ok(Appended::Stored(stamp(b))));
            } else {
                store
                    .expect_append()
                    .withf(move |b| ids(b) == want)
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(move |b| Ok(stamp(b)));
            }
        }
        let mut broadcaster = ep_ports::MockBroadcaster::new();
        broadcaster.expect_publish().returning(|_| Ok(()));
        run_writer(
            rx,
            Arc::new(store),
            BusGate::new(Arc::new(broadcaster), None, Arc::default()),
            Arc::new(AtomicUsize::new(n)),
            Arc::new(CommitHealth::default()),
            max_batch,
        )
        .await;
    }

    fn one(n: u64) -> Pending {
        Pending::One {
            event: sent(n, None, n),
            reply: oneshot::channel().0,
        }
    }

    fn grouped(ns: &[u64], all_or_none: bool) -> Pending {
        Pending::Group {
            events: ns.iter().map(|&n| sent(n, None, n)).collect(),
            all_or_none,
            reply: oneshot::channel().0,
        }
    }

    fn group(ns: &[u64]) -> Pending {
        grouped(ns, false)
    }

    fn all_or_none(ns: &[u64]) -> Pending {
        grouped(ns, true)
    }

    #[tokio::test]
    async fn what_is_queued_goes_in_batches_of_at_most_max_batch_and_groups_stay_whole() {
        write(
            vec![one(1), one(2), one(3), one(4), one(5)],
            2,
            vec![(false, vec![1, 2]), (false, vec![3, 4]), (false, vec![5])],
        )
        .await;
        // A group that does not fit waits for the next batch; one larger
        // than a batch goes whole, on its own.
        write(
            vec![
                one(1),
                one(2),
                group(&[3, 4]),
                group(&[5, 6, 7, 8]),
                one(9),
                one(10),
            ],
            3,
            vec![
                (false, vec![1, 2]),
                (false, vec![3, 4]),
                (false, vec![5, 6, 7, 8]),
                (false, vec![9, 10]),
            ],
        )
        .await;
        write(
            vec![one(1), group(&[2, 3, 4]), one(5)],
            3,
            vec![(false, vec![1]), (false, vec![2, 3, 4]), (false, vec![5])],
        )
        .await;
    }

    #[tokio::test]
    async fn an_all_or_none_group_is_committed_in_a_transaction_of_its_own() {
        write(
            vec![one(1), all_or_none(&[2, 3]), one(4), one(5)],
            100,
            vec![(false, vec![1]), (true, vec![2, 3]), (false, vec![4, 5])],
        )
        .await;
    }
}
