//! Query-string parameters of `GET /events`, and the rules that turn them into
//! an [`EventQuery`].

use ep_ports::{EventQuery, EventType};

use crate::errors::QueryError;
use crate::field_errors::{FieldError, ValidationErrors};
use crate::limits::{
    DEFAULT_QUERY_LIMIT, MAX_EVENT_TYPE_FILTER_CHARS, MAX_ID_CHARS, MAX_QUERY_LIMIT,
};
use crate::time_parse::{parse_instant, InstantError};

/// The parameters as sent, each the last value given for its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// `event_type` filter.
    pub event_type: Option<String>,
    /// `session_id` filter.
    pub session_id: Option<String>,
    /// `user_id` filter.
    pub user_id: Option<String>,
    /// `limit`, unparsed.
    pub limit: Option<String>,
    /// `since`, unparsed.
    pub since: Option<String>,
    /// `occurred_since`, unparsed: events that happened at or after it.
    pub occurred_since: Option<String>,
    /// `occurred_before`, unparsed: events that happened before it.
    pub occurred_before: Option<String>,
}

/// A query whose parameters passed the rules: what it asks of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once per request and taken apart at once: boxing would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum CheckedQuery {
    /// Run this query.
    Run(EventQuery),
    /// The filter names an unregistered type: the answer is empty without asking.
    NothingMatches,
}

