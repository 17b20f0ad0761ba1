//! CORS as the old service did it: allowed origins are echoed (or `*`), a
//! request from another origin is still served, only without
//! `Access-Control-Allow-Origin`, and preflights are answered on every path.

use warp::http::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, VARY};
use warp::http::StatusCode;
use warp::reply::Response;

/// Allowed origins (`CORS_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
}

impl Default for CorsPolicy {
    fn default() -> Self {
        Self::new(["*"])
    }
}

impl CorsPolicy {
    /// From a list of origins; `*` allows any.
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Self {
        let origins: Vec<String> = origins
            .into_iter()
            .map(|o| o.as_ref().trim().to_owned())
            .collect();
        Self {
            any: origins.iter().any(|o| o == "*"),
            origins,
        }
    }

    /// Whether every origin is allowed (`*`).
    pub(crate) fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether `origin` is allowed (always, with `*`).
    pub(crate) fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.iter().any(|o| o == origin)
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if allowed.
    fn allow(&self, origin: &str) -> Option<HeaderValue> {
        if self.any {
            Some(HeaderValue::from_static("*"))
        } else if self.allows(origin) {
            HeaderValue::from_str(origin).ok()
        } else {
            None
        }
    }

    /// Adds the CORS headers a response to a request from `origin` carries.
    pub(crate) fn apply(&self, response: &mut Response, origin: Option<&str>) {
        let headers = response.headers_mut();
        if !self.any {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allowed) = origin.and_then(|o| self.allow(o)) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
    }

    /// The answer to a preflight from `origin`: 200, with the allowed methods
    /// and headers when the origin is allowed, without any CORS header (so
    /// the browser refuses) when it is not.
    pub(crate) fn preflight(&self, origin: &str) -> Response {
        let mut response = Response::new("OK".into());
        *response.status_mut() = StatusCode::OK;
        if self.allow(origin).is_some() {
            let headers = response.headers_mut();
            headers.insert(
                "access-control-allow-methods",
                HeaderValue::from_static("GET, POST, DELETE"),
            );
            headers.insert(
                "access-control-allow-headers",
                HeaderValue::from_static("Content-Type, X-API-Key, Authorization, Idempotency-Key"),
            );
            headers.insert("access-control-max-age", HeaderValue::from_static("600"));
        }
        self.apply(&mut response, Some(origin));
        response
    }
}
