//! Walks the router against the OpenAPI document it serves, in several
//! configurations: every path and method the router answers is documented,
//! with every status it gives (hostile requests included), every 405 names
//! the methods in `Allow`, and the documented parameters and schemas are
//! those the domain reads and the service writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ep_domain::{
    EventService, FieldError, Hub, HubConfig, Limits, QueryParams, RateLimit, RateLimitConfig,
    RouterStatus,
};
use ep_ports::{Event, EventId, EventType, Payload, Timestamp, TypeStats};
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

use crate::cors::CorsPolicy;
use crate::refusals::RefusalLog;
use crate::state::{AppState, HttpConfig, MetricsText, Shared, WsShared};

/// The key, when a configuration asks for one.
const KEY: &str = "walk-key";
/// The admin key, when a configuration has one.
const ADMIN_KEY: &str = "walk-admin-key";

/// One configuration of a node.
#[derive(Debug, Clone, Copy)]
struct Setup {
    auth: bool,
    admin_key: bool,
    cors_restricted: bool,
    metrics: bool,
    /// Rate limits of 1 per hour: the second request of a class is a 429.
    tight_limits: bool,
    /// Signed tokens are accepted too (the document declares the bearer scheme).
    tokens: bool,
}

const SETUPS: [Setup; 3] = [
    Setup {
        auth: true,
        admin_key: true,
        cors_restricted: true,
        metrics: true,
        tight_limits: false,
        tokens: true,
    },
    Setup {
        auth: false,
        admin_key: false,
        cors_restricted: false,
        metrics: false,
        tight_limits: false,
        tokens: false,
    },
    Setup {
        auth: true,
        admin_key: false,
        cors_restricted: false,
        metrics: true,
        tight_limits: true,
        tokens: false,
    },
];

/// `REQUIRE_AUTH=false`: everyone may do everything.
struct Open;

impl ep_ports::Authenticator for Open {
    fn authenticate<'a>(
        &self,
        _: ep_ports::Credential<'a>,
    ) -> Result<ep_ports::Principal, ep_ports::AuthError> {
        Ok(ep_ports::Principal::everything())
    }
}

fn state(setup: Setup) -> AppState {
    let store = Arc::new(ep_store_memory::MemoryStore::new());
    let broadcaster = Arc::new(ep_broadcast_local::LocalBroadcaster::new());
    let limits = Limits::default();
    let rate = if setup.tight_limits {
        let one: RateLimit = "1/hour".parse().expect("rate");
        RateLimitConfig {
            publish: one,
            query: one,
            admin: one,
            ws_publish: one,
            ..RateLimitConfig::default()
        }
    } else {
        RateLimitConfig::default()
    };
    let service = Arc::new(EventService::start(
        store.clone(),
        broadcaster,
        limits,
        rate,
    ));
    let hub = Hub::new(
        store,
        service.subscriber_gauge(),
        HubConfig::default(),
        Box::new(crate::event_frame),
    );
    let auth: Arc<dyn ep_ports::Authenticator> = match (setup.auth, setup.admin_key) {
        (false, _) => Arc::new(Open),
        (true, admin) => Arc::new(ep_auth_apikey::ApiKeyAuthenticator::new(
            Some(KEY),
            admin.then_some(ADMIN_KEY),
            Vec::new(),
        )),
    };
    let metrics: Option<MetricsText> = setup
        .metrics
        .then(|| Arc::new(|| "# metrics\n".to_owned()) as MetricsText);
    AppState::new(Shared {
        service,
        hub,
        auth,
        config: HttpConfig {
            max_body_bytes: 4096,
            tokens: setup.tokens,
            cors: if setup.cors_restricted {
                CorsPolicy::new(["https://school.example"])
            } else {
                CorsPolicy::default()
            },
            ..HttpConfig::default()
        },
        ws: Arc::new(WsShared::new(20)),
        refusals: RefusalLog::default(),
        metrics,
    })
}

/// The document's operations: path → method → documented statuses.
type Documented = BTreeMap<String, BTreeMap<String, BTreeSet<u16>>>;

/// Every path item: the HTTP operations and the WebSocket handshakes.
fn items(doc: &Value) -> impl Iterator<Item = (&String, &Value)> {
    let websockets = doc[super::tailor::WEBSOCKETS]
        .as_object()
        .expect("websockets");
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .chain(websockets)
}

