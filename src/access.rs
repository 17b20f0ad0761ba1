//! The service's gate: which authenticator answers which credential. A
//! token goes to the token adapter, a key to the key adapter; with
//! `REQUIRE_AUTH=false` a request without credential may do everything, but
//! one whose credential fails is refused all the same.

use std::path::PathBuf;
use std::sync::Arc;

use ep_auth_apikey::{load_keys, ApiKeyAuthenticator, KeyFileError};
use ep_auth_jwt::{load_public_keys, JwtAuthenticator, JwtSettings};
use ep_ports::{AuthError, Authenticator, Credential, Principal};

use crate::Config;

/// Why the credentials could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// `API_KEYS_FILE` is unusable.
    #[error("API_KEYS_FILE {path}: {source}")]
    Keys {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        source: KeyFileError,
    },
    /// `JWT_PUBLIC_KEYS` is unusable.
    #[error("JWT_PUBLIC_KEYS {path}: {reason}")]
    PublicKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The token settings are unusable.
    #[error(transparent)]
    Tokens(#[from] ep_auth_jwt::JwtConfigError),
}

/// Keys, tokens, and whether a credential is required.
pub struct Gate {
    keys: Arc<ApiKeyAuthenticator>,
    tokens: Option<JwtAuthenticator>,
    require_auth: bool,
    keys_file: Option<PathBuf>,
}

impl Gate {
    /// The gate `config` describes, with its files read.
    ///
    /// # Errors
    /// `AccessError` naming the file (and line) that is unusable.
    pub fn from_config(config: &Config) -> Result<Self, AccessError> {
        let keys_file = config.api_keys_file.as_ref().map(PathBuf::from);
        let named = match &keys_file {
            Some(path) => load_keys(path).map_err(|source| AccessError::Keys {
                path: path.clone(),
                source,
            })?,
            None => Vec::new(),
        };
        let public_keys = match &config.jwt_public_keys {
            Some(path) => load_public_keys(path.as_ref()).map_err(|e| AccessError::PublicKeys {
                path: PathBuf::from(path),
                reason: e.0,
            })?,
            None => Vec::new(),
        };
        let tokens = if config.jwt_hs256_secret.is_some() || !public_keys.is_empty() {
            Some(JwtAuthenticator::new(JwtSettings {
                hs256_secret: config
                    .jwt_hs256_secret
                    .as_ref()
                    .map(|s| s.as_bytes().to_vec()),
                public_keys,
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
                leeway_seconds: config.jwt_leeway.as_secs(),
            })?)
        } else {
            None
        };
        Ok(Self {
            keys: Arc::new(ApiKeyAuthenticator::new(
                Some(config.api_key.as_str()),
                config.admin_api_key.as_deref(),
                named,
            )),
            tokens,
            require_auth: config.require_auth,
            keys_file,
        })
    }

    /// Reads `API_KEYS_FILE` again and puts its keys in force. A file that
    /// is unusable now leaves the keys in force as they were.
    ///
    /// # Errors
    /// `AccessError::Keys` naming the line; nothing changed.
    pub fn reload_keys(&self) -> Result<usize, AccessError> {
        let Some(path) = &self.keys_file else {
            return Ok(0);
        };
        let named = load_keys(path).map_err(|source| AccessError::Keys {
            path: path.clone(),
            source,
        })?;
        let count = named.len();
        self.keys.replace_keys(named);
        Ok(count)
    }
}

impl Authenticator for Gate {
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError> {
        if let Some(token) = credential.token {
            return match &self.tokens {
                Some(tokens) => tokens.authenticate(Credential::token(token)),
                None => Err(AuthError::InvalidToken(
                    "tokens are not configured on this service".into(),
                )),
            };
        }
        match credential.api_key {
            Some(_) if self.keys.has_keys() => self.keys.authenticate(credential),
            // No key is configured: a key sent to an open service is
            // ignored, as the old service did; to a closed one it is wrong.
            Some(_) | None if !self.require_auth => Ok(Principal::everything()),
            _ => Err(AuthError::InvalidCredential),
        }
    }

    fn still_valid(&self, principal: &Principal) -> bool {
        self.keys.still_valid(principal)
    }
}
