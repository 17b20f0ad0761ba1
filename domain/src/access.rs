//! Who may do what: each operation's role and rate class declared once, the
//! caller (principal and address) every use case is given, and the rules
//! that decide, for every transport alike, what a principal may do and
//! which events it may publish or see.

use std::net::IpAddr;

use ep_ports::{EventFilter, Principal, Role, Scope, ScopeField};

use crate::rate_limit::{RateClass, RateLimited};

/// Who is asking: the authenticated principal and the client's address
/// (what an anonymous caller's rate limits are keyed by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who, with its roles and scope.
    pub principal: Principal,
    /// The client's address (the TCP peer, or behind a trusted proxy the
    /// nearest untrusted hop).
    pub address: IpAddr,
}

impl Caller {
    /// A caller.
    pub fn new(principal: Principal, address: IpAddr) -> Self {
        Self { principal, address }
    }
}

/// Every operation on events, with the role it needs and the rate limit
/// it takes: the one declaration the transports' guards and documents read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Publish one event over REST.
    Publish,
    /// Publish several events over REST in one request (each takes one
    /// from the publish allowance).
    PublishBatch,
    /// Publish events over a WebSocket (each message one event).
    WsPublish,
    /// Publish the events of an IMS Caliper envelope, all or none (each
    /// takes one from the publish allowance).
    CaliperPublish,
    /// List events.
    Query,
    /// One event by id.
    Get,
    /// Totals over the store.
    Stats,
    /// The metrics text.
    Metrics,
    /// Delete events.
    Delete,
    /// Erase every event of one student.
    Erase,
    /// Subscribe to live events (and resume).
    Subscribe,
    /// Receive live events as a Server-Sent Events stream (and resume).
    Stream,
}

impl Operation {
    /// The role a caller needs.
    pub fn role(self) -> Role {
        match self {
            Operation::Publish
            | Operation::PublishBatch
            | Operation::WsPublish
            | Operation::CaliperPublish => Role::Publish,
            Operation::Query
            | Operation::Get
            | Operation::Stats
            | Operation::Metrics
            | Operation::Subscribe
            | Operation::Stream => Role::Read,
            Operation::Delete | Operation::Erase => Role::Admin,
        }
    }

    /// The rate limit each call (each message, for a WebSocket publish) takes.
    pub fn rate_class(self) -> Option<RateClass> {
        match self {
            Operation::Publish | Operation::PublishBatch | Operation::CaliperPublish => {
                Some(RateClass::Publish)
            }
            Operation::WsPublish => Some(RateClass::WsPublish),
            Operation::Query | Operation::Get | Operation::Stats | Operation::Metrics => {
                Some(RateClass::Query)
            }
            Operation::Delete | Operation::Erase => Some(RateClass::Admin),
            Operation::Subscribe | Operation::Stream => None,
        }
    }
}

/// Why an authenticated caller may not do what it asked: 403 (a WebSocket
/// error reply, or close 4003 where a subscription itself is refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The credential lacks the role the operation needs.
    #[error("This credential lacks the '{}' role", .0.name())]
    MissingRole(Role),
    /// A value the request names (or the event carries) lies outside the
    /// credential's scope.
    #[error("{} {} is outside this credential's scope", .field.name(), describe(.value.as_deref()))]
    OutsideScope {
        /// Which list it is not in.
        field: ScopeField,
        /// The value (`None`: the event has none, and the scope lists some).
        value: Option<String>,
    },
    /// Figures over every event need `read` without restrictions, or `admin`.
    #[error("This operation needs a credential without restrictions")]
    Restricted,
}

fn describe(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("'{}'", crate::validation::truncate_for_message(v)),
        None => "(none)".to_owned(),
    }
}

/// Why a request was refused before it reached the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not allowed (403).
    #[error(transparent)]
    Denied(Denied),
    /// Over the caller's rate limit (429).
    #[error(transparent)]
    RateLimited(RateLimited),
}

impl From<Denied> for Refused {
    fn from(e: Denied) -> Self {
        Refused::Denied(e)
    }
}

impl From<RateLimited> for Refused {
    fn from(e: RateLimited) -> Self {
        Refused::RateLimited(e)
    }
}

/// Whether `principal` may perform `operation` at all (its role, and for
/// figures over every event, no restriction).
///
/// # Errors
/// `MissingRole` or `Restricted`.
pub fn authorize(principal: &Principal, operation: Operation) -> Result<(), Denied> {
    let role = operation.role();
    let unrestricted = principal.scope.is_unrestricted();
    match operation {
        Operation::Stats | Operation::Metrics => {
            if principal.has(Role::Admin) || (principal.has(Role::Read) && unrestricted) {
                Ok(())
            } else if principal.has(Role::Read) {
                Err(Denied::Restricted)
            } else {
                Err(Denied::MissingRole(role))
            }
        }
        // A delete cannot be narrowed to a scope: only an unrestricted admin.
        Operation::Delete if principal.has(role) && !unrestricted => Err(Denied::Restricted),
        // An erasure takes every event of a student, whatever its type,
        // source or session: an admin restricted to students may erase
        // its own (checked with the student), no other restriction.
        Operation::Erase if principal.has(role) && !only_students(&principal.scope) => {
            Err(Denied::Restricted)
        }
        _ if principal.has(role) => Ok(()),
        _ => Err(Denied::MissingRole(role)),
    }
}

/// Whether `scope` restricts nothing but the students (`user_ids`).
fn only_students(scope: &Scope) -> bool {
    scope
        .lists()
        .iter()
        .all(|(field, list)| list.is_none() || *field == ScopeField::UserId)
}

