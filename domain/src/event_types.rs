//! The registry of event types a service accepts: the contract's 15 and the
//! ones an operator declares, each with its description and an optional
//! payload schema, and what to do with a payload that breaks its schema.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ep_ports::{EventType, PayloadSchema};

use crate::field_errors::FieldError;

/// Most violations a refused payload is reported with.
pub const MAX_SCHEMA_VIOLATIONS: usize = 20;
/// At most one log line a type's schema warnings this often (`warn` mode).
const WARNING_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a payload that breaks its type's schema gets (`SCHEMA_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaMode {
    /// Refused with 422, each violation named by its path.
    #[default]
    Enforce,
    /// Stored; counted and logged (at most every 10 s per type).
    Warn,
    /// Not checked.
    Off,
}

/// One type the registry accepts.
#[derive(Clone)]
pub struct TypeDeclaration {
    /// Its name.
    pub event_type: EventType,
    /// What it means, for people (`GET /event-types`).
    pub description: String,
    /// The rules its payload follows, if any.
    pub schema: Option<Arc<dyn PayloadSchema>>,
    /// Whether the plain `GET /event-types` (the old service's answer)
    /// lists it: every type but those this service declares for its own
    /// endpoints (`caliper_event`) unless an operator declares them too.
    pub listed: bool,
}

impl std::fmt::Debug for TypeDeclaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeDeclaration")
            .field("event_type", &self.event_type)
            .field("description", &self.description)
            .field("schema", &self.schema.as_ref().map(|s| s.document()))
            .finish()
    }
}

/// The registry: which types are accepted, in the order they are listed.
pub struct EventTypes {
    types: Vec<TypeDeclaration>,
    index: HashMap<&'static str, usize>,
    mode: SchemaMode,
    warnings: Vec<Warnings>,
}

#[derive(Default)]
struct Warnings {
    count: AtomicU64,
    /// Milliseconds after `EPOCH` of the last log line, plus one (0: never).
    logged_at: AtomicU64,
}

impl std::fmt::Debug for EventTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTypes")
            .field("types", &self.types)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Default for EventTypes {
    /// The contract's 15 types with no schemas.
    fn default() -> Self {
        Self::new(Self::built_in(), SchemaMode::Enforce)
    }
}

impl EventTypes {
    /// The contract's 15 types, described as the contract does, without
    /// schemas.
    pub fn built_in() -> Vec<TypeDeclaration> {
        EventType::BUILT_IN
            .iter()
            .map(|&event_type| TypeDeclaration {
                event_type,
                description: event_type
                    .built_in_description()
                    .unwrap_or_default()
                    .to_owned(),
                schema: None,
                listed: true,
            })
            .collect()
    }

    /// A registry of `types` (a later declaration of a name replaces an
    /// earlier one, in its place).
    pub fn new(types: Vec<TypeDeclaration>, mode: SchemaMode) -> Self {
        let mut kept: Vec<TypeDeclaration> = Vec::with_capacity(types.len());
        let mut index = HashMap::with_capacity(types.len());
        for declaration in types {
            match index.get(declaration.event_type.as_str()) {
                Some(&i) => kept[i] = declaration,
                None => {
                    index.insert(declaration.event_type.as_str(), kept.len());
                    kept.push(declaration);
                }
            }
        }
        let warnings = kept.iter().map(|_| Warnings::default()).collect();
        Self {
            types: kept,
            index,
            mode,
            warnings,
        }
    }

    /// The accepted type named `name`, if any.
    pub fn get(&self, name: &str) -> Option<EventType> {
        self.index.get(name).map(|&i| self.types[i].event_type)
    }

    /// Every accepted type, in order.
    pub fn declarations(&self) -> &[TypeDeclaration] {
        &self.types
    }

    /// The declaration of an accepted type.
    pub fn declaration(&self, event_type: EventType) -> Option<&TypeDeclaration> {
        self.index.get(event_type.as_str()).map(|&i| &self.types[i])
    }

