//! `SeedRegistry` against registries that stop answering (issue 9, item 3): a silent peer,
//! the real loopback registry frozen with SIGSTOP, and a slow link in front of the real
//! registry that drips or stalls. Every call must end within its bound with
//! `Error::Unreachable` (transient, naming the registry and what timed out), while slow but
//! flowing transfers must not be cut. Each call runs under a test-level limit, so a missing
//! timeout fails the test instead of hanging it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use common::{Shape, SilentPeer, SlowLink, freeze, incompressible, thaw};
use lca_seed::registry::{Reference, RegistryTimeouts};
use lca_seed::{Category, Credentials, Error, Progress, SeedRegistry, build_layer, parse_reference};
use lca_testkit::Registry;
use lca_testkit::images::push_sized_image;

const READ: Duration = Duration::from_secs(1);
/// Scheduling and connection set-up on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

fn timeouts() -> RegistryTimeouts {
    RegistryTimeouts {
        connect: Duration::from_secs(2),
        read: READ,
        metadata: Duration::from_secs(20),
        upload_commit: Duration::from_secs(2),
    }
}

fn client(image: &Reference) -> SeedRegistry {
    SeedRegistry::with_timeouts(image, &Credentials::Anonymous, true, timeouts())
}

/// Run `f`, failing the test if it is still running after `limit` (a missing timeout).
async fn bounded<T>(limit: Duration, f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("still waiting after {limit:?}: no timeout fired"));
    (out, start.elapsed())
}

fn assert_unreachable(err: &Error, expected: &str) {
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert_eq!(err.category(), Category::Transient);
    assert_eq!(err.to_string(), expected);
}

#[tokio::test]
async fn calls_to_a_silent_registry_fail_after_the_read_timeout() {
    let peer = SilentPeer::start();
    let image = parse_reference(&format!("{}/seed/sno:4.18.0", peer.addr())).unwrap();
    let reg = client(&image);

    let (res, took) = bounded(Duration::from_secs(60), reg.inspect(&image)).await;
    eprintln!("silent registry: inspect failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while reading the manifest: no response within 1 s (read timeout)",
        peer.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took >= READ && took < READ + SLACK, "{took:?}");

    let (res, took) = bounded(Duration::from_secs(60), reg.check_push_access(&image)).await;
    eprintln!("silent registry: push access check failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while checking push access before packing: no response within 1 s (read timeout)",
        peer.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took < READ + SLACK, "{took:?}");
}

#[tokio::test]
async fn inspect_of_a_frozen_registry_times_out_and_works_once_it_thaws() {
    let registry = Registry::start().unwrap();
    let name = push_sized_image(&registry, "lca/app:1", "frozen", 4).unwrap();
    let image = parse_reference(&name).unwrap();
    let reg = client(&image);
    let before = reg.inspect(&image).await.unwrap();
    assert_eq!(before.labels["lca.test"], "latest");

    // kill(2) returns before every thread of the registry has stopped, so on a busy
    // machine one more request may be answered; the bound allows for that.
    freeze(registry.pid());
    let (res, took) = bounded(Duration::from_secs(60), reg.inspect(&image)).await;
    thaw(registry.pid());
    eprintln!("SIGSTOPped registry: inspect failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while reading the manifest: no response within 1 s (read timeout)",
        registry.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took >= READ && took < READ + SLACK, "{took:?}");

    let after = reg.inspect(&image).await.unwrap();
    assert_eq!(after.manifest_digest, before.manifest_digest);
}

#[tokio::test]
async fn a_slow_download_is_not_cut_but_a_stalled_one_fails() {
    let registry = Registry::start().unwrap();
    let name = push_sized_image(&registry, "lca/big:1", "download", 256).unwrap();
    let direct = parse_reference(&name).unwrap();
    let info = client(&direct).inspect(&direct).await.unwrap();
    let layer = info.layers.iter().max_by_key(|l| l.size).unwrap().clone();
    let via = |link: &SlowLink| {
        Reference::with_digest(
            link.addr().to_string(),
            "lca/big".into(),
            info.manifest_digest.clone(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");

    // 8 KiB every 250 ms: several read timeouts in total, never a silence of one.
    let slow = SlowLink::start(
        registry.addr(),
        Shape::FAST,
        Shape::drip(8192, Duration::from_millis(250)),
    );
    let image = via(&slow);
    let (res, took) = bounded(
        Duration::from_secs(120),
        client(&image).download_blob(&image, &layer, &dest, &Progress::hidden()),
    )
    .await;
    eprintln!("slow link: {} bytes downloaded in {took:?}", layer.size);
    res.unwrap();
    assert!(took > READ * 2, "the link was not slow: {took:?}");
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), layer.size);
    std::fs::remove_file(&dest).unwrap();

    // Stops forwarding after 64 KiB of the answer: the body stalls mid-way.
    let stalled = SlowLink::start(registry.addr(), Shape::FAST, Shape::stall_after(64 * 1024));
    let image = via(&stalled);
    let (res, took) = bounded(
        Duration::from_secs(60),
        client(&image).download_blob(&image, &layer, &dest, &Progress::hidden()),
    )
    .await;
    eprintln!("stalled link: download failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while pulling the layer: no data for 1 s (read timeout)",
        stalled.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took >= READ && took < READ + SLACK, "{took:?}");
    assert!(!dest.exists(), "a failed download leaves no file");
}

fn layer_of(dir: &std::path::Path, bytes: usize) -> lca_seed::LayerBlob {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), incompressible(bytes)).unwrap();
    build_layer(&src, &dir.join("blob"), 0, &Progress::hidden()).unwrap()
}

