//! Event type names: the 15 built-in types of the contract and any type an
//! operator declares (`EVENT_TYPES_FILE`). Which names a service accepts is
//! its registry's business (the domain's `EventTypes`); this is the name.

use std::collections::HashSet;
use std::fmt;
use std::sync::{OnceLock, PoisonError, RwLock};

use serde::{Serialize, Serializer};

/// An event type's name. Cheap to copy and compare: names are interned
/// once per process (the built-ins are constants; a declared or stored name
/// is kept for the life of the process, so their number is that of the
/// distinct types ever seen, which a registry and a store bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(&'static str);

/// The error for a name that is not of the form `[a-z][a-z0-9_]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an event type name: it must match [a-z][a-z0-9_]{{0,63}}")]
pub struct BadEventTypeName(pub String);

impl EventType {
    /// Student started a quiz session.
    pub const QUIZ_STARTED: EventType = EventType("quiz_started");
    /// Student completed/submitted quiz.
    pub const QUIZ_COMPLETED: EventType = EventType("quiz_completed");
    /// Quiz timer expired.
    pub const QUIZ_TIMEOUT: EventType = EventType("quiz_timeout");
    /// Student submitted an answer.
    pub const ANSWER_SUBMITTED: EventType = EventType("answer_submitted");
    /// Student changed their answer.
    pub const ANSWER_CHANGED: EventType = EventType("answer_changed");
    /// Student viewed a question.
    pub const QUESTION_VIEWED: EventType = EventType("question_viewed");
    /// Student skipped a question.
    pub const QUESTION_SKIPPED: EventType = EventType("question_skipped");
    /// Session timer started.
    pub const TIMER_STARTED: EventType = EventType("timer_started");
    /// Timer tick (usually every second).
    pub const TIMER_TICK: EventType = EventType("timer_tick");
    /// Timer warning threshold reached.
    pub const TIMER_WARNING: EventType = EventType("timer_warning");
    /// Student mastery level changed.
    pub const MASTERY_UPDATED: EventType = EventType("mastery_updated");
    /// Learning gap identified.
    pub const LEARNING_GAP_DETECTED: EventType = EventType("learning_gap_detected");
    /// New session created.
    pub const SESSION_CREATED: EventType = EventType("session_created");
    /// Session ended.
    pub const SESSION_ENDED: EventType = EventType("session_ended");
    /// Error in system.
    pub const ERROR_OCCURRED: EventType = EventType("error_occurred");

    /// Not one of the contract's 15 but declared by default: an IMS Caliper
    /// event that maps to none of them.
    pub const CALIPER_EVENT: EventType = EventType("caliper_event");

    /// The contract's 15 types, in the order the contract lists them.
    pub const BUILT_IN: [EventType; 15] = [
        EventType::QUIZ_STARTED,
        EventType::QUIZ_COMPLETED,
        EventType::QUIZ_TIMEOUT,
        EventType::ANSWER_SUBMITTED,
        EventType::ANSWER_CHANGED,
        EventType::QUESTION_VIEWED,
        EventType::QUESTION_SKIPPED,
        EventType::TIMER_STARTED,
        EventType::TIMER_TICK,
        EventType::TIMER_WARNING,
        EventType::MASTERY_UPDATED,
        EventType::LEARNING_GAP_DETECTED,
        EventType::SESSION_CREATED,
        EventType::SESSION_ENDED,
        EventType::ERROR_OCCURRED,
    ];

    /// The longest name a type may have.
    pub const MAX_NAME_LEN: usize = 64;

    /// The type named `name`, which must be of the form
    /// `[a-z][a-z0-9_]{0,63}`: for names a registry declares.
    ///
    /// # Errors
    /// `BadEventTypeName` for any other string.
    pub fn named(name: &str) -> Result<Self, BadEventTypeName> {
        if Self::is_valid_name(name) {
            Ok(Self::intern(name))
        } else {
            Err(BadEventTypeName(name.to_owned()))
        }
    }

