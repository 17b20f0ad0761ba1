//! The fan-out hub and subscriptions: who receives what, capacity, slow
//! subscribers, filter updates, and resume without gap or duplicate.

mod support;

use support::Log;

use std::sync::Arc;

use ep_domain::{AtCapacity, Hub, HubConfig, Next, SubscriberGauge, Subscription};
use ep_ports::{Event, EventBatch, EventFilter, EventId, EventType, Payload, Timestamp};

fn event(seq: u64, event_type: EventType, session: &str, user: &str) -> Arc<Event> {
    Arc::new(Event {
        occurred_at: None,
        id: EventId::new(format!("evt_{seq:032x}")),
        event_type,
        source: "quiz-engine".into(),
        session_id: Some(session.into()),
        user_id: Some(user.into()),
        payload: Payload::empty(),
        timestamp: Timestamp::from_micros(seq as i64),
        seq,
    })
}

fn hub(log: Arc<Log>, config: HubConfig) -> (Hub<u64>, SubscriberGauge) {
    let gauge = SubscriberGauge::default();
    (
        Hub::new(log, gauge.clone(), config, Box::new(|e: &Event| e.seq)),
        gauge,
    )
}

/// The default hub settings with subscriber queues of `queue_len` events.
fn queue_of(queue_len: usize) -> HubConfig {
    HubConfig {
        queue_len,
        ..HubConfig::default()
    }
}

fn batch(events: &[Arc<Event>]) -> EventBatch {
    events.to_vec().into()
}

/// Everything a subscription has ready now. Time is paused, so the timeout
/// fires only once nothing else can make progress: no real waiting.
async fn ready(sub: &mut Subscription<u64>) -> Vec<Next<u64>> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(20), sub.next()).await {
            Ok(next) => {
                let next = next.expect("no store error");
                let evicted = matches!(next, Next::Evicted { .. });
                out.push(next);
                if evicted {
                    return out;
                }
            }
            Err(_) => return out,
        }
    }
}

/// The seq and receipt time of each event among `nexts`.
fn events(nexts: &[Next<u64>]) -> impl Iterator<Item = (u64, Option<Timestamp>)> + '_ {
    nexts.iter().filter_map(|n| match n {
        Next::Event { seq, received, .. } => Some((*seq, *received)),
        Next::Evicted { .. } => None,
    })
}

fn seqs(nexts: &[Next<u64>]) -> Vec<u64> {
    events(nexts).map(|(seq, _)| seq).collect()
}

fn received(nexts: &[Next<u64>]) -> Vec<Option<Timestamp>> {
    events(nexts).map(|(_, received)| received).collect()
}