#[tokio::test]
async fn a_slow_push_is_not_cut_but_a_stalled_one_fails() {
    let registry = Registry::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let labels = BTreeMap::from([("lca.test".to_string(), "push".to_string())]);
    let created = "2026-01-01T00:00:00Z";

    // 16 KiB every 100 ms of a 384 KiB layer: ~2.4 s of upload with a 1 s read timeout.
    // The layer fits in the socket buffers, so most of that is the wait for the answer.
    let layer = layer_of(&dir.path().join("small"), 384 * 1024);
    let slow = SlowLink::start(
        registry.addr(),
        Shape::drip(16 * 1024, Duration::from_millis(100)),
        Shape::FAST,
    );
    let image = parse_reference(&format!("{}/seed/slow:1", slow.addr())).unwrap();
    let patient = RegistryTimeouts {
        upload_commit: Duration::from_secs(20),
        ..timeouts()
    };
    let reg = SeedRegistry::with_timeouts(&image, &Credentials::Anonymous, true, patient);
    let (res, took) = bounded(
        Duration::from_secs(120),
        reg.push_seed(&image, &layer, &labels, created, &Progress::hidden()),
    )
    .await;
    eprintln!("slow link: {} bytes pushed in {took:?}", layer.size);
    let digest = res.unwrap();
    assert!(took > READ * 2, "the link was not slow: {took:?}");
    let direct = parse_reference(&format!("{}/seed/slow:1", registry.addr())).unwrap();
    let info = client(&direct).inspect(&direct).await.unwrap();
    assert_eq!(
        (info.manifest_digest, &info.labels["lca.test"]),
        (digest, &"push".to_string())
    );

    // The link takes 64 KiB and then nothing: the small layer fits in the socket buffers,
    // so the upload "finishes" and the registry's answer never comes.
    let stalled = SlowLink::start(registry.addr(), Shape::stall_after(64 * 1024), Shape::FAST);
    let image = parse_reference(&format!("{}/seed/stalled:1", stalled.addr())).unwrap();
    let (res, took) = bounded(
        Duration::from_secs(60),
        client(&image).push_seed(&image, &layer, &labels, created, &Progress::hidden()),
    )
    .await;
    eprintln!("stalled link, small layer: push failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while pushing the layer blob: no response within 2 s after the last byte (upload commit timeout)",
        stalled.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took < Duration::from_secs(2) + SLACK, "{took:?}");

    // A layer far larger than the socket buffers: the upload itself stops moving.
    let big = layer_of(&dir.path().join("big"), 48 << 20);
    let stalled = SlowLink::start(registry.addr(), Shape::stall_after(64 * 1024), Shape::FAST);
    let image = parse_reference(&format!("{}/seed/stalled:2", stalled.addr())).unwrap();
    let (res, took) = bounded(
        Duration::from_secs(60),
        client(&image).push_seed(&image, &big, &labels, created, &Progress::hidden()),
    )
    .await;
    eprintln!("stalled link, big layer: push failed after {took:?}");
    let expected = format!(
        "registry {} is unreachable while pushing the layer blob: no data taken for 1 s (stalled upload)",
        stalled.addr()
    );
    assert_unreachable(&res.unwrap_err(), &expected);
    assert!(took < READ + SLACK, "{took:?}");
}

#[test]
fn default_timeouts_are_bounded_and_leave_blobs_room() {
    let t = RegistryTimeouts::default();
    assert_eq!(t.connect, Duration::from_secs(10));
    assert_eq!(t.read, Duration::from_secs(30));
    assert!(
        t.metadata >= t.read && t.metadata <= Duration::from_secs(120),
        "{t:?}"
    );
    assert!(t.upload_commit >= t.read, "{t:?}");
}
