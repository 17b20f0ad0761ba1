//! Routes built from the table: an operation's path and method, and for a
//! guarded operation its guard, are all read from its one entry in
//! [`OPERATIONS`], so a handler cannot be served at one path and guarded
//! as another operation.

use std::net::SocketAddr;

use ep_domain::{Caller, Operation as Action};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::Filter;

use crate::admission::guard;
use crate::api_error::ApiError;
use crate::state::AppState;
use crate::table::{Operation, OPERATIONS};

/// The `{name}` segments of a request's path, in order.
pub(crate) type Segments = Vec<String>;

/// The table's entry for `action`.
///
/// # Panics
/// At start-up, when routes are built, if the table has no entry for
/// `action` (a test builds every route).
pub(crate) fn entry(action: Action) -> &'static Operation {
    OPERATIONS
        .iter()
        .find(|op| op.action == Some(action))
        .unwrap_or_else(|| panic!("the route table has no entry for {action:?}"))
}

/// Matches `entry`'s path (from where the filter is mounted: `/api/v1` or
/// the root) and method, extracting its `{name}` segments. As with warp's
/// own filters, another path is a 404 and another method on the path a 405.
pub(crate) fn at(entry: &'static Operation) -> BoxedFilter<(Segments,)> {
    let mut path = warp::any().map(Segments::new).boxed();
    for segment in entry.path.split('/').filter(|s| !s.is_empty()) {
        path = if segment.starts_with('{') {
            path.and(warp::path::param::<String>())
                .map(|mut segments: Segments, value: String| {
                    segments.push(value);
                    segments
                })
                .boxed()
        } else {
            path.and(warp::path(segment)).boxed()
        };
    }
    let method = match entry.method {
        Method::GET => warp::get().boxed(),
        Method::POST => warp::post().boxed(),
        Method::DELETE => warp::delete().boxed(),
        // The table serves no other method.
        _ => warp::any()
            .and_then(|| async { Err::<(), _>(warp::reject::not_found()) })
            .untuple_one()
            .boxed(),
    };
    let path = path.and(warp::path::end()).and(method);
    if !entry.path.contains('{') {
        return path.boxed();
    }
    // A `{name}` segment does not take a path another entry names
    // literally: `GET /events/batch` is not the event `batch`.
    path.and(warp::path::full())
        .and_then(
            move |segments: Segments, full: warp::path::FullPath| async move {
                if crate::table::at(full.as_str()).any(|op| std::ptr::eq(op, entry)) {
                    Ok(segments)
                } else {
                    Err(warp::reject::not_found())
                }
            },
        )
        .boxed()
}

/// A request for one guarded operation that its guard let through.
pub(crate) struct Admitted {
    /// The service.
    pub state: AppState,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The operation, as the table declares it.
    pub action: Action,
    /// Who calls.
    pub caller: Caller,
}

impl Admitted {
    /// `error` as this request's answer, counted in the metrics (by rate
    /// class and caller) when it is a rate limit's refusal.
    pub(crate) fn failed(&self, error: impl Into<ApiError>) -> ApiError {
        let error = error.into();
        if let (true, Some(class)) = (error.is_rate_limited(), self.action.rate_class()) {
            crate::metrics::rate_limited(class, self.caller.principal.identity.label());
        }
        error
    }
}

/// Matches the operation `action` (its entry's path and method) and runs
/// its guard: the credential, then the domain's decision on its role. A
/// refusal (401, 403) is the handler's to answer, before it reads anything
/// else of the request.
pub(crate) fn admitted(
    state: AppState,
    action: Action,
) -> BoxedFilter<(Segments, Result<Admitted, ApiError>)> {
    at(entry(action))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .map(
            move |segments, headers: HeaderMap, remote: Option<SocketAddr>| {
                let admitted = guard(&state, action, &headers, remote).map(|caller| Admitted {
                    state: state.clone(),
                    headers,
                    action,
                    caller,
                });
                (segments, admitted)
            },
        )
        .untuple_one()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation the domain declares.
    const EVERY: [Action; 11] = [
        Action::Publish,
        Action::PublishBatch,
        Action::WsPublish,
        Action::CaliperPublish,
        Action::Erase,
        Action::Query,
        Action::Get,
        Action::Stats,
        Action::Metrics,
        Action::Delete,
        Action::Subscribe,
    ];

    #[test]
    fn every_domain_operation_has_exactly_one_entry() {
        for action in EVERY {
            let entries = OPERATIONS
                .iter()
                .filter(|op| op.action == Some(action))
                .count();
            assert_eq!(entries, 1, "{action:?}");
            assert_eq!(entry(action).action, Some(action));
        }
    }

    #[tokio::test]
    async fn every_entry_s_filter_matches_its_own_method_and_path() {
        for op in OPERATIONS.iter().filter(|op| op.action.is_some()) {
            let path = op.path.replace("{id}", "evt_1");
            let filter = at(op);
            let own = warp::test::request()
                .method(op.method.as_str())
                .path(&path)
                .filter(&filter)
                .await;
            assert!(own.is_ok(), "{} {path}", op.method);
            let other = if op.method == Method::PUT {
                "PATCH"
            } else {
                "PUT"
            };
            let refused = warp::test::request()
                .method(other)
                .path(&path)
                .filter(&filter)
                .await;
            assert!(refused.is_err(), "{other} {path}");
        }
    }

    #[tokio::test]
    async fn an_entry_s_filter_matches_its_path_and_method_only() {
        let get = at(entry(Action::Get));
        let matched = warp::test::request()
            .method("GET")
            .path("/events/evt_1")
            .filter(&get)
            .await;
        assert_eq!(matched.ok(), Some(vec!["evt_1".to_owned()]));
        for (method, path) in [
            ("DELETE", "/events/evt_1"),
            ("GET", "/events"),
            ("GET", "/events/evt_1/more"),
            ("GET", "/stats"),
        ] {
            let refused = warp::test::request()
                .method(method)
                .path(path)
                .filter(&get)
                .await;
            assert!(refused.is_err(), "{method} {path}");
        }
        let publish = at(entry(Action::Publish));
        let matched = warp::test::request()
            .method("POST")
            .path("/events")
            .filter(&publish)
            .await;
        assert_eq!(matched.ok(), Some(Vec::new()));
    }
}
