//! The xAPI connector's adapter: each event that maps to an xAPI statement
//! (`statement.rs`) is posted, a page at a time, to a Learning Record
//! Store's `statements` resource with basic auth and the
//! `X-Experience-API-Version` header. Statement ids are derived from event
//! ids, so a page sent again is kept once by the LRS. A page the LRS
//! refuses for its content (400, 409, 413, 422) is split until each
//! refused statement is found, logged with the LRS's reason and skipped;
//! anything else (5xx, 401, 403, 429, no answer) is `Unavailable` and the
//! page goes again.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod statement;

use std::time::Duration;

use async_trait::async_trait;
use ep_ports::{Event, EventExport, ExportError, Exported};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The connector's job name: its lease and cursor in the store.
pub const JOB: &str = "xapi";

/// How long one POST may take before the page is tried again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an LRS's refusal is logged.
const MAX_REASON_CHARS: usize = 300;

/// The start of a refusal's body, as text: read no further than
/// [`MAX_REASON_CHARS`] need (an LRS may send a large or endless body).
async fn reason(mut response: reqwest::Response) -> String {
    let most = MAX_REASON_CHARS * 4;
    let mut bytes = Vec::new();
    while bytes.len() < most {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(most);
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(MAX_REASON_CHARS)
        .collect()
}

/// Where and how to reach the LRS.
#[derive(Debug, Clone)]
pub struct XapiConfig {
    /// The LRS endpoint (`XAPI_LRS_URL`, e.g. `https://lrs.example/xAPI/`);
    /// statements go to `{endpoint}/statements`.
    pub endpoint: String,
    /// Basic auth user (`XAPI_LRS_USERNAME`).
    pub username: Option<String>,
    /// Basic auth password (`XAPI_LRS_PASSWORD`).
    pub password: Option<SecretString>,
    /// `X-Experience-API-Version` (`XAPI_VERSION`, `1.0.3`).
    pub version: String,
    /// The `homePage` of every actor's account and the base of activity
    /// IRIs made from plain ids (`XAPI_ACCOUNT_HOMEPAGE`).
    pub home_page: String,
}

/// An LRS, as the export port's adapter.
pub struct XapiLrs {
    config: XapiConfig,
    statements: String,
    client: reqwest::Client,
}

/// What the LRS said to one POST.
enum Answer {
    /// Kept (or already held).
    Kept,
    /// Refused for the content, with the LRS's reason.
    Refused(String),
}

impl XapiLrs {
    /// A client of the LRS at `config.endpoint`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(config: XapiConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let statements = format!("{}/statements", config.endpoint.trim_end_matches('/'));
        Ok(Self {
            config,
            statements,
            client,
        })
    }

    /// One POST of `statements` (a JSON array).
    async fn post(&self, statements: &[Value]) -> Result<Answer, ExportError> {
        let mut request = self
            .client
            .post(&self.statements)
            .header("X-Experience-API-Version", &self.config.version)
            .json(statements);
        if let Some(user) = &self.config.username {
            request = request.basic_auth(
                user,
                self.config.password.as_ref().map(|p| p.expose_secret()),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| ExportError::Unavailable(format!("{}: {e}", self.config.endpoint)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Answer::Kept);
        }
        let reason = reason(response).await;
        match status {
            StatusCode::BAD_REQUEST
            | StatusCode::CONFLICT
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNPROCESSABLE_ENTITY => Ok(Answer::Refused(format!("{status}: {reason}"))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ExportError::Unavailable(
                format!("the LRS refused the credentials ({status}): check XAPI_LRS_USERNAME and XAPI_LRS_PASSWORD"),
            )),
            _ => Err(ExportError::Unavailable(format!("the LRS answered {status}: {reason}"))),
        }
    }

    /// Posts `batch`; a refused batch is split in halves until each refused
    /// statement stands alone. Returns how many were kept and refused.
    async fn settle(&self, batch: &[(&Event, Value)]) -> Result<(u64, u64), ExportError> {
        let mut pending = vec![batch];
        let (mut kept, mut refused) = (0_u64, 0_u64);
        while let Some(part) = pending.pop() {
            let statements: Vec<Value> = part.iter().map(|(_, s)| s.clone()).collect();
            match self.post(&statements).await? {
                Answer::Kept => kept += part.len() as u64,
                Answer::Refused(reason) if part.len() == 1 => {
                    let (event, _) = part[0];
                    tracing::warn!(
                        event_id = event.id.as_str(),
                        seq = event.seq,
                        event_type = event.event_type.as_str(),
                        reason = %reason,
                        "xapi: the LRS refused a statement; it is skipped"
                    );
                    refused += 1;
                }
                Answer::Refused(_) => {
                    let (left, right) = part.split_at(part.len() / 2);
                    // Left first: the pending list is a stack.
                    pending.push(right);
                    pending.push(left);
                }
            }
        }
        Ok((kept, refused))
    }
}

#[async_trait]
impl EventExport for XapiLrs {
    async fn export(&self, events: &[Event]) -> Result<Exported, ExportError> {
        let mapped: Vec<(&Event, Value)> = events
            .iter()
            .filter_map(|e| statement::statement(e, &self.config.home_page).map(|s| (e, s)))
            .collect();
        let unmapped = (events.len() - mapped.len()) as u64;
        if mapped.is_empty() {
            return Ok(Exported {
                unmapped,
                ..Exported::default()
            });
        }
        let (delivered, refused) = self.settle(&mapped).await?;
        Ok(Exported {
            delivered,
            unmapped,
            refused,
        })
    }

    fn name(&self) -> &'static str {
        JOB
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An LRS that refuses every POST with a 400 whose body never ends.
    async fn endless_refusal() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0_u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!(
                "1000\r\n{}\r\n",
                "no ".repeat(4096 / 3 + 1)[..4096].to_owned()
            );
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        });
        format!("http://{address}/xAPI")
    }

    #[tokio::test]
    async fn a_refusal_is_read_no_further_than_its_reason_needs() {
        let lrs = XapiLrs::new(XapiConfig {
            endpoint: endless_refusal().await,
            username: None,
            password: None,
            version: "1.0.3".into(),
            home_page: "https://school.example".into(),
        })
        .expect("client");
        // Reading the whole body would wait for REQUEST_TIMEOUT (30 s).
        let answer = tokio::time::timeout(Duration::from_secs(10), lrs.post(&[Value::Null]))
            .await
            .expect("answered without reading the endless body");
        match answer {
            Ok(Answer::Refused(reason)) => {
                assert!(reason.starts_with("400 Bad Request: no no "), "{reason}");
                assert_eq!(
                    reason.chars().count(),
                    "400 Bad Request: ".len() + MAX_REASON_CHARS
                );
            }
            _ => panic!("not a refusal"),
        }
    }
}
