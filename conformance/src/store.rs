//! The EventStore conformance cases: one async function per promise of the
//! port, each given a fresh, empty store.

use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, EventType, NewEvent,
    Payload, Scope, StoreError, Timestamp,
};

/// 2026-11-27T10:00:00Z, the base instant of the suite's events.
pub const BASE_MICROS: i64 = 1_795_773_600_000_000;

/// A valid event `n` seconds after [`BASE_MICROS`], with a unique id.
pub fn new_event(
    n: i64,
    event_type: EventType,
    session: Option<&str>,
    user: Option<&str>,
) -> NewEvent {
    NewEvent {
        idempotency: None,
        occurred_at: None,
        id: EventId::new(format!(
            "evt_{:032x}",
            (i128::from(BASE_MICROS + n * 1_000_000) * 1_000 + i128::from(n)).unsigned_abs()
        )),
        event_type,
        source: "quiz-engine".to_owned(),
        session_id: session.map(str::to_owned),
        user_id: user.map(str::to_owned),
        payload: Payload::from_json(format!(
            r#"{{"question_id":"q-{n}","correct":true,"n":{n}}}"#
        ))
        .unwrap_or_else(|_| Payload::empty()),
        timestamp: at(n),
    }
}

/// The instant `n` seconds after [`BASE_MICROS`].
pub fn at(n: i64) -> Timestamp {
    Timestamp::from_micros(BASE_MICROS + n * 1_000_000)
}

fn query() -> EventQuery {
    EventQuery::latest(1_000)
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

/// An `answer_submitted` `n` seconds in, in session `s1`, with the
/// idempotency key `key` held by events received from `since` seconds on.
fn keyed(n: i64, key: &str, since: i64) -> NewEvent {
    NewEvent {
        idempotency: Some(ep_ports::IdempotencyKey {
            key: key.to_owned(),
            since: at(since),
        }),
        ..new_event(n, EventType::ANSWER_SUBMITTED, Some("s1"), None)
    }
}

/// Deletes every event stored now (`before = None`) or those of them
/// stamped before `before`, in steps of `step` events as the domain does.
pub async fn delete_in_steps<S: EventStore>(
    store: &S,
    before: Option<Timestamp>,
    step: usize,
) -> u64 {
    let mut what = Deletion::through(store.last_seq().await.expect("last_seq"));
    what.before = before;
    delete_selected(store, &what, step).await
}

/// Deletes what `what` selects in steps of `step` events, as the domain does.
pub async fn delete_selected<S: EventStore>(store: &S, what: &Deletion, step: usize) -> u64 {
    let mut deleted = 0;
    loop {
        let n = store
            .delete_some(what.clone(), step)
            .await
            .expect("delete step");
        assert!(
            n <= step as u64,
            "a step deleted {n} events, more than {step}"
        );
        deleted += n;
        if n < step as u64 {
            return deleted;
        }
    }
}

async fn delete<S: EventStore>(store: &S, before: Option<Timestamp>) -> u64 {
    delete_in_steps(store, before, 1_000).await
}

/// The stats a store reports, recounted from its events (every one read
/// back): what `stats` must agree with after any append and delete.
async fn recount<S: EventStore>(store: &S, since: Timestamp) -> ep_ports::Stats {
    let events = store
        .after(0, EventFilter::default(), usize::MAX)
        .await
        .expect("read all");
    let mut by_type: Vec<ep_ports::TypeStats> = Vec::new();
    for e in &events {
        match by_type.iter_mut().find(|r| r.event_type == e.event_type) {
            Some(row) => {
                row.count += 1;
                row.last_seen = e.timestamp;
            }
            None => by_type.push(ep_ports::TypeStats {
                event_type: e.event_type,
                count: 1,
                last_seen: e.timestamp,
            }),
        }
    }
    ep_ports::TypeStats::sort(&mut by_type);
    ep_ports::Stats {
        total_events: events.len() as u64,
        events_since: events.iter().filter(|e| e.timestamp > since).count() as u64,
        by_type,
    }
}

async fn seed<S: EventStore>(store: &S) -> Vec<Event> {
    let batch = vec![
        new_event(0, EventType::QUIZ_STARTED, Some("s1"), Some("u1")),
        new_event(1, EventType::TIMER_TICK, Some("s1"), Some("u1")),
        new_event(2, EventType::ANSWER_SUBMITTED, Some("s1"), Some("u1")),
        new_event(3, EventType::TIMER_TICK, Some("s2"), Some("u2")),
        new_event(4, EventType::ANSWER_SUBMITTED, Some("s2"), Some("u1")),
        new_event(5, EventType::ERROR_OCCURRED, None, None),
    ];
    store.append(batch).await.expect("seed batch is stored")
}

/// Append returns the batch in order with strictly increasing sequence
/// numbers, every field as given.
pub async fn append_assigns_increasing_seq_in_batch_order<S: EventStore>(store: &S) {
    let batch = vec![
        new_event(0, EventType::QUIZ_STARTED, Some("s1"), Some("u1")),
        new_event(1, EventType::ERROR_OCCURRED, None, None),
    ];
    let stored = store.append(batch.clone()).await.expect("append");
    assert_eq!(stored.len(), 2);
    assert!(stored[0].seq < stored[1].seq);
    for (new, ev) in batch.into_iter().zip(&stored) {
        assert_eq!(new.into_event(ev.seq), *ev);
    }
    let more = store
        .append(vec![new_event(2, EventType::TIMER_TICK, None, None)])
        .await
        .expect("append");
    assert!(more[0].seq > stored[1].seq);
}

/// Get finds a stored event by id, with every field intact, and answers
/// `None` for an unknown id.
pub async fn get_finds_by_id_and_answers_none_for_unknown<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    for e in &stored {
        assert_eq!(store.get(&e.id).await.expect("get").as_ref(), Some(e));
    }
    assert_eq!(
        store.get(&EventId::new("evt_unknown")).await.expect("get"),
        None
    );
    assert_eq!(
        store.get(&EventId::new("' OR 1=1 --")).await.expect("get"),
        None
    );
}

