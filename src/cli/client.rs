//! The service as the client subcommands reach it: its URL and key, REST
//! calls that turn an error status into its `detail`, and the WebSocket
//! handshake request.

use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::CliError;

/// Where the service is and the key it takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The service's base URL.
    #[arg(
        long,
        env = "EVENT_PIPELINE_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8001"
    )]
    pub url: String,
    /// The API key (sent as X-API-Key), when the service requires one.
    #[arg(long, env = "EVENT_PIPELINE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// A client of one service.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// For the service at `remote.url` (`http://host:port`, a path prefix
    /// allowed).
    pub(crate) fn new(remote: &Remote) -> Result<Self, CliError> {
        let base = remote.url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(CliError::Usage(format!(
                "--url {base}: expected http://HOST:PORT (this build speaks plain HTTP; put a TLS-terminating proxy's inner address here)"
            )));
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            key: remote.api_key.clone().filter(|k| !k.is_empty()),
        })
    }

    /// `GET path` (with its query): the JSON body of a 2xx answer.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CliError> {
        Ok(self.get_text(path).await?.0)
    }

    /// `GET path`: the JSON body of a 2xx answer, parsed and as sent.
    pub(crate) async fn get_text(&self, path: &str) -> Result<(Value, String), CliError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with a body that is JSON text already (sent as is, so
    /// its keys keep their order): the JSON body of a 2xx answer.
    pub(crate) async fn post_text(&self, path: &str, body: String) -> Result<Value, CliError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        Ok(self.send(request).await?.0)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(Value, String), CliError> {
        let request = match &self.key {
            Some(key) => request.header("X-API-Key", key),
            None => request,
        };
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.unreachable(&e))?;
        let json: Option<Value> = serde_json::from_str(&body).ok();
        if status.is_success() {
            return match json {
                Some(json) => Ok((json, body)),
                None => Err(CliError::Connection(format!(
                    "{}: the answer is not JSON: {body}",
                    self.base
                ))),
            };
        }
        let said = json.as_ref().map_or(body.clone(), detail);
        // Every command says what to do about a missing or refused key.
        let detail = match (status.as_u16(), &self.key) {
            (401, None) => {
                format!("{said}: give the service's key with --api-key or EVENT_PIPELINE_API_KEY")
            }
            (401, Some(_)) => format!(
                "{said}: the key given (--api-key or EVENT_PIPELINE_API_KEY) is not accepted"
            ),
            _ => said,
        };
        Err(CliError::Refused {
            status: status.as_u16(),
            detail,
        })
    }

    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        CliError::Connection(format!("cannot reach {}: {reason}", self.base))
    }

    /// The WebSocket handshake for `path`, with the key.
    pub(crate) fn ws_request(&self, path: &str) -> Result<Request, CliError> {
        let url = format!("ws://{}{path}", &self.base["http://".len()..]);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
        if let Some(key) = &self.key {
            let value = HeaderValue::from_str(key)
                .map_err(|_| CliError::Usage("the API key is not a valid header value".into()))?;
            request.headers_mut().insert("x-api-key", value);
        }
        Ok(request)
    }

    /// The base URL, for messages.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }
}

/// The reason in an error body: its `detail` (text, or a validation list
/// as `field: message` pairs), else the whole body.
pub(crate) fn detail(body: &Value) -> String {
    match &body["detail"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let field = item["loc"]
                    .as_array()
                    .and_then(|loc| loc.last())
                    .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_owned));
                let message = item["msg"].as_str().unwrap_or_default();
                match field {
                    Some(f) => format!("{f}: {message}"),
                    None => message.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => body.to_string(),
        other => other.to_string(),
    }
}
