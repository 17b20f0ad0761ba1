//! Reading a JSON request body with a size cap, without buffering more than
//! the cap.

use bytes::{Buf, Bytes, BytesMut};
use ep_domain::{FieldError, ValidationErrors};
use futures_util::{Stream, StreamExt};
use warp::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use warp::http::HeaderMap;

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the configured cap (413).
    TooLarge { limit: usize },
    /// Declared as something other than JSON (422, as the old service did).
    NotJson(ValidationErrors),
    /// The connection failed mid-body.
    Read(String),
}

/// Whether a `Content-Type` names JSON: `application/json` or
/// `application/<anything>+json`, parameters ignored. A missing header is
/// taken as JSON.
fn declares_json(headers: &HeaderMap) -> Result<(), BodyError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if is_json {
        return Ok(());
    }
    let shown: String = mime.chars().take(80).collect();
    Err(BodyError::NotJson(ValidationErrors::one(FieldError::new(
        &["body"],
        format!("Content-Type must be application/json, not '{shown}'"),
        "content_type",
    ))))
}

/// Checks the declared type and size, then reads the body, refusing it as
/// soon as it grows past `limit`.
pub(crate) async fn read_json_body<S, B>(
    headers: &HeaderMap,
    body: S,
    limit: usize,
) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    declares_json(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    // `declared` is at most `limit` here, so the capacity is bounded.
    let mut buf = BytesMut::with_capacity(declared.map_or(1024, |n| n as usize));
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}