/// Query lists newest first (highest seq first) and honours the limit.
pub async fn query_is_newest_first_and_limited<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let all = store.query(query()).await.expect("query");
    let mut expected = ids(&stored);
    expected.reverse();
    assert_eq!(ids(&all), expected);
    let two = store
        .query(EventQuery {
            limit: 2,
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&two), expected[..2]);
}

/// Each filter alone, and all of them together (AND).
pub async fn query_filters_combine_with_and<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let pick = |idx: &[usize]| -> Vec<String> {
        idx.iter()
            .rev()
            .map(|&i| stored[i].id.to_string())
            .collect()
    };
    let by_type = store
        .query(EventQuery {
            event_type: Some(EventType::TIMER_TICK),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&by_type), pick(&[1, 3]));
    let by_session = store
        .query(EventQuery {
            session_id: Some("s1".into()),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&by_session), pick(&[0, 1, 2]));
    let by_user = store
        .query(EventQuery {
            user_id: Some("u1".into()),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&by_user), pick(&[0, 1, 2, 4]));
    let combined = store
        .query(EventQuery {
            event_type: Some(EventType::ANSWER_SUBMITTED),
            user_id: Some("u1".into()),
            session_id: Some("s2".into()),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&combined), pick(&[4]));
    let none = store
        .query(EventQuery {
            session_id: Some("s9".into()),
            ..query()
        })
        .await
        .expect("query");
    assert!(none.is_empty());
}

