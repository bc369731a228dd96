//! Tests specific to the etcd backend, against real etcd processes started by the tests on
//! loopback ports: failing fast on unreachable endpoints, a three-member cluster that loses a
//! member, watches that survive an etcd crash, and what etcd 3.4 does not report by itself.
//! The behaviour every backend shares is in the conformance suite.

mod support;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use support::etcd_server::{EtcdCluster, EtcdServer};
use tug_storage::{
    Error, Event, RangeRequest, Revision, Store, Txn, TxnResponse, WatchMessage, WatchRequest,
    WatchStream,
    etcd::{EtcdConfig, EtcdStore},
};

/// How long a step may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

async fn connect(endpoints: Vec<String>) -> anyhow::Result<EtcdStore> {
    Ok(EtcdStore::connect(EtcdConfig::new(endpoints)).await?)
}

/// Writes `key` unconditionally and returns the write's revision.
async fn put(store: &EtcdStore, key: &str, value: &str) -> anyhow::Result<Revision> {
    match store
        .txn(Txn::put(key, Bytes::from(value.to_string())))
        .await?
    {
        TxnResponse::Applied { revision, .. } => Ok(revision),
        other => bail!("unconditional put of {key} was rejected: {other:?}"),
    }
}

/// Writes `key`, retrying while the cluster is unavailable (electing a leader), until the
/// deadline. An unconditional put is safe to repeat.
async fn put_until_accepted(store: &EtcdStore, key: &str, value: &str) -> anyhow::Result<Revision> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match put(store, key, value).await {
            Ok(revision) => return Ok(revision),
            Err(e) if Instant::now() < deadline => {
                match e.downcast_ref::<Error>() {
                    Some(Error::Unavailable { .. }) => {}
                    _ => return Err(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.context(format!("writing {key} until {DEADLINE:?}"))),
        }
    }
}

/// Collects exactly `n` events, failing on errors, empty batches or a missed deadline.
async fn collect_events(watch: &mut WatchStream, n: usize) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        match tokio::time::timeout(DEADLINE, watch.next()).await {
            Err(_) => bail!("only {} of {n} events within {DEADLINE:?}", events.len()),
            Ok(None) => bail!("watch ended after {} of {n} events", events.len()),
            Ok(Some(msg)) => match msg? {
                WatchMessage::Events(batch) => {
                    ensure!(!batch.is_empty(), "empty event batch");
                    events.extend(batch);
                }
                WatchMessage::Progress(_) => {}
            },
        }
    }
    ensure!(events.len() == n, "{} events instead of {n}", events.len());
    Ok(events)
}

