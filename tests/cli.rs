//! The command line driven as a subprocess against a running server:
//! `publish` (flags, JSON lines with refusals reported by line number, auth),
//! `tail` (filters, resume, reconnecting through a cut connection), the REST
//! reads, `config` and `import-legacy` (into SQLite and PostgreSQL, twice).

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use ep_conformance::services::{self, unique_name, unreachable, Service};
use ep_conformance::Link;
use ep_store_postgres::testing::TempSchema;
use ep_store_sqlite::testing::{sample_rows, write_legacy_db, SAMPLE_KEPT_IN_TIMESTAMP_ORDER};
use serde_json::{json, Value};
use support::cluster::{get, publish};
use support::process::{Process, BIN};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A guard against a hang; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// The CLI with `args`, the service's URL and these variables; its output.
async fn cli(url: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = command(url, args, env);
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().expect("spawn");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
    }
    tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("the command ends")
        .expect("output")
}

fn command(url: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("EVENT_PIPELINE_URL", url)
        .env_remove("EVENT_PIPELINE_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn server(dir: &Path, vars: &[(&str, &str)]) -> Process {
    let mut all = vec![(
        "DATABASE_PATH",
        dir.join("events.db").to_string_lossy().into_owned(),
    )];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Process::start_with(&all)
}

#[tokio::test]
async fn publish_prints_ids_and_reports_each_refused_line_by_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = server(dir.path(), &[]);
    let one = cli(
        &node.base,
        &[
            "publish",
            "--type",
            "quiz_started",
            "--source",
            "quiz-engine",
            "--session",
            "s1",
            "--payload",
            r#"{"quiz_id":"q1","total_questions":12,"a_last":true}"#,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(one.status.code(), Some(0), "{one:?}");
    let id = text(&one.stdout).trim().to_owned();
    assert!(id.starts_with("evt_"), "{id}");
    // The payload is stored with its keys in the order given.
    let by_id = reqwest::get(format!("{}/api/v1/events/{id}", node.base))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        by_id.contains(r#""payload":{"quiz_id":"q1","total_questions":12,"a_last":true}"#),
        "{by_id}"
    );

    let lines = [
        r#"{"event_type":"timer_tick","source":"timer","session_id":"s1","payload":{"remaining_seconds":3}}"#,
        "not json",
        "",
        r#"{"event_type":"no_such_type","source":"timer"}"#,
        r#"{"event_type":"timer_tick","source":"timer","session_id":"s1","payload":{"remaining_seconds":2}}"#,
    ]
    .join("\n");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, &lines).expect("write");
    for input in [Some(lines.as_str()), None] {
        let args: &[&str] = match input {
            Some(_) => &["publish"],
            None => &[
                "publish",
                "--file",
                file.to_str().expect("path"),
                "--window",
                "2",
            ],
        };
        let out = cli(&node.base, args, &[], input).await;
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(ids.len(), 2, "{out:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("line 2: Invalid JSON"), "{stderr}");
        assert!(
            stderr.contains("line 4: ") && stderr.contains("no_such_type"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("line 3") && !stderr.contains("line 1:") && !stderr.contains("line 5"),
            "{stderr}"
        );
        assert!(stderr.contains("2 of 4 events were refused"), "{stderr}");
        // Stored in line order.
        let client = reqwest::Client::new();
        let (_, first) = get(&client, &node, &format!("/api/v1/events/{}", ids[0])).await;
        let (_, second) = get(&client, &node, &format!("/api/v1/events/{}", ids[1])).await;
        assert_eq!(first["payload"]["remaining_seconds"], 3);
        assert_eq!(second["payload"]["remaining_seconds"], 2);
        assert!(first["seq"].as_u64() < second["seq"].as_u64());
    }
}

#[tokio::test]
async fn with_auth_on_the_key_comes_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = server(
        dir.path(),
        &[("REQUIRE_AUTH", "true"), ("API_KEY", "k-cli-test")],
    );
    let line = r#"{"event_type":"timer_tick","source":"timer"}"#;
    for (args, input) in [
        (vec!["publish", "--type", "timer_tick"], None),
        (vec!["publish"], Some(line)),
        (vec!["stats"], None),
    ] {
        let refused = cli(&node.base, &args, &[], input).await;
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {refused:?}");
        assert!(
            text(&refused.stderr).contains("401: ")
                && text(&refused.stderr).contains("--api-key or EVENT_PIPELINE_API_KEY"),
            "every command says how to give the key: {args:?}: {refused:?}"
        );
        let mut with_flag = args.clone();
        with_flag.extend(["--api-key", "k-cli-test"]);
        let ok = cli(&node.base, &with_flag, &[], input).await;
        assert_eq!(ok.status.code(), Some(0), "{args:?}: {ok:?}");
        let ok = cli(
            &node.base,
            &args,
            &[("EVENT_PIPELINE_API_KEY", "k-cli-test")],
            input,
        )
        .await;
        assert_eq!(ok.status.code(), Some(0), "{args:?}: {ok:?}");
    }
}

#[tokio::test]
async fn the_reads_print_the_services_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = server(dir.path(), &[]);
    let client = reqwest::Client::new();
    for (session, n) in [("s1", 1), ("s2", 2), ("s1", 3)] {
        publish(&client, &node, &json!({"event_type":"timer_tick","source":"timer","session_id":session,"payload":{"remaining_seconds":n}})).await;
    }
    let out = cli(
        &node.base,
        &["query", "--session", "s1", "--limit", "10"],
        &[],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let events: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let remaining: Vec<i64> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["payload"]["remaining_seconds"].as_i64().expect("n"))
        .collect();
    assert_eq!(remaining, [3, 1], "newest first");

    let stats: Value =
        serde_json::from_slice(&cli(&node.base, &["stats"], &[], None).await.stdout).expect("JSON");
    assert_eq!(stats["total_events"], 3);
    let types: Value =
        serde_json::from_slice(&cli(&node.base, &["event-types"], &[], None).await.stdout)
            .expect("JSON");
    assert_eq!(types.as_object().expect("object").len(), 15);
    // --pretty: the same JSON, indented, keys in the service's order.
    for args in [
        &["stats", "--pretty"][..],
        &["event-types", "--pretty"],
        &["query", "--pretty"],
    ] {
        let out = cli(&node.base, args, &[], None).await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let shown = text(&out.stdout);
        assert!(shown.lines().count() > 3, "{args:?}: {shown}");
        let _: Value = serde_json::from_str(&shown).expect("still JSON");
    }
    let shown = text(
        &cli(&node.base, &["stats", "--pretty"], &[], None)
            .await
            .stdout,
    );
    let order: Vec<usize> = ["total_events", "events_last_hour", "by_type", "router"]
        .iter()
        .map(|k| shown.find(&format!("\"{k}\"")).expect("key shown"))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the service's order: {shown}"
    );

    let bad = cli(&node.base, &["query", "--since", "yesterday"], &[], None).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("400: Invalid ISO 8601 timestamp for 'since'"),
        "{bad:?}"
    );
    let down = cli("http://127.0.0.1:9", &["stats"], &[], None).await;
    assert_eq!(down.status.code(), Some(2));
    assert!(
        text(&down.stderr).contains("cannot reach http://127.0.0.1:9"),
        "{down:?}"
    );
}