/// An instant parameter: out of range is a parameter error (422, in
/// `errors`); unparseable is 400 naming it, reported after those.
fn instant(
    name: &'static str,
    text: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Result<Option<ep_ports::Timestamp>, QueryError> {
    match text.map(parse_instant) {
        None => Ok(None),
        Some(Ok(instant)) => Ok(Some(instant)),
        Some(Err(e @ InstantError::OutOfRange)) => {
            errors.push(FieldError::new(
                &["query", name],
                e.to_string(),
                "datetime_out_of_range",
            ));
            Ok(None)
        }
        Some(Err(InstantError::Unparseable)) => Err(QueryError::BadTimestamp(name)),
    }
}

impl QueryParams {
    /// Collects the known parameters from decoded `(name, value)` pairs; a
    /// repeated name keeps its last value, unknown names are ignored.
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "event_type" => &mut params.event_type,
                "session_id" => &mut params.session_id,
                "user_id" => &mut params.user_id,
                "limit" => &mut params.limit,
                "since" => &mut params.since,
                "occurred_since" => &mut params.occurred_since,
                "occurred_before" => &mut params.occurred_before,
                _ => continue,
            };
            *slot = Some(value);
        }
        params
    }

    /// Applies the contract's rules. Parameter errors (422) are reported
    /// before an unparseable `since` (400), as the old service did.
    pub(crate) fn check(self) -> Result<CheckedQuery, QueryError> {
        let mut errors = Vec::new();
        for (name, value, max) in [
            ("event_type", &self.event_type, MAX_EVENT_TYPE_FILTER_CHARS),
            ("session_id", &self.session_id, MAX_ID_CHARS),
            ("user_id", &self.user_id, MAX_ID_CHARS),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                errors.push(FieldError::new(
                    &["query", name],
                    format!("String should have at most {max} characters"),
                    "string_too_long",
                ));
            }
        }
        let limit = match self.limit.as_deref().map(str::trim) {
            None => DEFAULT_QUERY_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n < 1 => {
                    errors.push(FieldError::new(
                        &["query", "limit"],
                        "Input should be greater than or equal to 1",
                        "greater_than_equal",
                    ));
                    0
                }
                Ok(n) if n > MAX_QUERY_LIMIT as i64 => {
                    errors.push(FieldError::new(
                        &["query", "limit"],
                        format!("Input should be less than or equal to {MAX_QUERY_LIMIT}"),
                        "less_than_equal",
                    ));
                    0
                }
                // 1..=1000 fits in usize on every platform.
                Ok(n) => n as usize,
                Err(_) => {
                    errors.push(FieldError::new(
                        &["query", "limit"],
                        "Input should be a valid integer, unable to parse string as an integer",
                        "int_parsing",
                    ));
                    0
                }
            },
        };
        let since = instant("since", self.since.as_deref(), &mut errors);
        let occurred_since = instant(
            "occurred_since",
            self.occurred_since.as_deref(),
            &mut errors,
        );
        let occurred_before = instant(
            "occurred_before",
            self.occurred_before.as_deref(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(QueryError::Invalid(ValidationErrors(errors)));
        }
        let since = since?;
        let occurred_since = occurred_since?;
        let occurred_before = occurred_before?;
        let event_type = match self.event_type.as_deref() {
            None => None,
            Some(name) => match EventType::known(name) {
                Some(t) => Some(t),
                None => return Ok(CheckedQuery::NothingMatches),
            },
        };
        Ok(CheckedQuery::Run(EventQuery {
            occurred_before,
            occurred_since,
            event_type,
            session_id: self.session_id,
            user_id: self.user_id,
            since,
            limit,
            scope: ep_ports::Scope::unrestricted(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_to_the_newest_hundred() {
        assert_eq!(
            params(&[]).check(),
            Ok(CheckedQuery::Run(EventQuery::latest(100)))
        );
    }

    #[test]
    fn bad_limits_are_422() {
        for bad in ["0", "1001", "-1", "abc", "", "1.5"] {
            assert!(
                matches!(
                    params(&[("limit", bad)]).check(),
                    Err(QueryError::Invalid(_))
                ),
                "limit={bad}"
            );
        }
        assert!(
            matches!(params(&[("limit", "1000")]).check(), Ok(CheckedQuery::Run(q)) if q.limit == 1000)
        );
    }

    #[test]
    fn over_long_filters_are_422_and_win_over_a_bad_since() {
        let long = "x".repeat(51);
        let r = params(&[("event_type", &long), ("since", "garbage")]).check();
        assert!(matches!(r, Err(QueryError::Invalid(_))));
        assert_eq!(
            params(&[("since", "garbage")]).check(),
            Err(QueryError::BadTimestamp("since"))
        );
    }

    #[test]
    fn a_since_outside_years_0000_to_9999_is_422_naming_the_field() {
        let Err(QueryError::Invalid(errors)) =
            params(&[("since", "+10000-01-01T00:00:00")]).check()
        else {
            panic!("a five-digit year is refused as invalid");
        };
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].loc, ["query", "since"]);
        assert_eq!(errors.0[0].kind, "datetime_out_of_range");
        // Reported with the other parameter errors.
        let r = params(&[("since", "-0001-01-01"), ("limit", "0")]).check();
        assert!(matches!(r, Err(QueryError::Invalid(e)) if e.0.len() == 2));
        assert!(matches!(
            params(&[("since", "0000-01-01T00:00:00Z")]).check(),
            Ok(CheckedQuery::Run(q)) if q.since == Some(ep_ports::Timestamp::MIN)
        ));
    }

    #[test]
    fn an_unregistered_type_matches_nothing() {
        assert_eq!(
            params(&[("event_type", "quiz_begun")]).check(),
            Ok(CheckedQuery::NothingMatches)
        );
    }

    #[test]
    fn each_time_range_parameter_reaches_the_query() {
        let Ok(CheckedQuery::Run(q)) = params(&[
            ("since", "2026-01-01T00:00:00Z"),
            ("occurred_since", "2026-01-02T00:00:00Z"),
            ("occurred_before", "2026-01-03T00:00:00Z"),
        ])
        .check() else {
            panic!("a valid range");
        };
        let day = |d: &str| Some(ep_ports::Timestamp::parse_canonical(d).expect("instant"));
        assert_eq!(q.since, day("2026-01-01T00:00:00Z"));
        assert_eq!(q.occurred_since, day("2026-01-02T00:00:00Z"));
        assert_eq!(q.occurred_before, day("2026-01-03T00:00:00Z"));
    }

    #[test]
    fn the_last_repeated_value_wins_and_unknown_names_are_ignored() {
        let p = params(&[("user_id", "a"), ("user_id", "b"), ("colour", "red")]);
        assert_eq!(p.user_id.as_deref(), Some("b"));
    }
}