    /// The type a store read back: whatever name it holds (a store holds
    /// only names a registry accepted, now or when it was written).
    pub fn stored(name: &str) -> Self {
        Self::intern(name)
    }

    /// The type named `name` if this process already knows the name (a
    /// built-in, a declared type, or one a store read back); never adds
    /// one, so client input (filters, queries) cannot grow the names kept.
    pub fn known(name: &str) -> Option<Self> {
        if let Some(t) = Self::BUILT_IN
            .iter()
            .chain([&Self::CALIPER_EVENT])
            .find(|t| t.0 == name)
        {
            return Some(*t);
        }
        names()
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|known| Self(known))
    }

    /// Whether `name` is of the form `[a-z][a-z0-9_]{0,63}`.
    pub fn is_valid_name(name: &str) -> bool {
        let bytes = name.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= Self::MAX_NAME_LEN
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    }

    fn intern(name: &str) -> Self {
        if let Some(t) = Self::BUILT_IN
            .iter()
            .chain([&Self::CALIPER_EVENT])
            .find(|t| t.0 == name)
        {
            return *t;
        }
        let names = names();
        if let Some(known) = names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Self(known);
        }
        let mut names = names.write().unwrap_or_else(PoisonError::into_inner);
        match names.get(name) {
            Some(known) => Self(known),
            None => {
                let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                names.insert(leaked);
                Self(leaked)
            }
        }
    }

    /// The wire name, e.g. `quiz_started`.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether this is one of the contract's 15 types.
    pub fn is_built_in(self) -> bool {
        Self::BUILT_IN.contains(&self)
    }

    /// The contract's description of a built-in type.
    pub fn built_in_description(self) -> Option<&'static str> {
        match self.0 {
            "quiz_started" => Some("Student started a quiz session"),
            "quiz_completed" => Some("Student completed/submitted quiz"),
            "quiz_timeout" => Some("Quiz timer expired"),
            "answer_submitted" => Some("Student submitted an answer"),
            "answer_changed" => Some("Student changed their answer"),
            "question_viewed" => Some("Student viewed a question"),
            "question_skipped" => Some("Student skipped a question"),
            "timer_started" => Some("Session timer started"),
            "timer_tick" => Some("Timer tick (usually every second)"),
            "timer_warning" => Some("Timer warning threshold reached"),
            "mastery_updated" => Some("Student mastery level changed"),
            "learning_gap_detected" => Some("Learning gap identified"),
            "session_created" => Some("New session created"),
            "session_ended" => Some("Session ended"),
            "error_occurred" => Some("Error in system"),
            _ => None,
        }
    }
}

/// The names interned so far, beyond the built-ins.
fn names() -> &'static RwLock<HashSet<&'static str>> {
    static NAMES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_type_is_named_by_its_wire_name_and_described() {
        for t in EventType::BUILT_IN {
            assert_eq!(EventType::named(t.as_str()), Ok(t));
            assert!(t.is_built_in());
            assert!(t.built_in_description().is_some_and(|d| !d.is_empty()));
        }
        assert_eq!(EventType::QUIZ_STARTED.as_str(), "quiz_started");
    }

    #[test]
    fn a_declared_name_is_interned_once_and_compares_by_name() {
        let a = EventType::named("hint_requested").expect("valid");
        let b = EventType::stored(&String::from("hint_requested"));
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one copy of the name");
        assert!(!a.is_built_in());
        assert_eq!(EventType::known("hint_requested"), Some(a));
        assert_eq!(EventType::known("never_declared_here"), None);
        assert_eq!(EventType::known("timer_tick"), Some(EventType::TIMER_TICK));
        assert_eq!(a.built_in_description(), None);
    }

    #[test]
    fn names_outside_the_form_are_refused() {
        for bad in [
            "",
            "Quiz",
            "1abc",
            "_x",
            "quiz-started",
            "quiz started",
            "é",
            &"a".repeat(65),
        ] {
            assert!(EventType::named(bad).is_err(), "{bad:?}");
        }
        assert!(EventType::named(&"a".repeat(64)).is_ok());
        assert!(EventType::named("v2_event_9").is_ok());
    }
}
