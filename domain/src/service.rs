//! The facade the driving adapters (REST, WebSocket) call: one method per use
//! case, each with its own error type.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ep_ports::{
    BroadcastError, Broadcaster, Deletion, Event, EventExport, EventFilter, EventId, EventStore,
    JobState, ScopeField, StoreError, Timestamp, TypeStats,
};

use crate::access::{authorize, narrow, within, Caller, Denied, Operation, Refused};
use crate::deleter::Deleter;
use crate::errors::{DeleteError, GetError, PublishError, QueryError, StatsError};
use crate::event_types::EventTypes;
use crate::exporter::{ExportReport, Exporter};
use crate::field_errors::{FieldError, ValidationErrors};
use crate::gauge::SubscriberGauge;
use crate::limits::{Limits, MAX_ID_CHARS};
use crate::publish_request::PublishRequest;
use crate::query_params::{CheckedQuery, QueryParams};
use crate::rate_limit::{ClientRateLimits, RateLimitConfig};
use crate::retention::{Retention, RetentionPolicy, RetentionReport};
use crate::router::{EventRouter, RouterStatus};
use crate::subscribe_request::Resume;
use crate::time_parse::{parse_instant, InstantError};
use crate::validation::validate;
use crate::validation::ValidEvent;
use crate::writer::Published;

/// How long readiness waits for the store before calling it disconnected.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The window of `events_last_hour`.
const LAST_HOUR_MICROS: i64 = 3_600 * 1_000_000;

/// The answer of the stats use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsReport {
    /// Every stored event.
    pub total_events: u64,
    /// Events stamped within the last 60 minutes.
    pub events_last_hour: u64,
    /// Per type, highest count first.
    pub by_type: Vec<TypeStats>,
    /// Queue and subscriber figures.
    pub router: RouterStatus,
}

/// The answer of the readiness use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the store answered within the timeout.
    pub store_ok: bool,
    /// Why the last commit failed, while commits fail (a full disk): the
    /// store answers but stores nothing. Cleared by the next commit that
    /// succeeds, or by a write probe that does.
    pub commit_failure: Option<StoreError>,
    /// Whether the broadcaster's transport is connected. While it is not,
    /// REST works and events stay committed, but live delivery to other
    /// nodes waits for it (and is filled from the store once it is back).
    pub broadcaster: Result<(), BroadcastError>,
    /// Queue and subscriber figures.
    pub router: RouterStatus,
}

impl Readiness {
    /// Whether every dependency serves: the store answers and commits, the
    /// broadcaster is connected.
    pub fn is_ready(&self) -> bool {
        self.store_ok && self.commit_failure.is_none() && self.broadcaster.is_ok()
    }
}

/// The event pipeline's use cases. Each takes the [`Caller`] and decides
/// what it may do: its role, its scope (applied to what it publishes and to
/// what it sees), and its rate limit (taken only once a request is known
/// to be valid and allowed, so refused requests cost nothing).
pub struct EventService {
    store: Arc<dyn EventStore>,
    broadcaster: Arc<dyn Broadcaster>,
    router: EventRouter,
    limits: Limits,
    event_types: Arc<EventTypes>,
    rate_limits: ClientRateLimits,
    deleter: Deleter,
    retention: Arc<Mutex<RetentionReport>>,
    export: Arc<Mutex<ExportReport>>,
}

impl EventService {
    /// Wires the use cases to a store and a broadcaster and starts the writer
    /// on the current tokio runtime.
    pub fn start(
        store: Arc<dyn EventStore>,
        broadcaster: Arc<dyn Broadcaster>,
        limits: Limits,
        rate_limits: RateLimitConfig,
    ) -> Self {
        let router = EventRouter::start(Arc::clone(&store), Arc::clone(&broadcaster), limits);
        Self {
            deleter: Deleter::new(Arc::clone(&store)),
            store,
            broadcaster,
            router,
            limits,
            event_types: Arc::new(EventTypes::default()),
            rate_limits: ClientRateLimits::new(rate_limits),
            retention: Arc::default(),
            export: Arc::default(),
        }
    }

