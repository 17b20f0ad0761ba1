//! How long a live WebSocket's credential holds: until its token's `exp`
//! (close 4001 `Token expired`, unless the client sent a fresh token), or
//! until the keys are reloaded without its key (close 4001 `Key revoked`).

use std::time::Duration;

use ep_domain::Caller;
use ep_ports::{Credential, Identity, Principal, Timestamp};
use serde_json::{json, Value};
use std::pin::Pin;
use tokio::sync::watch;

use tokio::time::{Instant, Sleep};

use super::close::Close;
use crate::api_error::ApiError;
use crate::state::AppState;

/// A connection's hold on its credential.
pub(crate) struct Lease {
    /// Fires when the credential expires; `None` for one that does not (a
    /// key): no timer for it. Made once per connection, not per message:
    /// the publish path waits on it beside every read.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Bumped by every reload of the keys.
    reloads: watch::Receiver<u64>,
}

/// The timer instant of `at` (tokio clamps one decades away).
fn deadline(at: Timestamp) -> Instant {
    let micros = at.as_micros().saturating_sub(Timestamp::now().as_micros());
    Instant::now() + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

fn timer(expires_at: Option<Timestamp>) -> Option<Pin<Box<Sleep>>> {
    expires_at.map(|at| Box::pin(tokio::time::sleep_until(deadline(at))))
}

impl Lease {
    /// The lease of `principal`'s credential.
    pub(crate) fn new(state: &AppState, principal: &Principal) -> Self {
        Self {
            expiry: timer(principal.expires_at),
            reloads: state.ws.reloads(),
        }
    }

    /// Resolves when the credential stops holding, with the close to send.
    pub(crate) async fn ended(&mut self, state: &AppState, principal: &Principal) -> Close {
        let expired = async {
            match self.expiry.as_mut() {
                Some(expiry) => expiry.as_mut().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        loop {
            tokio::select! {
                () = &mut expired => return Close::TokenExpired,
                changed = self.reloads.changed() => {
                    if changed.is_err() {
                        // No more reloads can come: only the expiry is left.
                        (&mut expired).await;
                        return Close::TokenExpired;
                    }
                    if !state.auth.still_valid(principal) {
                        return Close::KeyRevoked;
                    }
                }
            }
        }
    }

    /// Takes a fresh token for `caller` (`{"type":"refresh_token","token":...}`):
    /// it must verify and name the same `sub`. On success the caller and
    /// the lease are renewed and the reply is `token_refreshed`.
    ///
    /// # Errors
    /// What the error reply says; the connection stays as it was.
    pub(crate) fn refresh(
        &mut self,
        state: &AppState,
        caller: &mut Caller,
        message: &serde_json::Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let Some(token) = message.get("token").and_then(Value::as_str) else {
            return Err(ApiError::BadMessage(
                "refresh_token needs a token string".into(),
            ));
        };
        let fresh = state.auth.authenticate(Credential::token(token))?;
        match (&caller.principal.identity, &fresh.identity) {
            (Identity::Token(old), Identity::Token(new)) if old == new => {}
            _ => return Err(ApiError::RefreshForOtherSub),
        }
        self.expiry = timer(fresh.expires_at);
        let expires_at = fresh.expires_at.map(|t| t.to_string());
        caller.principal = fresh;
        Ok(json!({"status": "token_refreshed", "expires_at": expires_at}))
    }
}
