//! A payload schema: the rules an event type's payload must follow, as an
//! operator declared them (a JSON Schema) or as the service ships them for
//! the built-in types. Adapters compile a schema document once; the domain
//! asks each publish's payload against it.

use serde_json::Value;

/// One rule a payload broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Where in the payload, as keys and array indexes from its root
    /// (empty: the payload itself). A missing required key is named here.
    pub path: Vec<String>,
    /// What is wrong, for people, e.g. `must be a boolean`.
    pub message: String,
}

/// A compiled payload schema.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PayloadSchema: Send + Sync {
    /// The rules `payload` breaks, at most `max` of them (none: it follows
    /// them all).
    fn violations(&self, payload: &Value, max: usize) -> Vec<SchemaViolation>;

    /// The schema document it was compiled from, as served to clients.
    fn document(&self) -> &Value;
}

/// Why a schema document could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema: {0}")]
pub struct BadSchema(pub String);
