//! The datastore conformance suite: every backend of the `Store` trait must pass these cases.
//!
//! A backend's test file defines an `open()` function that starts a fresh, empty store and
//! returns it with a guard that owns its resources, then invokes [`conformance_tests!`], which
//! turns every case below into one `#[tokio::test]`.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use tug_storage::{
    Compare, Error, Event, KeyValue, RangeRequest, Revision, Store, Txn, TxnOp, TxnResponse,
    WatchMessage, WatchRequest, WatchStream,
};

/// How long a case waits for something that must happen before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Generates one test per conformance case, each opening a fresh store with `$open`.
#[macro_export]
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::conformance_tests!(@cases $open;
            create_fails_when_the_key_exists,
            cas_update_and_delete_need_the_current_mod_revision,
            versions_and_create_revisions_follow_etcd,
            delete_of_an_absent_key_writes_nothing,
            range_reads_the_past_at_any_uncompacted_revision,
            future_revisions_are_rejected,
            prefix_ranges_are_sorted_limited_and_counted,
            paging_with_limit_is_consistent_at_one_revision,
            watch_delivers_every_change_exactly_once_in_order_under_concurrent_writers,
            watch_from_a_past_revision_replays_then_follows_live_writes,
            watch_resumes_after_reconnect_without_gaps_or_duplicates,
            watch_reports_previous_values_for_updates_and_deletes,
            watch_only_sees_its_own_range,
            compaction_makes_old_revisions_fail_with_compacted,
            watch_from_a_compacted_revision_fails_with_compacted,
            idle_watchers_get_progress_notifications,
            lease_expiry_deletes_keys_and_watchers_see_it,
            lease_keep_alive_and_revoke,
            put_with_an_unknown_lease_is_rejected,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() -> anyhow::Result<()> {
                let (_guard, store) = $open().await?;
                $crate::conformance::$case(store).await
            }
        )*
    };
}

type Shared = Arc<dyn Store>;

fn value(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

/// Writes `key` unconditionally and returns the write's revision.
async fn put(store: &Shared, key: &str, val: &str) -> anyhow::Result<Revision> {
    match store.txn(Txn::put(key, value(val))).await? {
        TxnResponse::Applied { revision, .. } => Ok(revision),
        other => bail!("unconditional put of {key} was rejected: {other:?}"),
    }
}

async fn get(store: &Shared, key: &str) -> anyhow::Result<Option<KeyValue>> {
    Ok(store.get(key).await?)
}

/// Receives the next message of a watch, failing after the deadline.
async fn next_message(watch: &mut WatchStream) -> anyhow::Result<WatchMessage> {
    match tokio::time::timeout(DEADLINE, watch.next()).await {
        Err(_) => bail!("no watch message within {DEADLINE:?}"),
        Ok(None) => bail!("watch ended unexpectedly"),
        Ok(Some(msg)) => Ok(msg?),
    }
}

/// Collects exactly `n` events from a watch, skipping progress notifications.
async fn collect_events(watch: &mut WatchStream, n: usize) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        match next_message(watch)
            .await
            .with_context(|| format!("waiting for event {} of {n}", events.len() + 1))?
        {
            WatchMessage::Events(batch) => {
                ensure!(!batch.is_empty(), "a watch delivered an empty batch");
                events.extend(batch);
            }
            WatchMessage::Progress(_) => {}
        }
    }
    ensure!(
        events.len() == n,
        "expected {n} events, got {} (extra events delivered)",
        events.len()
    );
    Ok(events)
}

/// Asserts that nothing but progress notifications arrives for a short while.
async fn expect_quiet(watch: &mut WatchStream) -> anyhow::Result<()> {
    let quiet = Duration::from_millis(300);
    loop {
        match tokio::time::timeout(quiet, watch.next()).await {
            Err(_) => return Ok(()),
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            Ok(other) => bail!("expected no more events, got {other:?}"),
        }
    }
}

fn expect_compacted<T: std::fmt::Debug>(
    result: Result<T, Error>,
    what: &str,
) -> anyhow::Result<()> {
    match result {
        Err(Error::Compacted { .. }) => Ok(()),
        other => bail!("{what}: expected a compacted error, got {other:?}"),
    }
}

