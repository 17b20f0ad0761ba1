//! `GET /openapi.json` (the API described in OpenAPI 3) and `GET /docs` (a
//! page pointing to it), as the old service served them.

use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use crate::reply::json_bytes;

const OPENAPI: &str = include_str!("../../static/openapi.json");
const DOCS: &str = include_str!("../../static/docs.html");

/// The documentation routes (open: no key needed).
pub(super) fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let openapi = warp::path("openapi.json")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| json_bytes(StatusCode::OK, OPENAPI.as_bytes().to_vec()));
    let docs = warp::path("docs")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| {
            let mut response = Response::new(DOCS.into());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        });
    openapi.or(docs).unify()
}
