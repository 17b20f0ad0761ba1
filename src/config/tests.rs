//! The settings as operators write them: defaults, forms, messages, the
//! file under the environment, what `config` prints.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

#[test]
fn defaults_match_the_contract() {
    let c = Config::from_vars([]).expect("defaults are valid");
    assert_eq!((c.host.to_string().as_str(), c.port), ("0.0.0.0", 8001));
    assert_eq!(c.database_path, PathBuf::from("data/events.db"));
    assert_eq!(c.cors_origins, ["*"]);
    assert!(!c.require_auth);
    assert_eq!((c.log_level, c.log_format), ("info", LogFormat::Text));
    assert_eq!(
        (c.max_queue_size, c.max_subscribers, c.max_ws_message_bytes),
        (10_000, 5_000, 1_048_576)
    );
    assert_eq!(
        (
            c.max_ws_connections_per_ip,
            c.max_payload_keys,
            c.max_payload_bytes
        ),
        (20, 50, 65_536)
    );
    assert_eq!(
        c.rate_limit_publish,
        RateLimit {
            count: 200,
            per: Duration::from_secs(60)
        }
    );
    assert_eq!(c.rate_limit_query.count, 600);
    assert_eq!(c.rate_limit_admin.count, 10);
    assert_eq!(c.event_store, StoreKind::Sqlite);
}

#[test]
fn a_bad_value_names_the_variable_and_the_accepted_form() {
    for (var, value) in [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("RATE_LIMIT_PUBLISH", "lots"),
        ("RATE_LIMIT_QUERY", "0/minute"),
        ("REQUIRE_AUTH", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("MAX_QUEUE_SIZE", "0"),
        ("MAX_SUBSCRIBERS", "-1"),
        ("HOST", "not an address"),
        ("WS_DELIVERY_THREADS", "1025"),
        ("WS_DELIVERY_THREADS", "two"),
    ] {
        let err = Config::from_vars([(var, value)])
            .expect_err(var)
            .to_string();
        assert!(err.contains(var), "{err}");
        assert!(err.contains("expected"), "{err}");
    }
}

#[test]
fn delivery_threads_are_half_the_cores_unless_set() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default = Config::from_vars([]).expect("defaults");
    assert_eq!(default.ws_delivery_threads, 0);
    assert_eq!(default.delivery_threads(), (cores / 2).max(1));
    for (value, threads) in [
        ("0", (cores / 2).max(1)),
        ("1", 1),
        ("3", 3),
        ("1024", 1024),
    ] {
        let c = Config::from_vars([("WS_DELIVERY_THREADS", value)]).expect(value);
        assert_eq!(c.delivery_threads(), threads, "{value}");
    }
}

#[test]
fn log_levels_use_the_names_deployments_use_in_any_case() {
    for (given, level) in [
        ("debug", "debug"),
        ("INFO", "info"),
        ("Warning", "warn"),
        ("WARN", "warn"),
        ("critical", "error"),
    ] {
        assert_eq!(
            Config::from_vars([("LOG_LEVEL", given)])
                .expect(given)
                .log_level,
            level
        );
    }
}

#[test]
fn rates_take_every_unit_and_small_limits_are_valid() {
    let c = Config::from_vars([
        ("RATE_LIMIT_PUBLISH", "5/second"),
        ("RATE_LIMIT_QUERY", "100 per hour"),
        ("RATE_LIMIT_ADMIN", "1/day"),
        ("MAX_SUBSCRIBERS", "0"),
        ("MAX_WS_MESSAGE_BYTES", "50"),
        ("MAX_PAYLOAD_KEYS", "3"),
    ])
    .expect("valid");
    assert_eq!(
        c.rate_limit_publish,
        RateLimit {
            count: 5,
            per: Duration::from_secs(1)
        }
    );
    assert_eq!(c.rate_limit_query.per, Duration::from_secs(3_600));
    assert_eq!(c.rate_limit_admin.per, Duration::from_secs(86_400));
    assert_eq!(
        (
            c.max_subscribers,
            c.max_ws_message_bytes,
            c.max_payload_keys
        ),
        (0, 50, 3)
    );
}

