//! Prep end to end: a real API server with OpenShift fixtures, a simulated SNO node with a
//! real ostree sysroot and podman storage, a real registry holding a seed made by our own
//! `lca-cli create` and the images it lists, and the operator doing the real node work.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use lca_api::Stage;
use lca_api::consts::messages as m;
use lca_e2e::prep::{
    Env, SEED_VERSION, env_with, env_with_seed, prep_failure, start_prep, wait_prep_completed,
};
use lca_e2e::{condition, has};
use lca_testkit::{openshift, simnode};

const T: Duration = Duration::from_secs(120);

#[tokio::test]
async fn prep_completes_on_the_simulated_node_and_abort_restores_it() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let before =
        e.c.target
            .as_ref()
            .expect("node")
            .ostree_status()
            .expect("status");
    start_prep(&e, SEED_VERSION, "");
    let ibu = wait_prep_completed(&e).await;
    assert_eq!(
        ibu.status.as_ref().expect("status").valid_next_stages,
        vec![Stage::Idle, Stage::Upgrade]
    );
    let history = &ibu.status.as_ref().expect("status").history[0];
    let phases: Vec<&str> = history.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["Stateroot", "Precache"]);
    assert!(history.phases.iter().all(|p| p.completion_time.is_some()));

    let root = e.c.node_root().to_path_buf();
    let status =
        e.c.target
            .as_ref()
            .expect("node")
            .ostree_status()
            .expect("status");
    // `ostree admin status` lists the default deployment first.
    let first = status
        .lines()
        .find(|l| l.split_whitespace().count() == 2)
        .unwrap_or("");
    assert!(status.contains("rhcos_4.18.0"), "{status}");
    assert!(
        first.split_whitespace().next() == Some("rhcos"),
        "the old stateroot stays the default:\n{status}"
    );
    let bls = std::fs::read_dir(root.join("sysroot/boot/loader/entries")).expect("entries");
    let kargs: String = bls
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(kargs.contains("ibu=4.18.0"), "{kargs}");
    let var = root.join("sysroot/ostree/deploy/rhcos_4.18.0/var");
    assert!(var.join("lib/lca/autorollback_config.json").exists());
    assert!(
        var.join("opt/openshift/kubeconfig-crypto/router-ca").exists()
            || var
                .join("opt/openshift/kubeconfig-crypto/ingresskey-ingress-operator.key")
                .exists()
    );
    let precache: lca_api::files::PrecacheStatus = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/lca/workspace/precache_status.json")).expect("status file"),
    )
    .expect("json");
    assert_eq!((precache.total, precache.pulled, precache.failed), (3, 3, 0));
    let metrics = e.c.metrics();
    for line in [
        "lca_precache_images{state=\"pulled\"} 3",
        "lca_stage_transitions_total 2",
        "lca_stage_duration_seconds{stage=\"Prep\"}",
        "lca_stage_phase_duration_seconds{stage=\"Prep\",phase=\"Precache\"}",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    let local = simnode::images(&root);
    for img in &e.images {
        assert!(local.iter().any(|l| l == img), "{img} precached: {local:?}");
    }

    assert!(e.c.patch_stage("Idle").0);
    let ibu =
        e.c.wait_ibu("Idle after abort", T, |i| has(i, "Idle", "True"))
            .await;
    assert_eq!(ibu.status.expect("status").conditions.len(), 1);
    let after =
        e.c.target
            .as_ref()
            .expect("node")
            .ostree_status()
            .expect("status");
    assert_eq!(after, before, "abort leaves the node's deployments as before");
    assert!(
        !root.join("sysroot/ostree/deploy/rhcos_4.18.0").exists(),
        "no stateroot left behind"
    );
    assert!(!root.join("var/lib/lca/workspace").exists(), "workspace removed");
}

