//! The JobState conformance cases: one async function per promise of the
//! port, each given a fresh, empty store.

use std::time::Duration;

use ep_ports::JobState;

const MINUTE: Duration = Duration::from_secs(60);

/// A lease has one holder: others are refused until it is released or has
/// expired; its holder renews it; the leases of two jobs are independent.
pub async fn a_lease_has_one_holder_until_released_or_expired<S: JobState>(store: &S) {
    assert!(store
        .try_lease("retention", "a", MINUTE)
        .await
        .expect("take"));
    assert!(!store
        .try_lease("retention", "b", MINUTE)
        .await
        .expect("refused"));
    assert!(store
        .try_lease("retention", "a", MINUTE)
        .await
        .expect("renew"));
    assert!(
        store
            .try_lease("xapi", "b", MINUTE)
            .await
            .expect("another job"),
        "the leases of two jobs are independent"
    );
    store
        .release_lease("retention", "b")
        .await
        .expect("not b's");
    assert!(!store
        .try_lease("retention", "b", MINUTE)
        .await
        .expect("still a's"));
    store
        .release_lease("retention", "a")
        .await
        .expect("release");
    assert!(store
        .try_lease("retention", "b", Duration::ZERO)
        .await
        .expect("free"));
    // b's lease lasted no time: it has expired, a may take it.
    assert!(store
        .try_lease("retention", "a", MINUTE)
        .await
        .expect("expired"));
    assert!(!store
        .try_lease("retention", "b", MINUTE)
        .await
        .expect("a's again"));
}

/// Of holders asking for a free lease at once, exactly one gets it.
pub async fn of_holders_asking_at_once_one_gets_the_lease<S: JobState>(store: &S) {
    let (a, b, c, d) = tokio::join!(
        store.try_lease("job", "a", MINUTE),
        store.try_lease("job", "b", MINUTE),
        store.try_lease("job", "c", MINUTE),
        store.try_lease("job", "d", MINUTE),
    );
    let won = [a, b, c, d]
        .into_iter()
        .map(|r| r.expect("try_lease"))
        .filter(|held| *held)
        .count();
    assert_eq!(won, 1);
}

/// A cursor reads back the last seq saved for its job; a job that never
/// saved has none.
pub async fn a_cursor_reads_back_the_last_seq_saved<S: JobState>(store: &S) {
    assert_eq!(store.cursor("xapi").await.expect("read"), None);
    store.save_cursor("xapi", 5).await.expect("save");
    assert_eq!(store.cursor("xapi").await.expect("read"), Some(5));
    store
        .save_cursor("xapi", u64::from(u32::MAX) + 9)
        .await
        .expect("save");
    assert_eq!(
        store.cursor("xapi").await.expect("read"),
        Some(u64::from(u32::MAX) + 9)
    );
    assert_eq!(store.cursor("other").await.expect("read"), None);
}
