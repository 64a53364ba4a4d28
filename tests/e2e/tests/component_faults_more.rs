//! More component faults (issue #16), after `component_faults.rs`: the node's disk full while
//! the stateroot is set up (the simulated sysroot on a tmpfs, shrunk to what it holds in the
//! middle of the task), the registry stopped before a best-effort precache
//! (`PRECACHE_BEST_EFFORT=TRUE` on the operator), and the API server down for 30 s while the
//! pre-pivot steps run and again during the operator's post-pivot, after the reboot into the
//! new stateroot. Prep fails with the step and the cause, or completes as the spec says; an
//! abort leaves the node as before; the upgrade completes after each outage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lca_e2e::prep::{
    Baseline, Env, SEED_VERSION, abort, env_with_seed, listing, start_prep, wait_prep_completed,
    wait_prep_failed,
};
use lca_e2e::{condition, upgrade};
use lca_hostops::failpoint::ARM_FILE;
use lca_testkit::OperatorProcess;

const T: Duration = Duration::from_secs(180);
const API_DOWN: Duration = Duration::from_secs(30);

/// Arm `points` (`<flow>/<step>=<action>` each). A `sleep` point holds its process at every
/// pass and is not recorded as fired.
fn arm(root: &Path, points: &[&str]) {
    std::fs::write(root.join("lca-sim").join(ARM_FILE), points.join("\n") + "\n").unwrap();
}

