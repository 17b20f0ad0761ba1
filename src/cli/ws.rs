//! The WebSocket side of the client subcommands: the handshake (an HTTP
//! refusal turned into its status and detail), how a connection ended, and
//! a polite close.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client::{detail, Client};
use super::CliError;

/// A client WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a close waits for the service's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Opens a WebSocket to `path` of the service.
pub(crate) async fn connect(client: &Client, path: &str) -> Result<Ws, CliError> {
    let request = client.ws_request(path)?;
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            let detail = serde_json::from_str(&body).map_or(body, |v| detail(&v));
            Err(CliError::Refused { status, detail })
        }
        Err(e) => Err(CliError::Connection(format!(
            "cannot open a WebSocket to {}{path}: {e}",
            client.base()
        ))),
    }
}

/// The next JSON object the service sends on `stream`, parsed and as sent
/// (other messages are skipped), or how the connection ended.
pub(crate) async fn next_object<S>(stream: &mut S) -> Result<(Value, String), WsEnd>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
                    return Ok((value, text.as_str().to_owned()));
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(WsEnd::Closed(
                    frame.map(|f| (f.code.into(), f.reason.to_string())),
                ))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(WsEnd::Broken(e.to_string())),
            None => return Err(WsEnd::Broken("the connection ended".into())),
        }
    }
}

/// How a WebSocket ended.
#[derive(Debug)]
pub(crate) enum WsEnd {
    /// The service closed it, with this code and reason if it gave them.
    Closed(Option<(u16, String)>),
    /// The connection broke.
    Broken(String),
}

impl WsEnd {
    /// `closed with 4008 (Slow consumer)` or the error.
    pub(crate) fn describe(&self) -> String {
        match self {
            WsEnd::Closed(Some((code, reason))) if reason.is_empty() => {
                format!("closed with {code}")
            }
            WsEnd::Closed(Some((code, reason))) => format!("closed with {code} ({reason})"),
            WsEnd::Closed(None) => "closed without a code".into(),
            WsEnd::Broken(e) => e.clone(),
        }
    }

    /// Whether trying again cannot help: the key is refused.
    pub(crate) fn is_unauthorized(&self) -> bool {
        matches!(self, WsEnd::Closed(Some((4001, _))))
    }
}

/// The refusal of a key.
pub(crate) fn unauthorized() -> CliError {
    CliError::Refused {
        status: 401,
        detail: "Unauthorized: give the service's key with --api-key or EVENT_PIPELINE_API_KEY"
            .into(),
    }
}

/// Sends a normal close and waits (a little) for the service's.
pub(crate) async fn close(ws: &mut Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