/// A running `tail`: its output lines, awaited one at a time.
struct Tail {
    _child: Child,
    out: Lines<BufReader<ChildStdout>>,
    err: Lines<BufReader<ChildStderr>>,
}

impl Tail {
    fn start(url: &str, args: &[&str]) -> Self {
        let mut child = command(url, args, &[])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let err = BufReader::new(child.stderr.take().expect("stderr")).lines();
        Self {
            _child: child,
            out,
            err,
        }
    }

    async fn event(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.out.next_line())
            .await
            .expect("an event in time")
            .expect("read")
            .expect("a line");
        serde_json::from_str(&line).expect("a JSON line")
    }

    async fn said(&mut self, text: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(PATIENCE, self.err.next_line())
                .await
                .unwrap_or_else(|_| panic!("{text:?} in time; said {seen:?}"))
                .expect("read")
                .expect("a line");
            if line.contains(text) {
                return line;
            }
            seen.push(line);
        }
    }
}

#[tokio::test]
async fn tail_filters_and_resumes_by_itself_through_a_dropped_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = server(dir.path(), &[]);
    let link = Link::to(node.addr.parse().expect("addr"))
        .await
        .expect("link");
    let via = format!("http://{}", link.addr());
    let client = reqwest::Client::new();
    let tick = |session: &str, n: i64| json!({"event_type":"timer_tick","source":"timer","session_id":session,"payload":{"remaining_seconds":n}});
    publish(&client, &node, &tick("s1", 9)).await;

    // Without --since-seq: from now on, nothing stored before.
    let mut tail = Tail::start(&via, &["tail", "--session", "s1", "--count", "3"]);
    tail.said("following the events after seq 1").await;
    publish(&client, &node, &tick("s2", 8)).await;
    publish(&client, &node, &tick("s1", 7)).await;
    let first = tail.event().await;
    assert_eq!(
        (
            first["seq"].as_u64(),
            &first["payload"]["remaining_seconds"]
        ),
        (Some(3), &json!(7))
    );

    link.cut();
    tail.said("reconnecting").await;
    publish(&client, &node, &tick("s1", 6)).await; // while it is away
    link.restore();
    tail.said("resuming after seq 3").await;
    publish(&client, &node, &tick("s1", 5)).await;
    let (second, third) = (tail.event().await, tail.event().await);
    assert_eq!(
        [second["seq"].as_u64(), third["seq"].as_u64()],
        [Some(4), Some(5)],
        "once each, in order, none lost while away"
    );

    let pretty = cli(
        &node.base,
        &["tail", "--since-seq", "0", "--count", "1", "--pretty"],
        &[],
        None,
    )
    .await;
    assert_eq!(pretty.status.code(), Some(0), "{pretty:?}");
    assert!(
        text(&pretty.stdout).contains(r#"#1 timer_tick timer session=s1 {"remaining_seconds":9}"#),
        "{pretty:?}"
    );
}