#[test]
fn several_nodes_need_a_shared_store_and_its_url() {
    let c = Config::from_vars([
        ("EVENT_STORE", "postgres"),
        ("DATABASE_URL", "postgres://app:s3cret@db:5432/events"),
        ("BROADCASTER", "nats"),
    ])
    .expect("valid");
    assert_eq!(
        (c.event_store, c.broadcaster),
        (StoreKind::Postgres, BroadcasterKind::Nats)
    );
    assert_eq!(c.nats_url, "nats://127.0.0.1:4222");
    assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
    // A bus across the network gets a budget per batch; the in-process one
    // paces the writer.
    assert_eq!(c.limits().bus_budget, Some(ep_domain::BUS_BUDGET));
    let one = Config::from_vars(Vec::<(&str, &str)>::new()).expect("defaults");
    assert_eq!(one.limits().bus_budget, None);
    for (vars, needs) in [
        (vec![("EVENT_STORE", "postgres")], "DATABASE_URL"),
        (vec![("BROADCASTER", "redis")], "EVENT_STORE=postgres"),
        (
            vec![("BROADCASTER", "nats"), ("EVENT_STORE", "memory")],
            "EVENT_STORE=postgres",
        ),
    ] {
        let err = Config::from_vars(vars).expect_err(needs).to_string();
        assert!(err.contains(needs), "{err}");
    }
    for (var, value) in [
        ("BROADCASTER", "kafka"),
        ("NATS_URL", "http://x"),
        ("REDIS_URL", "localhost"),
        ("BUS_PREFIX", "a.b"),
    ] {
        let err = Config::from_vars([(var, value)])
            .expect_err(var)
            .to_string();
        assert!(err.contains(var), "{err}");
    }
}

#[test]
fn cors_origins_are_trimmed() {
    let c = Config::from_vars([("CORS_ORIGINS", " https://a.example , https://b.example ")])
        .expect("valid");
    assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
}

