//! `GET /openapi.json` (the API in OpenAPI 3.1, generated for this node's
//! configuration) and `GET /docs` (a page of our own that lists every
//! operation from that document and lets a reader try a publish and a
//! query), with the page's script and style as files of their own: the
//! Content-Security-Policy (`default-src 'self'`) forbids inline ones.

use bytes::Bytes;
use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

const PAGE: &str = include_str!("../../static/docs.html");
const SCRIPT: &str = include_str!("../../static/docs.js");
const STYLE: &str = include_str!("../../static/docs.css");

/// The documentation routes (open: no key needed), serving `document`
/// (this node's OpenAPI document, as JSON).
pub(super) fn routes(
    document: Vec<u8>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let json = Bytes::from(document);
    let file = |name: &'static str, answer: fn() -> Response| {
        warp::path(name)
            .and(warp::path::end())
            .and(warp::get())
            .map(answer)
    };
    warp::path("openapi.json")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || openapi(json.clone()))
        .or(file("docs", docs))
        .unify()
        .or(file("docs.js", script))
        .unify()
        .or(file("docs.css", style))
        .unify()
}

/// A `200` with `body` as `content_type`.
pub(super) fn text(body: impl Into<Bytes>, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into().into());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "docs",
    responses((status = 200, description = "The API in OpenAPI 3.1, as this node is configured",
        content_type = "application/json", body = Object))
)]
pub(super) fn openapi(document: Bytes) -> Response {
    text(document, "application/json")
}

/// The API's documentation, for people: every operation, and forms to try.
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    operation_id = "docs",
    tag = "docs",
    responses((status = 200, description = "An HTML page", content_type = "text/html; charset=utf-8", body = String))
)]
pub(super) fn docs() -> Response {
    text(PAGE, "text/html; charset=utf-8")
}

/// The script of the documentation page.
#[utoipa::path(
    get,
    path = "/api/v1/docs.js",
    operation_id = "docs_script",
    tag = "docs",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript; charset=utf-8", body = String))
)]
pub(super) fn script() -> Response {
    text(SCRIPT, "text/javascript; charset=utf-8")
}

/// The style of the documentation page.
#[utoipa::path(
    get,
    path = "/api/v1/docs.css",
    operation_id = "docs_style",
    tag = "docs",
    responses((status = 200, description = "CSS", content_type = "text/css; charset=utf-8", body = String))
)]
pub(super) fn style() -> Response {
    text(STYLE, "text/css; charset=utf-8")
}
