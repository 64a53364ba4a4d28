//! podman with a private vfs storage, pulling from a loopback Distribution registry: list,
//! exists, mount/umount, rmi, pull retries, and the image cleanup loop (crictl is absent here,
//! which a simulated node treats as "no CRI containers").
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{podman_node, push_image};
use lca_api::consts::annotations;
use lca_hostops::podman::{self, PullOptions};
use lca_hostops::{Executor, image_cleanup};
use lca_testkit::Registry;

fn insecure() -> PullOptions {
    PullOptions {
        insecure: true,
        attempts: 2,
        backoff: Duration::from_millis(50),
        ..Default::default()
    }
}

#[tokio::test]
async fn pull_list_exists_mount_and_rmi() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let image = push_image(
        work.path(),
        registry.addr(),
        "lca/seed",
        "4.17.0",
        &[("manifest.json", b"{\"seed\":1}")],
    );
    let exec = podman_node(work.path());

    assert!(!podman::image_exists(&exec, &image).await.unwrap());
    podman::pull(&exec, &image, &insecure()).await.unwrap();
    assert!(podman::image_exists(&exec, &image).await.unwrap());

    let images = podman::list_images(&exec).await.unwrap();
    assert_eq!(images.len(), 1);
    assert!(images[0].names.contains(&image), "{images:?}");
    assert!(podman::container_image_ids(&exec).await.unwrap().is_empty());

    let mnt = podman::image_mount(&exec, &image).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(mnt.join("manifest.json")).unwrap(),
        "{\"seed\":1}"
    );
    podman::image_umount(&exec, &image).await.unwrap();

    podman::rmi(&exec, &images[0].rmi_args()).await.unwrap();
    assert!(!podman::image_exists(&exec, &image).await.unwrap());
}

#[tokio::test]
async fn pull_with_auth_and_failures() {
    let registry = Registry::start_with_auth("lca", "s3cret").unwrap();
    let work = tempfile::tempdir().unwrap();
    let exec = podman_node(work.path());
    let layout = work.path().join("oci");
    common::oci_layout(&layout, "1", &[("hello", b"hi")]);
    let image = format!("{}/lca/private:1", registry.addr());
    common::sh(&[
        "skopeo",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "lca:s3cret",
        &format!("oci:{}:1", layout.display()),
        &format!("docker://{image}"),
    ]);
    // No credentials: both attempts fail with the registry's answer in the error.
    let err = podman::pull(&exec, &image, &insecure()).await.unwrap_err();
    assert!(err.to_string().contains("podman pull"), "{err}");
    assert!(err.to_string().to_lowercase().contains("unauthorized"), "{err}");

    let auth = work.path().join("auth.json");
    let creds = format!(
        "{{\"auths\":{{\"{}\":{{\"auth\":\"bGNhOnMzY3JldA==\"}}}}}}",
        registry.addr()
    );
    std::fs::write(&auth, creds).unwrap();
    podman::pull(
        &exec,
        &image,
        &PullOptions {
            authfile: Some(auth.clone()),
            ..insecure()
        },
    )
    .await
    .unwrap();
    assert!(podman::image_exists(&exec, &image).await.unwrap());

    // A tag that does not exist: `manifest unknown` stops the retries at once.
    let missing = format!("{}/lca/private:nope", registry.addr());
    let slow = PullOptions {
        authfile: Some(auth),
        attempts: 5,
        backoff: Duration::from_secs(5),
        insecure: true,
    };
    let started = std::time::Instant::now();
    let err = podman::pull(&exec, &missing, &slow).await.unwrap_err();
    assert!(err.stderr_contains("manifest unknown"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried a manifest-unknown pull"
    );
}

#[tokio::test]
async fn image_cleanup_removes_oldest_unused_in_batches_until_below_threshold() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let exec = podman_node(work.path());
    let mut refs = Vec::new();
    for i in 0..7 {
        let content = format!("image {i}");
        let r = push_image(
            work.path(),
            registry.addr(),
            &format!("lca/app{i}"),
            "1",
            &[("f", content.as_bytes())],
        );
        podman::pull(&exec, &r, &insecure()).await.unwrap();
        refs.push(r);
        // podman's `Created` is the config's; distinct pull order is enough for a stable test.
    }
    let before = podman::list_images(&exec).await.unwrap();
    assert_eq!(before.len(), 7);

    // Usage follows the number of images left: 7 images = 80 %, each removal −5 %.
    let remaining = Arc::new(Mutex::new(7i64));
    let exec_images = exec.clone();
    let counter = remaining.clone();
    let usage = move || {
        let out = std::process::Command::new("podman")
            .args(["images", "-q"])
            .envs(std::iter::once((
                "CONTAINERS_STORAGE_CONF",
                work_conf(&exec_images),
            )))
            .output()
            .unwrap();
        let n = String::from_utf8_lossy(&out.stdout).lines().count() as i64;
        *counter.lock().unwrap() = n;
        Ok(45 + 5 * n)
    };
    let mut ann = BTreeMap::new();
    ann.insert(
        annotations::IMAGE_CLEANUP_DISK_USAGE_THRESHOLD.to_string(),
        "60".to_string(),
    );
    let report = image_cleanup::run_with_usage(&exec, &ann, usage).await.unwrap();
    assert_eq!(report.usage_before, 80);
    assert_eq!(report.removed.len(), 5, "one batch of 5 brings 80 % down to 55 %");
    assert_eq!(report.usage_after, 55);
    assert!(!report.ran_out_of_candidates);
    assert_eq!(*remaining.lock().unwrap(), 2);

    // Disabled and unparsable thresholds skip without touching podman.
    ann.insert(
        annotations::IMAGE_CLEANUP_ON_PREP.to_string(),
        "Disabled".to_string(),
    );
    let r = image_cleanup::run_with_usage(&exec, &ann, || Ok(99))
        .await
        .unwrap();
    assert_eq!(r.skipped.as_deref(), Some("image cleanup disabled by annotation"));

    // Below the default threshold with statfs of the real disk (a fresh temp dir on a mostly
    // empty VM disk): nothing to do.
    let r = image_cleanup::run(&exec, &BTreeMap::new()).await.unwrap();
    let real = lca_hostops::disk::usage(&exec.node().paths.container_storage())
        .unwrap()
        .percent();
    assert_eq!(r.usage_before, real);
    assert_eq!(r.skipped.is_some(), real <= 50, "{r:?}");
}

#[tokio::test]
async fn image_cleanup_runs_out_of_candidates_without_failing() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let exec = podman_node(work.path());
    let unused = push_image(work.path(), registry.addr(), "lca/only", "1", &[("f", b"x")]);
    let used = push_image(work.path(), registry.addr(), "lca/used", "1", &[("f", b"y")]);
    podman::pull(&exec, &unused, &insecure()).await.unwrap();
    podman::pull(&exec, &used, &insecure()).await.unwrap();
    // A created (never started) container keeps its image in use; no runtime is needed.
    let conf = work_conf(&exec);
    let out = std::process::Command::new("podman")
        .args(["create", "--name", "lca-user", "--network", "none", &used, "/f"])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let report = image_cleanup::run_with_usage(&exec, &BTreeMap::new(), || Ok(90))
        .await
        .unwrap();
    assert_eq!(report.removed.len(), 1);
    assert!(report.ran_out_of_candidates);
    let left = podman::list_images(&exec).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].names.contains(&used));
    let _ = std::process::Command::new("podman")
        .args(["rm", "-f", "lca-user"])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .output();
}

fn work_conf(exec: &lca_hostops::LocalExecutor) -> std::path::PathBuf {
    exec.node().paths.root().join("storage.conf")
}