pub async fn create_fails_when_the_key_exists(store: Shared) -> anyhow::Result<()> {
    let first = store
        .txn(Txn::create("/registry/pods/ns/a", value("one")))
        .await?;
    let TxnResponse::Applied { revision, prev } = first else {
        bail!("first create was rejected: {first:?}");
    };
    ensure!(
        prev.is_none(),
        "a create reported a previous value: {prev:?}"
    );

    let second = store
        .txn(Txn::create("/registry/pods/ns/a", value("two")))
        .await?;
    let TxnResponse::Rejected { current, .. } = second else {
        bail!("second create of the same key was applied: {second:?}");
    };
    let current = current.context("a rejected create must return the existing value")?;
    ensure!(
        current.value == value("one"),
        "current value is {current:?}"
    );
    ensure!(current.mod_revision == revision);
    ensure!(get(&store, "/registry/pods/ns/a").await?.map(|kv| kv.value) == Some(value("one")));
    Ok(())
}

pub async fn cas_update_and_delete_need_the_current_mod_revision(
    store: Shared,
) -> anyhow::Result<()> {
    let r1 = put(&store, "k", "v1").await?;
    let r2 = match store.txn(Txn::update("k", r1, value("v2"))).await? {
        TxnResponse::Applied { revision, prev } => {
            ensure!(prev.map(|p| p.value) == Some(value("v1")), "prev of update");
            revision
        }
        other => bail!("update at the current mod_revision was rejected: {other:?}"),
    };
    ensure!(r2 > r1, "revision did not advance: {r1} -> {r2}");

    // A stale update and a stale delete are both rejected with the current value.
    for stale in [
        Txn::update("k", r1, value("lost")),
        Txn::delete("k", r1),
        Txn::create("k", value("lost")),
    ] {
        match store.txn(stale.clone()).await? {
            TxnResponse::Rejected { current, revision } => {
                let current = current.context("rejected txn must carry the current value")?;
                ensure!(current.mod_revision == r2 && current.value == value("v2"));
                ensure!(revision >= r2);
            }
            other => bail!("stale {stale:?} was applied: {other:?}"),
        }
    }
    // An update of an absent key with a non-zero expectation is rejected with no value.
    match store.txn(Txn::update("absent", r1, value("x"))).await? {
        TxnResponse::Rejected { current: None, .. } => {}
        other => bail!("update of an absent key: {other:?}"),
    }

    match store.txn(Txn::delete("k", r2)).await? {
        TxnResponse::Applied { revision, prev } => {
            ensure!(revision > r2);
            ensure!(prev.map(|p| p.value) == Some(value("v2")), "prev of delete");
        }
        other => bail!("delete at the current mod_revision was rejected: {other:?}"),
    }
    ensure!(
        get(&store, "k").await?.is_none(),
        "deleted key still readable"
    );
    Ok(())
}

pub async fn versions_and_create_revisions_follow_etcd(store: Shared) -> anyhow::Result<()> {
    let r1 = put(&store, "v", "a").await?;
    let r2 = put(&store, "v", "b").await?;
    let kv = get(&store, "v").await?.context("key missing")?;
    ensure!(
        kv.create_revision == r1 && kv.mod_revision == r2 && kv.version == 2,
        "{kv:?}"
    );

    let del = store.txn(Txn::delete("v", r2)).await?;
    ensure!(del.applied());
    let r4 = put(&store, "v", "c").await?;
    let kv = get(&store, "v").await?.context("key missing")?;
    ensure!(
        kv.create_revision == r4 && kv.mod_revision == r4 && kv.version == 1,
        "a key re-created after deletion starts over: {kv:?}"
    );
    Ok(())
}

pub async fn delete_of_an_absent_key_writes_nothing(store: Shared) -> anyhow::Result<()> {
    let before = put(&store, "present", "x").await?;
    let resp = store
        .txn(Txn {
            key: "absent".into(),
            compare: Compare::Always,
            op: TxnOp::Delete,
        })
        .await?;
    let TxnResponse::Applied { revision, prev } = resp else {
        bail!("unconditional delete was rejected: {resp:?}");
    };
    ensure!(prev.is_none());
    ensure!(
        revision == before,
        "a no-op delete must not bump the revision"
    );
    ensure!(store.status().await?.revision == before);
    Ok(())
}

