//! Tokens already verified, so that a browser or service presenting the
//! same token on every request pays for its signature once. A token's
//! claims cannot change (they are what was signed), so what verification
//! said stays true except for time: every hit checks `exp` and `nbf` again.
//! Bounded: when full, the table is emptied and refills with the tokens in
//! use.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ep_ports::{AuthError, Principal};

/// Most tokens remembered at once.
pub(crate) const CAPACITY: usize = 4_096;

/// A verified token's principal and the window it is valid in.
struct Entry {
    principal: Principal,
    /// `nbf`, seconds since the epoch (`i64::MIN` for none).
    not_before: i64,
    /// `exp`, seconds since the epoch.
    expires: i64,
}

/// The table of verified tokens.
#[derive(Default)]
pub(crate) struct Verified {
    tokens: Mutex<HashMap<Box<str>, Entry>>,
}

impl Verified {
    /// The principal of `token` if it was verified before: `Some(Ok)` while
    /// it is valid at `now` (with `leeway` seconds), `Some(Err)` once it
    /// expired, `None` when it is not known.
    pub(crate) fn get(
        &self,
        token: &str,
        now: i64,
        leeway: i64,
    ) -> Option<Result<Principal, AuthError>> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = tokens.get(token)?;
        if now > entry.expires.saturating_add(leeway) {
            return Some(Err(AuthError::TokenExpired));
        }
        if now.saturating_add(leeway) < entry.not_before {
            return Some(Err(AuthError::InvalidToken("not valid yet (nbf)".into())));
        }
        Some(Ok(entry.principal.clone()))
    }

    /// Remembers a token that verified.
    pub(crate) fn insert(
        &self,
        token: &str,
        principal: &Principal,
        not_before: Option<i64>,
        expires: i64,
    ) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= CAPACITY {
            tokens.clear();
        }
        tokens.insert(
            token.into(),
            Entry {
                principal: principal.clone(),
                not_before: not_before.unwrap_or(i64::MIN),
                expires,
            },
        );
    }

    /// Tokens remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
