//! The facade the driving adapters (REST, WebSocket) call: one method per use
//! case, each with its own error type.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ep_ports::{
    BroadcastError, Broadcaster, Event, EventId, EventStore, StoreError, Timestamp, TypeStats,
};

use crate::errors::{DeleteError, GetError, PublishError, QueryError, StatsError};
use crate::gauge::SubscriberGauge;
use crate::limits::Limits;
use crate::publish_request::PublishRequest;
use crate::query_params::{CheckedQuery, QueryParams};
use crate::router::{EventRouter, RouterStatus};
use crate::subscribe_request::Resume;
use crate::time_parse::{parse_instant, InstantError};
use crate::validation::{validate, FieldError, ValidEvent, ValidationErrors};

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

/// The event pipeline's use cases.
pub struct EventService {
    store: Arc<dyn EventStore>,
    broadcaster: Arc<dyn Broadcaster>,
    router: EventRouter,
    limits: Limits,
}

impl EventService {
    /// Wires the use cases to a store and a broadcaster and starts the writer
    /// on the current tokio runtime.
    pub fn start(
        store: Arc<dyn EventStore>,
        broadcaster: Arc<dyn Broadcaster>,
        limits: Limits,
    ) -> Self {
        let router = EventRouter::start(Arc::clone(&store), Arc::clone(&broadcaster), limits);
        Self {
            store,
            broadcaster,
            router,
            limits,
        }
    }

    /// Validates and queues an event; the returned future resolves once it is
    /// committed. Queueing happens now, before the future is polled, so a
    /// caller may queue many and await them in order (pipelining).
    ///
    /// # Errors
    /// `Invalid` or `QueueFull` / `ShuttingDown` at once; `Store` from the
    /// future if the commit failed.
    pub fn enqueue(
        &self,
        request: PublishRequest,
    ) -> Result<impl Future<Output = Result<Arc<Event>, PublishError>> + Send + 'static, PublishError>
    {
        self.enqueue_valid(self.validate(request)?)
    }

    /// The limits this service enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks a request against the registry and the limits without queueing
    /// it, so that a caller can apply its own admission rules (rate limits)
    /// to valid requests only.
    ///
    /// # Errors
    /// `Invalid` with every violation.
    pub fn validate(&self, request: PublishRequest) -> Result<ValidEvent, PublishError> {
        validate(request, &self.limits).map_err(PublishError::Invalid)
    }

    /// Queues an event that passed [`EventService::validate`]; see
    /// [`EventService::enqueue`].
    ///
    /// # Errors
    /// `QueueFull` or `ShuttingDown` at once; `Store` from the future.
    pub fn enqueue_valid(
        &self,
        event: ValidEvent,
    ) -> Result<impl Future<Output = Result<Arc<Event>, PublishError>> + Send + 'static, PublishError>
    {
        let receipt = self.router.submit(event)?;
        Ok(async move {
            match receipt.await {
                Ok(Ok(event)) => Ok(event),
                Ok(Err(e)) => Err(PublishError::Store(e)),
                Err(_) => Err(PublishError::Store(StoreError::Unavailable(
                    "the writer stopped before committing".into(),
                ))),
            }
        })
    }

    /// Validates an event, queues it and waits until it is committed.
    ///
    /// # Errors
    /// See [`EventService::enqueue`].
    pub async fn publish(&self, request: PublishRequest) -> Result<Arc<Event>, PublishError> {
        self.enqueue(request)?.await
    }

    /// The event with this id.
    ///
    /// # Errors
    /// `NotFound` for an unknown or malformed id.
    pub async fn get(&self, id: &str) -> Result<Event, GetError> {
        if !id.starts_with(EventId::PREFIX) || id.len() > EventId::MAX_LEN {
            return Err(GetError::NotFound);
        }
        self.store
            .get(&EventId::new(id))
            .await
            .map_err(GetError::Store)?
            .ok_or(GetError::NotFound)
    }

    /// The newest events matching the parameters.
    ///
    /// # Errors
    /// `Invalid` (422) or `BadTimestamp` (400) for bad parameters.
    pub async fn query(&self, params: QueryParams) -> Result<Vec<Event>, QueryError> {
        self.run_query(Self::check_query(params)?).await
    }

    /// Checks query parameters without running the query.
    ///
    /// # Errors
    /// `Invalid` (422) or `BadTimestamp` (400).
    pub fn check_query(params: QueryParams) -> Result<CheckedQuery, QueryError> {
        params.check()
    }

    /// Runs a query that passed [`EventService::check_query`].
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn run_query(&self, query: CheckedQuery) -> Result<Vec<Event>, QueryError> {
        match query {
            CheckedQuery::NothingMatches => Ok(Vec::new()),
            CheckedQuery::Run(query) => self.store.query(query).await.map_err(QueryError::Store),
        }
    }

    /// Totals over the store plus the router's live figures.
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn stats(&self) -> Result<StatsReport, StatsError> {
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

    /// Deletes every event, or those stamped before `before`.
    ///
    /// # Errors
    /// `BadTimestamp` when `before` is not an ISO 8601 instant.
    pub async fn delete(&self, before: Option<&str>) -> Result<u64, DeleteError> {
        self.delete_before(Self::parse_before(before)?).await
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

    /// Deletes every event, or those stamped strictly before `before`.
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn delete_before(&self, before: Option<Timestamp>) -> Result<u64, DeleteError> {
        self.store.delete(before).await.map_err(DeleteError::Store)
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
    /// `NotFound` when `last_event_id` names no stored event.
    pub async fn resume_point(&self, resume: &Resume) -> Result<u64, GetError> {
        match resume {
            Resume::AfterSeq(seq) => Ok(*seq),
            Resume::AfterEvent(id) => self.get(id).await.map(|e| e.seq),
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

    /// Stops accepting events and waits until every accepted one is committed.
    pub async fn shutdown(&self) {
        self.router.shutdown().await;
    }
}
