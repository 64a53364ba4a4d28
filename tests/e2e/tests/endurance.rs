//! Endurance (issue #16): Prep → abort cycles in a row, and unrelated objects churning in the
//! cluster while the operator idles, with the operator's resident memory, open file
//! descriptors and CPU time read from `/proc`. CI runs the churn with 300 objects; the cycles
//! (ignored in CI for time) and 5,000 objects run with `hack/endurance.sh`
//! (`LCA_ENDURANCE_CYCLES`, `LCA_CHURN_OBJECTS`), and the
//! figures go to docs/reliability.md. Growth beyond noise fails: a leak per cycle would show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, ObjectReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use lca_e2e::prep::{Baseline, SEED_VERSION, abort, env_with_seed, start_prep, wait_prep_completed};

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    cpu_ticks: u64,
}

fn sample(pid: i32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // utime and stime: fields 14 and 15, counted from 3 after the command name.
    let cpu_ticks = fields[14 - 3].parse::<u64>().unwrap() + fields[15 - 3].parse::<u64>().unwrap();
    Sample {
        rss_kib,
        fds,
        cpu_ticks,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: hack/endurance.sh; in CI the fault campaign's Prep -> abort cycles check the node"]
async fn prep_abort_cycles_leave_no_files_and_no_growth() {
    let cycles = env_count("LCA_ENDURANCE_CYCLES", 2).max(1);
    let e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    let pid = e.c.operator.as_ref().unwrap().pid();
    let baseline = Baseline::of(&root);
    let mut samples = Vec::new();
    let start = Instant::now();
    for i in 0..cycles {
        start_prep(&e, SEED_VERSION, "");
        wait_prep_completed(&e).await;
        abort(&e).await;
        baseline.assert_again(&root, &format!("cycle {i}"));
        let s = sample(pid);
        println!(
            "cycle {i}: rss {} KiB, fds {}, cpu {} ticks, {:.0} s",
            s.rss_kib,
            s.fds,
            s.cpu_ticks,
            start.elapsed().as_secs_f64()
        );
        samples.push(s);
    }
    // The first cycle warms the caches (TLS sessions, watch buffers); with more than two
    // cycles the comparison starts after it.
    let (first, last) = (samples[usize::from(cycles > 2)], samples[cycles - 1]);
    println!("{cycles} cycles: rss {first:?} -> {last:?}");
    assert!(
        last.fds <= first.fds + 2,
        "open files grew: {} -> {}",
        first.fds,
        last.fds
    );
    assert!(
        last.rss_kib <= first.rss_kib + 8 * 1024,
        "resident memory grew: {} -> {} KiB",
        first.rss_kib,
        last.rss_kib
    );
}

/// Whole upgrades in a row, each Prep → Upgrade → reboot → finalize, each to a seed one patch
/// version up (Prep refuses a seed that is not newer than the cluster). The operator is a new
/// process after each reboot, so the samples compare the operators of successive cycles at
/// the same point (the upgrade completed); the node must hold one stateroot and one
/// deployment after each finalize, and the ostree repo must not grow with the cycles.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: hack/endurance.sh; in CI the upgrade campaign's cycle stands in"]
async fn upgrade_finalize_cycles_leave_one_stateroot_and_no_growth() {
    let cycles = env_count("LCA_UPGRADE_CYCLES", 2).max(1);
    let mut e = lca_e2e::upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    let mut samples = Vec::new();
    let start = Instant::now();
    for i in 0..cycles {
        let version = format!("4.18.{i}");
        let seed = if i == 0 {
            e.seed.clone()
        } else {
            lca_testkit::images::push_seed_with_cluster(&e.registry, &version, &e.images, false)
                .await
                .expect("the next seed")
        };
        // The seed's cluster (a test fixture) lacks the kubeconfig crypto a real cluster
        // carries, which Prep backs up.
        lca_testkit::prepenv::crypto_fixtures(&e.c.client)
            .await
            .expect("crypto fixtures");
        lca_e2e::prep::start_prep_with_image(&e, &seed, &version, "");
        wait_prep_completed(&e).await;
        assert!(e.c.patch_stage("Upgrade").0);
        lca_e2e::upgrade::wait_reboot_request(&e.c, Duration::from_secs(240)).await;
        lca_e2e::upgrade::reboot(&mut e.c).await;
        lca_e2e::upgrade::wait_upgrade_completed(&e.c).await;
        let s = sample(e.c.operator.as_ref().unwrap().pid());
        assert!(e.c.patch_stage("Idle").0);
        e.c.wait_ibu("Idle after finalize", Duration::from_secs(240), |i| {
            lca_e2e::has(i, "Idle", "True")
        })
        .await;
        let stateroot = format!("rhcos_{version}");
        assert_eq!(
            lca_e2e::upgrade::stateroots(&e.c),
            std::slice::from_ref(&stateroot),
            "cycle {i}"
        );
        assert_eq!(
            lca_e2e::prep::listing(&root.join("sysroot/ostree/deploy")),
            std::collections::BTreeSet::from([stateroot.clone()]),
            "cycle {i}: no orphan stateroot"
        );
        assert!(
            !root.join("var/lib/lca/workspace").exists(),
            "cycle {i}: workspace"
        );
        let junk = lca_e2e::campaign::half_written(&root.join("sysroot/ostree/deploy").join(&stateroot));
        assert!(junk.is_empty(), "cycle {i}: {junk:?}");
        let repo_kib = du_kib(&root.join("sysroot/ostree/repo"));
        println!(
            "cycle {i} ({version}): operator rss {} KiB, fds {}, cpu {} ticks; repo {repo_kib} KiB; {:.0} s",
            s.rss_kib,
            s.fds,
            s.cpu_ticks,
            start.elapsed().as_secs_f64()
        );
        samples.push((s, repo_kib));
    }
    if cycles > 2 {
        let ((first, repo0), (last, repo1)) = (samples[1], samples[cycles - 1]);
        assert!(last.fds <= first.fds + 2, "{first:?} -> {last:?}");
        assert!(last.rss_kib <= first.rss_kib + 8 * 1024, "{first:?} -> {last:?}");
        assert!(
            repo1 <= repo0 + repo0 / 10,
            "the ostree repo grew: {repo0} -> {repo1} KiB"
        );
    }
}

fn du_kib(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .arg("-sk")
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn unrelated_objects_churning_leave_the_idle_operator_flat() {
    let objects = env_count("LCA_CHURN_OBJECTS", 300);
    let c = lca_e2e::Cluster::with_operator().await;
    c.wait_ibu("Idle", Duration::from_secs(30), |i| {
        lca_e2e::has(i, "Idle", "True")
    })
    .await;
    let pid = c.operator.as_ref().unwrap().pid();
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some("churn".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "churn");
    let events: Api<Event> = Api::namespaced(c.client.clone(), "churn");

    // The idle baseline spans the churn's wall time again, after it.
    let before = sample(pid);
    let start = Instant::now();
    for i in 0..objects {
        let name = format!("cm-{i}");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "data": {"v": "0"}
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let patch = serde_json::json!({"data": {"v": "1"}});
        cms.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let event = Event {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("ev-{i}")),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("ConfigMap".into()),
                name: Some(name.clone()),
                namespace: Some("churn".into()),
                ..Default::default()
            },
            message: Some("churn".into()),
            ..Default::default()
        };
        events.create(&PostParams::default(), &event).await.unwrap();
        if i % 2 == 0 {
            cms.delete(&name, &DeleteParams::default()).await.unwrap();
        }
    }
    let churn_wall = start.elapsed();
    let during = sample(pid);
    tokio::time::sleep(churn_wall.min(Duration::from_secs(60))).await;
    let idle = sample(pid);
    // /proc counts CPU time in USER_HZ, 100 per second on Linux.
    let hz = 100.0;
    let churn_cpu = (during.cpu_ticks - before.cpu_ticks) as f64 / hz;
    let idle_cpu = (idle.cpu_ticks - during.cpu_ticks) as f64 / hz;
    println!(
        "{objects} ConfigMaps (create, update, half deleted) and {objects} Events in {churn_wall:?}: \
         operator cpu {churn_cpu:.2} s (idle after: {idle_cpu:.2} s), rss {} -> {} KiB, fds {} -> {}",
        before.rss_kib, during.rss_kib, before.fds, during.fds
    );
    // Unfiltered watches would decode every object: tens of CPU-milliseconds per hundred.
    assert!(
        churn_cpu < 1.0,
        "the operator worked {churn_cpu} s on unrelated objects"
    );
    assert!(
        during.rss_kib <= before.rss_kib + 4 * 1024,
        "{before:?} -> {during:?}"
    );
}
