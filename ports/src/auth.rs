//! The `Authenticator` port: who is calling, and what may they do.

use crate::{RateLimit, Scope, Timestamp};

/// What a caller presented: an API key (`X-API-Key` or `?api_key=`) and/or a
/// signed token (`Authorization: Bearer` or `?token=`), if any.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Credential<'a> {
    /// The key as sent; `None` when the request carried none.
    pub api_key: Option<&'a str>,
    /// The bearer token as sent; `None` when the request carried none.
    pub token: Option<&'a str>,
}

impl<'a> Credential<'a> {
    /// A credential of only an API key.
    pub fn key(api_key: Option<&'a str>) -> Self {
        Self {
            api_key,
            token: None,
        }
    }

    /// A credential of only a token.
    pub fn token(token: &'a str) -> Self {
        Self {
            api_key: None,
            token: Some(token),
        }
    }
}

impl std::fmt::Debug for Credential<'_> {
    // Never print a key or a token: they would end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .field("token", &self.token.map(|_| "<redacted>"))
            .finish()
    }
}

/// A permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May publish events.
    Publish,
    /// May query events, fetch them by id, subscribe and resume.
    Read,
    /// May delete events.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Publish, Role::Read, Role::Admin];

    /// The name in key files, token claims and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Publish => "publish",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == text)
            .ok_or_else(|| format!("unknown role '{text}' (expected publish, read or admin)"))
    }
}

/// Who a principal is, for logs, metrics and its rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// No credential (auth off): limited by client address.
    Anonymous,
    /// The legacy `API_KEY` or `ADMIN_API_KEY`: limited by client address.
    LegacyKey,
    /// A named key of `API_KEYS_FILE`: limited by its name.
    Key(String),
    /// A signed token: limited by its `sub`.
    Token(String),
}

impl Identity {
    /// What its requests are rate-limited by when not the client address:
    /// `key:<name>` or `sub:<sub>`.
    pub fn rate_key(&self) -> Option<String> {
        match self {
            Identity::Anonymous | Identity::LegacyKey => None,
            Identity::Key(name) => Some(format!("key:{name}")),
            Identity::Token(sub) => Some(format!("sub:{sub}")),
        }
    }

    /// A name for logs and metrics (never a secret): `anonymous`,
    /// `api_key`, the key's name, or `token`.
    pub fn label(&self) -> &str {
        match self {
            Identity::Anonymous => "anonymous",
            Identity::LegacyKey => "api_key",
            Identity::Key(name) => name,
            Identity::Token(_) => "token",
        }
    }
}

/// A principal's own rate limits, overriding the `RATE_LIMIT_*` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnLimits {
    /// Publishes, REST and WebSocket together.
    pub publish: Option<RateLimit>,
    /// Queries (events, by id, stats).
    pub query: Option<RateLimit>,
}

/// An authenticated caller: who, its roles, its scope and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who it is.
    pub identity: Identity,
    /// What it may do.
    pub roles: Vec<Role>,
    /// Which events it may publish or see.
    pub scope: Scope,
    /// When its credential stops being valid (a token's `exp`).
    pub expires_at: Option<Timestamp>,
    /// Its own rate limits.
    pub limits: OwnLimits,
}

impl Principal {
    /// An anonymous caller with these roles and no restriction.
    pub fn new(roles: impl Into<Vec<Role>>) -> Self {
        Self {
            identity: Identity::Anonymous,
            roles: roles.into(),
            scope: Scope::unrestricted(),
            expires_at: None,
            limits: OwnLimits::default(),
        }
    }

    /// A caller with every role and no restriction (what `REQUIRE_AUTH=false`
    /// grants a request without credential).
    pub fn everything() -> Self {
        Self::new(Role::ALL)
    }

    /// The same caller with this identity.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The same caller restricted to `scope`.
    #[must_use]
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a credential was refused. Every variant is a 401 (close 4001).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key where one is required, or a key that matches none configured.
    #[error("Invalid or missing API key")]
    InvalidCredential,
    /// A token that does not verify: its text says why (never the token).
    #[error("Invalid token: {0}")]
    InvalidToken(String),
    /// A token whose `exp` has passed.
    #[error("Token expired")]
    TokenExpired,
}

/// Decides who a caller is.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Authenticator: Send + Sync + 'static {
    /// The principal for `credential`.
    ///
    /// Implementations MUST compare secrets in constant time and MUST NOT log
    /// them.
    ///
    /// # Errors
    /// `InvalidCredential` when the credential grants nothing,
    /// `InvalidToken` / `TokenExpired` for a token that fails.
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError>;

    /// Whether a principal authenticated earlier still holds (its key was
    /// not removed or changed since). Live connections are closed when it
    /// no longer does.
    fn still_valid(&self, principal: &Principal) -> bool {
        let _ = principal;
        true
    }
}
