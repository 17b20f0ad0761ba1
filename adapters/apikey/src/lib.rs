//! An `Authenticator` from configured API keys: with auth off everyone may do
//! everything; with auth on the key must match, compared in constant time.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ep_ports::{AuthError, Authenticator, Credential, Principal, Role};
use subtle::ConstantTimeEq;

/// Grants roles by API key.
pub struct ApiKeyAuthenticator {
    /// `None`: auth is off and every caller has every role.
    key: Option<Vec<u8>>,
}

/// Refusal to build an authenticator that would let everyone in by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyKey;

impl std::fmt::Display for EmptyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("REQUIRE_AUTH=true needs a non-empty API_KEY")
    }
}

impl std::error::Error for EmptyKey {}

impl ApiKeyAuthenticator {
    /// Auth off: every caller may publish, read and delete.
    pub fn open() -> Self {
        Self { key: None }
    }

    /// Auth on: callers must present `key`, which grants every role.
    ///
    /// # Errors
    /// `EmptyKey` when `key` is empty (it would match a missing key).
    pub fn with_key(key: &str) -> Result<Self, EmptyKey> {
        if key.is_empty() {
            return Err(EmptyKey);
        }
        Ok(Self {
            key: Some(key.as_bytes().to_vec()),
        })
    }
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("auth_required", &self.key.is_some())
            .finish()
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError> {
        let Some(expected) = &self.key else {
            return Ok(Principal::everything());
        };
        let presented = credential.api_key.ok_or(AuthError::InvalidCredential)?;
        // `ct_eq` on slices of different lengths returns false at once; the
        // length of the key is not a secret worth hiding, its bytes are.
        if bool::from(presented.as_bytes().ct_eq(expected)) {
            Ok(Principal::new([Role::Publish, Role::Read, Role::Admin]))
        } else {
            Err(AuthError::InvalidCredential)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: Option<&str>) -> Credential<'_> {
        Credential { api_key: k }
    }

    #[test]
    fn open_lets_everyone_do_everything() {
        let auth = ApiKeyAuthenticator::open();
        let p = auth.authenticate(key(None)).expect("open");
        assert!(p.has(Role::Admin) && p.has(Role::Publish) && p.has(Role::Read));
    }

    #[test]
    fn with_a_key_only_that_key_is_accepted() {
        let auth = ApiKeyAuthenticator::with_key("s3cret").expect("key");
        assert!(auth
            .authenticate(key(Some("s3cret")))
            .expect("right key")
            .has(Role::Admin));
        for wrong in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3cret "),
            Some("S3CRET"),
        ] {
            assert_eq!(
                auth.authenticate(key(wrong)),
                Err(AuthError::InvalidCredential)
            );
        }
    }

    #[test]
    fn an_empty_key_is_refused_at_construction() {
        assert!(ApiKeyAuthenticator::with_key("").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let auth = ApiKeyAuthenticator::with_key("s3cret").expect("key");
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(!format!("{:?}", key(Some("s3cret"))).contains("s3cret"));
    }
}