    /// Starts retention on the current tokio runtime: every `interval`, if
    /// this node (`node`, unique among the nodes) holds the retention lease
    /// in `jobs`, each type's events older than its age under `policy` are
    /// deleted in bounded steps (one delete at a time with the others of
    /// this node). `None` when the policy keeps everything.
    pub fn start_retention(
        &self,
        policy: RetentionPolicy,
        jobs: Arc<dyn JobState>,
        interval: Duration,
        node: String,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if policy.keeps_everything() {
            return None;
        }
        let retention = Retention {
            policy,
            store: Arc::clone(&self.store),
            jobs,
            deleter: self.deleter.clone(),
            interval,
            node,
            report: Arc::clone(&self.retention),
        };
        Some(tokio::spawn(retention.run()))
    }

    /// Starts the export job to `export` on the current tokio runtime: it
    /// follows the store by seq from the cursor saved in `jobs` (from the
    /// first event the first time) while this node (`node`) holds the
    /// job's lease, and sends each page of events, at least once.
    pub fn start_export(
        &self,
        export: Arc<dyn EventExport>,
        jobs: Arc<dyn JobState>,
        node: String,
    ) -> tokio::task::JoinHandle<()> {
        let exporter = Exporter {
            store: Arc::clone(&self.store),
            jobs,
            export,
            node,
            report: Arc::clone(&self.export),
            renewed: None,
        };
        tokio::spawn(exporter.run())
    }

