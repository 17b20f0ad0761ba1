//! Tokens of every accepted kind verify; every kind of bad token is refused
//! with a reason (test keys in `fixtures/`, made for these tests only).

use std::io::Write;

use jsonwebtoken::{encode, EncodingKey, Header};

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";
const RSA_PRIVATE: &str = include_str!("fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/rsa_public.pem");
const ED_PRIVATE: &str = include_str!("fixtures/ed_private.pem");
const ED_PUBLIC: &str = include_str!("fixtures/ed_public.pem");
const EC_PRIVATE: &str = include_str!("fixtures/ec_private.pem");
const EC_PUBLIC: &str = include_str!("fixtures/ec_public.pem");
const EC_OTHER_PRIVATE: &str = include_str!("fixtures/ec_other_private.pem");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(exp_in: i64) -> Claims {
    Claims {
        sub: "teacher-7".into(),
        exp: now() + exp_in,
        nbf: None,
        iat: Some(now()),
        iss: None,
        aud: None,
        roles: vec!["read".into()],
        scope: Scope {
            session_ids: Some(vec!["s1".into(), "s2".into()]),
            ..Scope::default()
        },
    }
}

fn hs256() -> JwtAuthenticator {
    JwtAuthenticator::new(JwtSettings {
        hs256_secret: Some(SECRET.to_vec()),
        leeway_seconds: 0,
        ..JwtSettings::default()
    })
    .expect("settings")
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

#[test]
fn an_hs256_token_gives_its_sub_roles_scope_and_expiry() {
    let c = claims(3600);
    let token = mint_hs256(SECRET, &c).expect("mint");
    let p = hs256()
        .authenticate(Credential::token(&token))
        .expect("valid");
    assert_eq!(p.identity, Identity::Token("teacher-7".into()));
    assert_eq!(p.roles, vec![Role::Read]);
    assert_eq!(p.scope.session_ids, Some(vec!["s1".into(), "s2".into()]));
    assert_eq!(
        p.expires_at,
        Some(Timestamp::from_micros(c.exp * 1_000_000))
    );
}

#[test]
fn bad_tokens_are_refused_with_a_reason() {
    let auth = hs256();
    let expired = mint_hs256(SECRET, &claims(-120)).expect("mint");
    assert_eq!(
        auth.authenticate(Credential::token(&expired)),
        Err(AuthError::TokenExpired)
    );
    let other = mint_hs256(b"another-secret-of-at-least-32-bytes!!", &claims(60)).expect("mint");
    assert_eq!(
        auth.authenticate(Credential::token(&other)),
        Err(invalid("bad signature"))
    );
    // alg: none, hand-made.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        base64_url(&serde_json::to_vec(&claims(60)).expect("json"))
    );
    assert!(matches!(
        auth.authenticate(Credential::token(&none)),
        Err(AuthError::InvalidToken(_))
    ));
    for junk in ["", "abc", "a.b.c", "Bearer x"] {
        assert!(matches!(
            auth.authenticate(Credential::token(junk)),
            Err(AuthError::InvalidToken(_))
        ));
    }
    let mut unknown_role = claims(60);
    unknown_role.roles = vec!["root".into()];
    let token = mint_hs256(SECRET, &unknown_role).expect("mint");
    assert!(matches!(
        auth.authenticate(Credential::token(&token)),
        Err(AuthError::InvalidToken(_))
    ));
    let mut later = claims(600);
    later.nbf = Some(now() + 300);
    let token = mint_hs256(SECRET, &later).expect("mint");
    assert_eq!(
        auth.authenticate(Credential::token(&token)),
        Err(invalid("not valid yet (nbf)"))
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn sub_is_required() {
    let token = encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"exp": now() + 60, "roles": ["read"]}),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign");
    assert_eq!(
        hs256().authenticate(Credential::token(&token)),
        Err(invalid("missing claim sub"))
    );
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let auth = JwtAuthenticator::new(JwtSettings {
        hs256_secret: Some(SECRET.to_vec()),
        issuer: Some("platform".into()),
        audience: Some("event-pipeline".into()),
        ..JwtSettings::default()
    })
    .expect("settings");
    let sign = |extra: serde_json::Value| {
        let mut body = serde_json::json!({"sub": "t", "exp": now() + 60, "roles": ["read"]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("sign")
    };
    let good = sign(serde_json::json!({"iss": "platform", "aud": "event-pipeline"}));
    assert!(auth.authenticate(Credential::token(&good)).is_ok());
    let wrong_iss = sign(serde_json::json!({"iss": "other", "aud": "event-pipeline"}));
    assert_eq!(
        auth.authenticate(Credential::token(&wrong_iss)),
        Err(invalid("wrong issuer"))
    );
    let wrong_aud = sign(serde_json::json!({"iss": "platform", "aud": "other"}));
    assert_eq!(
        auth.authenticate(Credential::token(&wrong_aud)),
        Err(invalid("wrong audience"))
    );
    let no_aud = sign(serde_json::json!({"iss": "platform"}));
    assert!(auth.authenticate(Credential::token(&no_aud)).is_err());
}

#[test]
fn public_keys_verify_their_own_algorithm_only() {
    let rsa = file(RSA_PUBLIC);
    let auth = JwtAuthenticator::new(JwtSettings {
        public_keys: load_public_keys(rsa.path()).expect("rsa pem"),
        ..JwtSettings::default()
    })
    .expect("settings");
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &claims(60),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key"),
    )
    .expect("sign");
    assert!(auth.authenticate(Credential::token(&rs256)).is_ok());
    // The classic confusion: an HS256 token "signed" with the public key's text.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims(60),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .expect("sign");
    assert_eq!(
        auth.authenticate(Credential::token(&confused)),
        Err(invalid("HS256 tokens are not accepted here"))
    );
}

#[test]
fn an_ec_p256_pem_verifies_es256_tokens_signed_by_its_private_key_only() {
    let ec = file(EC_PUBLIC);
    let keys = load_public_keys(ec.path()).expect("ec pem");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].algorithm, Algorithm::ES256);
    let auth = JwtAuthenticator::new(JwtSettings {
        public_keys: keys,
        ..JwtSettings::default()
    })
    .expect("settings");
    let es256 = encode(
        &Header::new(Algorithm::ES256),
        &claims(60),
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("ec key"),
    )
    .expect("sign");
    assert_eq!(
        auth.authenticate(Credential::token(&es256))
            .map(|p| p.identity),
        Ok(Identity::Token("teacher-7".into()))
    );
    // The same claims signed by another P-256 key do not verify.
    let other = encode(
        &Header::new(Algorithm::ES256),
        &claims(60),
        &EncodingKey::from_ec_pem(EC_OTHER_PRIVATE.as_bytes()).expect("other ec key"),
    )
    .expect("sign");
    assert_eq!(
        auth.authenticate(Credential::token(&other)),
        Err(invalid("bad signature"))
    );
    // An RS256 token is refused by name, not tried against the EC key.
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &claims(60),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key"),
    )
    .expect("sign");
    assert!(matches!(
        auth.authenticate(Credential::token(&rs256)),
        Err(AuthError::InvalidToken(_))
    ));
}