fn documented(doc: &Value) -> Documented {
    let mut out = Documented::new();
    for (path, item) in items(doc) {
        for (method, operation) in item.as_object().expect("path item") {
            let statuses = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(|s| s.parse().expect("numeric status"))
                .collect();
            out.entry(path.clone())
                .or_default()
                .insert(method.to_uppercase(), statuses);
        }
    }
    out
}

/// The documented path that `path` is an instance of.
fn template_of<'a>(doc: &'a Documented, path: &str) -> Option<&'a str> {
    doc.keys().map(String::as_str).find(|t| {
        let (ts, ps): (Vec<_>, Vec<_>) = (t.split('/').collect(), path.split('/').collect());
        ts.len() == ps.len()
            && ts
                .iter()
                .zip(&ps)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    })
}

struct Walker {
    state: AppState,
    filter: BoxedFilter<(Response,)>,
    setup: Setup,
    doc: Value,
    documented: Documented,
    seen: usize,
}

impl Walker {
    async fn new(setup: Setup) -> Self {
        let state = state(setup);
        let filter = super::routes(state.clone());
        let response = warp::test::request()
            .path("/openapi.json")
            .reply(&filter)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let doc: Value = serde_json::from_slice(response.body()).expect("document is JSON");
        let documented = documented(&doc);
        Self {
            filter: filter.map(warp::Reply::into_response).boxed(),
            state,
            setup,
            doc,
            documented,
            seen: 0,
        }
    }

    /// Sends one request and checks its answer against the document.
    async fn check(&mut self, request: warp::test::RequestBuilder, method: &Method, path: &str) {
        let response = request.reply(&self.filter).await;
        let status = response.status().as_u16();
        let context = format!("{method} {path} with {:?}: {status}", self.setup);
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        // warp ignores one trailing slash, and so does the document's description.
        let bare = path.split('?').next().unwrap_or(path);
        let bare = bare
            .strip_suffix('/')
            .filter(|b| !b.is_empty())
            .unwrap_or(bare);
        let template = template_of(&self.documented, bare);
        match template {
            // Before routing: an over-long query string, or shutdown.
            None => assert!(
                [404, 414, 503].contains(&status),
                "undocumented path answered: {context}"
            ),
            Some(template) => {
                let methods = &self.documented[template];
                match methods.get(method.as_str()) {
                    Some(statuses) => assert!(
                        statuses.contains(&status),
                        "status not documented: {context}, documented {statuses:?}; body {body}"
                    ),
                    // Answers given before routing (414, shutdown 503...)
                    // are documented on every operation of the path.
                    None if status != 405 => {
                        let everywhere = methods.values().all(|s| s.contains(&status));
                        assert!(everywhere, "undocumented method answered: {context}");
                    }
                    None => {
                        let allow = response
                            .headers()
                            .get("allow")
                            .unwrap_or_else(|| panic!("405 without Allow: {context}"))
                            .to_str()
                            .expect("text");
                        let allowed: BTreeSet<&str> = allow.split(", ").collect();
                        let want: BTreeSet<&str> = methods.keys().map(String::as_str).collect();
                        assert_eq!(allowed, want, "Allow of {context}");
                    }
                }
            }
        }
        if status >= 400 && method != Method::HEAD {
            assert!(
                body["detail"].is_string() || body["detail"].is_array(),
                "error without a JSON detail: {context}: {body}"
            );
        }
        self.seen += 1;
    }

    fn key(&self, role_admin: bool) -> Option<&'static str> {
        match (self.setup.auth, self.setup.admin_key && role_admin) {
            (false, _) => None,
            (true, true) => Some(ADMIN_KEY),
            (true, false) => Some(KEY),
        }
    }
}

fn request(method: &Method, path: &str) -> warp::test::RequestBuilder {
    warp::test::request()
        .method(method.as_str())
        .path(path)
        .remote_addr("192.0.2.7:5000".parse().expect("addr"))
}

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::TRACE,
];

/// Paths no route should have, next to those that do.
const PROBES: [&str; 14] = [
    "/",
    "/api",
    "/api/v1",
    "/api/v1/",
    "/api/v2/events",
    "/events/",
    "/events/evt_1/extra",
    "/health/",
    "/ws",
    "/ws/other",
    "/docs/",
    "/openapi.yaml",
    "/favicon.ico",
    "/api/v1/api/v1/health",
];

fn concrete(template: &str) -> String {
    template
        .replace("{id}", "evt_0000")
        .replace("{version}", "v1p2")
        .replace("{user_id}", "stu-1")
}

