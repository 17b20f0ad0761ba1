//! The registry from the shipped schemas and from files.

use std::io::Write;

use super::*;

fn file(suffix: &str, text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn violations(types: &EventTypes, name: &str, payload: Value) -> Vec<String> {
    let t = types.get(name).expect("registered");
    let schema = types
        .declaration(t)
        .and_then(|d| d.schema.clone())
        .expect("a schema");
    schema
        .violations(&payload, 10)
        .into_iter()
        .map(|v| format!("{}: {}", v.path.join("."), v.message))
        .collect()
}

#[test]
fn every_built_in_type_has_a_shipped_schema_that_the_realistic_examples_follow() {
    let types = load(None, SchemaMode::Enforce).expect("built-ins");
    // The contract's 15 and `caliper_event`, declared by default.
    assert_eq!(types.declarations().len(), 16);
    assert_eq!(
        violations(&types, "caliper_event", serde_json::json!({"caliper": {}})),
        Vec::<String>::new()
    );
    assert_eq!(
        violations(&types, "caliper_event", serde_json::json!({})),
        vec!["caliper: is required"]
    );
    let examples = include_str!("../../tests/fixtures/events.jsonl");
    let mut seen = 0;
    for line in examples.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).expect("an example is JSON");
        let name = event["event_type"].as_str().expect("a type");
        assert_eq!(
            violations(&types, name, event["payload"].clone()),
            Vec::<String>::new(),
            "{line}"
        );
        seen += 1;
    }
    assert_eq!(seen, 15);
    assert_eq!(
        violations(
            &types,
            "answer_submitted",
            serde_json::json!({"correct": "yes"})
        ),
        vec!["correct: must be a boolean", "question_id: is required"]
    );
}

#[test]
fn a_file_adds_types_and_replaces_a_built_ins_description_and_schema() {
    let f = file(
        ".json",
        r#"{"hint_requested": {"description": "Student asked for a hint",
              "schema": {"type": "object", "required": ["question_id"],
                         "properties": {"question_id": {"type": "string"}}}},
            "timer_tick": {"description": "A tick", "schema": null},
            "video_watched": {}}"#,
    );
    let types = load(Some(f.path()), SchemaMode::Enforce).expect("loads");
    assert_eq!(types.declarations().len(), 18);
    let hint = types.get("hint_requested").expect("declared");
    assert_eq!(
        types.declaration(hint).map(|d| d.description.as_str()),
        Some("Student asked for a hint")
    );
    assert_eq!(
        violations(&types, "hint_requested", serde_json::json!({})),
        vec!["question_id: is required"]
    );
    let tick = types.declaration(EventType::TIMER_TICK).expect("built-in");
    assert_eq!(tick.description, "A tick");
    assert!(
        tick.schema.is_none(),
        "the file's null schema replaces the shipped one"
    );
    let video = types.get("video_watched").expect("declared");
    assert!(types
        .declaration(video)
        .is_some_and(|d| d.schema.is_none() && d.description.is_empty()));
}

#[test]
fn a_toml_file_of_the_same_shape_is_read() {
    let f = file(
        ".toml",
        "[hint_requested]\ndescription = \"Hint\"\n[hint_requested.schema]\ntype = \"object\"\nrequired = [\"question_id\"]\n",
    );
    let types = load(Some(f.path()), SchemaMode::Enforce).expect("loads");
    assert_eq!(
        violations(&types, "hint_requested", serde_json::json!({"a": 1})),
        vec!["question_id: is required"]
    );
}

#[test]
fn a_bad_file_is_refused_naming_the_file_and_the_fault() {
    let cases = [
        (".json", "not json", "not JSON"),
        (".json", "[1]", "must be a JSON object"),
        (".json", r#"{"Hint-Requested": {}}"#, "Hint-Requested"),
        (
            ".json",
            r#"{"hint": {"schema": {"type": "nope"}}}"#,
            "type 'hint'",
        ),
        (
            ".json",
            r#"{"hint": {"descripton": "typo"}}"#,
            "type 'hint'",
        ),
        (
            ".json",
            r#"{"hint": {"schema": {"$ref": "https://example.com/s.json"}}}"#,
            "type 'hint'",
        ),
        (".toml", "hint = 3", "type 'hint'"),
    ];
    for (suffix, text, expected) in cases {
        let f = file(suffix, text);
        let e = load(Some(f.path()), SchemaMode::Enforce)
            .expect_err(text)
            .to_string();
        assert!(e.starts_with("EVENT_TYPES_FILE "), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");
        assert!(e.contains(expected), "{text}: {e}");
    }
    let missing = load(
        Some(Path::new("/nonexistent/types.json")),
        SchemaMode::Enforce,
    )
    .expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/types.json"));
}