pub async fn range_reads_the_past_at_any_uncompacted_revision(store: Shared) -> anyhow::Result<()> {
    let r1 = put(&store, "/h/a", "1").await?;
    let r2 = put(&store, "/h/a", "2").await?;
    let r3 = put(&store, "/h/b", "1").await?;
    let r4 = match store.txn(Txn::delete("/h/a", r2)).await? {
        TxnResponse::Applied { revision, .. } => revision,
        other => bail!("{other:?}"),
    };

    let at = |rev| {
        let store = store.clone();
        async move {
            let resp = store
                .range(RangeRequest::prefix("/h/").at_revision(rev))
                .await?;
            let view: BTreeMap<String, String> = resp
                .kvs
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        String::from_utf8_lossy(&kv.value).into_owned(),
                    )
                })
                .collect();
            anyhow::Ok((view, resp.revision))
        }
    };
    let expect = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    ensure!(at(r1).await?.0 == expect(&[("/h/a", "1")]));
    ensure!(at(r2).await?.0 == expect(&[("/h/a", "2")]));
    ensure!(at(r3).await?.0 == expect(&[("/h/a", "2"), ("/h/b", "1")]));
    ensure!(at(r4).await?.0 == expect(&[("/h/b", "1")]));
    let (current, header) = at(0).await?;
    ensure!(current == expect(&[("/h/b", "1")]));
    ensure!(
        header == r4,
        "range reports the current revision, got {header}"
    );
    // The header revision is the current one even when reading the past.
    ensure!(at(r1).await?.1 == r4);

    // A single-key read at a past revision sees the old version's metadata.
    let old = store
        .range(RangeRequest::key("/h/a").at_revision(r1))
        .await?;
    ensure!(old.kvs.len() == 1 && old.kvs[0].version == 1 && old.kvs[0].mod_revision == r1);
    Ok(())
}

pub async fn future_revisions_are_rejected(store: Shared) -> anyhow::Result<()> {
    let r = put(&store, "f", "x").await?;
    match store
        .range(RangeRequest::key("f").at_revision(r + 10))
        .await
    {
        Err(Error::FutureRevision { requested, current }) => {
            ensure!(requested == r + 10 && current == r);
        }
        other => bail!("read at a future revision: {other:?}"),
    }
    match store.compact(r + 10).await {
        Err(Error::FutureRevision { .. }) => Ok(()),
        other => bail!("compaction at a future revision: {other:?}"),
    }
}

pub async fn prefix_ranges_are_sorted_limited_and_counted(store: Shared) -> anyhow::Result<()> {
    // Written out of order; ranges come back in key order.
    for i in [7, 3, 9, 1, 5, 10, 2, 8, 4, 6] {
        put(&store, &format!("/registry/cm/ns/k{i:02}"), "x").await?;
    }
    put(&store, "/registry/cm/other/k01", "x").await?;
    put(&store, "/registry/cmx/ns/k01", "x").await?;
    put(&store, "/registry/cm/ns", "not under the prefix with slash").await?;

    let all = store
        .range(RangeRequest::prefix("/registry/cm/ns/"))
        .await?;
    let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    let expected: Vec<String> = (1..=10)
        .map(|i| format!("/registry/cm/ns/k{i:02}"))
        .collect();
    ensure!(keys == expected, "keys {keys:?}");
    ensure!(all.count == 10 && !all.more);

    let limited = store
        .range(RangeRequest::prefix("/registry/cm/ns/").with_limit(3))
        .await?;
    ensure!(
        limited.kvs.len() == 3,
        "limit 3 returned {}",
        limited.kvs.len()
    );
    ensure!(
        limited.count == 10,
        "count is the whole range: {}",
        limited.count
    );
    ensure!(limited.more);
    ensure!(limited.kvs[0].key == expected[0] && limited.kvs[2].key == expected[2]);

    let counted = store
        .range(RangeRequest::prefix("/registry/cm/").count_only())
        .await?;
    ensure!(counted.count == 12 && counted.kvs.is_empty(), "{counted:?}");

    let everything = store.range(RangeRequest::range("", "\0")).await?;
    ensure!(
        everything.count == 13,
        "whole keyspace: {}",
        everything.count
    );

    let single = store.range(RangeRequest::key("/registry/cm/ns")).await?;
    ensure!(single.kvs.len() == 1 && single.count == 1);
    let missing = store.range(RangeRequest::key("/registry/cm/nope")).await?;
    ensure!(missing.kvs.is_empty() && missing.count == 0 && !missing.more);
    Ok(())
}