#[tokio::test]
async fn config_prints_the_effective_settings_masked_and_fails_as_start_up_would() {
    let out = cli(
        "http://unused",
        &["config"],
        &[
            ("REQUIRE_AUTH", "true"),
            ("API_KEY", "k-very-secret"),
            ("PORT", "9001"),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(stdout.lines().any(|l| l == "PORT=9001"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "API_KEY=***"), "{stdout}");
    assert!(!stdout.contains("k-very-secret"), "{stdout}");

    let bad = cli(
        "http://unused",
        &["config"],
        &[("RATE_LIMIT_QUERY", "lots")],
        None,
    )
    .await;
    let serve = cli("http://unused", &[], &[("RATE_LIMIT_QUERY", "lots")], None).await;
    assert_eq!((bad.status.code(), serve.status.code()), (Some(2), Some(2)));
    assert_eq!(
        text(&bad.stderr),
        text(&serve.stderr),
        "the same message as start-up"
    );
    assert!(
        text(&bad.stderr).contains(r#"invalid RATE_LIMIT_QUERY="lots": expected N/second"#),
        "{bad:?}"
    );
}

#[tokio::test]
async fn import_legacy_copies_the_old_events_into_sqlite_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old-events.db");
    write_legacy_db(&old, &sample_rows()).expect("old database");
    let db = dir.path().join("events.db");
    let env = [("DATABASE_PATH", db.to_str().expect("path"))];
    let first = cli(
        "http://unused",
        &["import-legacy", old.to_str().expect("path")],
        &env,
        None,
    )
    .await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(
        text(&first.stderr).contains("imported 5 of 6 events")
            && text(&first.stderr).contains("1 left out"),
        "{first:?}"
    );
    assert!(
        !dir.path().join("events.db-wal").exists(),
        "the import closes the store: the database file alone holds the events"
    );
    let again = cli(
        "http://unused",
        &["import-legacy", old.to_str().expect("path")],
        &env,
        None,
    )
    .await;
    assert!(
        text(&again.stderr).contains("imported 0 of 6 events")
            && text(&again.stderr).contains("5 already there"),
        "{again:?}"
    );

    let node = Process::start(&db);
    let (_, events) = get(&reqwest::Client::new(), &node, "/api/v1/events?limit=10").await;
    let ids: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .rev()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids, SAMPLE_KEPT_IN_TIMESTAMP_ORDER,
        "seq in timestamp order"
    );

    let itself = cli(
        "http://unused",
        &["import-legacy", db.to_str().expect("path")],
        &env,
        None,
    )
    .await;
    assert_eq!(itself.status.code(), Some(2), "{itself:?}");
}

#[tokio::test]
async fn import_legacy_copies_the_old_events_into_postgres_once() {
    let Some(base) = services::server(Service::Postgres).await else {
        return;
    };
    let schema = match TempSchema::create(&base, unique_name("ep_cli_import")).await {
        Ok(schema) => schema,
        Err(e) => return unreachable(Service::Postgres, &base, e),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("events.db");
    write_legacy_db(&old, &sample_rows()).expect("old database");
    let url = schema.url();
    let env = [("EVENT_STORE", "postgres"), ("DATABASE_URL", url.as_str())];
    for expected in ["imported 5 of 6 events", "imported 0 of 6 events"] {
        let out = cli(
            "http://unused",
            &["import-legacy", old.to_str().expect("path")],
            &env,
            None,
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(text(&out.stderr).contains(expected), "{out:?}");
        assert!(text(&out.stderr).contains("PostgreSQL at"), "{out:?}");
    }
}

#[tokio::test]
async fn tail_ends_at_once_for_an_unknown_type_or_a_service_it_cannot_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = server(dir.path(), &[]);
    let typo = cli(
        &node.base,
        &["tail", "--type", "quiz_start,timer_tick"],
        &[],
        None,
    )
    .await;
    assert_eq!(typo.status.code(), Some(2), "{typo:?}");
    let stderr = text(&typo.stderr);
    assert!(
        stderr.contains("quiz_start") && stderr.contains("quiz_started"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--type quiz_start:"),
        "only the unknown one is named: {stderr}"
    );

    // Nothing listens on port 1: the first contact fails, exit 2 with why.
    let nowhere = cli("http://127.0.0.1:1", &["tail"], &[], None).await;
    assert_eq!(nowhere.status.code(), Some(2), "{nowhere:?}");
    assert!(
        text(&nowhere.stderr).contains("cannot reach"),
        "{nowhere:?}"
    );
}
