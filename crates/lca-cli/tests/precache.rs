//! `lca-cli precache --simulated` against real podman (private vfs storage inside the node
//! dir) and a loopback Distribution registry holding tiny hand-written images: parallel
//! pulls, a missing image (exit 1, or 0 with `--best-effort`), status file contents, a
//! re-run that needs no registry because every image is already present, and a registry
//! frozen with SIGSTOP whose image fails after the bounded pull timeout.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use std::time::{Duration, Instant};

use common::{lca_cli, lca_cli_within, podman_names, precache_args, push_image, signal, stderr};
use lca_api::files::PrecacheStatus;
use lca_testkit::Registry;

fn precache(root: &Path, list: &Path, status: &Path, extra: &[&str]) -> std::process::Output {
    lca_cli(root, &precache_args(list, status, extra), &[])
}

fn read_status(path: &Path) -> PrecacheStatus {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn pulls_in_parallel_reports_failures_and_resumes_offline() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = tempfile::Builder::new()
        .prefix("lca-precache-node-")
        .tempdir()
        .unwrap();
    let images: Vec<String> = (0..4)
        .map(|i| {
            let content = format!("image {i}");
            push_image(
                work.path(),
                registry.addr(),
                &format!("lca/app{i}"),
                "1",
                &[("f", content.as_bytes())],
            )
        })
        .collect();
    let list = work.path().join("images.txt");
    let status = work.path().join("precache_status.json");

    // All present in the registry: 4 pulled, 3 at a time.
    fs::write(&list, format!("{}\n\n{}\n", images.join("\n"), images[0])).unwrap();
    common::lca_cli_bin();
    let started = std::time::Instant::now();
    let out = precache(node.path(), &list, &status, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!("precache of 4 images took {:?}", started.elapsed());
    assert_eq!(
        read_status(&status),
        PrecacheStatus {
            total: 4,
            pulled: 4,
            failed: 0,
            failed_pulls: vec![]
        }
    );
    let mut expected = images.clone();
    expected.sort();
    assert_eq!(podman_names(node.path()), expected);
    assert!(
        node.path().join("lca-sim/varlibcontainers/storage/vfs").is_dir(),
        "storage inside the node"
    );

    // One tag that does not exist: `manifest unknown`, no retries, exit 1.
    let missing = format!("{}/lca/missing:1", registry.addr());
    fs::write(&list, format!("{}\n{missing}\n", images.join("\n"))).unwrap();
    common::lca_cli_bin();
    let started = std::time::Instant::now();
    let out = precache(node.path(), &list, &status, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        started.elapsed().as_secs() < 10,
        "manifest unknown must not be retried"
    );
    assert!(
        stderr(&out).contains("failed to precache 1 of 5 images"),
        "{}",
        stderr(&out)
    );
    let expected_status = PrecacheStatus {
        total: 5,
        pulled: 4,
        failed: 1,
        failed_pulls: vec![missing.clone()],
    };
    assert_eq!(read_status(&status), expected_status);
    assert_eq!(
        fs::read_to_string(&status).unwrap(),
        format!(r#"{{"total":5,"pulled":4,"failed":1,"failed_pulls":["{missing}"]}}"#)
    );

    // Best effort: same counts, exit 0.
    let out = precache(node.path(), &list, &status, &["--best-effort"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_status(&status), expected_status);

    // Registry gone: everything already present counts as pulled without the network, and
    // with one podman process (the listing), not one per image.
    drop(registry);
    fs::write(&list, images.join("\n")).unwrap();
    let (path, calls) = podman_call_log(work.path());
    let out = lca_cli(
        node.path(),
        &precache_args(&list, &status, &[]),
        &[("PATH", path.as_str())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_status(&status).pulled, 4);
    let calls = fs::read_to_string(calls).unwrap_or_default();
    assert_eq!(
        calls
            .lines()
            .filter(|l| !l.starts_with("version"))
            .collect::<Vec<_>>(),
        ["images --format json --log-level error"],
        "podman calls: {calls}"
    );

    // An empty list is the operator's error message.
    fs::write(&list, "\n").unwrap();
    let out = precache(node.path(), &list, &status, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no images specified for precaching"));
}

#[test]
fn a_frozen_registry_fails_its_image_after_the_pull_timeout() {
    let healthy = Registry::start().unwrap();
    let frozen = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = tempfile::Builder::new()
        .prefix("lca-precache-node-")
        .tempdir()
        .unwrap();
    let ok = push_image(work.path(), healthy.addr(), "lca/ok", "1", &[("f", b"ok")]);
    let stuck = push_image(work.path(), frozen.addr(), "lca/stuck", "1", &[("f", b"stuck")]);
    let list = work.path().join("images.txt");
    let status = work.path().join("precache_status.json");
    fs::write(&list, format!("{ok}\n{stuck}\n")).unwrap();
    signal(frozen.pid(), "STOP");

    // Two attempts of 3 s each with the 2 s backoff between them: ~8 s, never a hang.
    let timeout = Duration::from_secs(3);
    let extra = ["--pull-timeout", "3s", "--pull-attempts", "2", "--best-effort"];
    common::lca_cli_bin();
    let started = Instant::now();
    let out = lca_cli_within(
        node.path(),
        &precache_args(&list, &status, &extra),
        &[],
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    eprintln!("frozen registry: precache (2 attempts of {timeout:?}) finished after {took:?}");
    assert!(out.status.success(), "best effort: {}", stderr(&out));
    let expected = PrecacheStatus {
        total: 2,
        pulled: 1,
        failed: 1,
        failed_pulls: vec![stuck.clone()],
    };
    assert_eq!(read_status(&status), expected);
    assert!(
        stderr(&out).contains("timed out after 3 s and was killed"),
        "{}",
        stderr(&out)
    );
    assert!(took >= timeout * 2, "both attempts ran: {took:?}");
    assert!(took < timeout * 2 + Duration::from_secs(2 + 15), "{took:?}");

    // Without best effort the run fails, after one attempt here.
    let extra = ["--pull-timeout", "3s", "--pull-attempts", "1"];
    let started = Instant::now();
    let out = lca_cli_within(
        node.path(),
        &precache_args(&list, &status, &extra),
        &[],
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    eprintln!("frozen registry: precache (1 attempt of {timeout:?}) failed after {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed to precache 1 of 2 images"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_status(&status), expected);
    assert!(took < timeout + Duration::from_secs(15), "{took:?}");
    signal(frozen.pid(), "CONT");
}

/// A PATH whose `podman` (a test peer) logs its arguments to the returned file, then runs
/// the real podman.
fn podman_call_log(dir: &Path) -> (String, std::path::PathBuf) {
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v podman"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = dir.join("logged-bin");
    fs::create_dir_all(&bin).unwrap();
    let log = dir.join("podman-calls.log");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.trim()
    );
    lca_testkit::write_executable(&bin.join("podman"), &script).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    (path, log)
}