/// Checks that each value a request names is inside `scope`.
///
/// # Errors
/// `OutsideScope` naming the first that is not.
pub(crate) fn within<'a>(
    scope: &Scope,
    named: impl IntoIterator<Item = (ScopeField, Option<&'a str>)>,
) -> Result<(), Denied> {
    for (field, value) in named {
        if !scope.admits(field, value) {
            return Err(Denied::OutsideScope {
                field,
                value: value.map(str::to_owned),
            });
        }
    }
    Ok(())
}

/// A subscriber's filter narrowed to its scope: every value the filter
/// names must lie inside the scope (else the subscription is refused), and
/// what it leaves open is limited to the scope (`{}` is everything the
/// scope allows).
///
/// `asked_types` are the type names as the subscriber sent them
/// (unregistered ones included: they are outside a scope that lists types).
///
/// # Errors
/// `OutsideScope` for a named value outside the scope.
pub fn narrow(
    scope: &Scope,
    asked_types: &[String],
    mut filter: EventFilter,
) -> Result<EventFilter, Denied> {
    if scope.event_types.is_some() {
        within(
            scope,
            asked_types
                .iter()
                .map(|t| (ScopeField::EventType, Some(t.as_str()))),
        )?;
    }
    // A filter value is checked only against a scope that lists that field.
    let named = [
        (ScopeField::SessionId, filter.session_id.as_deref()),
        (ScopeField::UserId, filter.user_id.as_deref()),
    ]
    .into_iter()
    .filter(|(field, value)| value.is_some() && scope.list(*field).is_some());
    within(scope, named)?;
    filter.scope = scope.clone();
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn each_operation_needs_its_role() {
        let reader = Principal::new([Role::Read]);
        assert_eq!(authorize(&reader, Operation::Query), Ok(()));
        assert_eq!(authorize(&reader, Operation::Subscribe), Ok(()));
        assert_eq!(authorize(&reader, Operation::Stats), Ok(()));
        assert_eq!(
            authorize(&reader, Operation::Publish),
            Err(Denied::MissingRole(Role::Publish))
        );
        assert_eq!(
            authorize(&reader, Operation::Delete),
            Err(Denied::MissingRole(Role::Admin))
        );
        let publisher = Principal::new([Role::Publish]);
        assert_eq!(authorize(&publisher, Operation::WsPublish), Ok(()));
        assert_eq!(
            authorize(&publisher, Operation::Metrics),
            Err(Denied::MissingRole(Role::Read))
        );
    }

    #[test]
    fn an_erasure_needs_an_admin_restricted_to_students_at_most() {
        let students = Scope {
            user_ids: list(&["u1"]),
            ..Scope::default()
        };
        let school = Principal::new([Role::Admin]).with_scope(students.clone());
        assert_eq!(authorize(&school, Operation::Erase), Ok(()));
        assert_eq!(
            authorize(&Principal::new([Role::Admin]), Operation::Erase),
            Ok(())
        );
        let class = Principal::new([Role::Admin]).with_scope(Scope {
            session_ids: list(&["s1"]),
            ..students
        });
        assert_eq!(authorize(&class, Operation::Erase), Err(Denied::Restricted));
        assert_eq!(
            authorize(
                &Principal::new([Role::Read, Role::Publish]),
                Operation::Erase
            ),
            Err(Denied::MissingRole(Role::Admin))
        );
    }

    #[test]
    fn figures_over_everything_need_an_unrestricted_reader_or_an_admin() {
        let scope = Scope {
            session_ids: list(&["s1"]),
            ..Scope::default()
        };
        let teacher = Principal::new([Role::Read]).with_scope(scope.clone());
        assert_eq!(authorize(&teacher, Operation::Query), Ok(()));
        assert_eq!(
            authorize(&teacher, Operation::Stats),
            Err(Denied::Restricted)
        );
        assert_eq!(
            authorize(&teacher, Operation::Metrics),
            Err(Denied::Restricted)
        );
        let admin = Principal::new([Role::Admin]).with_scope(scope);
        assert_eq!(authorize(&admin, Operation::Stats), Ok(()));
        assert_eq!(
            authorize(&admin, Operation::Delete),
            Err(Denied::Restricted)
        );
        assert_eq!(
            authorize(&Principal::new([Role::Admin]), Operation::Delete),
            Ok(())
        );
    }

    #[test]
    fn a_filter_is_narrowed_to_the_scope_or_refused() {
        let scope = Scope {
            event_types: list(&["timer_tick"]),
            session_ids: list(&["s1", "s2"]),
            ..Scope::default()
        };
        let open = narrow(&scope, &[], EventFilter::default()).expect("{} is in scope");
        assert_eq!(open.scope, scope);
        let s1 = EventFilter {
            session_id: Some("s1".into()),
            ..EventFilter::default()
        };
        assert!(narrow(&scope, &["timer_tick".into()], s1.clone()).is_ok());
        assert_eq!(
            narrow(&scope, &["quiz_started".into()], s1),
            Err(Denied::OutsideScope {
                field: ScopeField::EventType,
                value: Some("quiz_started".into())
            })
        );
        let s3 = EventFilter {
            session_id: Some("s3".into()),
            ..EventFilter::default()
        };
        assert!(matches!(
            narrow(&scope, &[], s3),
            Err(Denied::OutsideScope {
                field: ScopeField::SessionId,
                ..
            })
        ));
        // A user filter under a scope that does not list users is fine.
        let user = EventFilter {
            user_id: Some("u9".into()),
            ..EventFilter::default()
        };
        assert!(narrow(&scope, &[], user).is_ok());
    }
}
