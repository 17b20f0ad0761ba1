//! The HTTP server: accepts connections and serves the routes with hyper
//! (HTTP/1.1 with upgrades, and h2c), until told to stop, then lets open
//! requests finish.
//!
//! warp's own `serve` cannot configure hyper, whose limits on a request
//! head (100 headers, ~400 KiB) are answered by hyper itself with an empty
//! 431: no request exists yet to hand to the routes. Here hyper's limits are
//! set far above the service's own ([`crate::head`]), so that every head
//! within them gets the service's JSON answer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;
use warp::http::header::HeaderName;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::client::PeerAddr;
use crate::refusals::Refusal;
use crate::state::AppState;

/// Most header fields hyper parses in a request head. Beyond it (and
/// beyond [`HYPER_MAX_HEAD_BYTES`]) hyper answers 431 with an empty body.
pub const HYPER_MAX_HEADERS: usize = 1_000;
/// Most bytes hyper buffers while reading a request head.
pub const HYPER_MAX_HEAD_BYTES: usize = 1024 * 1024;
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// How long accepting pauses after an error such as "too many open files".
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// Serves the routes on `listener` until `shutdown` resolves, then stops
/// accepting and waits for open requests to finish (the caller bounds the
/// wait). WebSocket connections, once upgraded, are not waited for here:
/// the WebSocket sessions close themselves on shutdown.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    let routes = warp::service(crate::routes(state.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // warp's service is called with `&mut`, and cloning it clones the
        // whole filter tree (5% of the CPU of a REST publish when it was
        // cloned per request): one clone per connection, each request's
        // call under an uncontended lock (the call only builds the future).
        let routes = Arc::new(Mutex::new(routes.clone()));
        let state = state.clone();
        let service = hyper::service::service_fn(move |request| {
            answer(Arc::clone(&routes), state.clone(), remote, request)
        });
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, %remote, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One request: the head limits, then the routes; a log line at DEBUG, and
/// one at INFO (rate-limited) for a refused key or rate limit.
async fn answer<S>(
    routes: Arc<Mutex<S>>,
    state: AppState,
    remote: SocketAddr,
    mut request: Request<Incoming>,
) -> Result<Response, Infallible>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    let started = tokio::time::Instant::now();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    // Only a refusal needs the forwarded address: keep what it is read from.
    let mut forwarded = HeaderMap::new();
    for value in request.headers().get_all(X_FORWARDED_FOR) {
        forwarded.append(X_FORWARDED_FOR, value.clone());
    }
    let (response, caller) = match crate::head::refusal(&state, remote, &request) {
        Some(refusal) => (refusal, None),
        None => {
            request.extensions_mut().insert(PeerAddr(remote));
            // The guard notes who the caller is, for the refusal's log line.
            crate::admission::CALLER
                .scope(std::cell::RefCell::new(None), async move {
                    // Within the scope: the filters run as the call builds
                    // the future, and the guard among them notes the caller.
                    let called = routes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .call(request);
                    let response = match called.await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    let caller = crate::admission::CALLER.with(|c| c.borrow_mut().take());
                    (response, caller)
                })
                .await
        }
    };
    let status = response.status();
    let refusal = match status {
        StatusCode::UNAUTHORIZED => Some(Refusal::Credential),
        StatusCode::FORBIDDEN => Some(Refusal::Forbidden),
        StatusCode::TOO_MANY_REQUESTS => Some(Refusal::RateLimited),
        _ => None,
    };
    if let Some(refusal) = refusal {
        let client = state
            .config
            .trusted_proxies
            .client_ip(Some(remote), &forwarded);
        state.refusals.note_by(
            refusal,
            client,
            &format!("{method} {}", uri.path()),
            caller.as_deref(),
        );
    }
    tracing::debug!(
        %method,
        path = uri.path(),
        status = status.as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        %remote,
        "request"
    );
    Ok(response)
}

/// Connection errors surface at accept and concern one client: skip them.
/// Others (out of file descriptors) would repeat at once: pause first.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}