pub async fn paging_with_limit_is_consistent_at_one_revision(store: Shared) -> anyhow::Result<()> {
    for i in 0..10 {
        put(&store, &format!("/p/{i}"), "v1").await?;
    }
    let first = store
        .range(RangeRequest::prefix("/p/").with_limit(4))
        .await?;
    let at = first.revision;
    // Concurrent changes after the first page must not show up in later pages.
    put(&store, "/p/8", "v2").await?;
    put(&store, "/p/99", "new").await?;

    let mut seen: Vec<KeyValue> = first.kvs.clone();
    let mut more = first.more;
    while more {
        let last = seen.last().context("empty page")?.key.clone();
        let page = store
            .range(
                RangeRequest::range(format!("{last}\0"), tug_storage::prefix_end("/p/"))
                    .at_revision(at)
                    .with_limit(4),
            )
            .await?;
        more = page.more;
        seen.extend(page.kvs);
    }
    ensure!(seen.len() == 10, "pages returned {} keys", seen.len());
    ensure!(seen.iter().all(|kv| kv.value == value("v1")));
    Ok(())
}

pub async fn watch_delivers_every_change_exactly_once_in_order_under_concurrent_writers(
    store: Shared,
) -> anyhow::Result<()> {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 1250;
    let mut watch = store.watch(WatchRequest::prefix("/w/", 0)).await?;

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::with_capacity(PER_WRITER);
            let mut mod_rev = 0;
            for i in 0..PER_WRITER {
                // Half creates of new keys, half CAS updates of one hot key per writer.
                let txn = if i % 2 == 0 {
                    Txn::create(format!("/w/{w}/{i}"), value(format!("{w}-{i}")))
                } else {
                    Txn::update(format!("/w/hot/{w}"), mod_rev, value(format!("{w}-{i}")))
                };
                match store.txn(txn).await? {
                    TxnResponse::Applied { revision, .. } => {
                        if i % 2 == 1 {
                            mod_rev = revision;
                        }
                        acked.push(revision);
                    }
                    other => bail!("writer {w} write {i} rejected: {other:?}"),
                }
            }
            anyhow::Ok(acked)
        }));
    }
    let mut acked = HashSet::new();
    for task in tasks {
        acked.extend(task.await??);
    }
    ensure!(
        acked.len() == WRITERS * PER_WRITER,
        "revisions must be unique"
    );

    let events = collect_events(&mut watch, WRITERS * PER_WRITER).await?;
    let mut last = 0;
    for event in &events {
        ensure!(
            event.revision() > last,
            "event at {} after {last}: not in strict revision order",
            event.revision()
        );
        last = event.revision();
    }
    let delivered: HashSet<Revision> = events.iter().map(Event::revision).collect();
    ensure!(
        delivered == acked,
        "watched revisions differ from acknowledged ones"
    );
    expect_quiet(&mut watch).await
}

pub async fn watch_from_a_past_revision_replays_then_follows_live_writes(
    store: Shared,
) -> anyhow::Result<()> {
    let mut revisions = Vec::new();
    for i in 0..100 {
        revisions.push(put(&store, &format!("/r/{}", i % 7), &i.to_string()).await?);
    }
    let start = revisions[40];
    let mut watch = store.watch(WatchRequest::prefix("/r/", start)).await?;
    // Live writes racing with the replay must appear once, after it.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 100..150 {
                revs.push(put(&store, &format!("/r/{}", i % 7), &i.to_string()).await?);
            }
            anyhow::Ok(revs)
        })
    };
    revisions.extend(writer.await??);
    let events = collect_events(&mut watch, revisions.len() - 40).await?;
    let got: Vec<Revision> = events.iter().map(Event::revision).collect();
    ensure!(got == revisions[40..], "replayed revisions {got:?}");
    expect_quiet(&mut watch).await
}

pub async fn watch_resumes_after_reconnect_without_gaps_or_duplicates(
    store: Shared,
) -> anyhow::Result<()> {
    let mut watch = store.watch(WatchRequest::prefix("/resume/", 0)).await?;
    let mut expected = Vec::new();
    for i in 0..30 {
        expected.push(put(&store, &format!("/resume/{i}"), "a").await?);
    }
    let first = collect_events(&mut watch, 10).await?;
    let last_seen = first.last().context("no events")?.revision();
    drop(watch);

    // Writes while nobody watches.
    for i in 30..60 {
        expected.push(put(&store, &format!("/resume/{i}"), "b").await?);
    }
    let mut resumed = store
        .watch(WatchRequest::prefix("/resume/", last_seen + 1))
        .await?;
    let rest = collect_events(&mut resumed, 50).await?;
    let got: Vec<Revision> = first.iter().chain(&rest).map(Event::revision).collect();
    ensure!(got == expected, "resumed stream differs: {got:?}");
    expect_quiet(&mut resumed).await
}

