//! An `Authenticator` from configured API keys: the legacy `API_KEY` /
//! `ADMIN_API_KEY` pair and the named keys of `API_KEYS_FILE` (replaced
//! whole on a reload). Every comparison runs in constant time; a named key
//! is matched by the SHA-256 of what the caller presented.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod key_file;

use std::sync::{Arc, PoisonError, RwLock};

use ep_ports::{AuthError, Authenticator, Credential, Identity, Principal, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use key_file::{load_keys, parse_keys, KeyFileError, NamedKey};

/// Grants roles (and, for a named key, a scope and limits) by API key.
pub struct ApiKeyAuthenticator {
    /// `API_KEY`: publish and read, and admin too unless an admin key is set.
    api: Option<Vec<u8>>,
    /// `ADMIN_API_KEY`: every role.
    admin: Option<Vec<u8>>,
    /// The named keys now in force.
    named: RwLock<Arc<Vec<NamedKey>>>,
}

/// The SHA-256 of `key`, as `API_KEYS_FILE` holds it (hex).
pub fn key_sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiKeyAuthenticator {
    /// Keys: the legacy pair (an empty or absent one is none) and `named`.
    pub fn new(api_key: Option<&str>, admin_key: Option<&str>, named: Vec<NamedKey>) -> Self {
        let bytes = |k: Option<&str>| k.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec());
        Self {
            api: bytes(api_key),
            admin: bytes(admin_key),
            named: RwLock::new(Arc::new(named)),
        }
    }

    /// Puts `named` in force in place of the named keys (a reload).
    pub fn replace_keys(&self, named: Vec<NamedKey>) {
        *self.named.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(named);
    }

    /// Whether any key is configured (a presented key can then be checked).
    pub fn has_keys(&self) -> bool {
        self.api.is_some() || self.admin.is_some() || !self.current().is_empty()
    }

    fn current(&self) -> Arc<Vec<NamedKey>> {
        Arc::clone(&self.named.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn principal_of(key: &NamedKey) -> Principal {
        Principal {
            identity: Identity::Key(key.name.clone()),
            roles: key.roles.clone(),
            scope: key.scope.clone(),
            expires_at: None,
            limits: key.limits,
        }
    }
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("api_key", &self.api.is_some())
            .field("admin_key", &self.admin.is_some())
            .field("named_keys", &self.current().len())
            .finish()
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError> {
        let presented = credential
            .api_key
            .ok_or(AuthError::InvalidCredential)?
            .as_bytes();
        // Every comparison always runs. `ct_eq` on slices of different
        // lengths returns false at once: a key's length is not worth
        // hiding, its bytes are. Named keys compare digests, all of one length.
        let matches =
            |key: &Option<Vec<u8>>| key.as_ref().is_some_and(|k| bool::from(presented.ct_eq(k)));
        let is_api = matches(&self.api);
        let is_admin = matches(&self.admin);
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let named = self.current();
        let mut found: Option<&NamedKey> = None;
        for key in named.iter() {
            if bool::from(digest.ct_eq(&key.sha256)) {
                found = Some(key);
            }
        }
        let legacy =
            |roles: &[Role]| Principal::new(roles.to_vec()).with_identity(Identity::LegacyKey);
        match (is_admin, is_api, found) {
            (true, _, _) => Ok(legacy(&Role::ALL)),
            (false, true, _) if self.admin.is_none() => Ok(legacy(&Role::ALL)),
            (false, true, _) => Ok(legacy(&[Role::Publish, Role::Read])),
            (false, false, Some(key)) => Ok(Self::principal_of(key)),
            (false, false, None) => Err(AuthError::InvalidCredential),
        }
    }

    /// A named key's principal holds while a key of that name grants the
    /// same (roles, scope, limits); legacy keys always hold.
    fn still_valid(&self, principal: &Principal) -> bool {
        match &principal.identity {
            Identity::Key(name) => self
                .current()
                .iter()
                .any(|k| &k.name == name && Self::principal_of(k) == *principal),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use ep_ports::Scope;

    use super::*;

    fn key(k: Option<&str>) -> Credential<'_> {
        Credential::key(k)
    }

    fn named(name: &str, secret: &str, roles: &[Role], scope: Scope) -> NamedKey {
        let hex = key_sha256(secret);
        let mut sha256 = [0u8; 32];
        for (i, b) in sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        NamedKey {
            name: name.into(),
            sha256,
            roles: roles.to_vec(),
            scope,
            limits: ep_ports::OwnLimits::default(),
        }
    }

    #[test]
    fn with_a_key_only_that_key_is_accepted() {
        let auth = ApiKeyAuthenticator::new(Some("s3cret"), None, Vec::new());
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
    fn empty_keys_are_no_keys() {
        let auth = ApiKeyAuthenticator::new(Some(""), Some(""), Vec::new());
        assert!(!auth.has_keys());
        assert_eq!(
            auth.authenticate(key(Some(""))),
            Err(AuthError::InvalidCredential)
        );
    }

    #[test]
    fn with_an_admin_key_only_it_may_delete() {
        let auth = ApiKeyAuthenticator::new(Some("user-key"), Some("admin-key"), Vec::new());
        let user = auth.authenticate(key(Some("user-key"))).expect("user");
        assert!(user.has(Role::Publish) && user.has(Role::Read) && !user.has(Role::Admin));
        assert_eq!(user.identity, Identity::LegacyKey);
        let admin = auth.authenticate(key(Some("admin-key"))).expect("admin");
        assert!(admin.has(Role::Admin) && admin.has(Role::Publish) && admin.has(Role::Read));
        assert_eq!(
            auth.authenticate(key(Some("other"))),
            Err(AuthError::InvalidCredential)
        );
        assert!(!format!("{auth:?}").contains("admin-key"));
    }

    #[test]
    fn a_named_key_grants_its_roles_scope_and_name() {
        let scope = Scope {
            sources: Some(vec!["quiz-engine".into()]),
            ..Scope::default()
        };
        let auth = ApiKeyAuthenticator::new(
            None,
            None,
            vec![named(
                "quiz-engine",
                "qe-secret",
                &[Role::Publish],
                scope.clone(),
            )],
        );
        let p = auth
            .authenticate(key(Some("qe-secret")))
            .expect("named key");
        assert_eq!(p.identity, Identity::Key("quiz-engine".into()));
        assert_eq!(p.roles, vec![Role::Publish]);
        assert_eq!(p.scope, scope);
        assert_eq!(
            auth.authenticate(key(Some("qe-secreT"))),
            Err(AuthError::InvalidCredential)
        );
        assert!(auth.still_valid(&p));
    }

    #[test]
    fn a_reload_revokes_removed_and_changed_keys_only() {
        let a = named("a", "secret-a", &[Role::Read], Scope::default());
        let b = named("b", "secret-b", &[Role::Read], Scope::default());
        let auth = ApiKeyAuthenticator::new(None, None, vec![a.clone(), b.clone()]);
        let pa = auth.authenticate(key(Some("secret-a"))).expect("a");
        let pb = auth.authenticate(key(Some("secret-b"))).expect("b");
        let mut b2 = b.clone();
        b2.roles = vec![Role::Read, Role::Publish];
        auth.replace_keys(vec![b2]);
        assert!(!auth.still_valid(&pa), "removed");
        assert!(!auth.still_valid(&pb), "changed");
        assert_eq!(
            auth.authenticate(key(Some("secret-a"))),
            Err(AuthError::InvalidCredential)
        );
        assert!(auth
            .authenticate(key(Some("secret-b")))
            .expect("b")
            .has(Role::Publish));
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let auth = ApiKeyAuthenticator::new(Some("s3cret"), None, Vec::new());
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(!format!("{:?}", key(Some("s3cret"))).contains("s3cret"));
    }

    #[test]
    fn the_digest_is_the_hex_sha256() {
        assert_eq!(
            key_sha256("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
