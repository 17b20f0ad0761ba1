//! An event's payload: a JSON object kept as its compact serialized text.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// The payload of an event: a JSON object held as compact JSON text.
///
/// It is parsed once on the way in (by the domain, which checks it is an
/// object within the limits) and never re-serialized: stores keep the text and
/// serving an event writes it out verbatim.
#[derive(Clone)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// Wraps JSON text that is already known to be a compact JSON object (the
    /// domain's validation produced it, or a store wrote it earlier).
    ///
    /// # Errors
    /// Returns the `serde_json` error if `json` is not valid JSON at all.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(Self)
    }

    /// The empty object `{}`.
    pub fn empty() -> Self {
        // `{}` is valid JSON: this cannot fail.
        Self(RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The length in bytes of the JSON text.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// True for the empty object `{}`.
    pub fn is_empty(&self) -> bool {
        self.0.get() == "{}"
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Payload {}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
