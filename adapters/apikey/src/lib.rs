//! An `Authenticator` from configured API keys: with auth off everyone may do
//! everything; with auth on the key must match, compared in constant time.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ep_ports::{AuthError, Authenticator, Credential, Principal, Role};
use subtle::ConstantTimeEq;

/// Grants roles by API key.
pub struct ApiKeyAuthenticator {
    /// `None`: auth is off and every caller has every role.
    keys: Option<Keys>,
}

struct Keys {
    /// `API_KEY`: publish and read, and admin too unless an admin key is set.
    api: Vec<u8>,
    /// `ADMIN_API_KEY`: every role.
    admin: Option<Vec<u8>>,
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
        Self { keys: None }
    }

    /// Auth on: callers must present `key`, which grants every role.
    ///
    /// # Errors
    /// `EmptyKey` when `key` is empty (it would match a missing key).
    pub fn with_key(key: &str) -> Result<Self, EmptyKey> {
        Self::with_keys(key, None)
    }

    /// Auth on with an admin key: `key` may publish and read, only
    /// `admin_key` may also delete. With `admin_key = None`, `key` may do
    /// everything.
    ///
    /// # Errors
    /// `EmptyKey` when a key is empty.
    pub fn with_keys(key: &str, admin_key: Option<&str>) -> Result<Self, EmptyKey> {
        if key.is_empty() || admin_key.is_some_and(str::is_empty) {
            return Err(EmptyKey);
        }
        Ok(Self {
            keys: Some(Keys {
                api: key.as_bytes().to_vec(),
                admin: admin_key.map(|k| k.as_bytes().to_vec()),
            }),
        })
    }
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("auth_required", &self.keys.is_some())
            .field(
                "admin_key",
                &self.keys.as_ref().is_some_and(|k| k.admin.is_some()),
            )
            .finish()
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(Principal::everything());
        };
        let presented = credential
            .api_key
            .ok_or(AuthError::InvalidCredential)?
            .as_bytes();
        // Both comparisons always run. `ct_eq` on slices of different lengths
        // returns false at once: a key's length is not worth hiding, its
        // bytes are.
        let is_api = bool::from(presented.ct_eq(&keys.api));
        let is_admin = keys
            .admin
            .as_ref()
            .is_some_and(|admin| bool::from(presented.ct_eq(admin)));
        match (is_admin, is_api, keys.admin.is_some()) {
            (true, _, _) | (false, true, false) => Ok(Principal::everything()),
            (false, true, true) => Ok(Principal::new([Role::Publish, Role::Read])),
            (false, false, _) => Err(AuthError::InvalidCredential),
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
        assert!(ApiKeyAuthenticator::with_keys("k", Some("")).is_err());
    }

    #[test]
    fn with_an_admin_key_only_it_may_delete() {
        let auth = ApiKeyAuthenticator::with_keys("user-key", Some("admin-key")).expect("keys");
        let user = auth.authenticate(key(Some("user-key"))).expect("user");
        assert!(user.has(Role::Publish) && user.has(Role::Read) && !user.has(Role::Admin));
        let admin = auth.authenticate(key(Some("admin-key"))).expect("admin");
        assert!(admin.has(Role::Admin) && admin.has(Role::Publish) && admin.has(Role::Read));
        assert_eq!(
            auth.authenticate(key(Some("other"))),
            Err(AuthError::InvalidCredential)
        );
        assert!(!format!("{auth:?}").contains("admin-key"));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let auth = ApiKeyAuthenticator::with_key("s3cret").expect("key");
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(!format!("{:?}", key(Some("s3cret"))).contains("s3cret"));
    }
}