/// Asserts that nothing but progress notifications arrives for a short while.
async fn expect_quiet(watch: &mut WatchStream) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(Duration::from_millis(500), watch.next()).await {
            Err(_) => return Ok(()),
            Ok(Some(Ok(WatchMessage::Progress(_)))) => {}
            Ok(other) => bail!("expected no more events, got {other:?}"),
        }
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test]
async fn unreachable_endpoints_fail_fast_with_unavailable_naming_them() -> anyhow::Result<()> {
    let endpoints = vec![
        format!("127.0.0.1:{}", closed_port()?),
        format!("127.0.0.1:{}", closed_port()?),
    ];
    let mut config = EtcdConfig::new(endpoints.clone());
    config.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let result = EtcdStore::connect(config).await;
    let elapsed = started.elapsed();
    match result {
        Err(e @ Error::Unavailable { .. }) => {
            let message = e.to_string();
            for endpoint in &endpoints {
                ensure!(
                    message.contains(endpoint),
                    "{message:?} does not name {endpoint}"
                );
            }
            ensure!(
                message.contains("connection refused"),
                "{message:?} does not say why"
            );
        }
        other => bail!("connecting to closed ports: {other:?}"),
    }
    // Bounded by the connect timeout, not by the request timeout or forever (generous slack
    // for a loaded machine).
    ensure!(
        elapsed < Duration::from_secs(10),
        "connect took {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_store_fails_requests_while_etcd_is_down_and_recovers_when_it_is_back()
-> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let mut config = EtcdConfig::new(etcd.endpoints());
    config.request_timeout = Duration::from_secs(2);
    let store = EtcdStore::connect(config).await?;
    put(&store, "/down/a", "1").await?;

    etcd.kill9()?;
    match store.range(RangeRequest::prefix("/down/")).await {
        Err(Error::Unavailable { endpoints, .. }) => {
            ensure!(endpoints == etcd.endpoint(), "error names {endpoints}");
        }
        other => bail!("read while etcd is down: {other:?}"),
    }

    etcd.restart().await?;
    put_until_accepted(&store, "/down/b", "2").await?;
    let read = store.range(RangeRequest::prefix("/down/")).await?;
    ensure!(read.count == 2, "after the restart: {read:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_cluster_replicates_and_keeps_writing_after_losing_its_leader()
-> anyhow::Result<()> {
    let mut cluster = EtcdCluster::start(3).await?;
    let store = connect(cluster.endpoints()).await?;
    let r1 = put(&store, "/cluster/a", "1").await?;

    // Every member serves the write, each through a store of its own.
    for i in 0..cluster.len() {
        let member = connect(vec![cluster.member(i).endpoint()]).await?;
        let kv = member
            .get("/cluster/a")
            .await?
            .with_context(|| format!("member {i} lacks the write"))?;
        ensure!(kv.mod_revision == r1);
    }

    let mut watch = store.watch(WatchRequest::prefix("/cluster/", r1)).await?;
    let leader = leader_index(&mut cluster).await?;
    cluster.member(leader).kill9()?;

    let mut expected = vec![r1];
    for i in 0..20 {
        expected.push(put_until_accepted(&store, &format!("/cluster/k{i}"), "v").await?);
    }
    let survivor = (leader + 1) % cluster.len();
    let member = connect(vec![cluster.member(survivor).endpoint()]).await?;
    ensure!(
        member.range(RangeRequest::prefix("/cluster/")).await?.count == 21,
        "a surviving member lacks writes"
    );

    // The watch saw every write once, in order, across the leader's death.
    let events = collect_events(&mut watch, expected.len()).await?;
    let got: Vec<Revision> = events.iter().map(Event::revision).collect();
    ensure!(got == expected, "watched {got:?}, wrote {expected:?}");

    // The killed member catches up when it comes back.
    cluster.member(leader).restart().await?;
    let back = connect(vec![cluster.member(leader).endpoint()]).await?;
    let deadline = Instant::now() + DEADLINE;
    while back.range(RangeRequest::prefix("/cluster/")).await?.count != 21 {
        ensure!(
            Instant::now() < deadline,
            "restarted member did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expect_quiet(&mut watch).await
}

/// The index of the member that currently leads the cluster.
async fn leader_index(cluster: &mut EtcdCluster) -> anyhow::Result<usize> {
    let mut ids = Vec::new();
    let mut leader = 0;
    for endpoint in cluster.endpoints() {
        let mut client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
        let status = client.status().await?;
        let header = status.header().context("status without header")?;
        ids.push(header.member_id());
        leader = status.leader();
    }
    ids.iter()
        .position(|id| *id == leader)
        .with_context(|| format!("leader {leader:x} is none of {ids:x?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_across_an_etcd_kill_9_without_losing_or_repeating_events()
-> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let store = connect(etcd.endpoints()).await?;
    let mut watch = store.watch(WatchRequest::prefix("/crash/", 0)).await?;

    let mut expected = Vec::new();
    for i in 0..20 {
        expected.push(put(&store, &format!("/crash/{i}"), "before").await?);
    }
    // Take some events before the crash, leave the rest in flight.
    let mut events = collect_events(&mut watch, 5).await?;

    etcd.kill9()?;
    etcd.restart().await?;
    for i in 20..40 {
        expected.push(put_until_accepted(&store, &format!("/crash/{i}"), "after").await?);
    }
    // An update of a key from before the crash, to see previous values survive too.
    expected.push(put(&store, "/crash/0", "updated").await?);

    events.extend(collect_events(&mut watch, expected.len() - 5).await?);
    let got: Vec<Revision> = events.iter().map(Event::revision).collect();
    ensure!(got == expected, "watched {got:?}, wrote {expected:?}");
    match events.last() {
        Some(Event::Put {
            prev: Some(prev), ..
        }) if prev.value == Bytes::from_static(b"before") => {}
        other => bail!("last event: {other:?}"),
    }
    expect_quiet(&mut watch).await
}

#[tokio::test]
async fn a_watch_ends_with_compacted_when_history_is_gone_while_etcd_was_down() -> anyhow::Result<()>
{
    let mut etcd = EtcdServer::start().await?;
    let store = connect(etcd.endpoints()).await?;
    let mut watch = store.watch(WatchRequest::prefix("/gone/", 0)).await?;
    let first = put(&store, "/gone/a", "1").await?;
    ensure!(collect_events(&mut watch, 1).await?[0].revision() == first);

    // The watch is down with etcd; meanwhile (through another client once etcd is back, before
    // the watch reconnects) history past the watch's position is compacted away.
    etcd.kill9()?;
    etcd.restart().await?;
    let other = connect(etcd.endpoints()).await?;
    put(&other, "/gone/a", "2").await?;
    let last = put(&other, "/gone/a", "3").await?;
    other.compact(last).await?;

    // Either the watch reconnected before the compaction and delivers both writes, or after it
    // and reports the compaction: never a silent gap.
    let deadline = Instant::now() + DEADLINE;
    let mut revisions = Vec::new();
    loop {
        ensure!(Instant::now() < deadline, "neither events nor an error");
        match tokio::time::timeout(DEADLINE, watch.next()).await? {
            Some(Ok(WatchMessage::Events(batch))) => {
                revisions.extend(batch.iter().map(Event::revision));
                if revisions.len() == 2 {
                    ensure!(revisions == [last - 1, last], "{revisions:?}");
                    return Ok(());
                }
            }
            Some(Ok(WatchMessage::Progress(_))) => {}
            Some(Err(Error::Compacted { compacted, .. })) => {
                ensure!(compacted == last, "compacted at {compacted}");
                ensure!(revisions.is_empty(), "a gap after {revisions:?}");
                return Ok(());
            }
            other => bail!("watch delivered {other:?}"),
        }
    }
}

#[tokio::test]
async fn status_reports_a_compaction_made_by_another_client() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let ours = connect(etcd.endpoints()).await?;
    let theirs = connect(etcd.endpoints()).await?;
    ensure!(ours.status().await?.compact_revision == 0);

    put(&ours, "/c/a", "1").await?;
    let r2 = put(&ours, "/c/a", "2").await?;
    let r3 = put(&ours, "/c/a", "3").await?;
    theirs.compact(r2).await?;
    ensure!(
        ours.status().await?.compact_revision == r2,
        "first compaction"
    );
    theirs.compact(r3).await?;
    let status = ours.status().await?;
    ensure!(
        status.compact_revision == r3,
        "second compaction: {status:?}"
    );
    ensure!(status.revision == r3 && status.db_size > 0, "{status:?}");

    match ours.range(RangeRequest::key("/c/a").at_revision(r2)).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) if requested == r2 && compacted == r3 => Ok(()),
        other => bail!("read below the compaction: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_never_overtakes_events_under_concurrent_writes() -> anyhow::Result<()> {
    // etcd 3.4.23 answers progress requests with its current revision even while events below
    // it are still queued for the watcher; the store must not report such a revision early.
    const WRITES: usize = 600;
    let etcd = EtcdServer::start().await?;
    let store = connect(etcd.endpoints()).await?;
    let mut watch = store.watch(WatchRequest::prefix("/race/", 0)).await?;
    let writer = {
        let store = connect(etcd.endpoints()).await?;
        tokio::spawn(async move {
            let mut revisions = Vec::with_capacity(WRITES);
            for i in 0..WRITES {
                revisions.push(put(&store, &format!("/race/{}", i % 10), "x").await?);
            }
            anyhow::Ok(revisions)
        })
    };

    let mut progress: Revision = 0;
    let mut seen = Vec::new();
    let mut progresses = 0;
    while seen.len() < WRITES {
        watch.request_progress();
        match tokio::time::timeout(DEADLINE, watch.next()).await? {
            Some(Ok(WatchMessage::Events(batch))) => {
                for event in batch {
                    ensure!(
                        event.revision() > progress,
                        "event {} after progress {progress}",
                        event.revision()
                    );
                    seen.push(event.revision());
                }
            }
            Some(Ok(WatchMessage::Progress(rev))) => {
                ensure!(
                    rev >= progress,
                    "progress went back from {progress} to {rev}"
                );
                progress = rev;
                progresses += 1;
            }
            other => bail!("watch delivered {other:?}"),
        }
    }
    let written = writer.await??;
    ensure!(
        seen == written,
        "watched revisions differ from written ones"
    );
    ensure!(progresses > 0, "no progress notification at all");
    Ok(())
}

#[tokio::test]
async fn dropping_a_watch_stream_cancels_the_watcher_in_etcd() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let store = connect(etcd.endpoints()).await?;
    let first = store.watch(WatchRequest::prefix("/a/", 0)).await?;
    let second = store.watch(WatchRequest::key("/b", 0)).await?;
    wait_for_watchers(&etcd, 2).await?;
    drop(first);
    wait_for_watchers(&etcd, 1).await?;
    drop(second);
    wait_for_watchers(&etcd, 0).await
}

/// Waits until etcd counts `n` watchers (its `etcd_debugging_mvcc_watcher_total` gauge).
async fn wait_for_watchers(etcd: &EtcdServer, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let count = watcher_count(etcd).await?;
        if count == n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "etcd counts {count} watchers, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads etcd's watcher gauge from `/metrics` on its client port.
async fn watcher_count(etcd: &EtcdServer) -> anyhow::Result<u64> {
    const GAUGE: &str = "etcd_debugging_mvcc_watcher_total ";
    let mut conn = tokio::net::TcpStream::connect(etcd.endpoint()).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut body = String::new();
    conn.read_to_string(&mut body).await?;
    let line = body
        .lines()
        .find(|l| l.starts_with(GAUGE))
        .context("etcd's metrics lack the watcher gauge")?;
    Ok(line[GAUGE.len()..].trim().parse::<f64>()? as u64)
}
