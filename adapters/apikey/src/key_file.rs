//! `API_KEYS_FILE`: named keys in TOML, each with the SHA-256 of its secret
//! (the file holds no secret), its roles, optional restrictions and limits.

use std::path::Path;

use ep_ports::{OwnLimits, RateLimit, Role, Scope};
use serde::Deserialize;

/// One named key, as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    /// `[A-Za-z0-9_.-]{1,64}`, unique in the file: what logs, metrics and
    /// rate limits know the key by.
    pub name: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// What it may do.
    pub roles: Vec<Role>,
    /// Which events.
    pub scope: Scope,
    /// Its own limits.
    pub limits: OwnLimits,
}

/// Why a key file was refused: the line (1-based, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct KeyFileError {
    /// The line of the offending entry.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    keys: Vec<toml::Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    roles: Vec<String>,
    event_types: Option<Vec<String>>,
    sources: Option<Vec<String>>,
    session_ids: Option<Vec<String>>,
    user_ids: Option<Vec<String>>,
    rate_limit_publish: Option<String>,
    rate_limit_query: Option<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn rate(field: &str, text: Option<String>) -> Result<Option<RateLimit>, String> {
    text.map(|t| {
        t.trim()
            .parse::<RateLimit>()
            .map_err(|e| format!("{field} = \"{t}\": {e}"))
    })
    .transpose()
}

impl Entry {
    fn into_key(self) -> Result<NamedKey, String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "name \"{}\" must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
                self.name
            ));
        }
        let sha256 = hex32(&self.sha256).ok_or_else(|| {
            format!(
                "key \"{}\": sha256 must be 64 hex digits (the SHA-256 of the key)",
                self.name
            )
        })?;
        let mut roles = Vec::new();
        for role in &self.roles {
            let role: Role = role
                .parse()
                .map_err(|e| format!("key \"{}\": {e}", self.name))?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(NamedKey {
            name: self.name,
            sha256,
            roles,
            scope: Scope {
                event_types: self.event_types,
                sources: self.sources,
                session_ids: self.session_ids,
                user_ids: self.user_ids,
            },
            limits: OwnLimits {
                publish: rate("rate_limit_publish", self.rate_limit_publish)?,
                query: rate("rate_limit_query", self.rate_limit_query)?,
            },
        })
    }
}

/// Parses the text of a key file.
///
/// # Errors
/// `KeyFileError` with the line of the first bad entry: not TOML, an
/// unknown field, a bad name, hash, role or limit, a repeated name or hash.
pub fn parse_keys(text: &str) -> Result<Vec<NamedKey>, KeyFileError> {
    let file: File = toml::from_str(text).map_err(|e| KeyFileError {
        line: e.span().map(|s| line_of(text, s.start)),
        message: e.message().to_owned(),
    })?;
    let mut keys: Vec<NamedKey> = Vec::with_capacity(file.keys.len());
    for spanned in file.keys {
        let line = Some(line_of(text, spanned.span().start));
        let key = spanned
            .into_inner()
            .into_key()
            .map_err(|message| KeyFileError { line, message })?;
        if keys.iter().any(|k| k.name == key.name) {
            return Err(KeyFileError {
                line,
                message: format!("the name \"{}\" is used twice", key.name),
            });
        }
        if keys.iter().any(|k| k.sha256 == key.sha256) {
            return Err(KeyFileError {
                line,
                message: format!("key \"{}\" has the same sha256 as another", key.name),
            });
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Reads and parses a key file.
///
/// # Errors
/// `KeyFileError` when it cannot be read or is refused by [`parse_keys`].
pub fn load_keys(path: &Path) -> Result<Vec<NamedKey>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyFileError {
        line: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse_keys(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_full_entry_is_read() {
        let keys = parse_keys(&format!(
            r#"
[[keys]]
name = "quiz-engine"
sha256 = "{HASH}"
roles = ["publish", "read"]
sources = ["quiz-engine"]
rate_limit_publish = "50/second"
"#
        ))
        .expect("valid");
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!(k.name, "quiz-engine");
        assert_eq!(k.roles, vec![Role::Publish, Role::Read]);
        assert_eq!(k.scope.sources, Some(vec!["quiz-engine".to_owned()]));
        assert_eq!(k.scope.session_ids, None);
        assert_eq!(k.limits.publish.map(|l| l.count), Some(50));
        assert_eq!(k.limits.query, None);
    }

    #[test]
    fn bad_entries_name_their_line() {
        let cases = [
            (format!("[[keys]]\nname = \"a b\"\nsha256 = \"{HASH}\"\nroles = []\n"), 1, "name"),
            ("[[keys]]\nname = \"a\"\nsha256 = \"abc\"\nroles = []\n".to_owned(), 1, "sha256"),
            (format!("\n[[keys]]\nname = \"a\"\nsha256 = \"{HASH}\"\nroles = [\"root\"]\n"), 2, "unknown role"),
            (format!("[[keys]]\nname = \"a\"\nsha256 = \"{HASH}\"\nroles = []\n\n[[keys]]\nname = \"a\"\nsha256 = \"{}\"\nroles = []\n", HASH.replace('9', "8")), 6, "twice"),
            (format!("[[keys]]\nname = \"a\"\nsha256 = \"{HASH}\"\nroles = []\nrate_limit_query = \"lots\"\n"), 1, "rate_limit_query"),
            (format!("[[keys]]\nname = \"a\"\nsha256 = \"{HASH}\"\nroles = []\ncolour = 1\n"), 5, "colour"),
            ("[[keys]\n".to_owned(), 1, ""),
        ];
        for (text, line, says) in cases {
            let e = parse_keys(&text).expect_err(&text);
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn an_empty_file_has_no_keys() {
        assert_eq!(parse_keys(""), Ok(Vec::new()));
    }
}