#[test]
fn auth_without_a_key_is_refused_and_the_key_is_never_printed() {
    let err = Config::from_vars([("REQUIRE_AUTH", "true")])
        .expect_err("no key")
        .to_string();
    assert!(err.contains("API_KEY"));
    let c = Config::from_vars([("REQUIRE_AUTH", "true"), ("API_KEY", "s3cret")]).expect("valid");
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn a_refusal_quotes_the_value_and_names_the_form() {
    let err = Config::from_vars([("PORT", "abc")])
        .expect_err("bad")
        .to_string();
    assert_eq!(
        err,
        r#"invalid PORT="abc": expected a port number from 0 to 65535"#
    );
    let err = Config::from_vars([("MAX_BODY_BYTES", "12")])
        .expect_err("small")
        .to_string();
    assert_eq!(
        err,
        r#"invalid MAX_BODY_BYTES="12": expected a whole number (1024 or more)"#
    );
    let err = Config::from_vars([("WS_KEEPALIVE_SECONDS", "0")])
        .expect_err("zero")
        .to_string();
    assert!(
        err.starts_with(
            "invalid WS_KEEPALIVE_SECONDS=\"0\": expected a whole number of seconds (1 or more)"
        ),
        "{err}"
    );
    let err = Config::from_vars([("TRUSTED_PROXIES", "10.0.0.0/33")])
        .expect_err("cidr")
        .to_string();
    assert!(
        err.contains("TRUSTED_PROXIES") && err.contains("CIDR"),
        "{err}"
    );
}

fn toml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

#[test]
fn the_file_takes_keys_in_any_case_with_native_values_and_the_environment_wins() {
    let file = toml(
        "PORT = 9100\nmax_queue_size = 500\nrequire_auth = true\napi_key = \"k1\"\nrate_limit_publish = \"5/second\"\nws_keepalive_seconds = 7\n",
    );
    let c =
        Config::from_file_and_vars(Some(file.path()), [("MAX_QUEUE_SIZE", "700")]).expect("valid");
    assert_eq!(c.port, 9100);
    assert_eq!(c.max_queue_size, 700, "the variable wins over the file");
    assert!(c.require_auth);
    assert_eq!(c.api_key, "k1");
    assert_eq!(c.rate_limit_publish.to_string(), "5/second");
    assert_eq!(c.ws_keepalive, Duration::from_secs(7));
}

#[test]
fn a_bad_or_unknown_key_in_the_file_is_named() {
    let file = toml("port = \"eighty\"\n");
    let err = Config::from_file_and_vars(Some(file.path()), [])
        .expect_err("bad")
        .to_string();
    assert!(
        err.starts_with("invalid PORT=\"eighty\": expected a port number"),
        "{err}"
    );
    let file = toml("port = [80]\n");
    let err = Config::from_file_and_vars(Some(file.path()), [])
        .expect_err("list")
        .to_string();
    assert!(
        err.starts_with("invalid PORT: invalid type: sequence, expected a single value"),
        "{err}"
    );
    let file = toml("max_queue_sise = 5\n");
    let err = Config::from_file_and_vars(Some(file.path()), [])
        .expect_err("typo")
        .to_string();
    assert!(err.contains("unknown setting \"max_queue_sise\""), "{err}");
    let missing =
        Config::from_file_and_vars(Some(std::path::Path::new("/nonexistent/ep.toml")), [])
            .expect_err("missing")
            .to_string();
    assert!(missing.contains("/nonexistent/ep.toml"), "{missing}");
}

#[test]
fn every_setting_is_shown_in_the_form_it_is_read_in_with_secrets_masked() {
    let vars = [
        ("EVENT_STORE", "postgres"),
        ("DATABASE_URL", "postgres://app:s3cret@db:5432/events"),
        ("BROADCASTER", "redis"),
        ("REDIS_URL", "redis://:hunter2@cache:6379"),
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", "k-very-secret"),
        ("ADMIN_API_KEY", "adm-secret"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ("CORS_ORIGINS", "https://a.example,https://b.example"),
        ("RATE_LIMIT_QUERY", "100 per hour"),
        ("STARTUP_TIMEOUT_SECONDS", "5"),
        ("DATABASE_SYNCHRONOUS", "FULL"),
        ("LOG_LEVEL", "warning"),
    ];
    let c = Config::from_vars(vars).expect("valid");
    let shown = c.settings();
    let text = format!("{shown:?} {c:?}");
    for secret in ["s3cret", "hunter2", "k-very-secret", "adm-secret"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let get = |var: &str| {
        shown
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("{var} missing"))
    };
    assert_eq!(get("DATABASE_URL"), "postgres://app:***@db:5432/events");
    assert_eq!(get("API_KEY"), "***");
    assert_eq!(get("TRUSTED_PROXIES"), "10.0.0.0/8, ::1");
    assert_eq!(get("RATE_LIMIT_QUERY"), "100/hour");
    assert_eq!(get("STARTUP_TIMEOUT_SECONDS"), "5");
    assert_eq!(get("DATABASE_SYNCHRONOUS"), "full");
    assert_eq!(get("LOG_LEVEL"), "warn");
    assert_eq!(shown.len(), 54, "every setting: {shown:?}");

    // What is shown reads back as the same settings (secrets aside).
    let back: Vec<(&str, &str)> =
        shown
            .iter()
            .filter(|(var, _)| {
                !["DATABASE_URL", "REDIS_URL", "API_KEY", "ADMIN_API_KEY"].contains(&var.as_str())
            })
            .map(|(v, t)| (v.as_str(), t.as_str()))
            .chain(vars.iter().copied().filter(|(v, _)| {
                ["DATABASE_URL", "REDIS_URL", "API_KEY", "ADMIN_API_KEY"].contains(v)
            }))
            .collect();
    assert_eq!(
        Config::from_vars(back).expect("shown settings read back"),
        c
    );
}

#[test]
fn the_defaults_are_shown_too() {
    let shown = Config::default().settings();
    assert!(shown.contains(&("PORT".into(), "8001".into())));
    assert!(shown.contains(&("DATABASE_URL".into(), String::new())));
    assert!(shown.contains(&("RATE_LIMIT_PUBLISH".into(), "200/minute".into())));
    assert!(shown.contains(&("HOST".into(), "0.0.0.0".into())));
    let _: IpAddr = Config::default().host;
    let _: PathBuf = Config::default().database_path;
}