    /// What a payload that breaks its schema gets.
    pub fn mode(&self) -> SchemaMode {
        self.mode
    }

    /// Payloads stored although they broke their type's schema (`warn`
    /// mode), by type, for the types that had any.
    pub fn schema_warnings(&self) -> Vec<(EventType, u64)> {
        self.types
            .iter()
            .zip(&self.warnings)
            .map(|(t, w)| (t.event_type, w.count.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The names of the accepted types, comma-separated, for messages.
    pub fn names(&self) -> String {
        self.types
            .iter()
            .map(|t| t.event_type.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks `payload` (a JSON object's text) against its type's schema:
    /// the violations, located under `["body", "payload", ...]`, when the
    /// mode refuses it; none when it follows the schema, has none, or the
    /// mode only warns (counted and logged) or is off.
    pub(crate) fn check(&self, event_type: EventType, payload: &str) -> Vec<FieldError> {
        if self.mode == SchemaMode::Off {
            return Vec::new();
        }
        let Some(&i) = self.index.get(event_type.as_str()) else {
            return Vec::new();
        };
        let Some(schema) = &self.types[i].schema else {
            return Vec::new();
        };
        // The payload was checked to be a JSON object already.
        let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) else {
            return Vec::new();
        };
        let violations = schema.violations(&value, MAX_SCHEMA_VIOLATIONS);
        if violations.is_empty() {
            return Vec::new();
        }
        let errors: Vec<FieldError> = violations
            .into_iter()
            .map(|v| FieldError {
                loc: ["body", "payload"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(v.path)
                    .collect(),
                msg: v.message,
                kind: "schema",
            })
            .collect();
        match self.mode {
            SchemaMode::Enforce => errors,
            SchemaMode::Warn => {
                self.warn(i, &errors);
                Vec::new()
            }
            SchemaMode::Off => Vec::new(),
        }
    }

    fn warn(&self, i: usize, errors: &[FieldError]) {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
        let (total, log) = self.count_warning(i, now);
        if log {
            let first = &errors[0];
            tracing::warn!(
                event_type = self.types[i].event_type.as_str(),
                at = first.loc[1..].join("."),
                problem = %first.msg,
                stored_anyway_so_far = total,
                "a payload breaks its type's schema; stored (SCHEMA_MODE=warn)"
            );
        }
    }

    /// Counts a payload of type `i` stored against its schema at `now_ms`
    /// (milliseconds from any fixed instant, never 0): how many so far, and
    /// whether to log this one (the first, then one per
    /// [`WARNING_LOG_EVERY`] per type, so that a producer sending every
    /// event wrong does not flood the log).
    fn count_warning(&self, i: usize, now_ms: u64) -> (u64, bool) {
        let warnings = &self.warnings[i];
        let total = warnings.count.fetch_add(1, Ordering::Relaxed) + 1;
        let last = warnings.logged_at.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= WARNING_LOG_EVERY.as_millis() as u64;
        // Of several threads finding it due at once, one logs.
        let log = due
            && warnings
                .logged_at
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        (total, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ep_ports::{MockPayloadSchema, SchemaViolation};

    #[test]
    fn a_schema_warning_is_logged_first_then_once_per_interval_per_type() {
        let types = with_schema("answered", SchemaMode::Warn, broken());
        let i = types.index["answered"];
        let j = types.index[EventType::QUIZ_STARTED.as_str()];
        let every = WARNING_LOG_EVERY.as_millis() as u64;
        assert_eq!(types.count_warning(i, 1), (1, true), "the first is logged");
        assert_eq!(types.count_warning(i, 2), (2, false));
        assert_eq!(types.count_warning(i, every), (3, false), "not yet");
        assert_eq!(
            types.count_warning(j, every),
            (1, true),
            "each type its own"
        );
        assert_eq!(
            types.count_warning(i, every + 1),
            (4, true),
            "an interval on"
        );
        assert_eq!(types.count_warning(i, every + 2), (5, false));
        assert_eq!(types.count_warning(i, 3 * every + 1), (6, true));
    }

    fn with_schema(name: &str, mode: SchemaMode, violations: Vec<SchemaViolation>) -> EventTypes {
        let mut schema = MockPayloadSchema::new();
        schema
            .expect_violations()
            .returning(move |_, max| violations.iter().take(max).cloned().collect());
        let mut types = EventTypes::built_in();
        types.push(TypeDeclaration {
            event_type: EventType::named(name).expect("name"),
            description: "declared".into(),
            schema: Some(Arc::new(schema)),
            listed: true,
        });
        EventTypes::new(types, mode)
    }

    fn broken() -> Vec<SchemaViolation> {
        vec![SchemaViolation {
            path: vec!["correct".into()],
            message: "must be a boolean".into(),
        }]
    }

    #[test]
    fn the_default_registry_is_the_contracts_fifteen_in_order() {
        let types = EventTypes::default();
        let names: Vec<_> = types.declarations().iter().map(|t| t.event_type).collect();
        assert_eq!(names, EventType::BUILT_IN.to_vec());
        assert_eq!(types.get("quiz_started"), Some(EventType::QUIZ_STARTED));
        assert_eq!(types.get("hint_requested"), None);
        assert_eq!(
            types
                .declaration(EventType::TIMER_TICK)
                .map(|t| t.description.as_str()),
            Some("Timer tick (usually every second)")
        );
    }

    #[test]
    fn a_declared_type_is_added_and_a_built_in_name_replaces_that_type_in_place() {
        let mut types = EventTypes::built_in();
        types.push(TypeDeclaration {
            event_type: EventType::named("hint_requested").expect("name"),
            description: "Student asked for a hint".into(),
            schema: None,
            listed: true,
        });
        types.push(TypeDeclaration {
            event_type: EventType::QUIZ_STARTED,
            description: "Quiz began".into(),
            schema: None,
            listed: true,
        });
        let types = EventTypes::new(types, SchemaMode::Enforce);
        assert_eq!(types.declarations().len(), 16);
        assert_eq!(types.declarations()[0].description, "Quiz began");
        assert_eq!(
            types.declarations()[15].event_type.as_str(),
            "hint_requested"
        );
        assert!(types.names().ends_with("error_occurred, hint_requested"));
    }

    #[test]
    fn enforce_reports_each_violation_under_the_payload() {
        let types = with_schema("answered", SchemaMode::Enforce, broken());
        let t = types.get("answered").expect("declared");
        assert_eq!(
            types.check(t, r#"{"correct":"yes"}"#),
            vec![FieldError::new(
                &["body", "payload", "correct"],
                "must be a boolean",
                "schema"
            )]
        );
        assert!(types.schema_warnings().is_empty());
    }

    #[test]
    fn warn_accepts_and_counts_and_off_does_not_even_ask() {
        let types = with_schema("answered", SchemaMode::Warn, broken());
        let t = types.get("answered").expect("declared");
        assert_eq!(types.check(t, "{}"), vec![]);
        assert_eq!(types.check(t, "{}"), vec![]);
        assert_eq!(types.schema_warnings(), vec![(t, 2)]);

        let mut never = MockPayloadSchema::new();
        never.expect_violations().never();
        let off = EventTypes::new(
            vec![TypeDeclaration {
                event_type: t,
                description: String::new(),
                schema: Some(Arc::new(never)),
                listed: true,
            }],
            SchemaMode::Off,
        );
        assert_eq!(off.check(t, "{}"), vec![]);
    }

    #[test]
    fn a_payload_that_follows_its_schema_or_a_type_without_one_passes() {
        let types = with_schema("answered", SchemaMode::Enforce, vec![]);
        assert_eq!(types.check(types.get("answered").expect("t"), "{}"), vec![]);
        assert_eq!(types.check(EventType::TIMER_TICK, "{}"), vec![]);
    }
}