#[tokio::test]
async fn prep_rejects_a_seed_that_is_not_newer() {
    let e = env_with_seed(openshift::OCP_VERSION, false).await;
    start_prep(&e, openshift::OCP_VERSION, "");
    let ibu =
        e.c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some())
            .await;
    assert_eq!(
        prep_failure(&ibu).expect("failure"),
        format!(
            "failed to validate IBU spec: failed to validate seed image OCP version: seed OCP version ({0}) must be higher than current OCP version ({0})",
            openshift::OCP_VERSION
        )
    );
    assert_eq!(
        condition(&ibu, "PrepCompleted"),
        Some((
            "False".into(),
            "Failed".into(),
            format!("{}: {}", m::PREP_FAILED, prep_failure(&ibu).expect("failure"))
        )),
        "the hub reads the reason in the Completed condition"
    );
    assert!(
        !e.c.node_root()
            .join("sysroot/ostree/deploy/rhcos_4.17.0")
            .exists()
    );
}

#[tokio::test]
async fn prep_rejects_a_seed_with_a_proxy_on_a_cluster_without() {
    let e = env_with_seed(SEED_VERSION, true).await;
    start_prep(&e, SEED_VERSION, "");
    let ibu =
        e.c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some())
            .await;
    assert_eq!(
        prep_failure(&ibu).expect("failure"),
        "failed to validate seed image info: seed image has a proxy but the cluster being upgraded does not, this combination is not supported"
    );
}

