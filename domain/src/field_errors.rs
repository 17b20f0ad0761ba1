//! Why input was refused, field by field, in the shape of the old service's
//! errors (`loc`, `msg`, `type`): what validation, queries and deletes report.

use serde::Serialize;

/// One reason input was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where: e.g. `["body", "source"]` or `["query", "limit"]`.
    pub loc: Vec<String>,
    /// What is wrong, for people.
    pub msg: String,
    /// What is wrong, for programs (pydantic's names, e.g. `string_too_long`).
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl FieldError {
    /// An error at `loc` (e.g. `&["body", "source"]`).
    pub fn new(loc: &[&str], msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind,
        }
    }
}

/// Every reason a request was refused (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.loc.last().map(String::as_str).unwrap_or("body"),
                e.msg
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    /// A single error.
    pub fn one(error: FieldError) -> Self {
        Self(vec![error])
    }
}
