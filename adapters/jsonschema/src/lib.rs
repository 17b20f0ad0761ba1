//! Payload schemas on the `jsonschema` crate: a JSON Schema (draft 2020-12)
//! compiled once, asked for the rules a payload breaks, each named by its
//! path in the payload and a short message.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use ep_ports::{BadSchema, PayloadSchema, SchemaViolation};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

/// A compiled JSON Schema for one event type's payload.
pub struct JsonSchema {
    validator: Validator,
    document: Value,
}

impl JsonSchema {
    /// Compiles `document` as a draft 2020-12 schema. A `$ref` can only
    /// point inside the document: nothing is fetched.
    ///
    /// # Errors
    /// `BadSchema` naming what is wrong with the document.
    pub fn compile(document: Value) -> Result<Self, BadSchema> {
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&document)
            .map_err(|e| BadSchema(e.to_string()))?;
        Ok(Self {
            validator,
            document,
        })
    }
}

impl PayloadSchema for JsonSchema {
    fn violations(&self, payload: &Value, max: usize) -> Vec<SchemaViolation> {
        if self.validator.is_valid(payload) {
            return Vec::new();
        }
        self.validator
            .iter_errors(payload)
            .take(max)
            .map(|e| violation(&e))
            .collect()
    }

    fn document(&self) -> &Value {
        &self.document
    }
}

fn violation(error: &ValidationError<'_>) -> SchemaViolation {
    let mut path: Vec<String> = error
        .instance_path()
        .iter()
        .map(|segment| match segment {
            LocationSegment::Property(key) => key.to_string(),
            LocationSegment::Index(i) => i.to_string(),
        })
        .collect();
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            if let Value::String(key) = property {
                path.push(key.clone());
            }
            "is required".to_owned()
        }
        ValidationErrorKind::Type { kind } => match kind {
            TypeKind::Single(t) => format!("must be {}", article(&t.to_string())),
            TypeKind::Multiple(ts) => format!(
                "must be one of: {}",
                ts.into_iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        _ => error.to_string(),
    };
    SchemaViolation { path, message }
}

fn article(type_name: &str) -> String {
    match type_name.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer_schema() -> JsonSchema {
        JsonSchema::compile(json!({
            "type": "object",
            "required": ["question_id"],
            "properties": {
                "question_id": {"type": "string"},
                "correct": {"type": "boolean"},
                "choices": {"type": "array", "items": {"type": "integer"}}
            }
        }))
        .expect("compiles")
    }

    #[test]
    fn a_payload_that_follows_the_schema_breaks_nothing() {
        let schema = answer_schema();
        let ok = json!({"question_id": "q1", "correct": true, "extra": [1, "x"]});
        assert_eq!(schema.violations(&ok, 10), vec![]);
    }

    #[test]
    fn each_broken_rule_is_named_by_its_path_and_a_short_message() {
        let schema = answer_schema();
        let bad = json!({"correct": "yes", "choices": [1, "two"]});
        let mut found = schema.violations(&bad, 10);
        found.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(
            found,
            vec![
                SchemaViolation {
                    path: vec!["choices".into(), "1".into()],
                    message: "must be an integer".into()
                },
                SchemaViolation {
                    path: vec!["correct".into()],
                    message: "must be a boolean".into()
                },
                SchemaViolation {
                    path: vec!["question_id".into()],
                    message: "is required".into()
                },
            ]
        );
        assert_eq!(schema.violations(&bad, 1).len(), 1, "at most max");
    }

    #[test]
    fn a_document_that_is_not_a_schema_is_refused_and_nothing_remote_is_fetched() {
        assert!(JsonSchema::compile(json!({"type": "no-such-type"})).is_err());
        assert!(JsonSchema::compile(json!({"$ref": "https://example.com/s.json"})).is_err());
        let inner = JsonSchema::compile(json!({
            "$defs": {"id": {"type": "string"}},
            "properties": {"q": {"$ref": "#/$defs/id"}}
        }))
        .expect("a local $ref compiles");
        assert_eq!(inner.violations(&json!({"q": 1}), 5).len(), 1);
        assert_eq!(inner.document()["$defs"]["id"]["type"], "string");
    }
}