fn filter(types: Option<&[EventType]>, session: Option<&str>, user: Option<&str>) -> EventFilter {
    EventFilter {
        event_types: types.map(<[EventType]>::to_vec),
        session_id: session.map(str::to_owned),
        user_id: user.map(str::to_owned),
        payload: None,
        scope: ep_ports::Scope::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn each_subscriber_receives_exactly_the_events_its_filter_matches() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut by_session = hub
        .subscribe(filter(None, Some("s1"), None), None)
        .expect("room");
    let mut by_user = hub
        .subscribe(filter(None, None, Some("u2")), None)
        .expect("room");
    let mut by_types = hub
        .subscribe(
            filter(
                Some(&[EventType::QUIZ_STARTED, EventType::ANSWER_SUBMITTED]),
                None,
                None,
            ),
            None,
        )
        .expect("room");
    let mut combined = hub
        .subscribe(
            filter(Some(&[EventType::TIMER_TICK]), Some("s1"), Some("u1")),
            None,
        )
        .expect("room");
    let mut everything = hub.subscribe(EventFilter::default(), None).expect("room");
    let mut nothing = hub
        .subscribe(filter(Some(&[]), None, None), None)
        .expect("room");
    hub.dispatch(&batch(&[
        event(1, EventType::QUIZ_STARTED, "s1", "u1"),
        event(2, EventType::TIMER_TICK, "s1", "u1"),
        event(3, EventType::TIMER_TICK, "s2", "u2"),
        event(4, EventType::ANSWER_SUBMITTED, "s2", "u1"),
        event(5, EventType::TIMER_TICK, "s1", "u2"),
    ]));
    assert_eq!(seqs(&ready(&mut by_session).await), [1, 2, 5]);
    assert_eq!(seqs(&ready(&mut by_user).await), [3, 5]);
    assert_eq!(seqs(&ready(&mut by_types).await), [1, 4]);
    assert_eq!(seqs(&ready(&mut combined).await), [2]);
    assert_eq!(seqs(&ready(&mut everything).await), [1, 2, 3, 4, 5]);
    assert!(ready(&mut nothing).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn capacity_is_enforced_and_freed_when_a_subscription_ends() {
    let (hub, gauge) = hub(
        Arc::default(),
        HubConfig {
            max_subscribers: 1,
            ..HubConfig::default()
        },
    );
    let first = hub.subscribe(EventFilter::default(), None).expect("room");
    assert_eq!(gauge.get(), 1);
    assert!(matches!(
        hub.subscribe(EventFilter::default(), None),
        Err(AtCapacity)
    ));
    drop(first);
    assert_eq!(gauge.get(), 0);
    assert!(hub.subscribe(EventFilter::default(), None).is_ok());

    let (zero, _) = self::hub(
        Arc::default(),
        HubConfig {
            max_subscribers: 0,
            ..HubConfig::default()
        },
    );
    assert!(matches!(
        zero.subscribe(EventFilter::default(), None),
        Err(AtCapacity)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_is_evicted_after_its_queue_and_does_not_hold_back_others() {
    let (hub, gauge) = hub(Arc::default(), queue_of(2));
    let mut slow = hub.subscribe(EventFilter::default(), None).expect("room");
    let mut fast = hub.subscribe(EventFilter::default(), None).expect("room");
    for seq in 1..=5 {
        hub.dispatch(&batch(&[event(seq, EventType::TIMER_TICK, "s", "u")]));
        // The fast one reads as events come; the slow one only the first.
        assert_eq!(seqs(&ready(&mut fast).await), [seq]);
        if seq == 1 {
            assert_eq!(seqs(&ready(&mut slow).await), [1]);
        }
    }
    // Events 2 and 3 were dropped for 4 and 5 before it read them: it is
    // told to resume after 1, with no event after the gap.
    let got = ready(&mut slow).await;
    assert_eq!(got, [Next::Evicted { last_seq: 1 }]);
    assert_eq!(gauge.get(), 1, "the evicted one no longer counts");
    // The fast one goes on.
    hub.dispatch(&batch(&[event(6, EventType::TIMER_TICK, "s", "u")]));
    assert_eq!(seqs(&ready(&mut fast).await), [6]);
}

#[tokio::test(start_paused = true)]
async fn an_updated_filter_is_in_force_for_everything_delivered_after() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut sub = hub
        .subscribe(filter(None, Some("s1"), None), None)
        .expect("room");
    hub.dispatch(&batch(&[event(1, EventType::TIMER_TICK, "s1", "u")]));
    sub.update_filter(filter(None, Some("s2"), None));
    hub.dispatch(&batch(&[
        event(2, EventType::TIMER_TICK, "s1", "u"),
        event(3, EventType::TIMER_TICK, "s2", "u"),
    ]));
    // Event 1 was queued under the old filter and no longer matches.
    assert_eq!(seqs(&ready(&mut sub).await), [3]);
}

#[tokio::test(start_paused = true)]
async fn resuming_replays_stored_events_then_continues_live_without_gap_or_duplicate() {
    let log = Arc::new(Log::default());
    let stored: Vec<_> = (1..=10)
        .map(|s| event(s, EventType::TIMER_TICK, "s", "u"))
        .collect();
    log.0
        .lock()
        .expect("lock")
        .extend(stored.iter().map(|e| (**e).clone()));
    let (hub, _) = hub(log.clone(), HubConfig::default());
    let mut sub = hub
        .subscribe(EventFilter::default(), Some(3))
        .expect("room");
    // Events 9 and 10 are also broadcast after the subscription is live
    // (committed around the hand-over), then 11 arrives.
    hub.dispatch(&batch(&stored[8..]));
    let e11 = event(11, EventType::TIMER_TICK, "s", "u");
    log.0.lock().expect("lock").push((*e11).clone());
    hub.dispatch(&batch(&[e11]));
    let got = ready(&mut sub).await;
    assert_eq!(seqs(&got), (4..=11).collect::<Vec<_>>());
    // Only a live delivery carries its receipt time (what the transport
    // measures its stages from): these all came from the store, 12 does not.
    let e12 = event(12, EventType::TIMER_TICK, "s", "u");
    log.0.lock().expect("lock").push((*e12).clone());
    hub.dispatch(&batch(&[e12]));
    let live = ready(&mut sub).await;
    assert_eq!(received(&got), vec![None; 8]);
    assert_eq!(received(&live), vec![Some(Timestamp::from_micros(12))]);
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_lags_while_replaying_catches_up_from_the_store() {
    let log = Arc::new(Log::default());
    let (hub, _) = hub(log.clone(), queue_of(1));
    for s in 1..=3 {
        log.0
            .lock()
            .expect("lock")
            .push((*event(s, EventType::TIMER_TICK, "s", "u")).clone());
    }
    let mut sub = hub
        .subscribe(EventFilter::default(), Some(0))
        .expect("room");
    // While it has not read anything, more events commit than its queue holds.
    for s in 4..=8 {
        let e = event(s, EventType::TIMER_TICK, "s", "u");
        log.0.lock().expect("lock").push((*e).clone());
        hub.dispatch(&batch(&[e]));
    }
    let got = ready(&mut sub).await;
    assert_eq!(seqs(&got), (1..=8).collect::<Vec<_>>());
    assert!(!got.iter().any(|n| matches!(n, Next::Evicted { .. })));
}

#[tokio::test(start_paused = true)]
async fn an_event_queued_before_a_filter_update_that_matches_the_new_filter_is_still_delivered() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut sub = hub
        .subscribe(filter(None, Some("s1"), None), None)
        .expect("room");
    hub.dispatch(&batch(&[
        event(1, EventType::TIMER_TICK, "s1", "u1"),
        event(2, EventType::TIMER_TICK, "s1", "u2"),
    ]));
    // Both were matched under the old filter; only 1 matches the new one too.
    sub.update_filter(filter(None, None, Some("u1")));
    assert_eq!(seqs(&ready(&mut sub).await), [1]);
}

/// Subscriptions of one filter share what the hub queues for them; one
/// changing its filter leaves the others as they were, keeps what it had
/// been handed that its new filter matches, and gets nothing more of the
/// old filter.
#[tokio::test(start_paused = true)]
async fn a_filter_update_of_one_member_of_a_shared_filter_leaves_the_others_as_they_were() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let class = filter(None, Some("s1"), None);
    let mut moves = hub.subscribe(class.clone(), None).expect("room");
    let mut stays = hub.subscribe(class.clone(), None).expect("room");
    hub.dispatch(&batch(&[
        event(1, EventType::TIMER_TICK, "s1", "u1"),
        event(2, EventType::TIMER_TICK, "s1", "u2"),
    ]));
    moves.update_filter(filter(None, None, Some("u1")));
    hub.dispatch(&batch(&[
        event(3, EventType::TIMER_TICK, "s1", "u2"),
        event(4, EventType::TIMER_TICK, "s2", "u1"),
    ]));
    assert_eq!(seqs(&ready(&mut moves).await), [1, 4]);
    assert_eq!(seqs(&ready(&mut stays).await), [1, 2, 3]);
    // Back to the class: it joins the others' queue from now on.
    moves.update_filter(class);
    hub.dispatch(&batch(&[event(5, EventType::TIMER_TICK, "s1", "u2")]));
    assert_eq!(seqs(&ready(&mut moves).await), [5]);
    assert_eq!(seqs(&ready(&mut stays).await), [5]);
}

#[tokio::test(start_paused = true)]
async fn last_seq_is_the_last_event_delivered_or_the_resume_point() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut live = hub.subscribe(EventFilter::default(), None).expect("room");
    assert_eq!(live.last_seq(), 0);
    hub.dispatch(&batch(&[
        event(5, EventType::TIMER_TICK, "s", "u"),
        event(9, EventType::TIMER_TICK, "s", "u"),
    ]));
    assert_eq!(seqs(&ready(&mut live).await), [5, 9]);
    assert_eq!(live.last_seq(), 9);
    let resumed = hub
        .subscribe(EventFilter::default(), Some(7))
        .expect("room");
    assert_eq!(resumed.last_seq(), 7);
    // A live one that joins later starts after what was dispatched before:
    // evicted before its first event, it resumes from there, not from 0.
    let late = hub.subscribe(EventFilter::default(), None).expect("room");
    assert_eq!(late.last_seq(), 9);
}

#[tokio::test(start_paused = true)]
async fn subscriptions_have_distinct_public_ids_and_the_hub_counts_them() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    assert!(hub.is_empty());
    let a = hub.subscribe(EventFilter::default(), None).expect("room");
    let b = hub.subscribe(EventFilter::default(), None).expect("room");
    assert_eq!(hub.len(), 2);
    assert!(!hub.is_empty());
    for id in [a.public_id(), b.public_id()] {
        let hex = id.strip_prefix("sub_").expect("sub_ prefix");
        assert!(
            hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }
    assert_ne!(a.public_id(), b.public_id());
    drop(a);
    assert_eq!(hub.len(), 1);
    drop(b);
    assert!(hub.is_empty());
}

/// A broadcaster's feed fed by the test.
struct Feed(tokio::sync::mpsc::UnboundedReceiver<EventBatch>);

impl futures_core::Stream for Feed {
    type Item = ep_ports::FeedItem;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ep_ports::FeedItem>> {
        self.0
            .poll_recv(cx)
            .map(|b| b.map(ep_ports::FeedItem::Batch))
    }
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_delivers_every_batch_of_its_feed_in_order_until_the_feed_ends() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut sub = hub.subscribe(EventFilter::default(), None).expect("room");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = tokio::spawn(hub.clone().run(Box::pin(Feed(rx))));
    for seq in [1, 2, 3] {
        tx.send(batch(&[event(seq, EventType::TIMER_TICK, "s", "u")]))
            .expect("feed");
    }
    tx.send(batch(&[
        event(4, EventType::TIMER_TICK, "s", "u"),
        event(5, EventType::TIMER_TICK, "s", "u"),
    ]))
    .expect("feed");
    assert_eq!(seqs(&ready(&mut sub).await), [1, 2, 3, 4, 5]);
    drop(tx);
    dispatcher.await.expect("the dispatcher ends with its feed");
}

/// Everything `try_next` has without waiting.
fn ready_now(sub: &mut Subscription<u64>) -> Vec<u64> {
    std::iter::from_fn(|| sub.try_next())
        .map(|next| match next {
            Next::Event { seq, .. } => seq,
            Next::Evicted { .. } => panic!("try_next reports no eviction"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn try_next_takes_what_is_queued_now_as_next_would() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    let mut sub = hub
        .subscribe(filter(None, Some("s1"), None), None)
        .expect("room");
    assert!(sub.try_next().is_none(), "nothing queued yet");
    let tick = |seq, session| event(seq, EventType::TIMER_TICK, session, "u");
    hub.dispatch(&batch(&[tick(1, "s1"), tick(2, "s1"), tick(3, "s1")]));
    assert_eq!(seqs(&[sub.next().await.expect("next")]), [1]);
    assert_eq!(ready_now(&mut sub), [2, 3]);
    assert_eq!(sub.last_seq(), 3);

    // What was already delivered is skipped, as `next` skips it.
    hub.dispatch(&batch(&[tick(3, "s1"), tick(4, "s1")]));
    assert_eq!(ready_now(&mut sub), [4]);

    // Queued under a filter since replaced, and no longer matching: skipped.
    hub.dispatch(&batch(&[tick(5, "s1"), tick(6, "s1")]));
    sub.update_filter(filter(None, Some("s2"), None));
    hub.dispatch(&batch(&[tick(7, "s2")]));
    assert_eq!(ready_now(&mut sub), [7]);
    assert_eq!(sub.last_seq(), 7);
}

/// The frames `try_take_frames` hands over at once, at most `max`.
fn frames_now(sub: &mut Subscription<u64>, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let taken = sub.try_take_frames(max, |frame| {
        out.push(*frame);
        true
    });
    assert_eq!(taken, out.len());
    out
}

#[tokio::test(start_paused = true)]
async fn try_take_frames_hands_over_what_try_next_would_until_refused() {
    let (hub, _) = hub(Arc::default(), queue_of(8));
    let mut sub = hub
        .subscribe(filter(None, Some("s1"), None), None)
        .expect("room");
    let tick = |seq| event(seq, EventType::TIMER_TICK, "s1", "u");
    assert_eq!(frames_now(&mut sub, 10), Vec::<u64>::new(), "nothing yet");
    hub.dispatch(&batch(&[tick(1), tick(2), tick(3), tick(4)]));
    assert_eq!(frames_now(&mut sub, 2), [1, 2], "at most max");
    assert_eq!(sub.last_seq(), 2);

    // A frame refused stays, and is the next one handed over.
    let mut offered = Vec::new();
    let taken = sub.try_take_frames(10, |frame| {
        offered.push(*frame);
        false
    });
    assert_eq!((taken, offered), (0, vec![3]));
    assert_eq!(sub.last_seq(), 2);
    assert_eq!(frames_now(&mut sub, 10), [3, 4]);
    assert_eq!(sub.last_seq(), 4);

    // What was already delivered is passed over.
    hub.dispatch(&batch(&[tick(4), tick(5)]));
    assert_eq!(frames_now(&mut sub, 10), [5]);

    // Events carried over a filter update are left to `try_next`, and the
    // new filter's follow them.
    hub.dispatch(&batch(&[tick(6)]));
    sub.update_filter(filter(None, Some("s1"), Some("u")));
    hub.dispatch(&batch(&[tick(7)]));
    assert_eq!(frames_now(&mut sub, 10), Vec::<u64>::new());
    assert_eq!(ready_now(&mut sub), [6, 7]);

    // An eviction is left to `next`.
    hub.dispatch(&batch(&(8..=17).map(tick).collect::<Vec<_>>()));
    assert_eq!(
        frames_now(&mut sub, 100),
        Vec::<u64>::new(),
        "8 and 9 were dropped"
    );
    assert_eq!(
        sub.next().await.expect("next"),
        Next::Evicted { last_seq: 7 }
    );
}

#[tokio::test(start_paused = true)]
async fn try_next_leaves_an_eviction_for_next_to_report() {
    let (hub, _) = hub(Arc::default(), queue_of(2));
    let mut sub = hub.subscribe(EventFilter::default(), None).expect("room");
    let tick = |seq| event(seq, EventType::TIMER_TICK, "s", "u");
    hub.dispatch(&batch(&[tick(1), tick(2)]));
    assert_eq!(ready_now(&mut sub), [1, 2]);
    hub.dispatch(&batch(&[tick(3), tick(4), tick(5)]));
    assert_eq!(
        ready_now(&mut sub),
        Vec::<u64>::new(),
        "3 was dropped for 5"
    );
    assert_eq!(
        sub.next().await.expect("next"),
        Next::Evicted { last_seq: 2 }
    );
}

#[tokio::test(start_paused = true)]
async fn try_next_takes_a_fetched_replay_page_but_never_waits_for_the_store() {
    let log = Arc::new(Log::default());
    log.0
        .lock()
        .expect("lock")
        .extend((1..=5).map(|s| (*event(s, EventType::TIMER_TICK, "s", "u")).clone()));
    let (hub, _) = hub(log.clone(), HubConfig::default());
    let mut sub = hub
        .subscribe(EventFilter::default(), Some(1))
        .expect("room");
    // No page fetched yet: that takes the store.
    assert!(sub.try_next().is_none());
    assert_eq!(seqs(&[sub.next().await.expect("next")]), [2]);
    // The rest of the page, from the store's answer, without waiting.
    let rest: Vec<_> = std::iter::from_fn(|| sub.try_next()).collect();
    assert_eq!(seqs(&rest), [3, 4, 5]);
    assert_eq!(received(&rest), vec![None; 3]);
    // Then live, through `next` (which goes live once the store is read).
    let e6 = event(6, EventType::TIMER_TICK, "s", "u");
    log.0.lock().expect("lock").push((*e6).clone());
    hub.dispatch(&batch(&[e6]));
    assert_eq!(seqs(&ready(&mut sub).await), [6]);
}

/// The hub dispatches on a thread of its own and wakes subscribers from a
/// task on their runtime: a subscriber waiting there gets the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_woken_from_the_runtime_they_run_on() {
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    hub.announce_on(tokio::runtime::Handle::current());
    let mut sub = hub.subscribe(EventFilter::default(), None).expect("room");
    let waiting = tokio::spawn(async move { sub.next().await.expect("next") });
    let dispatcher = hub.clone();
    std::thread::spawn(move || {
        dispatcher.dispatch(&batch(&[event(1, EventType::TIMER_TICK, "s", "u")]));
    })
    .join()
    .expect("dispatcher thread");
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
        .await
        .expect("woken")
        .expect("task");
    assert_eq!(seqs(&[got]), [1]);
}

/// On a node that starts with events in its store, a live subscriber that
/// joins before anything new is dispatched starts after the store's last:
/// evicted before its first event, it resumes from there, not from 0.
#[tokio::test(start_paused = true)]
async fn a_live_subscriber_starts_after_what_the_store_held_when_the_hub_started() {
    let log = Arc::new(Log::default());
    log.0
        .lock()
        .expect("lock")
        .extend((1..=4).map(|s| (*event(s, EventType::TIMER_TICK, "s", "u")).clone()));
    let (hub, _) = hub(log, HubConfig::default());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = tokio::spawn(hub.clone().run(Box::pin(Feed(rx))));
    // One runtime thread: the dispatcher runs until it waits on its feed,
    // having read the store's last seq.
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let mut joined = hub.subscribe(EventFilter::default(), None).expect("room");
    assert_eq!(joined.last_seq(), 4);
    tx.send(batch(&[event(5, EventType::TIMER_TICK, "s", "u")]))
        .expect("feed");
    assert_eq!(seqs(&ready(&mut joined).await), [5]);
    drop(tx);
    dispatcher.await.expect("dispatcher");
}

/// With `announce_on`, a batch's subscribers are woken by a task on that
/// runtime, not by the dispatching thread: until that runtime runs, a
/// waiting subscriber sleeps; once it runs, the subscriber gets the event.
#[test]
fn with_announce_on_subscribers_are_woken_by_a_task_on_that_runtime() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let (subscribers, announcer) = (runtime(), runtime());
    let (hub, _) = hub(Arc::default(), HubConfig::default());
    hub.announce_on(announcer.handle().clone());
    let mut sub = hub.subscribe(EventFilter::default(), None).expect("room");
    subscribers.block_on(async {
        let waiting = tokio::spawn(async move { sub.next().await.expect("next") });
        tokio::task::yield_now().await;
        hub.dispatch(&batch(&[event(1, EventType::TIMER_TICK, "s", "u")]));
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "woken before the announcer ran");
        std::thread::spawn(move || {
            announcer.block_on(async {
                for _ in 0..8 {
                    tokio::task::yield_now().await;
                }
            });
        })
        .join()
        .expect("announcer thread");
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), waiting)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(seqs(&[got]), [1]);
    });
}
