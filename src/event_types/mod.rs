//! The registry a node runs with: the contract's 15 types with the schemas
//! shipped for them, plus what `EVENT_TYPES_FILE` declares (a JSON object,
//! or a `.toml` file of the same shape, mapping each type name to
//! `{"description": "...", "schema": {...}}`), compiled once at start-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ep_domain::{EventTypes, SchemaMode, TypeDeclaration};
use ep_ports::{EventType, PayloadSchema};
use ep_schema_json::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The shipped schemas of the built-in types, written from realistic
/// payloads: lenient (a type's identifying key is required, the known
/// keys' types are checked, other keys are allowed).
const BUILT_IN_SCHEMAS: &str = include_str!("built_in_schemas.json");
/// Most types a file may declare.
pub const MAX_DECLARED_TYPES: usize = 1_000;
/// Largest file read.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Why the registry could not be built: start-up stops (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("EVENT_TYPES_FILE {path}: {reason}")]
pub struct EventTypesError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the type where one is at fault.
    pub reason: String,
}

/// One type as a file declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    #[serde(default)]
    description: String,
    #[serde(default)]
    schema: Option<Value>,
}

/// The registry for `file` (none: the built-ins alone) and `mode`.
///
/// # Errors
/// `EventTypesError` naming the file and what is wrong with it.
pub fn load(file: Option<&Path>, mode: SchemaMode) -> Result<EventTypes, EventTypesError> {
    let mut types = built_in();
    if let Some(path) = file {
        let fail = |reason: String| EventTypesError {
            path: path.to_owned(),
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let declared = parse(path, &text).map_err(fail)?;
        if declared.len() > MAX_DECLARED_TYPES {
            return Err(fail(format!(
                "declares {} types; at most {MAX_DECLARED_TYPES}",
                declared.len()
            )));
        }
        for (name, d) in declared {
            let event_type = EventType::named(&name).map_err(|e| fail(e.to_string()))?;
            let schema = match d.schema {
                None | Some(Value::Null) => None,
                Some(document) => {
                    Some(compile(document).map_err(|e| fail(format!("type '{name}': {e}")))?)
                }
            };
            let description = if d.description.is_empty() {
                event_type
                    .built_in_description()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                d.description
            };
            types.push(TypeDeclaration {
                event_type,
                description,
                schema,
                listed: true,
            });
        }
    }
    Ok(EventTypes::new(types, mode))
}

/// The built-in types with their shipped schemas.
fn built_in() -> Vec<TypeDeclaration> {
    let mut schemas: BTreeMap<String, Value> =
        serde_json::from_str(BUILT_IN_SCHEMAS).unwrap_or_default();
    let mut types = EventTypes::built_in();
    // Declared by default beside the contract's 15: what the Caliper
    // endpoint stores an event with no mapping as.
    types.push(TypeDeclaration {
        event_type: EventType::CALIPER_EVENT,
        description: "An IMS Caliper event with no mapping (the event under payload.caliper)"
            .to_owned(),
        schema: None,
        listed: false,
    });
    types
        .into_iter()
        .map(|mut t| {
            t.schema = schemas
                .remove(t.event_type.as_str())
                .and_then(|document| compile(document).ok());
            t
        })
        .collect()
}

fn compile(document: Value) -> Result<Arc<dyn PayloadSchema>, ep_ports::BadSchema> {
    Ok(Arc::new(JsonSchema::compile(document)?))
}

/// The file's types, by name (JSON, or TOML for a `.toml` name).
fn parse(path: &Path, text: &str) -> Result<Vec<(String, Declared)>, String> {
    let toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let object: serde_json::Map<String, Value> =
        if toml {
            let value: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
            match serde_json::to_value(value).map_err(|e| e.to_string())? {
                Value::Object(map) => map,
                _ => return Err("must be a table of types".into()),
            }
        } else {
            match serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON: {e}"))? {
                Value::Object(map) => map,
                _ => return Err(
                    "must be a JSON object mapping each type name to {\"description\", \"schema\"}"
                        .into(),
                ),
            }
        };
    object
        .into_iter()
        .map(|(name, value)| {
            serde_json::from_value::<Declared>(value)
                .map(|d| (name.clone(), d))
                .map_err(|e| format!("type '{name}': {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
