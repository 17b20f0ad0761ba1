//! The route table: every operation the service serves (path and method)
//! and the domain operation it performs, whose declaration says who may
//! call it and which rate limit it takes. A guarded operation's path,
//! method and guard are built from its entry ([`crate::served`]); the
//! `Allow` header of a 405 and the configuration-dependent parts of the
//! OpenAPI document are read from it; a test walks the router against it.

use ep_domain::{Operation as Action, RateClass};
use ep_ports::Role;
use warp::http::Method;

/// The prefix every path is also served under.
pub(crate) const PREFIX: &str = "/api/v1";

/// How an operation is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A plain HTTP request and answer.
    Rest,
    /// A WebSocket handshake: refusals after it are close codes, not statuses.
    WebSocket,
    /// A response that does not end (Server-Sent Events): refusals before
    /// it are statuses, its end an `error` event.
    Stream,
}

/// One path and method the service serves.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// The path without [`PREFIX`]; `{name}` stands for one segment.
    pub path: &'static str,
    /// The method.
    pub method: Method,
    /// The domain operation it performs (`None`: open to anyone, no limit).
    pub action: Option<Action>,
    /// REST or WebSocket.
    pub transport: Transport,
}

impl Operation {
    /// The role a caller needs, if any.
    pub fn role(&self) -> Option<Role> {
        self.action.map(Action::role)
    }

    /// The rate limit each call (each message, on `/ws/publish`) takes.
    pub fn rate(&self) -> Option<RateClass> {
        self.action.and_then(Action::rate_class)
    }
}

const fn op(
    path: &'static str,
    method: Method,
    action: Option<Action>,
    transport: Transport,
) -> Operation {
    Operation {
        path,
        method,
        action,
        transport,
    }
}

use Transport::{Rest, Stream, WebSocket};

/// Every operation, in the order the document lists them.
pub(crate) static OPERATIONS: [Operation; 23] = [
    op("/health", Method::GET, None, Rest),
    op("/readiness", Method::GET, None, Rest),
    op("/events", Method::POST, Some(Action::Publish), Rest),
    op("/events", Method::GET, Some(Action::Query), Rest),
    op("/events", Method::DELETE, Some(Action::Delete), Rest),
    op(
        "/events/batch",
        Method::POST,
        Some(Action::PublishBatch),
        Rest,
    ),
    op("/events/{id}", Method::GET, Some(Action::Get), Rest),
    op(
        "/users/{user_id}/events",
        Method::DELETE,
        Some(Action::Erase),
        Rest,
    ),
    op(
        "/caliper/{version}",
        Method::POST,
        Some(Action::CaliperPublish),
        Rest,
    ),
    op("/stats", Method::GET, Some(Action::Stats), Rest),
    op("/event-types", Method::GET, None, Rest),
    op("/metrics", Method::GET, Some(Action::Metrics), Rest),
    op("/openapi.json", Method::GET, None, Rest),
    op("/docs", Method::GET, None, Rest),
    op("/docs.js", Method::GET, None, Rest),
    op("/docs.css", Method::GET, None, Rest),
    op("/dashboard", Method::GET, None, Rest),
    op("/dashboard.js", Method::GET, None, Rest),
    op("/dashboard.css", Method::GET, None, Rest),
    op("/dashboard.svg", Method::GET, None, Rest),
    op(
        "/ws/publish",
        Method::GET,
        Some(Action::WsPublish),
        WebSocket,
    ),
    op(
        "/ws/subscribe",
        Method::GET,
        Some(Action::Subscribe),
        WebSocket,
    ),
    op("/stream", Method::GET, Some(Action::Stream), Stream),
];

/// The operations served at a request path (with or without [`PREFIX`],
/// with or without a trailing slash); a path that a template names
/// literally (`/events/batch`) is served by that template's operations
/// only, not by one with a `{name}` there (`/events/{id}`);
/// empty when no route has that path.
pub(crate) fn at(request_path: &str) -> impl Iterator<Item = &'static Operation> + '_ {
    let path = request_path
        .strip_prefix(PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(request_path);
    // As warp does, one trailing slash is ignored.
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let literal = OPERATIONS.iter().any(|op| op.path == path);
    OPERATIONS.iter().filter(move |op| {
        if literal {
            op.path == path
        } else {
            matches(op.path, path)
        }
    })
}

/// The `Allow` header for a request path: its methods, comma-separated.
pub(crate) fn allow(request_path: &str) -> Option<String> {
    let methods: Vec<&str> = at(request_path).map(|op| op.method.as_str()).collect();
    (!methods.is_empty()).then(|| methods.join(", "))
}

/// Whether `path` fits `template`, where `{name}` is one non-empty segment.
fn matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let fits = if want.starts_with('{') {
                    !got.is_empty()
                } else {
                    want == got
                };
                if !fits {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_a_path_under_both_prefixes() {
        assert_eq!(allow("/events").as_deref(), Some("POST, GET, DELETE"));
        assert_eq!(
            allow("/api/v1/events").as_deref(),
            Some("POST, GET, DELETE")
        );
        assert_eq!(allow("/api/v1/events/evt_1").as_deref(), Some("GET"));
        assert_eq!(allow("/health").as_deref(), Some("GET"));
        assert_eq!(allow("/ws/subscribe").as_deref(), Some("GET"));
        assert_eq!(allow("/events/").as_deref(), Some("POST, GET, DELETE"));
        assert_eq!(allow("/events//").as_deref(), None);
        assert_eq!(allow("/events/a/b").as_deref(), None);
        assert_eq!(allow("/api/v1").as_deref(), None);
        assert_eq!(allow("/api/v1health").as_deref(), None);
        assert_eq!(allow("/nowhere").as_deref(), None);
    }
}
