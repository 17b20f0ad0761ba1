//! The registry of event types: the closed set of 15 types clients may publish.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One of the registered event types. Parsing (`FromStr`) is the only way to
/// make one from client input, so an `EventType` is always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Student started a quiz session.
    QuizStarted,
    /// Student completed/submitted quiz.
    QuizCompleted,
    /// Quiz timer expired.
    QuizTimeout,
    /// Student submitted an answer.
    AnswerSubmitted,
    /// Student changed their answer.
    AnswerChanged,
    /// Student viewed a question.
    QuestionViewed,
    /// Student skipped a question.
    QuestionSkipped,
    /// Session timer started.
    TimerStarted,
    /// Timer tick (usually every second).
    TimerTick,
    /// Timer warning threshold reached.
    TimerWarning,
    /// Student mastery level changed.
    MasteryUpdated,
    /// Learning gap identified.
    LearningGapDetected,
    /// New session created.
    SessionCreated,
    /// Session ended.
    SessionEnded,
    /// Error in system.
    ErrorOccurred,
}

/// The error for a string that names no registered event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type '{0}'")]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Every registered type, in the order the contract lists them.
    pub const ALL: [EventType; 15] = [
        EventType::QuizStarted,
        EventType::QuizCompleted,
        EventType::QuizTimeout,
        EventType::AnswerSubmitted,
        EventType::AnswerChanged,
        EventType::QuestionViewed,
        EventType::QuestionSkipped,
        EventType::TimerStarted,
        EventType::TimerTick,
        EventType::TimerWarning,
        EventType::MasteryUpdated,
        EventType::LearningGapDetected,
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::ErrorOccurred,
    ];

    /// The wire name, e.g. `quiz_started`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::QuizStarted => "quiz_started",
            EventType::QuizCompleted => "quiz_completed",
            EventType::QuizTimeout => "quiz_timeout",
            EventType::AnswerSubmitted => "answer_submitted",
            EventType::AnswerChanged => "answer_changed",
            EventType::QuestionViewed => "question_viewed",
            EventType::QuestionSkipped => "question_skipped",
            EventType::TimerStarted => "timer_started",
            EventType::TimerTick => "timer_tick",
            EventType::TimerWarning => "timer_warning",
            EventType::MasteryUpdated => "mastery_updated",
            EventType::LearningGapDetected => "learning_gap_detected",
            EventType::SessionCreated => "session_created",
            EventType::SessionEnded => "session_ended",
            EventType::ErrorOccurred => "error_occurred",
        }
    }

    /// The human description served by `GET /event-types`.
    pub const fn description(self) -> &'static str {
        match self {
            EventType::QuizStarted => "Student started a quiz session",
            EventType::QuizCompleted => "Student completed/submitted quiz",
            EventType::QuizTimeout => "Quiz timer expired",
            EventType::AnswerSubmitted => "Student submitted an answer",
            EventType::AnswerChanged => "Student changed their answer",
            EventType::QuestionViewed => "Student viewed a question",
            EventType::QuestionSkipped => "Student skipped a question",
            EventType::TimerStarted => "Session timer started",
            EventType::TimerTick => "Timer tick (usually every second)",
            EventType::TimerWarning => "Timer warning threshold reached",
            EventType::MasteryUpdated => "Student mastery level changed",
            EventType::LearningGapDetected => "Learning gap identified",
            EventType::SessionCreated => "New session created",
            EventType::SessionEnded => "Session ended",
            EventType::ErrorOccurred => "Error in system",
        }
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert!(!t.description().is_empty());
        }
    }

    #[test]
    fn unknown_names_and_case_variants_are_refused() {
        assert!("quiz_begun".parse::<EventType>().is_err());
        assert!("QUIZ_STARTED".parse::<EventType>().is_err());
        assert!("".parse::<EventType>().is_err());
    }
}