/// A request target, a body, and extra headers.
type Variant = (String, Option<String>, Vec<(&'static str, String)>);

/// Requests each operation is given besides a plain one: no key, a wrong
/// key, the admin key, hostile parameters and bodies.
fn variants(path: &str, method: &Method) -> Vec<Variant> {
    let mut out: Vec<Variant> = vec![
        (path.to_owned(), None, vec![]),
        (path.to_owned(), None, vec![("x-api-key", "wrong".into())]),
        (format!("{path}?{}", "a=b&".repeat(2100)), None, vec![]),
        (
            path.to_owned(),
            None,
            vec![("origin", "https://elsewhere.example".into())],
        ),
    ];
    let base = path.trim_start_matches(crate::table::PREFIX);
    let mut query = |q: &str| out.push((format!("{path}?{q}"), None, vec![]));
    match (base, method) {
        ("/events", &Method::GET) => {
            for q in [
                "limit=0",
                "limit=1001",
                "limit=abc",
                "limit=-1",
                "since=not-a-time",
                "since=%2B10000-01-01T00:00:00",
                "since=2026-11-27T10:00:00%2B02:00",
                "since=2026-11-27",
                "event_type=quiz_started&session_id=s&user_id=u&limit=5",
            ] {
                query(q);
            }
            query(&format!("event_type={}", "x".repeat(51)));
            query(&format!("session_id={}", "x".repeat(201)));
        }
        ("/events", &Method::DELETE) => {
            for q in [
                "before=not-a-time",
                "before=%2B10000-01-01",
                "before=2026-01-01T00:00:00Z",
            ] {
                query(q);
            }
        }
        ("/events", &Method::POST) => {
            for body in [
                json!({"event_type": "quiz_started", "source": "walk"}).to_string(),
                json!({"event_type": "nope", "source": "bad source!"}).to_string(),
                "not json".to_owned(),
                "[1,2]".to_owned(),
                String::new(),
                json!({"event_type": "timer_tick", "source": "w", "payload": {"x": "y".repeat(5000)}}).to_string(),
            ] {
                out.push((path.to_owned(), Some(body), vec![]));
            }
        }
        ("/ws/publish" | "/ws/subscribe", _) => {
            out.push((
                path.to_owned(),
                None,
                vec![
                    ("upgrade", "websocket".into()),
                    ("connection", "Upgrade".into()),
                ],
            ));
        }
        _ => {}
    }
    out
}

async fn walk(setup: Setup) -> Walker {
    let mut walker = Walker::new(setup).await;
    let paths: Vec<String> = walker
        .documented
        .keys()
        .map(|t| concrete(t))
        .chain(PROBES.iter().map(|p| (*p).to_owned()))
        .chain(["/metrics".to_owned(), "/api/v1/metrics".to_owned()])
        .collect();
    for path in &paths {
        for method in &METHODS {
            for (target, body, headers) in variants(path, method) {
                for key in [walker.key(false), walker.key(true)] {
                    let mut r = request(method, &target);
                    if let Some(k) = key {
                        r = r.header("x-api-key", k);
                    }
                    for (name, value) in &headers {
                        r = r.header(*name, value.as_str());
                    }
                    if let Some(body) = &body {
                        r = r
                            .header("content-type", "application/json")
                            .body(body.clone());
                    }
                    walker.check(r, method, path).await;
                }
            }
        }
    }
    // A header value that is not text, on every documented operation.
    let operations: Vec<(String, String)> = walker
        .documented
        .iter()
        .flat_map(|(p, ms)| ms.keys().map(move |m| (concrete(p), m.clone())))
        .collect();
    for (path, method) in &operations {
        let method: Method = method.parse().expect("method");
        let r = request(&method, path).header("origin", &b"\xff\xfe"[..]);
        walker.check(r, &method, path).await;
    }
    // Shutting down: every operation answers 503.
    walker.state.ws.start_draining();
    for (path, method) in &operations {
        let method: Method = method.parse().expect("method");
        walker.check(request(&method, path), &method, path).await;
    }
    walker
}

#[tokio::test]
async fn the_router_answers_only_what_the_document_says_in_every_configuration() {
    for setup in SETUPS {
        let walker = walk(setup).await;
        assert!(walker.seen > 1000, "walked {} requests", walker.seen);
    }
}

#[tokio::test]
async fn the_document_lists_every_operation_of_the_route_table_and_no_other() {
    for setup in SETUPS {
        let walker = Walker::new(setup).await;
        let mut want = BTreeSet::new();
        for op in &crate::table::OPERATIONS {
            if op.path == "/metrics" && !setup.metrics {
                continue;
            }
            for prefix in ["", crate::table::PREFIX] {
                want.insert((format!("{prefix}{}", op.path), op.method.to_string()));
            }
        }
        let mut have: BTreeSet<(String, String)> = walker
            .documented
            .iter()
            .flat_map(|(p, ms)| ms.keys().map(move |m| (p.clone(), m.clone())))
            .collect();
        // Streams are documented apart (and not walked: they do not end).
        let streams = walker.doc[super::tailor::STREAMS]
            .as_object()
            .expect("streams");
        for (path, item) in streams {
            for method in item.as_object().expect("path item").keys() {
                have.insert((path.clone(), method.to_uppercase()));
            }
        }
        assert_eq!(have, want, "{setup:?}");
    }
}

#[tokio::test]
async fn the_document_asks_for_a_key_exactly_when_the_node_does() {
    for setup in SETUPS {
        let walker = Walker::new(setup).await;
        for (path, item) in items(&walker.doc) {
            for (method, op) in item.as_object().expect("item") {
                let open = [
                    "/health",
                    "/readiness",
                    "/event-types",
                    "/openapi.json",
                    "/docs",
                    "/docs.js",
                    "/docs.css",
                    "/dashboard",
                    "/dashboard.js",
                    "/dashboard.css",
                    "/dashboard.svg",
                ]
                .iter()
                .any(|p| path.ends_with(p));
                let secured = op.get("security").is_some();
                if secured {
                    let schemes: Vec<&str> = op["security"]
                        .as_array()
                        .expect("requirements")
                        .iter()
                        .flat_map(|r| r.as_object().expect("requirement").keys())
                        .map(String::as_str)
                        .collect();
                    let want: &[&str] = match (path.contains("/ws/"), setup.tokens) {
                        (true, false) => &["ApiKey", "ApiKeyQuery"],
                        (true, true) => &["ApiKey", "ApiKeyQuery", "Bearer", "TokenQuery"],
                        (false, false) => &["ApiKey"],
                        (false, true) => &["ApiKey", "Bearer"],
                    };
                    assert_eq!(schemes, want, "{method} {path}");
                }
                let rest = !path.contains("/ws/");
                assert_eq!(secured, setup.auth && !open, "{method} {path} {setup:?}");
                let answers = &op["responses"];
                assert_eq!(
                    answers.get("401").is_some(),
                    setup.auth && !open && rest,
                    "401 on {method} {path} {setup:?}"
                );
                assert_eq!(
                    answers.get("403").is_some(),
                    (setup.auth && !open && rest) || (!rest && setup.cors_restricted),
                    "403 on {method} {path} {setup:?}"
                );
                for status in ["400", "405", "414", "431", "503"] {
                    assert!(answers.get(status).is_some(), "{status} on {method} {path}");
                }
                let allow = &answers["405"]["headers"]["Allow"];
                assert_eq!(allow["schema"]["type"], "string", "{method} {path}");
                assert!(allow["description"].is_string());
                let retry = &answers["503"]["headers"]["Retry-After"];
                assert_eq!(retry["schema"]["type"], "integer", "{method} {path}");
                if let Some(limited) = answers.get("429") {
                    assert_eq!(
                        limited["headers"]["Retry-After"]["schema"]["type"],
                        "integer"
                    );
                }
            }
        }
        let schemes = &walker.doc["components"]["securitySchemes"];
        assert_eq!(schemes.get("ApiKey").is_some(), setup.auth);
        assert_eq!(schemes.get("TokenQuery").is_some(), setup.tokens);
        if setup.tokens {
            assert_eq!(schemes["Bearer"]["type"], "http");
            assert_eq!(schemes["Bearer"]["scheme"], "bearer");
            assert_eq!(schemes["Bearer"]["bearerFormat"], "JWT");
        } else {
            assert!(schemes.get("Bearer").is_none());
        }
    }
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

/// The keys of `value` are the schema's properties, and it has every
/// required one.
fn fits(doc: &Value, name: &str, value: &Value) {
    let schema = schema(doc, name);
    let properties: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has properties"))
        .keys()
        .map(String::as_str)
        .collect();
    let keys: BTreeSet<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        keys.is_subset(&properties),
        "{name}: {keys:?} vs {properties:?}"
    );
    assert!(
        required.is_subset(&keys),
        "{name}: required {required:?}, has {keys:?}"
    );
}

#[tokio::test]
async fn the_schemas_are_those_of_the_values_the_service_writes() {
    let walker = Walker::new(SETUPS[1]).await;
    let doc = &walker.doc;
    let event = Event {
        occurred_at: None,
        id: EventId::new("evt_0123"),
        event_type: EventType::QUIZ_STARTED,
        source: "walk".into(),
        session_id: None,
        user_id: Some("u".into()),
        payload: Payload::empty(),
        timestamp: Timestamp::now(),
        seq: 1,
    };
    let event = serde_json::to_value(&event).expect("event");
    fits(doc, "Event", &event);
    assert_eq!(
        schema(doc, "Event")["required"].as_array().map(Vec::len),
        Some(event.as_object().map_or(0, |o| o.len())),
        "every key of an event is always present"
    );
    let router = serde_json::to_value(RouterStatus {
        active_subscribers: 1,
        queue_size: 2,
    })
    .expect("router");
    fits(doc, "Router", &router);
    let stats = serde_json::to_value(TypeStats {
        event_type: EventType::TIMER_TICK,
        count: 3,
        last_seen: Timestamp::now(),
    })
    .expect("stats");
    fits(doc, "TypeStats", &stats);
    let field = serde_json::to_value(FieldError::new(&["body", "x"], "m", "missing")).expect("f");
    fits(doc, "FieldError", &field);
    let types: Vec<&str> = schema(doc, "EventType")["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types, EventType::BUILT_IN.map(EventType::as_str));

    // The answers of the routes themselves, as they come.
    let filter = super::routes(walker.state.clone());
    for (path, name) in [
        ("/health", "Health"),
        ("/readiness", "Ready"),
        ("/stats", "Stats"),
    ] {
        let response = warp::test::request().path(path).reply(&filter).await;
        let value: Value = serde_json::from_slice(response.body()).expect("json");
        fits(doc, name, &value);
    }
    let new = serde_json::to_value(
        json!({"event_type": "quiz_started", "source": "walk", "payload": {}}),
    )
    .expect("new");
    fits(doc, "NewEvent", &new);
}

#[tokio::test]
async fn the_documented_limits_and_parameters_are_the_domains() {
    let walker = Walker::new(SETUPS[0]).await;
    let doc = &walker.doc;
    let new = &schema(doc, "NewEvent")["properties"];
    assert_eq!(new["source"]["maxLength"], ep_domain::MAX_SOURCE_CHARS);
    assert_eq!(new["source"]["minLength"], 1);
    for id in ["session_id", "user_id"] {
        assert_eq!(new[id]["maxLength"], ep_domain::MAX_ID_CHARS, "{id}");
    }
    assert_eq!(
        new["payload"]["maxProperties"],
        Limits::default().max_payload_keys
    );

    let params = |path: &str, method: &str| -> BTreeMap<String, Value> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| (p["name"].as_str().expect("name").to_owned(), p.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = params("/api/v1/events", "get");
    let names: Vec<&str> = list.keys().map(String::as_str).collect();
    // Every documented parameter is one the domain reads, and back.
    let read = QueryParams::from_pairs(names.iter().map(|n| ((*n).to_owned(), "v".to_owned())));
    assert_eq!(
        [
            read.event_type,
            read.session_id,
            read.user_id,
            read.limit,
            read.since,
            read.occurred_since,
            read.occurred_before
        ]
        .iter()
        .filter(|v| v.is_some())
        .count(),
        names.len()
    );
    assert_eq!(names.len(), 7);
    assert_eq!(
        list["event_type"]["schema"]["maxLength"],
        ep_domain::MAX_EVENT_TYPE_FILTER_CHARS
    );
    assert_eq!(
        list["session_id"]["schema"]["maxLength"],
        ep_domain::MAX_ID_CHARS
    );
    assert_eq!(
        list["user_id"]["schema"]["maxLength"],
        ep_domain::MAX_ID_CHARS
    );
    assert_eq!(
        list["limit"]["schema"]["maximum"],
        ep_domain::MAX_QUERY_LIMIT
    );
    assert_eq!(
        list["limit"]["schema"]["default"],
        ep_domain::DEFAULT_QUERY_LIMIT
    );
    let delete = params("/api/v1/events", "delete");
    assert_eq!(delete.keys().collect::<Vec<_>>(), ["before"]);
    let ws: BTreeMap<String, Value> = doc[super::tailor::WEBSOCKETS]["/api/v1/ws/subscribe"]["get"]
        ["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| (p["name"].as_str().expect("name").to_owned(), p.clone()))
        .collect();
    assert!(doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .all(|p| !p.contains("/ws/")));
    assert_eq!(
        ws.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "api_key",
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Key"
        ])
    );
}