/// `since` is exclusive and compares instants.
pub async fn query_since_is_exclusive<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let after = store
        .query(EventQuery {
            since: Some(at(3)),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(
        ids(&after),
        vec![stored[5].id.to_string(), stored[4].id.to_string()]
    );
    let just_before = store
        .query(EventQuery {
            since: Some(at(3).minus_micros(1)),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(just_before.len(), 3);
    let with_filter = store
        .query(EventQuery {
            since: Some(at(0)),
            session_id: Some("s1".into()),
            limit: 1,
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&with_filter), vec![stored[2].id.to_string()]);
}

/// `occurred_at` comes back as stored (absent stays absent, on every
/// read path), and `occurred_since` (inclusive) / `occurred_before`
/// (exclusive) select on it, never matching an event without one.
pub async fn occurred_at_is_kept_and_queried<S: EventStore>(store: &S) {
    let batch: Vec<NewEvent> = (0..4)
        .map(|n| NewEvent {
            // Events 0-2 say when they happened, an hour before they were
            // received, the first at the earliest instant a store holds.
            occurred_at: match n {
                0 => Some(Timestamp::MIN),
                1 | 2 => Some(at(n).minus_micros(3_600_000_000)),
                _ => None,
            },
            ..new_event(n, EventType::ANSWER_SUBMITTED, Some("s1"), None)
        })
        .collect();
    let stored = store.append(batch.clone()).await.expect("append");
    for (kept, sent) in stored.iter().zip(&batch) {
        assert_eq!(kept.occurred_at, sent.occurred_at);
    }
    let by_id = store.get(&stored[1].id).await.expect("get").expect("found");
    assert_eq!(by_id.occurred_at, batch[1].occurred_at);
    let replayed = store
        .after(0, EventFilter::default(), 10)
        .await
        .expect("after");
    assert_eq!(replayed[3].occurred_at, None);
    assert_eq!(replayed[2].occurred_at, batch[2].occurred_at);

    let from_second = store
        .query(EventQuery {
            occurred_since: batch[1].occurred_at,
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(
        ids(&from_second),
        vec![stored[2].id.to_string(), stored[1].id.to_string()]
    );
    let before_second = store
        .query(EventQuery {
            occurred_before: batch[1].occurred_at,
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&before_second), vec![stored[0].id.to_string()]);
    let window = store
        .query(EventQuery {
            occurred_since: batch[1].occurred_at,
            occurred_before: batch[2].occurred_at,
            session_id: Some("s1".into()),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&window), vec![stored[1].id.to_string()]);
}

/// An event whose idempotency key an event received within the window
/// holds is not stored: that event comes back in its place (from an earlier
/// append or earlier in the same batch, whatever its content); outside the
/// window the key is free again; two appends of one key at once store one.
pub async fn an_idempotency_key_is_stored_once_within_its_window<S: EventStore>(store: &S) {
    let first = store
        .append(vec![
            keyed(0, "k1", -10),
            new_event(1, EventType::TIMER_TICK, None, None),
        ])
        .await
        .expect("append");
    let again = store
        .append(vec![
            keyed(2, "k1", -10),
            keyed(3, "k2", -10),
            keyed(4, "k2", -10),
        ])
        .await
        .expect("append");
    assert_eq!(again[0], first[0], "the stored event, not a new one");
    assert_ne!(again[1].id, first[0].id);
    assert_eq!(again[2], again[1], "the same key earlier in the batch");
    assert_eq!(again[1].seq, first[1].seq + 1, "seqs stay dense");
    let later = store.append(vec![keyed(5, "k1", 1)]).await.expect("append");
    assert_ne!(
        later[0].id, first[0].id,
        "outside the window the key is free"
    );
    let stats = store.stats(at(-100)).await.expect("stats");
    assert_eq!(
        stats.total_events, 4,
        "repeats are neither stored nor counted"
    );
    assert_eq!(store.query(query()).await.expect("query").len(), 4);

    let (a, b) = tokio::join!(
        store.append(vec![keyed(6, "k3", 0)]),
        store.append(vec![keyed(7, "k3", 0)]),
    );
    assert_eq!(
        a.expect("a")[0].id,
        b.expect("b")[0].id,
        "one of the two is stored"
    );
    assert_eq!(store.stats(at(-100)).await.expect("stats").total_events, 5);
}

/// An all-or-none append stores the whole batch when no key of it is
/// held, and nothing when one is: then it names every holder by the
/// position of the event whose key it holds. Keys outside their window are
/// free, and a rolled-back attempt leaves no trace (seqs, counts, ids).
pub async fn an_append_unless_held_stores_all_or_none<S: EventStore>(store: &S) {
    let Appended::Stored(first) = store
        .append_unless_held(vec![
            keyed(0, "k1", -10),
            new_event(1, EventType::TIMER_TICK, None, None),
            keyed(2, "k2", -10),
        ])
        .await
        .expect("append")
    else {
        panic!("no key was held: everything is stored");
    };
    assert_eq!(ids(&first).len(), 3);
    assert_eq!(first[1].seq, first[0].seq + 1);
    assert_eq!(first[2].seq, first[1].seq + 1);

    let attempt = store
        .append_unless_held(vec![
            new_event(3, EventType::QUIZ_STARTED, Some("s1"), None),
            keyed(4, "k2", -10),
            keyed(5, "k3", -10),
            keyed(6, "k1", -10),
        ])
        .await
        .expect("append");
    assert_eq!(
        attempt,
        Appended::Held(vec![(1, first[2].clone()), (3, first[0].clone())]),
        "every holder, by position, in batch order"
    );
    assert_eq!(
        store.last_seq().await.expect("last_seq"),
        first[2].seq,
        "nothing was stored"
    );
    assert_eq!(store.query(query()).await.expect("query").len(), 3);
    assert_eq!(store.stats(at(-100)).await.expect("stats").total_events, 3);
    assert!(
        store
            .get(&new_event(3, EventType::QUIZ_STARTED, None, None).id)
            .await
            .expect("get")
            .is_none(),
        "the unheld events of the batch were not stored"
    );

    // The same events again, without the held ones: stored, dense after
    // the first batch (the refused attempt took no seq), and a key outside
    // its window is free.
    let Appended::Stored(second) = store
        .append_unless_held(vec![
            new_event(3, EventType::QUIZ_STARTED, Some("s1"), None),
            keyed(5, "k3", -10),
            keyed(6, "k1", 1),
        ])
        .await
        .expect("append")
    else {
        panic!("no key in its window was held");
    };
    assert_eq!(second[0].seq, first[2].seq + 1, "seqs stay dense");
    assert_eq!(store.stats(at(-100)).await.expect("stats").total_events, 6);
    assert_eq!(
        store
            .append(vec![keyed(7, "k3", -10)])
            .await
            .expect("append")[0],
        second[1],
        "a key stored by an all-or-none append is held for append too"
    );
}

/// Stats count by type (highest count first), give each type's newest
/// timestamp, and count events after the given instant.
pub async fn stats_count_by_type_and_since<S: EventStore>(store: &S) {
    let empty = store.stats(at(0)).await.expect("stats");
    assert_eq!(
        (empty.total_events, empty.events_since, empty.by_type.len()),
        (0, 0, 0)
    );
    seed(store).await;
    let stats = store.stats(at(2)).await.expect("stats");
    assert_eq!(stats.total_events, 6);
    assert_eq!(stats.events_since, 3);
    let rows: Vec<_> = stats
        .by_type
        .iter()
        .map(|r| (r.event_type, r.count, r.last_seen))
        .collect();
    assert_eq!(
        rows,
        vec![
            (EventType::ANSWER_SUBMITTED, 2, at(4)),
            (EventType::TIMER_TICK, 2, at(3)),
            (EventType::ERROR_OCCURRED, 1, at(5)),
            (EventType::QUIZ_STARTED, 1, at(0)),
        ]
    );
}

/// Delete with `before` removes only strictly older events; stats follow.
pub async fn delete_before_removes_only_older_and_stats_follow<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    assert_eq!(delete(store, Some(at(2))).await, 2);
    assert_eq!(store.get(&stored[0].id).await.expect("get"), None);
    assert!(store.get(&stored[2].id).await.expect("get").is_some());
    let stats = store.stats(at(-10)).await.expect("stats");
    assert_eq!(stats.total_events, 4);
    assert_eq!(stats.events_since, 4);
    assert!(!stats
        .by_type
        .iter()
        .any(|r| r.event_type == EventType::QUIZ_STARTED));
    let tick = stats
        .by_type
        .iter()
        .find(|r| r.event_type == EventType::TIMER_TICK)
        .expect("tick row");
    assert_eq!((tick.count, tick.last_seen), (1, at(3)));
    assert_eq!(delete(store, Some(at(2))).await, 0);
}

/// Deleting everything empties the store, and sequence numbers are never
/// reused afterwards.
pub async fn delete_all_never_reuses_seq<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let highest = stored.iter().map(|e| e.seq).max().unwrap_or(0);
    assert_eq!(delete(store, None).await, 6);
    let stats = store.stats(at(-10)).await.expect("stats");
    assert_eq!((stats.total_events, stats.by_type.len()), (0, 0));
    assert!(store.query(query()).await.expect("query").is_empty());
    let again = store
        .append(vec![new_event(10, EventType::TIMER_TICK, None, None)])
        .await
        .expect("append");
    assert!(
        again[0].seq > highest,
        "seq {} reused after delete (highest was {highest})",
        again[0].seq
    );
}

/// A batch holding an id that is already stored is refused whole.
pub async fn a_duplicate_id_refuses_the_whole_batch<S: EventStore>(store: &S) {
    let first = new_event(0, EventType::TIMER_TICK, None, None);
    store.append(vec![first.clone()]).await.expect("append");
    let batch = vec![
        new_event(1, EventType::TIMER_TICK, None, None),
        first.clone(),
    ];
    assert_eq!(
        store.append(batch).await,
        Err(StoreError::DuplicateId(first.id))
    );
    assert_eq!(store.query(query()).await.expect("query").len(), 1);
}

/// Client text that looks like SQL or JSON is stored and returned verbatim.
pub async fn hostile_text_round_trips_verbatim<S: EventStore>(store: &S) {
    let mut e = new_event(
        0,
        EventType::ERROR_OCCURRED,
        Some("s'; DROP TABLE events; --"),
        Some("ü\"\\%_*"),
    );
    e.payload = Payload::from_json(
        r#"{"message":"it's \"quoted\" \\ and ünïcode","nested":{"a":[1,2.5,null]}}"#.into(),
    )
    .expect("valid json");
    let stored = store.append(vec![e.clone()]).await.expect("append");
    let found = store
        .query(EventQuery {
            session_id: e.session_id.clone(),
            user_id: e.user_id.clone(),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(found, stored);
    let like = store
        .query(EventQuery {
            user_id: Some("%".into()),
            ..query()
        })
        .await
        .expect("query");
    assert!(like.is_empty(), "filters are exact matches, not patterns");
}

/// A large batch is stored whole and in order.
pub async fn a_large_batch_is_stored_in_order<S: EventStore>(store: &S) {
    let batch: Vec<_> = (0..2_000)
        .map(|n| new_event(n, EventType::TIMER_TICK, Some("s"), None))
        .collect();
    let stored = store.append(batch).await.expect("append");
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
    let stats = store.stats(at(-1)).await.expect("stats");
    assert_eq!(stats.total_events, 2_000);
    let newest = store.query(EventQuery::latest(1)).await.expect("query");
    assert_eq!(newest[0].id, stored[1_999].id);
}

/// `after` lists matching events oldest first, strictly after the given
/// seq, and paging with the last seq neither skips nor repeats.
pub async fn after_pages_oldest_first_without_gaps<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let all = store
        .after(0, EventFilter::default(), 1_000)
        .await
        .expect("after");
    assert_eq!(ids(&all), ids(&stored));
    let mut paged = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store
            .after(cursor, EventFilter::default(), 4)
            .await
            .expect("after");
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        paged.extend(page);
    }
    assert_eq!(ids(&paged), ids(&stored));
    let ticks_and_errors = EventFilter {
        event_types: Some(vec![EventType::TIMER_TICK, EventType::ERROR_OCCURRED]),
        ..EventFilter::default()
    };
    let found = store
        .after(stored[1].seq, ticks_and_errors, 10)
        .await
        .expect("after");
    assert_eq!(
        ids(&found),
        vec![stored[3].id.to_string(), stored[5].id.to_string()]
    );
    let session_user = EventFilter {
        session_id: Some("s2".into()),
        user_id: Some("u1".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        ids(&store.after(0, session_user, 10).await.expect("after")),
        vec![stored[4].id.to_string()]
    );
    let nothing = EventFilter {
        event_types: Some(Vec::new()),
        ..EventFilter::default()
    };
    assert!(store.after(0, nothing, 10).await.expect("after").is_empty());
    let last = stored.last().map_or(0, |e| e.seq);
    assert!(store
        .after(last, EventFilter::default(), 10)
        .await
        .expect("after")
        .is_empty());
}

/// A working store answers ping.
pub async fn ping_answers<S: EventStore>(store: &S) {
    store.ping().await.expect("ping");
}

/// The earliest and latest instants the service accepts ([`Timestamp::MIN`],
/// year 0000, and [`Timestamp::MAX`], year 9999) order like any other, as
/// stored timestamps and as `since` / `before` bounds, whatever the store
/// compares (numbers or text).
pub async fn the_earliest_and_latest_instants_order_like_any_other<S: EventStore>(store: &S) {
    let mut first = new_event(0, EventType::SESSION_CREATED, Some("s1"), None);
    first.timestamp = Timestamp::MIN;
    let middle = new_event(1, EventType::TIMER_TICK, Some("s1"), None);
    let mut last = new_event(2, EventType::SESSION_ENDED, Some("s1"), None);
    last.timestamp = Timestamp::MAX;
    let stored = store
        .append(vec![first, middle, last])
        .await
        .expect("append");
    assert_eq!(stored[0].timestamp, Timestamp::MIN);
    assert_eq!(stored[2].timestamp, Timestamp::MAX);
    let got = store
        .get(&stored[0].id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.timestamp, Timestamp::MIN, "read back unchanged");

    let since = |t: Timestamp| EventQuery {
        since: Some(t),
        ..query()
    };
    let newest_first = |picks: &[usize]| -> Vec<String> {
        picks.iter().map(|&i| stored[i].id.to_string()).collect()
    };
    assert_eq!(
        ids(&store.query(since(Timestamp::MIN)).await.expect("query")),
        newest_first(&[2, 1]),
        "since the earliest instant: all but the event stamped at it"
    );
    assert_eq!(
        ids(&store
            .query(since(Timestamp::MAX.minus_micros(1)))
            .await
            .expect("query")),
        newest_first(&[2])
    );
    assert!(store
        .query(since(Timestamp::MAX))
        .await
        .expect("query")
        .is_empty());
    assert_eq!(
        store
            .stats(Timestamp::MIN)
            .await
            .expect("stats")
            .events_since,
        2
    );
    assert_eq!(
        store
            .stats(Timestamp::MAX)
            .await
            .expect("stats")
            .events_since,
        0
    );
    assert_eq!(delete(store, Some(Timestamp::MIN)).await, 0);
    assert_eq!(delete(store, Some(Timestamp::MAX)).await, 2);
    assert_eq!(
        ids(&store.query(query()).await.expect("query")),
        vec![stored[2].id.to_string()]
    );
}

/// A write probe succeeds on a healthy store and changes nothing a reader
/// sees: no event, the same stats, the next seq unaffected in order.
pub async fn a_write_probe_commits_nothing_visible<S: EventStore>(store: &S) {
    let before = seed(store).await;
    store.probe_write().await.expect("probe");
    store.probe_write().await.expect("a second probe");
    assert_eq!(
        ids(&store.query(query()).await.expect("query")).len(),
        before.len()
    );
    let stats = store.stats(Timestamp::from_micros(0)).await.expect("stats");
    assert_eq!(stats.total_events, before.len() as u64);
    let next = store
        .append(vec![new_event(10, EventType::TIMER_TICK, None, None)])
        .await
        .expect("append after probes");
    assert!(next[0].seq > before.last().expect("seeded").seq);
}

/// `last_seq` is 0 for a new store, the highest seq assigned after appends,
/// and stays so after every event is deleted.
pub async fn last_seq_is_the_highest_ever_assigned<S: EventStore>(store: &S) {
    assert_eq!(store.last_seq().await.expect("last_seq"), 0);
    let stored = seed(store).await;
    let highest = stored.last().expect("seeded").seq;
    assert_eq!(store.last_seq().await.expect("last_seq"), highest);
    delete(store, None).await;
    assert_eq!(store.last_seq().await.expect("last_seq"), highest);
    let next = store
        .append(vec![new_event(20, EventType::TIMER_TICK, None, None)])
        .await
        .expect("append");
    assert_eq!(next[0].seq, highest + 1, "seq continues densely");
    assert_eq!(store.last_seq().await.expect("last_seq"), highest + 1);
}

/// A delete step removes at most its limit, never an event above
/// `through_seq` (published after the delete began) nor one not before
/// `before`, and reports 0 once nothing selected is left.
pub async fn a_delete_step_is_bounded_by_its_limit_and_its_seq<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let what = Deletion::through(stored[3].seq);
    assert_eq!(store.delete_some(what.clone(), 3).await.expect("step"), 3);
    assert_eq!(store.delete_some(what.clone(), 3).await.expect("step"), 1);
    assert_eq!(store.delete_some(what, 3).await.expect("step"), 0);
    assert_eq!(
        ids(&store.query(query()).await.expect("query")),
        vec![stored[5].id.to_string(), stored[4].id.to_string()],
        "the events above through_seq are kept"
    );
    let timed = Deletion::through(u64::MAX).before(at(5));
    assert_eq!(store.delete_some(timed.clone(), 10).await.expect("step"), 1);
    assert_eq!(store.delete_some(timed, 10).await.expect("step"), 0);
    assert_eq!(
        store.stats(at(-10)).await.expect("stats"),
        recount(store, at(-10)).await
    );
}

/// A delete narrowed to a student erases that student's events of every
/// type and nobody else's; narrowed to a type and an instant, it removes
/// only that type's older events (retention); each in bounded steps, stats
/// following, and a repeat finds nothing.
pub async fn a_delete_narrowed_to_a_user_or_a_type_takes_only_those<S: EventStore>(store: &S) {
    let stored = seed(store).await;
    let u1 = |e: &Event| e.user_id.as_deref() == Some("u1");
    let erase = Deletion::through(store.last_seq().await.expect("last_seq")).of_user("u1");
    assert_eq!(store.delete_some(erase.clone(), 2).await.expect("step"), 2);
    assert_eq!(delete_selected(store, &erase, 2).await, 2);
    assert_eq!(
        delete_selected(store, &erase, 2).await,
        0,
        "a repeat finds none"
    );
    let left = store.query(query()).await.expect("query");
    let expected: Vec<String> = stored
        .iter()
        .rev()
        .filter(|e| !u1(e))
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(ids(&left), expected, "only u1's events are gone");
    assert_eq!(
        store.stats(at(-10)).await.expect("stats"),
        recount(store, at(-10)).await
    );

    // Retention of timer ticks older than at(10): the old tick goes, the
    // new tick and an old event of another type stay.
    let more = store
        .append(vec![
            new_event(20, EventType::TIMER_TICK, Some("s3"), Some("u3")),
            new_event(21, EventType::QUIZ_STARTED, Some("s3"), Some("u3")),
        ])
        .await
        .expect("append");
    let retain = Deletion::through(store.last_seq().await.expect("last_seq"))
        .of_type(EventType::TIMER_TICK)
        .before(at(10));
    assert_eq!(delete_selected(store, &retain, 1).await, 1);
    let left = ids(&store.query(query()).await.expect("query"));
    assert_eq!(
        left,
        vec![
            more[1].id.to_string(),
            more[0].id.to_string(),
            stored[5].id.to_string(),
        ],
        "only the old timer tick (s2, u2) is gone"
    );
    let both = Deletion::through(u64::MAX)
        .of_type(EventType::TIMER_TICK)
        .of_user("u3");
    assert_eq!(delete_selected(store, &both, 10).await, 1);
    assert_eq!(
        store.stats(at(-10)).await.expect("stats"),
        recount(store, at(-10)).await
    );
}

/// Stats stay what the stored events say through appends and deletes in
/// many steps, including a delete that removes a type's newest event (the
/// highest seq) while one of that type stamped later stays.
pub async fn stats_agree_with_the_events_through_deletes_in_steps<S: EventStore>(store: &S) {
    let kinds = [
        EventType::TIMER_TICK,
        EventType::ANSWER_SUBMITTED,
        EventType::QUIZ_STARTED,
    ];
    let batch: Vec<NewEvent> = (0..300)
        .map(|i| new_event(i, kinds[(i % 7 % 3) as usize], None, None))
        .collect();
    store.append(batch).await.expect("append");
    // A type whose newest event by seq is stamped earlier than an older one:
    // deleting it must give the type its next newest.
    store
        .append(vec![new_event(
            1_000,
            EventType::MASTERY_UPDATED,
            None,
            None,
        )])
        .await
        .expect("append");
    store
        .append(vec![new_event(
            -1_000,
            EventType::MASTERY_UPDATED,
            None,
            None,
        )])
        .await
        .expect("append");
    let since = at(150);
    assert_eq!(
        store.stats(since).await.expect("stats"),
        recount(store, since).await
    );
    assert_eq!(delete_in_steps(store, Some(at(100)), 7).await, 101);
    let stats = store.stats(since).await.expect("stats");
    assert_eq!(stats, recount(store, since).await);
    let mastery = stats
        .by_type
        .iter()
        .find(|r| r.event_type == EventType::MASTERY_UPDATED)
        .expect("mastery row");
    assert_eq!((mastery.count, mastery.last_seen), (1, at(1_000)));
    assert_eq!(delete_in_steps(store, Some(at(1_001)), 50).await, 201);
    let stats = store.stats(since).await.expect("stats");
    assert_eq!(stats, recount(store, since).await);
    assert_eq!(stats.total_events, 0);
    assert!(
        stats.by_type.is_empty(),
        "a type with no events left has no row"
    );
}

fn names(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

/// A query and a resume both return only events inside the caller's scope
/// (every list ANDed, each list any of its values); an empty list allows
/// nothing.
pub async fn scope_limits_query_and_after<S: EventStore>(store: &S) {
    let seeded = seed(store).await;
    let scope = Scope {
        event_types: names(&["timer_tick", "answer_submitted"]),
        sources: names(&["quiz-engine"]),
        session_ids: names(&["s1", "s2"]),
        user_ids: names(&["u1"]),
    };
    let expected = |newest_first: bool| {
        let mut inside: Vec<String> = seeded
            .iter()
            .filter(|e| scope.allows(e))
            .map(|e| e.id.to_string())
            .collect();
        if newest_first {
            inside.reverse();
        }
        inside
    };
    assert_eq!(
        expected(false).len(),
        3,
        "seed: events 1, 2 and 4 are inside"
    );
    let listed = store
        .query(EventQuery {
            scope: scope.clone(),
            ..query()
        })
        .await
        .expect("query");
    assert_eq!(ids(&listed), expected(true));
    let resumed = store
        .after(
            0,
            EventFilter {
                payload: None,
                scope: scope.clone(),
                ..EventFilter::default()
            },
            100,
        )
        .await
        .expect("after");
    assert_eq!(ids(&resumed), expected(false));
    let other_source = Scope {
        sources: names(&["someone-else"]),
        ..Scope::default()
    };
    let none = store
        .query(EventQuery {
            scope: other_source,
            ..query()
        })
        .await
        .expect("query");
    assert!(none.is_empty());
    let empty = Scope {
        session_ids: names(&[]),
        ..Scope::default()
    };
    assert!(store
        .query(EventQuery {
            scope: empty.clone(),
            ..query()
        })
        .await
        .expect("query")
        .is_empty());
    assert!(store
        .after(
            0,
            EventFilter {
                payload: None,
                scope: empty,
                ..EventFilter::default()
            },
            100
        )
        .await
        .expect("after")
        .is_empty());
}

/// Closing after commits succeeds and a second close does nothing; calls
/// after it answer as before or fail with `Unavailable`, never with another
/// error, a panic or a hang.
pub async fn closing_ends_the_store_cleanly<S: EventStore>(store: &S) {
    async fn within<T>(call: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .expect("answered within 10 s")
    }
    let last = seed(store).await.last().expect("seeded").seq;
    within(store.close()).await.expect("close");
    within(store.close())
        .await
        .expect("a second close does nothing");
    match within(store.last_seq()).await {
        Ok(seq) => assert_eq!(seq, last),
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("last_seq after close: {other:?}"),
    }
    let late = vec![new_event(10, EventType::TIMER_TICK, Some("s1"), None)];
    match within(store.append(late)).await {
        Ok(stored) => assert_eq!(stored.len(), 1),
        Err(StoreError::Unavailable(_)) => {}
        Err(other) => panic!("append after close: {other:?}"),
    }
}

/// Events [`fill_for_time_ranges`] stores: more than a SQL store reads
/// through a time range's index before it leaves the plan to the database
/// (10,000), so that both ways of answering are taken.
pub const TIME_RANGE_EVENTS: i64 = 12_000;

/// Stores [`TIME_RANGE_EVENTS`] events, event `i` received at [`at`]`(i)`,
/// one in three an `answer_submitted` (the rest `timer_tick`), nine in ten
/// saying they happened at the same instant.
pub async fn fill_for_time_ranges<S: EventStore>(store: &S) {
    for start in (0..TIME_RANGE_EVENTS).step_by(1_000) {
        let batch = (start..(start + 1_000).min(TIME_RANGE_EVENTS))
            .map(|i| {
                let kind = if i % 3 == 0 {
                    EventType::ANSWER_SUBMITTED
                } else {
                    EventType::TIMER_TICK
                };
                NewEvent {
                    occurred_at: (i % 10 != 0).then(|| at(i)),
                    ..new_event(i, kind, Some("s1"), Some("u1"))
                }
            })
            .collect();
        store.append(batch).await.expect("append");
    }
}

/// A time range: `since`, `occurred_since`, `occurred_before`.
pub type TimeRange = (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>);

/// Ranges over [`fill_for_time_ranges`]'s events, each with whether it
/// holds few of them (under 20) or many (over 10,700 of all types, over
/// 7,000 `timer_tick`): a SQL store reads the first kind through the
/// range's index and leaves the second to the database.
pub fn time_ranges() -> [(TimeRange, bool); 7] {
    let n = TIME_RANGE_EVENTS;
    let (few, many) = (Some(at(n - 7)), Some(at(7)));
    [
        ((few, None, None), true),
        ((many, None, None), false),
        ((None, few, None), true),
        ((None, many, None), false),
        ((None, None, Some(at(9))), true),
        ((None, None, Some(at(n - 9))), false),
        ((None, Some(at(100)), Some(at(120))), true),
    ]
}

/// The newest 100 events of `event_type` (of any, with `None`) in `range`.
pub fn time_range_query(event_type: Option<EventType>, range: TimeRange) -> EventQuery {
    let (since, occurred_since, occurred_before) = range;
    EventQuery {
        event_type,
        since,
        occurred_since,
        occurred_before,
        ..EventQuery::latest(100)
    }
}

/// `since`, `occurred_since` and `occurred_before` over few and over many
/// events, with and without a type, answer what a filter over every event
/// answers: the newest `limit` of them, newest first.
pub async fn time_range_queries_answer_exactly_over_many_events<S: EventStore>(store: &S) {
    fill_for_time_ranges(store).await;
    let every = store
        .after(0, EventFilter::default(), usize::MAX)
        .await
        .expect("read all");
    let n = TIME_RANGE_EVENTS;
    let mut ranges: Vec<TimeRange> = time_ranges().iter().map(|(r, _)| *r).collect();
    ranges.push((None, Some(at(7)), Some(at(n - 9))));
    ranges.push((Some(at(7)), Some(at(100)), Some(at(120))));
    for range in ranges {
        let (since, occurred_since, occurred_before) = range;
        for event_type in [None, Some(EventType::ANSWER_SUBMITTED)] {
            let query = time_range_query(event_type, range);
            let want: Vec<&Event> = every
                .iter()
                .rev()
                .filter(|e| event_type.is_none_or(|t| e.event_type == t))
                .filter(|e| since.is_none_or(|s| e.timestamp > s))
                .filter(|e| occurred_since.is_none_or(|s| e.occurred_at.is_some_and(|o| o >= s)))
                .filter(|e| occurred_before.is_none_or(|b| e.occurred_at.is_some_and(|o| o < b)))
                .take(100)
                .collect();
            let got = store.query(query.clone()).await.expect("query");
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "{query:?}");
        }
    }
}

/// Events [`fill_for_scopes`] stores, more than a SQL store reads through a
/// scope's index before it leaves the plan to the database (10,000).
pub const SCOPED_EVENTS: i64 = 12_000;

/// Stores [`SCOPED_EVENTS`] events, event `i` received at [`at`]`(i)`: a
/// crowd of `timer_tick`s in session `crowd` of user `u-crowd`, with a few
/// in sessions `class-a` and `class-b` (48 each), of user `stu-a` (40),
/// and of type `answer_submitted` (one in 97): what a scope of a class, a
/// student or a rare type picks out of many.
pub async fn fill_for_scopes<S: EventStore>(store: &S) {
    for start in (0..SCOPED_EVENTS).step_by(1_000) {
        let batch = (start..(start + 1_000).min(SCOPED_EVENTS))
            .map(|i| {
                let session = match i % 250 {
                    0 => "class-a",
                    125 => "class-b",
                    _ => "crowd",
                };
                let user = if i % 300 == 7 { "stu-a" } else { "u-crowd" };
                let kind = if i % 97 == 0 {
                    EventType::ANSWER_SUBMITTED
                } else {
                    EventType::TIMER_TICK
                };
                new_event(i, kind, Some(session), Some(user))
            })
            .collect();
        store.append(batch).await.expect("append");
    }
}

/// Scopes over [`fill_for_scopes`]'s events, each with whether its
/// sessions, users or types hold few of them (at most 10,000): a SQL store
/// may read the first kind through that list's index.
pub fn scopes_over_many_events() -> [(Scope, bool); 7] {
    [
        (
            Scope {
                session_ids: names(&["class-a", "class-b"]),
                ..Scope::default()
            },
            true,
        ),
        (
            Scope {
                user_ids: names(&["stu-a", "nobody"]),
                ..Scope::default()
            },
            true,
        ),
        (
            Scope {
                event_types: names(&["answer_submitted", "quiz_started"]),
                ..Scope::default()
            },
            true,
        ),
        (
            Scope {
                session_ids: names(&["crowd"]),
                ..Scope::default()
            },
            false,
        ),
        (
            Scope {
                session_ids: names(&["class-a", "crowd"]),
                user_ids: names(&["stu-a"]),
                ..Scope::default()
            },
            true,
        ),
        (
            Scope {
                session_ids: names(&["crowd", "class-b"]),
                event_types: names(&["timer_tick"]),
                ..Scope::default()
            },
            false,
        ),
        (
            Scope {
                session_ids: names(&["class-a", "class-b"]),
                user_ids: names(&["stu-a"]),
                ..Scope::default()
            },
            true,
        ),
    ]
}

/// A caller's scope over many events, with and without a type and a
/// `since`, answers what a filter over every event answers: the newest
/// `limit` inside the scope, newest first; a resume from the start or the
/// middle, the oldest after it, oldest first.
pub async fn scoped_queries_answer_exactly_over_many_events<S: EventStore>(store: &S) {
    fill_for_scopes(store).await;
    let every = store
        .after(0, EventFilter::default(), usize::MAX)
        .await
        .expect("read all");
    let n = SCOPED_EVENTS;
    for (scope, _) in scopes_over_many_events() {
        for event_type in [
            None,
            Some(EventType::TIMER_TICK),
            Some(EventType::ANSWER_SUBMITTED),
        ] {
            for since in [None, Some(at(n - 700)), Some(at(7))] {
                for limit in [5, 100] {
                    let query = EventQuery {
                        event_type,
                        since,
                        scope: scope.clone(),
                        ..EventQuery::latest(limit)
                    };
                    let want: Vec<&Event> = every
                        .iter()
                        .rev()
                        .filter(|e| scope.allows(e))
                        .filter(|e| event_type.is_none_or(|t| e.event_type == t))
                        .filter(|e| since.is_none_or(|s| e.timestamp > s))
                        .take(limit)
                        .collect();
                    let got = store.query(query.clone()).await.expect("query");
                    assert_eq!(got.iter().collect::<Vec<_>>(), want, "{query:?}");
                }
            }
        }
        let middle = every[every.len() / 2].seq;
        for event_types in [None, Some(vec![EventType::TIMER_TICK])] {
            for after in [0, middle] {
                let filter = EventFilter {
                    event_types: event_types.clone(),
                    scope: scope.clone(),
                    ..EventFilter::default()
                };
                let want: Vec<&Event> = every
                    .iter()
                    .filter(|e| e.seq > after && scope.allows(e))
                    .filter(|e| {
                        event_types
                            .as_ref()
                            .is_none_or(|t| t.contains(&e.event_type))
                    })
                    .take(100)
                    .collect();
                let got = store
                    .after(after, filter.clone(), 100)
                    .await
                    .expect("after");
                assert_eq!(
                    got.iter().collect::<Vec<_>>(),
                    want,
                    "after {after}: {filter:?}"
                );
            }
        }
    }
}

/// `since` queries answer exactly when some events are stamped out of seq
/// order. First a `quiz_started` stamped ahead of the next 5,000 events,
/// then 3,000 in order, 2,000 stamped before all of them (an import of old
/// events), 3,000 more in order, a `quiz_started` stamped among the first
/// ones (the first stamped after event 2,999), and 11,000 more in order. A
/// SQL store that stops walking at the first event stamped after `since`
/// may do so only where no event below it is stamped later: `quiz_started`
/// since the start must find both.
pub async fn since_queries_answer_exactly_over_events_stamped_out_of_order<S: EventStore>(
    store: &S,
) {
    let kind = |i: i64| {
        if i % 3 == 0 {
            EventType::ANSWER_SUBMITTED
        } else {
            EventType::TIMER_TICK
        }
    };
    let in_order = |from: i64, to: i64| -> Vec<NewEvent> {
        (from..to)
            .map(|i| new_event(i, kind(i), Some("s1"), Some("u1")))
            .collect()
    };
    let stamped = |n: i64, at: Timestamp| NewEvent {
        timestamp: at,
        ..new_event(n, EventType::QUIZ_STARTED, Some("s3"), None)
    };
    let imported: Vec<NewEvent> = (0..2_000)
        .map(|k| NewEvent {
            timestamp: at(k - 100_000),
            ..new_event(100_000 + k, kind(k), Some("s2"), Some("u2"))
        })
        .collect();
    let mut batches = vec![
        vec![stamped(300_000, at(5_000))],
        in_order(0, 3_000),
        imported,
    ];
    batches.push(in_order(3_000, 6_000));
    // Half a second after event 2,999: the first stamped after it.
    let half_past = Timestamp::from_micros(at(2_999).as_micros() + 500_000);
    batches.push(vec![stamped(300_001, half_past)]);
    for from in (6_000..17_000).step_by(1_000) {
        batches.push(in_order(from, from + 1_000));
    }
    for batch in batches {
        store.append(batch).await.expect("append");
    }
    let every = store
        .after(0, EventFilter::default(), usize::MAX)
        .await
        .expect("read all");
    for since in [
        at(-200_000),
        at(-50_000),
        at(100),
        at(2_000),
        at(2_999),
        at(6_500),
        at(16_990),
    ] {
        for event_type in [
            None,
            Some(EventType::ANSWER_SUBMITTED),
            Some(EventType::QUIZ_STARTED),
        ] {
            for limit in [10, 1_000] {
                let query = EventQuery {
                    event_type,
                    since: Some(since),
                    ..EventQuery::latest(limit)
                };
                let want: Vec<&Event> = every
                    .iter()
                    .rev()
                    .filter(|e| event_type.is_none_or(|t| e.event_type == t))
                    .filter(|e| e.timestamp > since)
                    .take(limit)
                    .collect();
                let got = store.query(query.clone()).await.expect("query");
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{query:?}");
            }
        }
    }
}