    /// What the export job has done on this node.
    pub fn export_report(&self) -> ExportReport {
        self.export
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What retention has done on this node.
    pub fn retention_report(&self) -> RetentionReport {
        self.retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Accepts the types of `event_types` (and checks their payloads' schemas)
    /// instead of the contract's 15 without schemas.
    #[must_use]
    pub fn with_event_types(mut self, event_types: Arc<EventTypes>) -> Self {
        self.event_types = event_types;
        self
    }

    /// The registry of event types this service accepts.
    pub fn event_types(&self) -> &Arc<EventTypes> {
        &self.event_types
    }

    /// The limits this service enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `caller` may perform `operation` now, taking one request
    /// from its allowance: for operations that are not a use case here
    /// (the metrics text).
    ///
    /// # Errors
    /// `Denied` or `RateLimited`.
    pub fn admit(&self, caller: &Caller, operation: Operation) -> Result<(), Refused> {
        authorize(&caller.principal, operation)?;
        self.take_allowance(caller, operation)
    }

    fn take_allowance(&self, caller: &Caller, operation: Operation) -> Result<(), Refused> {
        match operation.rate_class() {
            Some(class) => Ok(self.rate_limits.check(caller, class)?),
            None => Ok(()),
        }
    }

    /// Validates an event, checks it lies inside the caller's scope, takes
    /// it from the caller's allowance for `operation` (a REST or a
    /// WebSocket publish) and queues it; the returned future resolves once
    /// it is committed. Queueing happens now, before the future is polled,
    /// so a caller may queue many and await them in order (pipelining).
    ///
    /// # Errors
    /// At once: `Refused` (no `publish` role, outside the scope, over the
    /// limit), `Invalid`, `QueueFull`, `ShuttingDown`; from the future:
    /// `Store` if the commit failed.
    pub fn publish(
        &self,
        caller: &Caller,
        request: PublishRequest,
        operation: Operation,
    ) -> Result<impl Future<Output = Result<Published, PublishError>> + Send + 'static, PublishError>
    {
        authorize(&caller.principal, operation).map_err(Refused::from)?;
        let event = self.admit_one(caller, request, operation)?;
        let receipt = self.router.submit(event)?;
        Ok(async move {
            match receipt.await {
                Ok(Ok(stored)) => Published::from_stored(stored),
                Ok(Err(e)) => Err(PublishError::Store(e)),
                Err(_) => Err(PublishError::Store(StoreError::Unavailable(
                    "the writer stopped before committing".into(),
                ))),
            }
        })
    }

    /// Publishes several events at once (`POST /events/batch`): each is
    /// validated, checked against the scope and taken from the caller's
    /// allowance for `operation` in turn, and the ones that pass are
    /// committed in one transaction. The future gives one outcome per
    /// request, in order: the stored event, or why that one was refused.
    ///
    /// # Errors
    /// At once, for the whole batch (nothing queued): `Refused` when the
    /// caller may not publish at all, `Invalid` for more than
    /// `max_batch_events` requests, `QueueFull`, `ShuttingDown`; from the
    /// future: `Store` when the commit failed (none of them is stored).
    #[allow(clippy::type_complexity)]
    pub fn publish_batch(
        &self,
        caller: &Caller,
        requests: Vec<PublishRequest>,
        operation: Operation,
    ) -> Result<
        impl Future<Output = Result<Vec<Result<Published, PublishError>>, PublishError>>
            + Send
            + 'static,
        PublishError,
    > {
        authorize(&caller.principal, operation).map_err(Refused::from)?;
        self.within_batch_limit(requests.len(), &["body"])?;
        let mut outcomes: Vec<Option<PublishError>> = Vec::with_capacity(requests.len());
        let mut accepted = Vec::with_capacity(requests.len());
        for request in requests {
            match self.admit_one(caller, request, operation) {
                Ok(event) => {
                    accepted.push(event);
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(e)),
            }
        }
        let receipt = if accepted.is_empty() {
            None
        } else {
            Some(self.router.submit_group(accepted, false)?)
        };
        Ok(async move {
            let mut stored = match receipt {
                None => Vec::new().into_iter(),
                Some(receipt) => match receipt.await {
                    Ok(Ok(events)) => events.into_iter(),
                    Ok(Err(e)) => return Err(PublishError::Store(e)),
                    Err(_) => {
                        return Err(PublishError::Store(StoreError::Unavailable(
                            "the writer stopped before committing".into(),
                        )))
                    }
                },
            };
            Ok(outcomes
                .into_iter()
                .map(|refused| match refused {
                    Some(e) => Err(e),
                    None => stored.next().map_or_else(
                        || {
                            Err(PublishError::Store(StoreError::Unavailable(
                                "the store returned fewer events than it was given".into(),
                            )))
                        },
                        Published::from_stored,
                    ),
                })
                .collect())
        })
    }

    /// Publishes several events all together or none (an envelope of
    /// another format, say a Caliper envelope, whose events are one
    /// message): every one is validated and checked against the scope
    /// before any is taken from the caller's allowance for `operation`, and
    /// they are committed in one transaction. The future gives the stored
    /// events (or, for a repeat of an idempotency key, the first ones), in
    /// order.
    ///
    /// # Errors
    /// At once: `Refused`; `Invalid` with every broken rule of every event,
    /// each `loc` under `["body", "data", <index>]` (nothing queued); for
    /// more than `max_batch_events` events; `QueueFull`, `ShuttingDown`.
    /// From the future: `Store` (none of them is stored) or `Conflict`: an
    /// event's idempotency key held by an event of other content (or given
    /// twice in `requests` with other content); none of them is stored.
    pub fn publish_all(
        &self,
        caller: &Caller,
        requests: Vec<PublishRequest>,
        operation: Operation,
    ) -> Result<
        impl Future<Output = Result<Vec<Published>, PublishError>> + Send + 'static,
        PublishError,
    > {
        authorize(&caller.principal, operation).map_err(Refused::from)?;
        self.within_batch_limit(requests.len(), &["body", "data"])?;
        let mut events = Vec::with_capacity(requests.len());
        let mut broken = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            match self.check_one(caller, request) {
                Ok(event) => events.push(event),
                Err(PublishError::Invalid(errors)) => {
                    broken.extend(errors.0.into_iter().map(|mut e| {
                        let rest = if e.loc.first().map(String::as_str) == Some("body") {
                            e.loc.split_off(1)
                        } else {
                            std::mem::take(&mut e.loc)
                        };
                        e.loc = ["body".to_owned(), "data".to_owned(), i.to_string()]
                            .into_iter()
                            .chain(rest)
                            .collect();
                        e
                    }));
                }
                Err(other) => return Err(other),
            }
        }
        if !broken.is_empty() {
            return Err(PublishError::Invalid(ValidationErrors(broken)));
        }
        for _ in &events {
            self.take_allowance(caller, operation)?;
        }
        let receipt = if events.is_empty() {
            None
        } else {
            Some(self.router.submit_group(events, true)?)
        };
        Ok(async move {
            let Some(receipt) = receipt else {
                return Ok(Vec::new());
            };
            match receipt.await {
                Ok(Ok(stored)) => Published::all_or_none(stored),
                Ok(Err(e)) => Err(PublishError::Store(e)),
                Err(_) => Err(PublishError::Store(StoreError::Unavailable(
                    "the writer stopped before committing".into(),
                ))),
            }
        })
    }

    /// `Invalid` at `loc` when `n` events are more than one request may
    /// carry (`MAX_BATCH_EVENTS`).
    fn within_batch_limit(&self, n: usize, loc: &[&str]) -> Result<(), PublishError> {
        let max = self.limits.max_batch_events;
        if n <= max {
            return Ok(());
        }
        Err(PublishError::Invalid(ValidationErrors::one(
            FieldError::new(
                loc,
                format!("At most {max} events at once (MAX_BATCH_EVENTS); this has {n}"),
                "too_long",
            ),
        )))
    }

    /// One request of a batch: valid, inside the scope, within the allowance.
    fn admit_one(
        &self,
        caller: &Caller,
        request: PublishRequest,
        operation: Operation,
    ) -> Result<ValidEvent, PublishError> {
        let event = self.check_one(caller, request)?;
        self.take_allowance(caller, operation)?;
        Ok(event)
    }

    /// One request: valid and inside the caller's scope, its idempotency
    /// key in the caller's own space.
    fn check_one(
        &self,
        caller: &Caller,
        request: PublishRequest,
    ) -> Result<ValidEvent, PublishError> {
        let mut event =
            validate(request, &self.limits, &self.event_types).map_err(PublishError::Invalid)?;
        // Each caller's keys are its own: another's key never answers with
        // its event (`key:<name>`, `sub:<sub>`; one space for the legacy key
        // and for anonymous callers).
        event.idempotency_key = event.idempotency_key.map(|key| {
            let space = caller.principal.identity.rate_key();
            format!("{}/{key}", space.as_deref().unwrap_or("shared"))
        });
        within(
            &caller.principal.scope,
            [
                (ScopeField::EventType, Some(event.event_type.as_str())),
                (ScopeField::Source, Some(event.source.as_str())),
                (ScopeField::SessionId, event.session_id.as_deref()),
                (ScopeField::UserId, event.user_id.as_deref()),
            ],
        )
        .map_err(Refused::from)?;
        Ok(event)
    }

    /// The event with this id, if it lies inside the caller's scope: one
    /// outside it is not found (its existence is not revealed).
    ///
    /// # Errors
    /// `NotFound` for an unknown, malformed or out-of-scope id; `Refused`.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Event, GetError> {
        authorize(&caller.principal, Operation::Get).map_err(Refused::from)?;
        self.take_allowance(caller, Operation::Get)?;
        self.find(caller, id).await
    }

    /// The event with this id inside the caller's scope, taking no allowance.
    async fn find(&self, caller: &Caller, id: &str) -> Result<Event, GetError> {
        if !id.starts_with(EventId::PREFIX) || id.len() > EventId::MAX_LEN {
            return Err(GetError::NotFound);
        }
        self.store
            .get(&EventId::new(id))
            .await
            .map_err(GetError::Store)?
            .filter(|event| caller.principal.scope.allows(event))
            .ok_or(GetError::NotFound)
    }

    /// The newest events matching the parameters, within the caller's
    /// scope. A parameter naming a value outside the scope is refused.
    ///
    /// # Errors
    /// `Invalid` (422) or `BadTimestamp` (400) for bad parameters;
    /// `Refused`; `Store`.
    pub async fn query(
        &self,
        caller: &Caller,
        params: QueryParams,
    ) -> Result<Vec<Event>, QueryError> {
        authorize(&caller.principal, Operation::Query).map_err(Refused::from)?;
        let named = [
            (ScopeField::EventType, params.event_type.clone()),
            (ScopeField::SessionId, params.session_id.clone()),
            (ScopeField::UserId, params.user_id.clone()),
        ];
        let checked = Self::check_query(params)?;
        let scope = &caller.principal.scope;
        within(
            scope,
            named
                .iter()
                .filter(|(_, value)| value.is_some())
                .map(|(field, value)| (*field, value.as_deref())),
        )
        .map_err(Refused::from)?;
        self.take_allowance(caller, Operation::Query)?;
        match checked {
            CheckedQuery::NothingMatches => Ok(Vec::new()),
            CheckedQuery::Run(mut query) => {
                query.scope = scope.clone();
                self.store.query(query).await.map_err(QueryError::Store)
            }
        }
    }

    /// Checks query parameters without running the query.
    ///
    /// # Errors
    /// `Invalid` (422) or `BadTimestamp` (400).
    pub fn check_query(params: QueryParams) -> Result<CheckedQuery, QueryError> {
        params.check()
    }

    /// The filter a subscriber gets: what it asked (`asked_types` as it
    /// named them) narrowed to its scope.
    ///
    /// # Errors
    /// `Denied` without the `read` role or for a filter naming a value
    /// outside the scope.
    pub fn subscription_filter(
        &self,
        caller: &Caller,
        asked_types: &[String],
        filter: EventFilter,
    ) -> Result<EventFilter, Denied> {
        authorize(&caller.principal, Operation::Subscribe)?;
        narrow(&caller.principal.scope, asked_types, filter)
    }

    /// Totals over the store plus the router's live figures.
    ///
    /// # Errors
    /// `Refused` (a restricted or non-reading caller); `Store`.
    pub async fn stats(&self, caller: &Caller) -> Result<StatsReport, StatsError> {
        self.admit(caller, Operation::Stats)?;
        let hour_ago = Timestamp::now().minus_micros(LAST_HOUR_MICROS);
        let stats = self
            .store
            .stats(hour_ago)
            .await
            .map_err(StatsError::Store)?;
        Ok(StatsReport {
            total_events: stats.total_events,
            events_last_hour: stats.events_since,
            by_type: stats.by_type,
            router: self.router.status(),
        })
    }

    /// Deletes every event, or those stamped strictly before `before` (an
    /// ISO 8601 instant), in steps that each hold the store's writer for a
    /// few milliseconds, so publishes go on meanwhile. Of the events
    /// published while it runs none is deleted. One delete at a time: a
    /// second waits for the first. It runs to its end even if the caller
    /// stops waiting.
    ///
    /// # Errors
    /// `BadTimestamp` / `Invalid` for a bad `before`; `Refused` (only an
    /// unrestricted admin may delete); `Interrupted` when the service
    /// begins to stop meanwhile; `Store`.
    pub async fn delete(&self, caller: &Caller, before: Option<&str>) -> Result<u64, DeleteError> {
        authorize(&caller.principal, Operation::Delete).map_err(Refused::from)?;
        let before = Self::parse_before(before)?;
        self.take_allowance(caller, Operation::Delete)?;
        self.deleter
            .delete(move |through| {
                let all = Deletion::through(through);
                match before {
                    Some(b) => all.before(b),
                    None => all,
                }
            })
            .await
            .map_err(DeleteError::from)
    }

    /// Erases every event of the student `user_id`, of every type, in steps
    /// as [`EventService::delete`] does; returns how many. Idempotent: a
    /// repeat finds none (0). Events published for the student after the
    /// erasure starts are kept: the erasure covers what was stored when it
    /// was asked.
    ///
    /// # Errors
    /// `Refused` (an admin, restricted to students at most, the student in
    /// its scope); `Invalid` for an empty or too long `user_id`;
    /// `Interrupted` when the service begins to stop meanwhile; `Store`.
    pub async fn erase(&self, caller: &Caller, user_id: &str) -> Result<u64, DeleteError> {
        authorize(&caller.principal, Operation::Erase).map_err(Refused::from)?;
        if user_id.is_empty() || user_id.chars().count() > MAX_ID_CHARS {
            return Err(DeleteError::Invalid(ValidationErrors::one(
                FieldError::new(
                    &["path", "user_id"],
                    format!("user_id must be 1 to {MAX_ID_CHARS} characters"),
                    "string_length",
                ),
            )));
        }
        within(
            &caller.principal.scope,
            [(ScopeField::UserId, Some(user_id))],
        )
        .map_err(Refused::from)?;
        self.take_allowance(caller, Operation::Erase)?;
        let user = user_id.to_owned();
        self.deleter
            .delete(move |through| Deletion::through(through).of_user(user))
            .await
            .map_err(DeleteError::from)
    }

    /// Parses the `before` parameter of a delete.
    ///
    /// # Errors
    /// `BadTimestamp` when it is not an ISO 8601 instant, `Invalid` when it
    /// is one outside years 0000-9999.
    pub fn parse_before(before: Option<&str>) -> Result<Option<Timestamp>, DeleteError> {
        before
            .map(|text| {
                parse_instant(text).map_err(|e| match e {
                    InstantError::Unparseable => DeleteError::BadTimestamp("before"),
                    InstantError::OutOfRange => {
                        DeleteError::Invalid(ValidationErrors::one(FieldError::new(
                            &["query", "before"],
                            e.to_string(),
                            "datetime_out_of_range",
                        )))
                    }
                })
            })
            .transpose()
    }

    /// Whether the store answers, within a short timeout, whether its
    /// commits succeed, and whether the broadcaster is connected. While they fail, a write probe (at most one a
    /// second) learns whether they would succeed now, so that a store that
    /// recovers is seen to even when no publisher is left to try.
    pub async fn readiness(&self) -> Readiness {
        let store_ok = matches!(
            tokio::time::timeout(PING_TIMEOUT, self.store.ping()).await,
            Ok(Ok(()))
        );
        let health = self.router.health();
        if store_ok && health.failure().is_some() && health.probe_due() {
            match tokio::time::timeout(PING_TIMEOUT, self.store.probe_write()).await {
                Ok(Ok(())) => health.succeeded(),
                Ok(Err(e)) => health.failed(&e),
                Err(_) => {}
            }
        }
        let broadcaster = match tokio::time::timeout(PING_TIMEOUT, self.broadcaster.ping()).await {
            Ok(answer) => answer,
            Err(_) => Err(BroadcastError::Unavailable(format!(
                "no answer within {PING_TIMEOUT:?}"
            ))),
        };
        Readiness {
            store_ok,
            commit_failure: health.failure(),
            broadcaster,
            router: self.router.status(),
        }
    }

    /// The seq a resuming subscriber's replay starts after.
    ///
    /// # Errors
    /// `NotFound` when `last_event_id` names no stored event inside the
    /// caller's scope.
    pub async fn resume_point(&self, caller: &Caller, resume: &Resume) -> Result<u64, GetError> {
        match resume {
            Resume::AfterSeq(seq) => Ok(*seq),
            Resume::AfterEvent(id) => self.find(caller, id).await.map(|e| e.seq),
        }
    }

    /// The live-subscription count this service reports, for the fan-out hub.
    pub fn subscriber_gauge(&self) -> SubscriberGauge {
        self.router.subscriber_gauge()
    }

    /// The router, for live figures.
    pub fn router(&self) -> &EventRouter {
        &self.router
    }

    /// Ends every delete under way (an erasure, retention's) at its next
    /// step, and refuses those asked from now on: called as the service
    /// begins to stop, so that a long delete's caller gets an answer
    /// ([`DeleteError::Interrupted`], with the count so far) before the
    /// connections close, rather than a closed connection.
    pub fn stop_deletes(&self) {
        self.deleter.stop();
    }

    /// Stops accepting events and waits until every accepted one is committed.
    pub async fn shutdown(&self) {
        self.router.shutdown().await;
    }
}
