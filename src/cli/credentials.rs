//! Credentials for operators: `keys new` prints a fresh random key once and
//! the `API_KEYS_FILE` entry that grants it (the file holds only its
//! SHA-256); `token` mints an HS256 token from `JWT_HS256_SECRET`, for
//! platforms without a JWT library, and for tests.

use std::time::Duration;

use ep_auth_jwt::{mint_hs256, Claims};
use ep_ports::{Role, Scope};

use super::CliError;
use crate::config::Config;

/// `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print a fresh random key (once: it is stored nowhere) and the TOML
    /// entry to paste into API_KEYS_FILE.
    New(NewKey),
}

/// The restrictions both commands take, as comma lists.
#[derive(Debug, Clone, clap::Args)]
pub struct Restrictions {
    /// Roles: publish, read, admin (comma list).
    #[arg(long, value_delimiter = ',', required = true)]
    pub roles: Vec<String>,
    /// Only these event types.
    #[arg(long, value_delimiter = ',')]
    pub event_types: Option<Vec<String>>,
    /// Only events from these sources.
    #[arg(long, value_delimiter = ',')]
    pub sources: Option<Vec<String>>,
    /// Only these sessions.
    #[arg(long, value_delimiter = ',')]
    pub session_ids: Option<Vec<String>>,
    /// Only these users.
    #[arg(long, value_delimiter = ',')]
    pub user_ids: Option<Vec<String>>,
}

impl Restrictions {
    fn roles(&self) -> Result<Vec<String>, CliError> {
        self.roles
            .iter()
            .map(|r| {
                r.trim()
                    .parse::<Role>()
                    .map(|role| role.name().to_owned())
                    .map_err(CliError::Usage)
            })
            .collect()
    }

    fn scope(&self) -> Scope {
        Scope {
            event_types: self.event_types.clone(),
            sources: self.sources.clone(),
            session_ids: self.session_ids.clone(),
            user_ids: self.user_ids.clone(),
        }
    }
}

/// `keys new`.
#[derive(Debug, clap::Args)]
pub struct NewKey {
    /// The key's name: what logs, metrics and its rate limits know it by.
    #[arg(long)]
    pub name: String,
    /// What it may do and see.
    #[command(flatten)]
    pub restrictions: Restrictions,
    /// Its own publish limit (REST and WebSocket together), e.g. 50/second.
    #[arg(long)]
    pub rate_limit_publish: Option<String>,
    /// Its own query limit.
    #[arg(long)]
    pub rate_limit_query: Option<String>,
}

/// `token`.
#[derive(Debug, clap::Args)]
pub struct MintToken {
    /// The token's subject (a teacher, a browser session).
    #[arg(long)]
    pub sub: String,
    /// What it may do and see.
    #[command(flatten)]
    pub restrictions: Restrictions,
    /// How long it is valid: 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
}

/// `90s`, `15m`, `1h`, `7d` (a plain number is seconds).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::from_secs)
}

fn toml_list(name: &str, values: Option<&Vec<String>>) -> String {
    values.map_or_else(String::new, |values| {
        let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("{name} = [{}]\n", quoted.join(", "))
    })
}

/// 32 random bytes, URL-safe base64: a key.
fn fresh_key() -> Result<String, CliError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::Usage(format!("no randomness from the system: {e}")))?;
    Ok(format!(
        "ep_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Prints a new key and its entry.
///
/// # Errors
/// `Usage` for a bad name, role or limit.
pub fn new_key(args: &NewKey) -> Result<(), CliError> {
    let key = fresh_key()?;
    let roles: Vec<String> = args.restrictions.roles()?;
    let scope = args.restrictions.scope();
    let mut entry = format!(
        "[[keys]]\nname = {:?}\nsha256 = \"{}\"\nroles = {:?}\n",
        args.name,
        ep_auth_apikey::key_sha256(&key),
        roles
    );
    for (name, list) in [
        ("event_types", scope.event_types.as_ref()),
        ("sources", scope.sources.as_ref()),
        ("session_ids", scope.session_ids.as_ref()),
        ("user_ids", scope.user_ids.as_ref()),
    ] {
        entry.push_str(&toml_list(name, list));
    }
    for (name, limit) in [
        ("rate_limit_publish", &args.rate_limit_publish),
        ("rate_limit_query", &args.rate_limit_query),
    ] {
        if let Some(limit) = limit {
            entry.push_str(&format!("{name} = {limit:?}\n"));
        }
    }
    // The entry must be one the service accepts.
    ep_auth_apikey::parse_keys(&entry).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("# The key (shown once; give it to the service that will use it):");
    println!("{key}");
    println!();
    println!("# The entry for API_KEYS_FILE (then send the service SIGHUP):");
    print!("{entry}");
    Ok(())
}

/// Prints a token signed with the configured `JWT_HS256_SECRET`.
///
/// # Errors
/// `Usage` without a secret, or for a bad role or duration.
pub fn mint(args: &MintToken) -> Result<(), CliError> {
    let config = Config::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    let Some(secret) = config.jwt_hs256_secret.as_ref() else {
        return Err(CliError::Usage(
            "JWT_HS256_SECRET is not set: the token would verify nowhere".into(),
        ));
    };
    let ttl: Duration = parse_duration(&args.ttl).ok_or_else(|| {
        CliError::Usage(format!(
            "--ttl {}: expected N followed by s, m, h or d",
            args.ttl
        ))
    })?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: args.sub.clone(),
        exp: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        nbf: None,
        iat: Some(now),
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
        roles: args.restrictions.roles()?,
        scope: args.restrictions.scope(),
    };
    let token = mint_hs256(secret.as_bytes(), &claims).map_err(CliError::Usage)?;
    println!("{token}");
    Ok(())
}