#[test]
fn a_jwks_chooses_the_key_by_kid() {
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("ed key");
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa key");
    let set = serde_json::json!({"keys": [
        {"kid": "ed-1", "alg": "EdDSA", "use": "sig", "kty": "OKP", "crv": "Ed25519",
         "x": jwk_x(ED_PUBLIC)},
        serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("jwk"))
            .map(|mut v| { v["kid"] = "rsa-1".into(); v }).expect("json"),
    ]});
    let jwks = file(&set.to_string());
    let auth = JwtAuthenticator::new(JwtSettings {
        public_keys: load_public_keys(jwks.path()).expect("jwks"),
        ..JwtSettings::default()
    })
    .expect("settings");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed-1".into());
    let token = encode(&header, &claims(60), &ed).expect("sign");
    assert!(auth.authenticate(Credential::token(&token)).is_ok());
    header.kid = Some("nope".into());
    let token = encode(&header, &claims(60), &ed).expect("sign");
    assert!(matches!(
        auth.authenticate(Credential::token(&token)),
        Err(AuthError::InvalidToken(_))
    ));
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let token = encode(&header, &claims(60), &rsa).expect("sign");
    assert!(auth.authenticate(Credential::token(&token)).is_ok());
}

/// The `x` of an Ed25519 public key in PEM: its last 32 bytes, base64url.
fn jwk_x(pem: &str) -> String {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("pem body");
    base64_url(&der[der.len() - 32..])
}

#[test]
fn a_short_secret_is_refused() {
    assert!(JwtAuthenticator::new(JwtSettings {
        hs256_secret: Some(b"short".to_vec()),
        ..JwtSettings::default()
    })
    .is_err());
    assert!(mint_hs256(b"short", &claims(60)).is_err());
}

#[test]
fn a_token_verified_once_is_remembered_but_its_expiry_still_counts() {
    let auth = hs256();
    let token = mint_hs256(SECRET, &claims(3600)).expect("mint");
    let first = auth.authenticate(Credential::token(&token)).expect("valid");
    assert_eq!(auth.verified.len(), 1);
    assert_eq!(auth.authenticate(Credential::token(&token)), Ok(first));
    assert_eq!(auth.verified.len(), 1, "the same token, remembered once");
    // Failing tokens are never remembered.
    let bad = mint_hs256(b"another-secret-of-at-least-32-bytes!!", &claims(60)).expect("mint");
    assert!(auth.authenticate(Credential::token(&bad)).is_err());
    assert!(auth.authenticate(Credential::token(&bad)).is_err());
    assert_eq!(auth.verified.len(), 1);
    // A remembered token past its exp is refused.
    let short = mint_hs256(SECRET, &claims(1)).expect("mint");
    auth.authenticate(Credential::token(&short))
        .expect("valid now");
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        auth.verified.get(&short, now + 5, 0),
        Some(Err(AuthError::TokenExpired))
    );
}

#[test]
fn the_table_of_verified_tokens_stays_bounded() {
    let auth = hs256();
    for n in 0..(verified::CAPACITY + 10) {
        let mut c = claims(3600);
        c.sub = format!("user-{n}");
        let token = mint_hs256(SECRET, &c).expect("mint");
        auth.authenticate(Credential::token(&token)).expect("valid");
        assert!(auth.verified.len() <= verified::CAPACITY);
    }
}
