//! Retention: each event type kept for its own time (`RETENTION`), older
//! events deleted in the background, in bounded steps, by one node at a
//! time (a lease in the shared store).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ep_ports::{Deletion, EventStore, EventType, JobState, StoreError, Timestamp};

use crate::deleter::{Deleter, Unfinished};

/// The lease's name in [`JobState`].
pub const RETENTION_JOB: &str = "retention";
/// The longest time a type may be kept for (100 years): beyond, say
/// nothing and keep everything.
const MAX_AGE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// How long each event type is kept: `timer_tick=7d,question_viewed=90d,
/// *=365d`. A type without a rule of its own takes `*`'s; without `*`, it
/// is kept for ever.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    rules: Vec<(EventType, Duration)>,
    otherwise: Option<Duration>,
}

/// Why a `RETENTION` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRetention {
    /// A rule is not `type=age`.
    #[error("'{0}' is not TYPE=AGE (e.g. timer_tick=7d or *=365d)")]
    NotARule(String),
    /// An age is not a whole number of s, m, h or d above zero.
    #[error("'{0}' is not an age: a whole number above zero with a unit s, m, h or d (e.g. 90d), at most 100 years")]
    BadAge(String),
    /// A type that is not registered (a typo would keep its events for ever).
    #[error("'{name}' is not a registered event type (registered: {known})")]
    UnknownType {
        /// The name given.
        name: String,
        /// The registered names.
        known: String,
    },
    /// A type (or `*`) given twice.
    #[error("'{0}' is given twice")]
    Twice(String),
}

impl RetentionPolicy {
    /// Parses `type=age` rules separated by commas; `lookup` names the
    /// registered types (and `known` lists them for the error).
    ///
    /// # Errors
    /// [`BadRetention`] for the first rule that is not one.
    pub fn parse(
        text: &str,
        lookup: impl Fn(&str) -> Option<EventType>,
        known: impl Fn() -> String,
    ) -> Result<Self, BadRetention> {
        let mut policy = Self::default();
        for rule in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (name, age) = rule
                .split_once('=')
                .ok_or_else(|| BadRetention::NotARule(rule.to_owned()))?;
            let (name, age) = (name.trim(), parse_age(age.trim())?);
            if name == "*" {
                if policy.otherwise.replace(age).is_some() {
                    return Err(BadRetention::Twice(name.to_owned()));
                }
                continue;
            }
            let event_type = lookup(name).ok_or_else(|| BadRetention::UnknownType {
                name: name.to_owned(),
                known: known(),
            })?;
            if policy.rules.iter().any(|(t, _)| *t == event_type) {
                return Err(BadRetention::Twice(name.to_owned()));
            }
            policy.rules.push((event_type, age));
        }
        Ok(policy)
    }

    /// Whether it keeps everything (no rule, no `*`).
    pub fn keeps_everything(&self) -> bool {
        self.rules.is_empty() && self.otherwise.is_none()
    }

    /// How long events of `event_type` are kept (`None`: for ever).
    pub fn age_of(&self, event_type: EventType) -> Option<Duration> {
        self.rules
            .iter()
            .find(|(t, _)| *t == event_type)
            .map(|(_, age)| *age)
            .or(self.otherwise)
    }
}

/// `90d`, `12h`, `30m`, `45s`: a whole number above zero and a unit.
fn parse_age(text: &str) -> Result<Duration, BadRetention> {
    let bad = || BadRetention::BadAge(text.to_owned());
    let unit = text.chars().last().ok_or_else(bad)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    let unit_secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .filter(|s| *s > 0)
        .ok_or_else(bad)?;
    let age = Duration::from_secs(secs);
    if age > MAX_AGE {
        return Err(bad());
    }
    Ok(age)
}

/// What retention has done on this node, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Events deleted, by type, since start-up.
    pub deleted: BTreeMap<EventType, u64>,
    /// Passes this node ran to their end (holding the lease).
    pub passes: u64,
    /// Passes that stopped on a store error.
    pub failures: u64,
    /// When the last pass ended.
    pub last_pass: Option<Timestamp>,
}