#[tokio::test]
async fn extra_manifests_machineconfig_fails_and_unknown_crd_warns() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let cms: Api<ConfigMap> = Api::namespaced(e.c.client.clone(), "openshift-lifecycle-agent");
    let bad = serde_json::json!({"metadata": {"name": "bad-manifests"}, "data": {"mc.yaml":
        "apiVersion: machineconfiguration.openshift.io/v1\nkind: MachineConfig\nmetadata:\n  name: 99-extra\nspec: {}\n"}});
    cms.create(&PostParams::default(), &serde_json::from_value(bad).expect("cm"))
        .await
        .expect("create cm");
    start_prep(
        &e,
        SEED_VERSION,
        "  extraManifests:\n  - name: bad-manifests\n    namespace: openshift-lifecycle-agent\n",
    );
    let ibu =
        e.c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some())
            .await;
    assert_eq!(
        prep_failure(&ibu).expect("failure"),
        "failed to validate IBU spec: failed to validate extramanifest cms: MachineConfig[99-extra] in extramanifests is not allowed"
    );

    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle", T, |i| has(i, "Idle", "True")).await;
    let warn = serde_json::json!({"metadata": {"name": "warn-manifests"}, "data": {"x.yaml":
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec: {}\n"}});
    cms.create(&PostParams::default(), &serde_json::from_value(warn).expect("cm"))
        .await
        .expect("create cm");
    let patch = serde_json::json!({"spec": {"stage": "Prep", "extraManifests": [{"name": "warn-manifests", "namespace": "openshift-lifecycle-agent"}]}});
    e.c.ibus()
        .patch("upgrade", &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect("patch");
    let ibu =
        e.c.wait_ibu("PrepCompleted with warning", T, |i| {
            has(i, "PrepCompleted", "True") || prep_failure(i).is_some()
        })
        .await;
    assert_eq!(
        condition(&ibu, "PrepCompleted").map(|c| c.2),
        Some(m::PREP_STAGE_COMPLETED_WITH_WARNING.to_string())
    );
    let ann = ibu.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("extra-manifest.lca.openshift.io/validation-warning")
            .map(String::as_str),
        Some("Widget[w1] - CRD not deployed on cluster")
    );

    assert!(e.c.patch_stage("Idle").0);
    let ibu = e.c.wait_ibu("Idle", T, |i| has(i, "Idle", "True")).await;
    assert!(
        !ibu.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("extra-manifest.lca.openshift.io/validation-warning"),
        "abort removes the warning"
    );
}

#[tokio::test]
async fn prep_resumes_after_the_operator_and_its_task_are_killed() {
    let mut e = env_with_seed(SEED_VERSION, false).await;
    start_prep(&e, SEED_VERSION, "");
    e.c.wait_ibu("stateroot setup launched", T, |i| {
        condition(i, "PrepInProgress").is_some_and(|c| {
            c.2.starts_with("Successfully launched a new job for stateroot setup")
        })
    })
    .await;
    // A crash of the operator and of the node work at once (as a reboot would do).
    e.c.operator.take().expect("operator").kill();
    let pid_file =
        e.c.node_root()
            .join("var/lib/lca/workspace/tasks/lca-prep-stateroot-setup/pid");
    let pid = std::fs::read_to_string(&pid_file).expect("task pid");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", pid.trim())])
        .status();
    e.c.start_operator_with(&["--node=simulated"]);
    let ibu =
        e.c.wait_ibu("PrepCompleted after restart", T, |i| {
            condition(i, "PrepCompleted").is_some()
        })
        .await;
    assert_eq!(
        condition(&ibu, "PrepCompleted").map(|c| c.0),
        Some("True".to_string()),
        "{:?}\n{}",
        condition(&ibu, "PrepInProgress"),
        e.c.operator_log_tail(30)
    );
    let status =
        e.c.target
            .as_ref()
            .expect("node")
            .ostree_status()
            .expect("status");
    assert_eq!(
        status.matches("rhcos_4.18.0").count(),
        1,
        "one deployment of the new stateroot:\n{status}"
    );
}

#[tokio::test]
async fn unreachable_registry_and_missing_pull_secret_fail_prep_clearly() {
    let e = env_with_seed(SEED_VERSION, false).await;
    start_prep(
        &e,
        SEED_VERSION,
        "    pullSecretRef:\n      name: no-such-secret\n",
    );
    let ibu =
        e.c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some())
            .await;
    let msg = prep_failure(&ibu).expect("failure");
    assert_eq!(
        msg,
        "failed to validate seed image info: failed to get pull secret openshift-lifecycle-agent/no-such-secret: secrets \"no-such-secret\" not found",
        "reads as the API server says it"
    );
    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle", T, |i| has(i, "Idle", "True")).await;

    let Env {
        c, seed, registry, ..
    } = e;
    drop(registry);
    let patch = serde_json::json!({"spec": {"stage": "Prep", "seedImageRef": {"image": seed, "version": SEED_VERSION, "pullSecretRef": null}}});
    c.ibus()
        .patch("upgrade", &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect("patch");
    let ibu = c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some()).await;
    let msg = prep_failure(&ibu).expect("failure");
    assert!(msg.starts_with("failed to validate seed image info: "), "{msg}");
    assert!(msg.contains("127.0.0.1"), "the message names the registry: {msg}");
    assert!(
        !c.node_root().join("sysroot/ostree/deploy/rhcos_4.18.0").exists(),
        "nothing deployed"
    );
}

#[tokio::test]
async fn prep_runs_its_node_work_as_jobs() {
    let e = env_with(
        SEED_VERSION,
        false,
        &["--job-image=quay.io/lca-rs/lifecycle-agent-operator:test"],
    )
    .await;
    let _kubelet =
        lca_testkit::kubelet_peer::KubeletPeer::start(e.c.client.clone(), "openshift-lifecycle-agent");
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
        Api::namespaced(e.c.client.clone(), "openshift-lifecycle-agent");
    for name in ["lca-prep-stateroot-setup", "lca-prep-precache"] {
        let job = jobs.get(name).await.expect("job exists");
        let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("ImageBasedUpgrade", "upgrade", Some(true))
        );
        assert!(
            job.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f[0].ends_with("-finalizer")),
            "{name} has its finalizer"
        );
        let pod = job.spec.expect("spec").template.spec.expect("pod spec");
        assert_eq!(pod.host_pid, Some(true));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    }
    assert!(
        e.c.target
            .as_ref()
            .expect("node")
            .ostree_status()
            .expect("status")
            .contains("rhcos_4.18.0")
    );

    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle", T, |i| has(i, "Idle", "True")).await;
    for _ in 0..100 {
        if jobs
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        jobs.list(&Default::default())
            .await
            .expect("list")
            .items
            .is_empty(),
        "abort deletes the jobs"
    );
}
