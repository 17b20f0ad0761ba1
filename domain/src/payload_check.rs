//! Checks a payload's JSON text (an object, within the key and size limits)
//! without building a tree of it, and compacts it for storage.

use std::fmt;

use ep_ports::Payload;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::limits::Limits;

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadProblem {
    /// It is not a JSON object.
    NotAnObject,
    /// It has this many top-level keys, more than allowed.
    TooManyKeys(usize),
    /// It takes this many bytes compacted, more than allowed.
    TooLarge(usize),
    /// Objects and arrays are nested deeper than [`MAX_PAYLOAD_DEPTH`].
    TooDeep,
}

/// Deepest nesting of objects and arrays in a payload (the payload object
/// itself is level 1).
pub const MAX_PAYLOAD_DEPTH: usize = 32;

/// Checks `raw` (valid JSON text, as the parser already guaranteed) and
/// returns it compacted.
pub(crate) fn check_payload(raw: &str, limits: &Limits) -> Result<Payload, PayloadProblem> {
    if !raw.trim_start().starts_with('{') {
        return Err(PayloadProblem::NotAnObject);
    }
    let Scanned { compact, depth } = scan(raw);
    if compact.len() > limits.max_payload_bytes {
        return Err(PayloadProblem::TooLarge(compact.len()));
    }
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(PayloadProblem::TooDeep);
    }
    let keys = count_top_level_keys(&compact).ok_or(PayloadProblem::NotAnObject)?;
    if keys > limits.max_payload_keys {
        return Err(PayloadProblem::TooManyKeys(keys));
    }
    Payload::from_json(compact).map_err(|_| PayloadProblem::NotAnObject)
}

/// What one pass over a payload's text finds.
struct Scanned {
    /// The text without its insignificant white space (string contents are
    /// kept byte for byte).
    compact: String,
    /// The deepest nesting of objects and arrays.
    depth: usize,
}

/// Compacts valid JSON text and measures its nesting, in one pass.
fn scan(raw: &str) -> Scanned {
    let mut out = Vec::with_capacity(raw.len());
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw.as_bytes() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(b);
    }
    // Only ASCII white space outside strings was removed, so the bytes are
    // still the UTF-8 they were.
    let compact = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Scanned {
        compact,
        depth: deepest,
    }
}

/// Counts the entries of a JSON object without keeping any of them.
fn count_top_level_keys(json: &str) -> Option<usize> {
    struct Counter;
    impl<'de> Visitor<'de> for Counter {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(Counter).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_keeps_strings_intact() {
        assert_eq!(
            scan("{ \"a b\" : \"x \\\" y\" ,\n \"c\": [1, 2] }").compact,
            r#"{"a b":"x \" y","c":[1,2]}"#
        );
        assert_eq!(scan(r#"{"a":"\\"}"#).compact, r#"{"a":"\\"}"#);
    }

    #[test]
    fn keys_are_counted_at_the_top_level_only() {
        assert_eq!(
            count_top_level_keys(r#"{"a":{"b":1,"c":2},"d":[{"e":1}]}"#),
            Some(2)
        );
        assert_eq!(count_top_level_keys("{}"), Some(0));
        assert_eq!(count_top_level_keys("[1]"), None);
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_bounded() {
        assert_eq!(scan(r#"{"a":[{"b":"[[[{{"}]}"#).depth, 3);
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(33),
            "1".to_owned() + &"}".repeat(33)
        );
        assert_eq!(
            check_payload(&deep, &Limits::default()),
            Err(PayloadProblem::TooDeep)
        );
        let ok = format!(
            "{}{}",
            "{\"a\":".repeat(32),
            "1".to_owned() + &"}".repeat(32)
        );
        assert!(check_payload(&ok, &Limits::default()).is_ok());
    }

    /// Depth is how far objects and lists nest, not how many there are: a
    /// payload of many small ones side by side (answers to 40 questions,
    /// each an object with a list) is four deep, however many answers.
    #[test]
    fn siblings_do_not_add_to_the_depth() {
        let answers: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"q":{i},"a":[1,2]}}"#))
            .collect();
        let payload = format!(r#"{{"answers":[{}]}}"#, answers.join(","));
        assert_eq!(scan(&payload).depth, 4);
        assert!(check_payload(&payload, &Limits::default()).is_ok());
    }

    #[test]
    fn non_objects_are_refused() {
        for raw in ["null", "[1]", "\"x\"", "3", "true"] {
            assert_eq!(
                check_payload(raw, &Limits::default()),
                Err(PayloadProblem::NotAnObject)
            );
        }
    }

    #[test]
    fn size_is_measured_after_compacting() {
        let limits = Limits {
            max_payload_bytes: 11,
            ..Limits::default()
        };
        assert!(check_payload("{ \"a\" :  12345 }", &limits).is_ok());
        assert_eq!(
            check_payload(r#"{"a":123456}"#, &limits),
            Err(PayloadProblem::TooLarge(12))
        );
    }
}
