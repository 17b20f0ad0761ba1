//! The `Authenticator` port: who is calling, and what may they do.

/// What a caller presented: the API key from `X-API-Key` or `?api_key=`, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The key as sent; `None` when the request carried none.
    pub api_key: Option<&'a str>,
}

impl std::fmt::Debug for Credential<'_> {
    // Never print the key itself: it would end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("api_key", &self.api_key.map(|_| "<redacted>"))
            .finish()
    }
}

/// A permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May publish events.
    Publish,
    /// May query events and stats.
    Read,
    /// May delete events.
    Admin,
}

/// An authenticated caller and its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    roles: Vec<Role>,
}

impl Principal {
    /// A caller with these roles.
    pub fn new(roles: impl Into<Vec<Role>>) -> Self {
        Self {
            roles: roles.into(),
        }
    }

    /// A caller with every role (what `REQUIRE_AUTH=false` grants).
    pub fn everything() -> Self {
        Self::new([Role::Publish, Role::Read, Role::Admin])
    }

    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key, or a key that matches none configured.
    #[error("invalid or missing API key")]
    InvalidCredential,
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
    /// `InvalidCredential` when the credential grants nothing.
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError>;
}