/// The background job: at every interval, if this node holds the lease,
/// deletes each type's events older than its age.
pub(crate) struct Retention {
    pub(crate) policy: RetentionPolicy,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) jobs: Arc<dyn JobState>,
    pub(crate) deleter: Deleter,
    pub(crate) interval: Duration,
    /// This node's name as a lease holder.
    pub(crate) node: String,
    pub(crate) report: Arc<Mutex<RetentionReport>>,
}

impl Retention {
    /// How long a lease lasts: a node that dies hands over within it.
    fn lease_ttl(&self) -> Duration {
        (self.interval * 3).max(Duration::from_secs(30))
    }

    /// Runs for ever: a pass at once, then one every interval.
    pub(crate) async fn run(self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self
                .jobs
                .try_lease(RETENTION_JOB, &self.node, self.lease_ttl())
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "retention: cannot take its lease; next try in an interval");
                    continue;
                }
            }
            let outcome = self.pass().await;
            let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Ok(()) => report.passes += 1,
                Err(e) => {
                    report.failures += 1;
                    tracing::warn!(error = %e, "retention: a pass stopped; the next one goes on");
                }
            }
            report.last_pass = Some(Timestamp::now());
        }
    }

    /// One pass: every type with an age, oldest events first.
    pub(crate) async fn pass(&self) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut types: Vec<EventType> = self.policy.rules.iter().map(|(t, _)| *t).collect();
        if self.policy.otherwise.is_some() {
            // The types stored now (O(types) from the store's counts),
            // including ones no longer registered.
            for t in self.store.stats(now).await?.by_type {
                if !types.contains(&t.event_type) {
                    types.push(t.event_type);
                }
            }
        }
        for event_type in types {
            let Some(age) = self.policy.age_of(event_type) else {
                continue;
            };
            let cutoff = now.minus_micros(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
            let (deleted, stopped) = match self
                .deleter
                .delete(move |through| {
                    Deletion::through(through)
                        .of_type(event_type)
                        .before(cutoff)
                })
                .await
            {
                Ok(deleted) => (deleted, false),
                // The service stops: the next pass, on this node or another,
                // finishes what this one began.
                Err(Unfinished::Stopped { deleted }) => (deleted, true),
                Err(Unfinished::Store(e)) => return Err(e),
            };
            if deleted > 0 {
                tracing::info!(
                    event_type = event_type.as_str(),
                    deleted,
                    older_than = %cutoff,
                    "retention deleted events"
                );
                *self
                    .report
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .deleted
                    .entry(event_type)
                    .or_default() += deleted;
            }
            if stopped {
                return Ok(());
            }
            // A long pass keeps its lease.
            self.jobs
                .try_lease(RETENTION_JOB, &self.node, self.lease_ttl())
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use ep_ports::{MockEventStore, MockJobState, Stats, TypeStats};

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn parse(text: &str) -> Result<RetentionPolicy, BadRetention> {
        RetentionPolicy::parse(text, EventType::known, || "timer_tick, ...".to_owned())
    }

    #[test]
    fn rules_give_each_type_its_age_and_star_the_rest() {
        let policy = parse(" timer_tick=7d, question_viewed=90d ,*=365d").expect("valid");
        let day = Duration::from_secs(86_400);
        assert_eq!(policy.age_of(EventType::TIMER_TICK), Some(day * 7));
        assert_eq!(policy.age_of(EventType::QUESTION_VIEWED), Some(day * 90));
        assert_eq!(policy.age_of(EventType::QUIZ_STARTED), Some(day * 365));
        let partial = parse("timer_tick=30m").expect("valid");
        assert_eq!(
            partial.age_of(EventType::TIMER_TICK),
            Some(Duration::from_secs(1_800))
        );
        assert_eq!(
            partial.age_of(EventType::QUIZ_STARTED),
            None,
            "kept for ever"
        );
        assert!(parse("").expect("empty").keeps_everything());
        assert!(!partial.keeps_everything());
        assert!(!parse("*=1d").expect("valid").keeps_everything());
        assert_eq!(
            parse("*=36500d")
                .expect("100 years, the most")
                .age_of(EventType::TIMER_TICK),
            Some(DAY * 36_500)
        );
        assert_eq!(
            parse("*=45s,timer_tick=2h")
                .expect("valid")
                .age_of(EventType::TIMER_TICK),
            Some(Duration::from_secs(7_200))
        );
    }

    #[test]
    fn a_bad_rule_is_refused_naming_it() {
        for (text, expected) in [
            ("timer_tick", BadRetention::NotARule("timer_tick".into())),
            ("timer_tick=7", BadRetention::BadAge("7".into())),
            ("timer_tick=0d", BadRetention::BadAge("0d".into())),
            ("timer_tick=-1d", BadRetention::BadAge("-1d".into())),
            ("timer_tick=+1d", BadRetention::BadAge("+1d".into())),
            ("timer_tick=7w", BadRetention::BadAge("7w".into())),
            ("timer_tick=d", BadRetention::BadAge("d".into())),
            ("timer_tick=7é", BadRetention::BadAge("7é".into())),
            ("timer_tick=é", BadRetention::BadAge("é".into())),
            ("timer_tick=", BadRetention::BadAge(String::new())),
            ("timer_tick=36501d", BadRetention::BadAge("36501d".into())),
            (
                "timer_tick=99999999999999999999d",
                BadRetention::BadAge("99999999999999999999d".into()),
            ),
            (
                "timer_tick=1d,timer_tick=2d",
                BadRetention::Twice("timer_tick".into()),
            ),
            ("*=1d,*=2d", BadRetention::Twice("*".into())),
        ] {
            assert_eq!(parse(text), Err(expected), "{text}");
        }
        let unknown = parse("timer_tik=7d").expect_err("a typo");
        assert!(
            unknown
                .to_string()
                .contains("'timer_tik' is not a registered event type"),
            "{unknown}"
        );
    }

    /// A store holding events of `types` through seq 500, whose deletes
    /// find `deleted(deletion)` rows and record each deletion; its stats
    /// fail from the `fail_stats_from`th call on.
    fn store(
        types: &[EventType],
        deleted: fn(&Deletion) -> u64,
        seen: Arc<Mutex<Vec<Deletion>>>,
        fail_stats_from: u64,
    ) -> MockEventStore {
        let mut store = MockEventStore::new();
        let by_type: Vec<TypeStats> = types
            .iter()
            .map(|t| TypeStats {
                event_type: *t,
                count: 10,
                last_seen: Timestamp::now(),
            })
            .collect();
        let calls = AtomicU64::new(0);
        store.expect_stats().returning(move |_| {
            if calls.fetch_add(1, Ordering::SeqCst) + 1 >= fail_stats_from {
                return Err(StoreError::Unavailable("down".into()));
            }
            Ok(Stats {
                total_events: 10 * by_type.len() as u64,
                events_since: 0,
                by_type: by_type.clone(),
            })
        });
        store.expect_last_seq().returning(|| Ok(500));
        store.expect_delete_some().returning(move |what, _| {
            let n = deleted(&what);
            seen.lock().expect("seen").push(what);
            Ok(n)
        });
        store
    }

    /// Leases always held, each asked for `ttl`; counts the asks.
    fn jobs(ttl: Duration, holding: impl Fn(u64) -> bool + Send + 'static) -> MockJobState {
        let mut jobs = MockJobState::new();
        let asks = AtomicU64::new(0);
        jobs.expect_try_lease().returning(move |job, node, asked| {
            assert_eq!((job, node, asked), (RETENTION_JOB, "node-a", ttl));
            Ok(holding(asks.fetch_add(1, Ordering::SeqCst)))
        });
        jobs
    }

    fn retention(
        policy: &str,
        store: MockEventStore,
        jobs: MockJobState,
        interval: Duration,
    ) -> Retention {
        let store: Arc<dyn EventStore> = Arc::new(store);
        Retention {
            policy: parse(policy).expect("valid"),
            store: Arc::clone(&store),
            jobs: Arc::new(jobs),
            deleter: Deleter::new(store),
            interval,
            node: "node-a".into(),
            report: Arc::default(),
        }
    }

    /// An event of `event_type` stamped `age` ago.
    fn aged(event_type: EventType, age: Duration) -> ep_ports::Event {
        let mut event = crate::testing::event(1);
        event.event_type = event_type;
        event.timestamp = Timestamp::now().minus_micros(age.as_micros() as i64);
        event
    }

    /// Deletes of `quiz_started` find nothing, the others 2 rows.
    fn two_but_quizzes(what: &Deletion) -> u64 {
        if what.event_type == Some(EventType::QUIZ_STARTED) {
            0
        } else {
            2
        }
    }

    #[tokio::test]
    async fn a_pass_deletes_each_type_older_than_its_own_age_and_counts_what_went() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stored = [
            EventType::TIMER_TICK,
            EventType::QUIZ_STARTED,
            EventType::ANSWER_SUBMITTED,
        ];
        let r = retention(
            "timer_tick=7d,*=30d",
            store(&stored, two_but_quizzes, Arc::clone(&seen), u64::MAX),
            jobs(Duration::from_secs(180), |_| true),
            Duration::from_secs(60),
        );
        r.pass().await.expect("a pass");
        r.pass().await.expect("another");
        let seen = seen.lock().expect("seen").clone();
        // Each stored type once per pass, the typed rule's first.
        let types: Vec<_> = seen.iter().map(|d| d.event_type).collect();
        let once = [Some(stored[0]), Some(stored[1]), Some(stored[2])];
        assert_eq!(types, [once, once].concat());
        for d in &seen {
            assert_eq!(
                d.through_seq, 500,
                "events published meanwhile are not chased"
            );
            let event_type = d.event_type.expect("one type");
            let age = if event_type == EventType::TIMER_TICK {
                DAY * 7
            } else {
                DAY * 30
            };
            assert!(d.selects(&aged(event_type, age + Duration::from_secs(3_600))));
            assert!(!d.selects(&aged(event_type, age - Duration::from_secs(3_600))));
            let other = if event_type == EventType::TIMER_TICK {
                EventType::QUIZ_STARTED
            } else {
                EventType::TIMER_TICK
            };
            assert!(!d.selects(&aged(other, DAY * 365)), "its own type only");
        }
        let report = r.report.lock().expect("report").clone();
        // A type whose delete found nothing is not reported.
        assert_eq!(
            report.deleted,
            BTreeMap::from([(EventType::TIMER_TICK, 4), (EventType::ANSWER_SUBMITTED, 4)])
        );
    }

    /// Once the service begins to stop, a pass deletes nothing more and
    /// ends (the next pass, here or on another node, goes on from there).
    #[tokio::test]
    async fn a_pass_ends_quietly_once_deletes_are_stopped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let r = retention(
            "timer_tick=7d,*=30d",
            store(
                &[EventType::TIMER_TICK, EventType::QUIZ_STARTED],
                two_but_quizzes,
                Arc::clone(&seen),
                u64::MAX,
            ),
            jobs(Duration::from_secs(180), |_| true),
            Duration::from_secs(60),
        );
        r.deleter.stop();
        r.pass().await.expect("a stopped pass is no failure");
        assert!(seen.lock().expect("seen").is_empty(), "no step ran");
        assert!(r.report.lock().expect("report").deleted.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn it_runs_a_pass_each_interval_while_holding_the_lease_and_counts_failures() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Stats answer the first pass and fail the second.
        let store = store(&[EventType::TIMER_TICK], |_| 1, Arc::clone(&seen), 2);
        // The first ask is refused (another node holds it), the rest held.
        let r = retention(
            "*=1d",
            store,
            jobs(Duration::from_secs(180), |ask| ask > 0),
            Duration::from_secs(60),
        );
        let report = Arc::clone(&r.report);
        let task = tokio::spawn(r.run());
        let settle = || async {
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        };
        let read = || report.lock().expect("report").clone();
        settle().await;
        assert_eq!(read(), RetentionReport::default(), "not holding: no pass");
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
        let first = read();
        assert_eq!((first.passes, first.failures), (1, 0));
        assert_eq!(first.deleted, BTreeMap::from([(EventType::TIMER_TICK, 1)]));
        assert!(first.last_pass.is_some());
        tokio::time::advance(Duration::from_secs(60)).await;
        settle().await;
        let second = read();
        assert_eq!((second.passes, second.failures), (1, 1));
        assert_eq!(seen.lock().expect("seen").len(), 1);
        task.abort();
    }

    #[test]
    fn a_lease_outlives_three_intervals_and_at_least_30_s() {
        let r = |secs| {
            retention(
                "",
                MockEventStore::new(),
                MockJobState::new(),
                Duration::from_secs(secs),
            )
        };
        assert_eq!(r(60).lease_ttl(), Duration::from_secs(180));
        assert_eq!(r(1).lease_ttl(), Duration::from_secs(30));
    }
}
