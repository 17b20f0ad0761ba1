//! `JWT_PUBLIC_KEYS`: a PEM file (one RSA, EC P-256 or Ed25519 public key)
//! or a JWKS document (keys chosen by `kid`).

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One public key and the algorithm it verifies.
#[derive(Clone)]
pub struct PublicKey {
    /// Its `kid`, when a JWKS names it.
    pub kid: Option<String>,
    /// RS256, ES256 or EdDSA.
    pub algorithm: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// Why the public keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublicKeyError(pub String);

fn jwks(text: &str) -> Result<Vec<PublicKey>, PublicKeyError> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| PublicKeyError(format!("not a JWKS document: {e}")))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(_), None | Some(KeyAlgorithm::ES256)) => {
                Algorithm::ES256
            }
            (AlgorithmParameters::OctetKeyPair(_), None | Some(KeyAlgorithm::EdDSA)) => {
                Algorithm::EdDSA
            }
            _ => {
                return Err(PublicKeyError(format!(
                    "key {}: only RS256, ES256 and EdDSA public keys are accepted",
                    jwk.common.key_id.as_deref().unwrap_or("(no kid)")
                )))
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| {
            PublicKeyError(format!(
                "key {}: {e}",
                jwk.common.key_id.as_deref().unwrap_or("(no kid)")
            ))
        })?;
        keys.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    Ok(keys)
}

/// Reads one kind of PEM public key.
type PemParser = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;

fn pem(text: &str) -> Result<Vec<PublicKey>, PublicKeyError> {
    let bytes = text.as_bytes();
    let attempts: [(Algorithm, PemParser); 3] = [
        (Algorithm::RS256, DecodingKey::from_rsa_pem),
        (Algorithm::ES256, DecodingKey::from_ec_pem),
        (Algorithm::EdDSA, DecodingKey::from_ed_pem),
    ];
    attempts
        .into_iter()
        .find_map(|(algorithm, parse)| {
            parse(bytes).ok().map(|key| PublicKey {
                kid: None,
                algorithm,
                key,
            })
        })
        .map(|k| vec![k])
        .ok_or_else(|| PublicKeyError("not a PEM public key of RSA, EC P-256 or Ed25519".into()))
}

/// Reads a PEM or JWKS file of public keys.
///
/// # Errors
/// `PublicKeyError` saying why.
pub fn load_public_keys(path: &Path) -> Result<Vec<PublicKey>, PublicKeyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PublicKeyError(format!("cannot read it: {e}")))?;
    let keys = if text.trim_start().starts_with('{') {
        jwks(&text)?
    } else {
        pem(&text)?
    };
    if keys.is_empty() {
        return Err(PublicKeyError("it holds no key".into()));
    }
    Ok(keys)
}
