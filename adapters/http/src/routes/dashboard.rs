//! `GET /dashboard`: the live page for operators and teachers (a tail of
//! the events the credential may see, their rate by type, the node's
//! health), with its script and style as files of their own: the
//! Content-Security-Policy (`default-src 'self'`) forbids inline ones, and
//! nothing is fetched from anywhere else.

use warp::reply::Response;
use warp::Filter;

use super::docs::text;

const PAGE: &str = include_str!("../../static/dashboard.html");
const SCRIPT: &str = include_str!("../../static/dashboard.js");
const STYLE: &str = include_str!("../../static/dashboard.css");
const ICON: &str = include_str!("../../static/dashboard.svg");

/// The dashboard's routes (open: the page asks for a key or token itself).
pub(super) fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let file = |name: &'static str, answer: fn() -> Response| {
        warp::path(name)
            .and(warp::path::end())
            .and(warp::get())
            .map(answer)
    };
    file("dashboard", dashboard)
        .or(file("dashboard.js", script))
        .unify()
        .or(file("dashboard.css", style))
        .unify()
        .or(file("dashboard.svg", icon))
        .unify()
}

/// The live dashboard, for people.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    operation_id = "dashboard",
    tag = "docs",
    responses((status = 200, description = "An HTML page: the live tail, rates by type and the node's health",
        content_type = "text/html; charset=utf-8", body = String))
)]
pub(super) fn dashboard() -> Response {
    text(PAGE, "text/html; charset=utf-8")
}

/// The dashboard's script.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard.js",
    operation_id = "dashboard_script",
    tag = "docs",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript; charset=utf-8", body = String))
)]
pub(super) fn script() -> Response {
    text(SCRIPT, "text/javascript; charset=utf-8")
}

/// The dashboard's style.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard.css",
    operation_id = "dashboard_style",
    tag = "docs",
    responses((status = 200, description = "CSS", content_type = "text/css; charset=utf-8", body = String))
)]
pub(super) fn style() -> Response {
    text(STYLE, "text/css; charset=utf-8")
}

/// The dashboard's icon.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard.svg",
    operation_id = "dashboard_icon",
    tag = "docs",
    responses((status = 200, description = "SVG", content_type = "image/svg+xml", body = String))
)]
pub(super) fn icon() -> Response {
    text(ICON, "image/svg+xml")
}
