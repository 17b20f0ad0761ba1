//! What only a real PostgreSQL shows: several writers (nodes) appending at
//! once still give seq in commit order, dense; nodes starting together
//! migrate once; a schema from a newer build is refused; an older one gets
//! its per-type counts built, which every writer then keeps; a server that
//! is not there is a transient error, a bad URL is not.

use std::sync::Arc;

use ep_conformance::services::{self, Service};
use ep_conformance::{at, new_event};
use ep_ports::{EventFilter, EventStore, EventType};
use ep_store_postgres::testing::TempSchema;
use ep_store_postgres::{OpenError, PostgresOptions, PostgresStore};

async fn schema() -> Option<TempSchema> {
    let base = services::server(Service::Postgres).await?;
    match TempSchema::create(&base, services::unique_name("ep_engine")).await {
        Ok(schema) => Some(schema),
        Err(e) => {
            services::unreachable(Service::Postgres, &base, e);
            None
        }
    }
}

async fn open(schema: &TempSchema) -> PostgresStore {
    PostgresStore::open(&schema.url(), PostgresOptions::default())
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_dense_seq_in_commit_order_as_a_reader_sees_it() {
    let Some(schema) = schema().await else { return };
    let writers: Vec<PostgresStore> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(open(&schema).await);
        }
        v
    };
    let reader = open(&schema).await;
    const BATCHES: i64 = 40;
    const SIZE: i64 = 25;
    let total = writers.len() as u64 * BATCHES as u64 * SIZE as u64;
    // The reader follows the store as a resuming subscriber would: after the
    // highest seq it has seen. A seq committed after a higher one would be
    // skipped for good; it must never happen.
    let following = tokio::spawn(async move {
        let mut seen = 0u64;
        while seen < total {
            let page = reader
                .after(seen, EventFilter::default(), 1_000)
                .await
                .expect("read");
            for e in page {
                assert_eq!(e.seq, seen + 1, "seq {} appeared after {seen}", e.seq);
                seen = e.seq;
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    let mut appending = Vec::new();
    for (w, store) in writers.into_iter().enumerate() {
        appending.push(tokio::spawn(async move {
            let store = Arc::new(store);
            let mut last = 0;
            for b in 0..BATCHES {
                let batch = (0..SIZE)
                    .map(|i| {
                        let n = (w as i64 * BATCHES + b) * SIZE + i;
                        new_event(n, EventType::TIMER_TICK, Some(&format!("node-{w}")), None)
                    })
                    .collect();
                let stored = store.append(batch).await.expect("append");
                let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
                assert!(
                    seqs.windows(2).all(|s| s[1] == s[0] + 1),
                    "a batch is contiguous"
                );
                assert!(seqs[0] > last, "a writer's batches increase");
                last = seqs[0];
            }
        }));
    }
    for a in appending {
        a.await.expect("writer");
    }
    assert_eq!(following.await.expect("reader"), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(schema) = schema().await else { return };
    let url = schema.url();
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(&url, PostgresOptions::default()).await })
        })
        .collect();
    for o in opening {
        o.await.expect("join").expect("every node opens");
    }
    let store = open(&schema).await;
    store
        .append(vec![new_event(1, EventType::QUIZ_STARTED, None, None)])
        .await
        .expect("append");

    // A newer build bumped the version: this one refuses, and changes nothing.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE events_schema SET version = 99")
        .await
        .expect("bump");
    let refused = PostgresStore::open(&url, PostgresOptions::default())
        .await
        .expect_err("newer schema");
    assert!(matches!(refused, OpenError::Schema(_)), "{refused}");
    assert!(!refused.is_transient());
    assert!(refused.to_string().contains("99"), "{refused}");
    let version: i32 = client
        .query_one("SELECT version FROM events_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version, 99);
}

#[tokio::test]
async fn a_database_of_an_older_version_gets_its_counts_built_and_every_writer_keeps_them() {
    let Some(schema) = schema().await else { return };
    let store = open(&schema).await;
    let kinds = [
        EventType::TIMER_TICK,
        EventType::ANSWER_SUBMITTED,
        EventType::QUIZ_STARTED,
    ];
    let batch = (0..50)
        .map(|i| new_event(i, kinds[(i % 3) as usize], None, None))
        .collect();
    store.append(batch).await.expect("append");
    let expected = store.stats(at(20)).await.expect("stats");
    assert_eq!(expected.total_events, 50);
    // As version 1 left it: no counts, no triggers, no occurred_at, no
    // idempotency keys, leases or cursors.
    let (client, connection) = tokio_postgres::connect(&schema.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE events_type_counts, events_minute_counts;
             DROP FUNCTION events_count_inserted, events_count_deleted, events_count_truncated CASCADE;
             ALTER TABLE events DROP COLUMN occurred_at, DROP COLUMN idempotency_key;
             DROP INDEX events_type_ts; DROP TABLE events_leases, events_cursors;
             UPDATE events_schema SET version = 1;",
        )
        .await
        .expect("downgrade");
    let store = open(&schema).await;
    assert_eq!(store.stats(at(20)).await.expect("stats"), expected);
    // An operator's own SQL (or a node of an older build) is counted too.
    client
        .batch_execute(&format!(
            "DELETE FROM events WHERE seq > 45;
             INSERT INTO events (seq, id, event_type, source, payload, ts)
             VALUES (51, 'evt_by_hand', 'mastery_updated', 'ops', '{{}}', '{}');",
            at(60).to_datetime().to_rfc3339()
        ))
        .await
        .expect("by hand");
    let stats = store.stats(at(20)).await.expect("stats");
    assert_eq!(stats.total_events, 46);
    assert_eq!(
        stats.events_since, 25,
        "at(21) to at(44), and the one by hand"
    );
    let mastery = stats
        .by_type
        .iter()
        .find(|r| r.event_type == EventType::MASTERY_UPDATED)
        .expect("mastery row");
    assert_eq!((mastery.count, mastery.last_seen), (1, at(60)));
    client
        .batch_execute("TRUNCATE events")
        .await
        .expect("truncate");
    let stats = store.stats(at(20)).await.expect("stats");
    assert_eq!((stats.total_events, stats.by_type.len()), (0, 0));
}

#[tokio::test]
async fn an_absent_server_is_transient_and_a_bad_url_is_not() {
    // Port 1 on loopback: nothing listens there.
    let absent = PostgresStore::open(
        "postgres://postgres@127.0.0.1:1/postgres",
        PostgresOptions {
            timeout: std::time::Duration::from_secs(2),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect_err("nothing listens");
    assert!(absent.is_transient(), "{absent}");
    assert!(
        absent.to_string().contains("127.0.0.1:1/postgres")
            && absent.to_string().contains("refused"),
        "names the place and the cause: {absent}"
    );
    // A host name that does not resolve says so, not only "error
    // connecting to server".
    let unknown = PostgresStore::open(
        "postgres://postgres@no-such-host.invalid:5432/postgres",
        PostgresOptions {
            timeout: std::time::Duration::from_secs(5),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect_err("no such host");
    assert!(
        unknown.to_string().contains("lookup") || unknown.to_string().contains("resolve"),
        "names the cause: {unknown}"
    );
    let bad = PostgresStore::open("postgres://host:notaport/db", PostgresOptions::default())
        .await
        .expect_err("bad url");
    assert!(matches!(bad, OpenError::BadUrl(_)), "{bad}");
    assert!(!bad.is_transient());
}