pub async fn watch_reports_previous_values_for_updates_and_deletes(
    store: Shared,
) -> anyhow::Result<()> {
    let mut watch = store.watch(WatchRequest::key("/prev/x", 0)).await?;
    let r1 = put(&store, "/prev/x", "old").await?;
    let r2 = put(&store, "/prev/x", "new").await?;
    let del = store.txn(Txn::delete("/prev/x", r2)).await?;
    ensure!(del.applied());
    let events = collect_events(&mut watch, 3).await?;
    match &events[0] {
        Event::Put { kv, prev: None } if kv.mod_revision == r1 && kv.version == 1 => {}
        other => bail!("create event: {other:?}"),
    }
    match &events[1] {
        Event::Put {
            kv,
            prev: Some(prev),
        } if kv.value == value("new") && prev.value == value("old") && kv.create_revision == r1 => {
        }
        other => bail!("update event: {other:?}"),
    }
    match &events[2] {
        Event::Delete {
            key,
            revision,
            prev: Some(prev),
        } if key == "/prev/x" && *revision == del.revision() && prev.value == value("new") => {}
        other => bail!("delete event: {other:?}"),
    }
    Ok(())
}

pub async fn watch_only_sees_its_own_range(store: Shared) -> anyhow::Result<()> {
    let mut pods = store
        .watch(WatchRequest::prefix("/registry/pods/", 0))
        .await?;
    put(&store, "/registry/podsecurity/x", "no").await?;
    put(&store, "/registry/configmaps/ns/a", "no").await?;
    let r = put(&store, "/registry/pods/ns/a", "yes").await?;
    let events = collect_events(&mut pods, 1).await?;
    ensure!(events[0].revision() == r && events[0].key() == "/registry/pods/ns/a");
    expect_quiet(&mut pods).await
}

pub async fn compaction_makes_old_revisions_fail_with_compacted(
    store: Shared,
) -> anyhow::Result<()> {
    let r1 = put(&store, "/c/a", "1").await?;
    let r2 = put(&store, "/c/a", "2").await?;
    let r3 = put(&store, "/c/b", "1").await?;
    let r4 = put(&store, "/c/a", "3").await?;
    store.compact(r3).await?;

    expect_compacted(
        store
            .range(RangeRequest::prefix("/c/").at_revision(r1))
            .await,
        "range below the compacted revision",
    )?;
    expect_compacted(
        store
            .range(RangeRequest::prefix("/c/").at_revision(r2))
            .await,
        "range below the compacted revision",
    )?;
    // The compacted revision itself stays readable, and so does everything after it.
    let at_r3 = store
        .range(RangeRequest::prefix("/c/").at_revision(r3))
        .await?;
    ensure!(
        at_r3.kvs.len() == 2,
        "state at the compaction revision: {at_r3:?}"
    );
    ensure!(
        at_r3.kvs[0].value == value("2"),
        "/c/a at r3 is still its second version"
    );
    let now = store.range(RangeRequest::prefix("/c/")).await?;
    ensure!(now.kvs[0].value == value("3") && now.kvs[0].mod_revision == r4);
    ensure!(now.kvs[0].version == 3 && now.kvs[0].create_revision == r1);

    ensure!(store.status().await?.compact_revision == r3);
    expect_compacted(
        store.compact(r2).await,
        "compacting below the compacted revision",
    )?;
    Ok(())
}

pub async fn watch_from_a_compacted_revision_fails_with_compacted(
    store: Shared,
) -> anyhow::Result<()> {
    let r1 = put(&store, "/wc/a", "1").await?;
    put(&store, "/wc/a", "2").await?;
    let r3 = put(&store, "/wc/a", "3").await?;
    store.compact(r3).await?;
    match store.watch(WatchRequest::prefix("/wc/", r1)).await {
        Err(Error::Compacted { .. }) => {}
        Err(other) => bail!("watch from a compacted revision: {other}"),
        Ok(mut watch) => match tokio::time::timeout(DEADLINE, watch.next()).await {
            Ok(Some(Err(Error::Compacted { .. }))) => {}
            other => bail!("watch from a compacted revision delivered {other:?}"),
        },
    }
    // From the compacted revision on, the watch works.
    let mut watch = store.watch(WatchRequest::prefix("/wc/", r3)).await?;
    let events = collect_events(&mut watch, 1).await?;
    ensure!(events[0].revision() == r3);
    Ok(())
}