/// Wait until `done` holds; on timeout show the IBU and the logs.
async fn wait_until(c: &lca_e2e::Cluster, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > T {
            let ibu = c.ibus().get("upgrade").await.unwrap();
            panic!("never saw {what}: {:?}\n{}", ibu.status, c.operator_log_tail(40));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the operator logged the upgrade step `step` (logged as it starts).
async fn wait_step(c: &lca_e2e::Cluster, step: &str) {
    let needle = format!(r#""step":"{step}""#);
    wait_until(c, &needle, || {
        c.operator
            .as_ref()
            .unwrap()
            .log()
            .lines()
            .any(|l| l.contains(r#""message":"upgrade step""#) && l.contains(&needle))
    })
    .await;
}

/// The contents of the files in `dir` whose names end with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<Vec<u8>> {
    listing(dir)
        .iter()
        .filter(|n| n.ends_with(suffix))
        .filter_map(|n| std::fs::read(dir.join(n)).ok())
        .collect()
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node's sysroot (`/var` included: it is the booted stateroot's) on a tmpfs of its own,
/// holding what the sysroot held; unmounted on drop, which uncovers the sysroot as it was.
struct SysrootTmpfs {
    dir: PathBuf,
}

impl SysrootTmpfs {
    const SIZE_KIB: u64 = 1 << 20;

    fn mount(root: &Path) -> Self {
        let dir = root.join("sysroot");
        let copy = root.join("sysroot.copy");
        let (d, c) = (dir.display().to_string(), copy.display().to_string());
        let (d, c) = (d.as_str(), c.as_str());
        sh("cp", &["-a", d, c]);
        let size = format!("size={}k", Self::SIZE_KIB);
        sh("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", d]);
        let guard = Self { dir };
        sh("cp", &["-a", &format!("{c}/."), d]);
        std::fs::remove_dir_all(&copy).unwrap();
        guard
    }

    /// KiB in use, as `df` counts them.
    fn used_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["-k", "--output=used"])
            .arg(&self.dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Make the filesystem exactly as big as what it holds now: the next write that needs a
    /// block fails with ENOSPC.
    fn fill(&self) {
        let size = format!("remount,size={}k", self.used_kib());
        sh("mount", &["-o", &size, self.dir.to_str().unwrap()]);
    }

    fn grow(&self) {
        let size = format!("remount,size={}k", Self::SIZE_KIB);
        sh("mount", &["-o", &size, self.dir.to_str().unwrap()]);
    }
}

impl Drop for SysrootTmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // The operator may still have a file open there; detach the mount anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Stop the operator of `e` and start it again with `env` added (the Deployment's env).
fn restart_operator_with_env(e: &mut Env, env: &[(&str, &str)]) {
    e.c.operator.take().unwrap().kill();
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&e.c.cp).unwrap();
    let op = OperatorProcess::start_with_env(
        &kubeconfig,
        e.c.node_root(),
        &e.c.operator_log_path(),
        &["--node=simulated"],
        env,
    )
    .unwrap();
    e.c.operator = Some(op);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_prep_cleanly_and_best_effort_precache_survives_its_registry() {
    let mut e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    let baseline = Baseline::of(&root);
    let clean = |what: &str| baseline.assert_again(&root, what);
    let var_tmp = listing(&root.join("var/tmp"));
    let disk = SysrootTmpfs::mount(&root);

    // The disk fills up once the new deployment is there: the task holds after `origin`,
    // the filesystem is shrunk to what it holds, and `var` is the first step to need space.
    arm(&root, &["stateroot-setup/origin=sleep(3000)"]);
    let start = Instant::now();
    start_prep(&e, SEED_VERSION, "");
    // `origin` is done (its failpoint holds) once the deployment's origin file is the
    // seed's: the step copies it over the one `ostree admin deploy` wrote.
    let seed_dir = root.join("var/tmp/lca-stateroot-setup/seed");
    let deploy_dir = root.join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/deploy"));
    wait_until(&e.c, "the seed's origin file in the new deployment", || {
        let seed = files_ending(&seed_dir, ".origin");
        !seed.is_empty() && files_ending(&deploy_dir, ".origin") == seed
    })
    .await;
    disk.fill();
    let msg = wait_prep_failed(&e, T).await;
    println!(
        "disk full in stateroot setup: Prep failed after {:?}: {msg}",
        start.elapsed()
    );
    let new_var = root.join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/var/"));
    let head = format!(
        "stateroot setup job failed to complete. job-name: lca-prep-stateroot-setup, job-namespace: openshift-lifecycle-agent. Failed in step var: writing {}",
        new_var.display()
    );
    assert!(msg.starts_with(&head), "{msg}");
    assert!(msg.ends_with(": No space left on device (os error 28)"), "{msg}");
    assert_eq!(
        condition(&e.c.ibus().get("upgrade").await.unwrap(), "PrepCompleted").map(|c| c.2),
        Some(format!("{}: {msg}", lca_api::consts::messages::PREP_FAILED))
    );
    // The failed task released its work before reporting, and handed nothing over.
    assert_eq!(listing(&root.join("var/tmp")), var_tmp, "var/tmp");
    // The abort runs on the still full disk.
    abort(&e).await;
    clean("after the disk filled up");
    disk.grow();

    // Best effort: the registry stops after the stateroot task, before precache; Prep
    // completes and the failed pulls are counted in the precache status.
    restart_operator_with_env(&mut e, &[("PRECACHE_BEST_EFFORT", "TRUE")]);
    arm(&root, &["prep/CryptoBackup=sleep(3000)"]);
    start_prep(&e, SEED_VERSION, "");
    // Once the stateroot task is complete the operator holds before launching precache.
    let markers = root.join("var/lib/lca/workspace/stateroot-setup");
    wait_until(&e.c, "the stateroot task complete", || {
        listing(&markers).contains("complete.done")
    })
    .await;
    e.registry.stop().unwrap();
    let start = Instant::now();
    wait_prep_completed(&e).await;
    println!(
        "best-effort precache without its registry: Prep completed {:?} after the registry stopped",
        start.elapsed()
    );
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/lca/workspace/precache_status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&status["total"], &status["pulled"], &status["failed"]),
        (&3.into(), &0.into(), &3.into()),
        "{status}"
    );
    let failed: Vec<&str> = status["failed_pulls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut wanted: Vec<&str> = e.images.iter().map(String::as_str).collect();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort();
    wanted.sort();
    assert_eq!(failed_sorted, wanted, "{status}");
    let log = e.c.operator.as_ref().unwrap().log();
    assert!(
        log.lines()
            .any(|l| l.contains(r#""message":"Prep completed""#)
                && l.contains("total: 3 (pulled: 0, failed: 3)")),
        "the operator reports the failed pulls"
    );
    e.registry.restart().unwrap();
    abort(&e).await;
    clean("after the best-effort precache");
    std::fs::remove_file(root.join("lca-sim").join(ARM_FILE)).unwrap();
    // The tmpfs goes before the node: the operator is stopped first so nothing holds it.
    e.c.operator.take().unwrap().kill();
    drop(disk);
}

// The restarted API server answers 403 until its RBAC caches are warm: the operator must
// back off and retry (`Category::of_http_status`), not wait 300 s or fail the step.
#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_completes_after_api_outages_in_pre_and_post_pivot() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;

    // Each outage begins as the first step of its list starts; the step's failpoint holds
    // the operator there, so the steps after it run against a closed port.
    arm(
        &root,
        &[
            "prepivot/Backup=sleep(2000)",
            "postpivot/EnsureOadpConfiguration=sleep(2000)",
        ],
    );
    let upgrade_start = Instant::now();
    assert!(e.c.patch_stage("Upgrade").0);
    wait_step(&e.c, "Backup").await;
    let start = Instant::now();
    e.c.cp.api_outage(API_DOWN).await.unwrap();
    let back = start.elapsed();
    upgrade::wait_reboot_request(&e.c, T).await;
    println!(
        "pre-pivot API outage: server back after {back:?}; reboot requested {:?} after the outage began",
        start.elapsed()
    );
    assert_eq!(upgrade::reboot_rationale(&e.c).as_deref(), Some("upgrade"));
    upgrade::reboot(&mut e.c).await;

    wait_step(&e.c, "EnsureOadpConfiguration").await;
    let start = Instant::now();
    e.c.cp.api_outage(API_DOWN).await.unwrap();
    let back = start.elapsed();
    let ibu = upgrade::wait_upgrade_completed(&e.c).await;
    println!(
        "post-pivot API outage: server back after {back:?}; Upgrade completed {:?} after the outage began ({:?} after the Upgrade patch)",
        start.elapsed(),
        upgrade_start.elapsed()
    );
    let history = ibu.status.unwrap().history;
    let upgrade = history
        .iter()
        .find(|h| h.stage == Some(lca_api::Stage::Upgrade))
        .unwrap();
    let phases: Vec<&str> = upgrade.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["PrePivot", "PostPivot"]);
    assert_eq!(upgrade::booted(&e.c), format!("rhcos_{SEED_VERSION}"));
    assert_eq!(
        upgrade::stateroots(&e.c),
        [format!("rhcos_{SEED_VERSION}"), "rhcos".to_string()]
    );
    std::fs::remove_file(root.join("lca-sim").join(ARM_FILE)).unwrap();
}
