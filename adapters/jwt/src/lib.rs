//! An `Authenticator` from signed tokens (JWT): HS256 with a shared secret,
//! RS256, ES256 and EdDSA with public keys (PEM or JWKS, chosen by `kid`).
//! `exp` and `sub` are required, `nbf` honoured, `iss` / `aud` checked when
//! configured; `alg: none` and any algorithm without a configured key are
//! refused (an HS256 token is never checked against a public key). The
//! claims `roles`, `event_types`, `sources`, `session_ids`, `user_ids` make
//! the principal.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod keys;
mod verified;

use ep_ports::{
    AuthError, Authenticator, Credential, Identity, OwnLimits, Principal, Role, Scope, Timestamp,
};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

pub use keys::{load_public_keys, PublicKey, PublicKeyError};

/// The shortest HS256 secret accepted (RFC 7518: at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims this service reads (and `event-pipeline token` writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: what logs name and the token's rate limits are keyed by
    /// (required: a token without one is refused as "missing claim sub").
    #[serde(default)]
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Roles: any of `publish`, `read`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The scope: absent restricts nothing, empty allows nothing.
    #[serde(flatten)]
    pub scope: Scope,
}

/// Token settings.
#[derive(Clone, Default)]
pub struct JwtSettings {
    /// `JWT_HS256_SECRET`.
    pub hs256_secret: Option<Vec<u8>>,
    /// `JWT_PUBLIC_KEYS`, loaded.
    pub public_keys: Vec<PublicKey>,
    /// `JWT_ISSUER`.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`.
    pub audience: Option<String>,
    /// `JWT_LEEWAY_SECONDS`.
    pub leeway_seconds: u64,
}

/// Why token settings cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// The secret is too short to be safe.
    #[error("JWT_HS256_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
}

/// Verifies tokens.
pub struct JwtAuthenticator {
    secret: Option<DecodingKey>,
    public_keys: Vec<PublicKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    /// Tokens already verified (each checked again for time on every use).
    verified: verified::Verified,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("hs256", &self.secret.is_some())
            .field("public_keys", &self.public_keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidToken(reason.to_owned())
}

impl JwtAuthenticator {
    /// A verifier with `settings`.
    ///
    /// # Errors
    /// `ShortSecret` for an HS256 secret under [`MIN_SECRET_BYTES`].
    pub fn new(settings: JwtSettings) -> Result<Self, JwtConfigError> {
        if settings
            .hs256_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_SECRET_BYTES)
        {
            return Err(JwtConfigError::ShortSecret);
        }
        Ok(Self {
            secret: settings
                .hs256_secret
                .as_deref()
                .map(DecodingKey::from_secret),
            public_keys: settings.public_keys,
            issuer: settings.issuer,
            audience: settings.audience,
            leeway: settings.leeway_seconds,
            verified: verified::Verified::default(),
        })
    }

    /// The key to check a token with this header against, if one is configured.
    fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        if alg == Algorithm::HS256 {
            return self
                .secret
                .as_ref()
                .ok_or_else(|| invalid("HS256 tokens are not accepted here"));
        }
        let mut fitting = self.public_keys.iter().filter(|k| k.algorithm == alg);
        let key = match kid {
            Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
            None => fitting.next(),
        };
        key.map(|k| &k.key).ok_or_else(|| {
            invalid(&format!(
                "no key configured for algorithm {alg:?}{}",
                kid.map(|k| format!(" and kid '{k}'")).unwrap_or_default()
            ))
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            v.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".into());
            }
            None => v.validate_aud = false,
        }
        v
    }

    /// The claims of a token that verifies.
    ///
    /// # Errors
    /// `InvalidToken` saying why (never echoing the token), `TokenExpired`.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("malformed token or unsupported algorithm"))?;
        let supported = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ];
        if !supported.contains(&header.alg) {
            return Err(invalid(&format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.key_for(header.alg, header.kid.as_deref())?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation(header.alg))
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::ImmatureSignature => invalid("not valid yet (nbf)"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::InvalidAudience => invalid("wrong audience"),
                ErrorKind::MissingRequiredClaim(claim) => {
                    invalid(&format!("missing claim {claim}"))
                }
                ErrorKind::InvalidAlgorithm => invalid("algorithm does not fit the key"),
                _ => invalid("malformed token or claims"),
            })?;
        Ok(data.claims)
    }
}

/// The principal of verified claims.
///
/// # Errors
/// `InvalidToken` for an unknown role or an empty `sub`.
pub fn principal_of(claims: Claims) -> Result<Principal, AuthError> {
    if claims.sub.is_empty() {
        return Err(invalid("empty sub"));
    }
    let mut roles = Vec::with_capacity(claims.roles.len());
    for role in &claims.roles {
        let role: Role = role.parse().map_err(|e: String| invalid(&e))?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(Principal {
        identity: Identity::Token(claims.sub),
        roles,
        scope: claims.scope,
        expires_at: Some(Timestamp::from_micros(claims.exp.saturating_mul(1_000_000))),
        limits: OwnLimits::default(),
    })
}

impl Authenticator for JwtAuthenticator {
    fn authenticate<'a>(&self, credential: Credential<'a>) -> Result<Principal, AuthError> {
        let token = credential.token.ok_or_else(|| invalid("no token"))?;
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        let now = chrono::Utc::now().timestamp();
        if let Some(known) = self.verified.get(token, now, leeway) {
            return known;
        }
        let claims = self.verify(token)?;
        let (not_before, expires) = (claims.nbf, claims.exp);
        let principal = principal_of(claims)?;
        self.verified.insert(token, &principal, not_before, expires);
        Ok(principal)
    }
}

/// Signs `claims` with an HS256 secret (`event-pipeline token`, tests).
///
/// # Errors
/// `ShortSecret`, or a signing failure (as text).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> Result<String, String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(JwtConfigError::ShortSecret.to_string());
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