pub async fn idle_watchers_get_progress_notifications(store: Shared) -> anyhow::Result<()> {
    let r = put(&store, "/other/x", "1").await?;
    let watch = store.watch(WatchRequest::prefix("/idle/", 0)).await?;
    let mut watch = watch;
    watch.request_progress();
    match next_message(&mut watch).await? {
        WatchMessage::Progress(rev) => ensure!(rev >= r, "progress {rev} behind {r}"),
        other => bail!("expected a progress notification, got {other:?}"),
    }

    let mut ticking = store
        .watch(WatchRequest::prefix("/idle/", 0).with_progress_interval(Duration::from_millis(200)))
        .await?;
    let r2 = put(&store, "/other/y", "2").await?;
    // Periodic notifications arrive without asking and eventually reach the newest revision.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no progress reached {r2}"
        );
        match next_message(&mut ticking).await? {
            WatchMessage::Progress(rev) if rev >= r2 => return Ok(()),
            WatchMessage::Progress(_) => {}
            other => bail!("idle watch delivered {other:?}"),
        }
    }
}

pub async fn lease_expiry_deletes_keys_and_watchers_see_it(store: Shared) -> anyhow::Result<()> {
    // etcd's minimum TTL is about two seconds; stay above it.
    let lease = store.lease_grant(Duration::from_secs(2)).await?;
    let mut watch = store.watch(WatchRequest::prefix("/events/", 0)).await?;
    let resp = store
        .txn(Txn::put("/events/ns/e1", value("event")).with_lease(lease))
        .await?;
    ensure!(resp.applied());
    let kv = get(&store, "/events/ns/e1")
        .await?
        .context("leased key missing")?;
    ensure!(kv.lease == lease, "key lease is {}", kv.lease);
    put(&store, "/events/ns/keep", "no lease").await?;

    let events = collect_events(&mut watch, 3).await?;
    match &events[2] {
        Event::Delete { key, prev, .. } if key == "/events/ns/e1" => {
            ensure!(prev.as_ref().map(|p| p.value.clone()) == Some(value("event")));
        }
        other => bail!("expected the lease expiry to delete /events/ns/e1, got {other:?}"),
    }
    ensure!(get(&store, "/events/ns/e1").await?.is_none());
    ensure!(get(&store, "/events/ns/keep").await?.is_some());
    match store.lease_keep_alive(lease).await {
        Err(Error::LeaseNotFound(id)) if id == lease => Ok(()),
        other => bail!("keep-alive of an expired lease: {other:?}"),
    }
}

pub async fn lease_keep_alive_and_revoke(store: Shared) -> anyhow::Result<()> {
    let lease = store.lease_grant(Duration::from_secs(2)).await?;
    store
        .txn(Txn::put("/l/a", value("1")).with_lease(lease))
        .await?;
    store
        .txn(Txn::put("/l/b", value("2")).with_lease(lease))
        .await?;
    // Kept alive for longer than its TTL, the lease's keys stay.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        store.lease_keep_alive(lease).await?;
    }
    ensure!(
        get(&store, "/l/a").await?.is_some(),
        "kept-alive key expired"
    );

    let mut watch = store.watch(WatchRequest::prefix("/l/", 0)).await?;
    store.lease_revoke(lease).await?;
    let events = collect_events(&mut watch, 2).await?;
    ensure!(
        events.iter().all(|e| matches!(e, Event::Delete { .. })),
        "{events:?}"
    );
    ensure!(store.range(RangeRequest::prefix("/l/")).await?.count == 0);
    match store.lease_revoke(lease).await {
        Err(Error::LeaseNotFound(_)) => Ok(()),
        other => bail!("revoking twice: {other:?}"),
    }
}

pub async fn put_with_an_unknown_lease_is_rejected(store: Shared) -> anyhow::Result<()> {
    let before = store.status().await?.revision;
    match store
        .txn(Txn::put("/nolease", value("x")).with_lease(0x7777_1234))
        .await
    {
        Err(Error::LeaseNotFound(_)) => {}
        other => bail!("put with an unknown lease: {other:?}"),
    }
    ensure!(get(&store, "/nolease").await?.is_none(), "half-written key");
    ensure!(store.status().await?.revision == before, "revision moved");
    Ok(())
}
