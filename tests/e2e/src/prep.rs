//! The Prep environment shared by the Prep e2e suites: a control plane with OpenShift
//! fixtures, a simulated SNO node with a real ostree sysroot (and the node's admin
//! kubeconfig), a real registry holding three images and a seed made by our own
//! `lca-cli create`, and the operator.

use std::time::Duration;

use lca_api::ImageBasedUpgrade;
use lca_testkit::{Registry, images, openshift, prepenv, seednode::TargetNode, simnode};

use crate::{Cluster, condition, has};

pub const SEED_VERSION: &str = "4.18.0";

pub struct Env {
    pub c: Cluster,
    pub seed: String,
    pub images: Vec<String>,
    pub registry: Registry,
}

pub async fn env_with_seed(version: &str, proxy: bool) -> Env {
    env_with(version, proxy, &[]).await
}

/// A cluster, simulated node, registry with three images and a seed, and the operator
/// started with `operator_args`.
pub async fn env_with(version: &str, proxy: bool, operator_args: &[&str]) -> Env {
    let mut c = Cluster::start().await;
    openshift::install(&c.cp).await.expect("OpenShift CRDs");
    openshift::healthy_sno(&c.client).await.expect("healthy SNO");
    prepenv::crypto_fixtures(&c.client)
        .await
        .expect("crypto fixtures");
    let target = TargetNode::build().expect("simulated SNO node");
    simnode::configure(target.root()).expect("node storage");
    prepenv::admin_kubeconfig(&c.cp, target.root()).expect("node admin kubeconfig");
    c.target = Some(target);
    let registry = Registry::start().expect("registry");
    let imgs: Vec<String> = (0..3)
        .map(|i| {
            images::push_test_image(&registry, &format!("ocp/app{i}:v1"), &format!("app {i}")).expect("image")
        })
        .collect();
    let seed = images::push_seed_with(&registry, version, &imgs, proxy).expect("seed");
    Env::started(c, seed, imgs, registry, operator_args).await
}

impl Env {
    /// Start the operator with `operator_args` on `c` and wait until the IBU is Idle.
    pub async fn started(
        mut c: Cluster,
        seed: String,
        images: Vec<String>,
        registry: Registry,
        operator_args: &[&str],
    ) -> Self {
        c.start_operator_with(operator_args);
        c.wait_ibu("Idle", Duration::from_secs(30), |i| has(i, "Idle", "True"))
            .await;
        Env {
            c,
            seed,
            images,
            registry,
        }
    }
}

/// Apply the IBU as a hub would: `stage: Prep` with the seed of `e` and `extra` spec lines.
pub fn start_prep(e: &Env, version: &str, extra: &str) {
    start_prep_with_image(e, &e.seed, version, extra);
}

pub fn start_prep_with_image(e: &Env, image: &str, version: &str, extra: &str) {
    let yaml = format!(
        "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: upgrade\nspec:\n  stage: Prep\n  seedImageRef:\n    version: {version}\n    image: {image}\n{extra}"
    );
    let (ok, _, err) = e.c.kubectl_apply(&yaml);
    assert!(ok, "{err}");
}

/// Wait for Prep to end and require that it completed without a warning; a failure shows
/// the PrepInProgress message and the end of the logs.
pub async fn wait_prep_completed(e: &Env) -> ImageBasedUpgrade {
    let ibu =
        e.c.wait_ibu("PrepCompleted", Duration::from_secs(240), |i| {
            condition(i, "PrepCompleted").is_some()
        })
        .await;
    assert_eq!(
        condition(&ibu, "PrepCompleted"),
        Some((
            "True".into(),
            "Completed".into(),
            lca_api::consts::messages::PREP_STAGE_COMPLETED.into()
        )),
        "{:?}\n{}",
        condition(&ibu, "PrepInProgress"),
        e.c.operator_log_tail(40)
    );
    ibu
}

/// The PrepInProgress message once Prep has failed.
pub fn prep_failure(ibu: &ImageBasedUpgrade) -> Option<String> {
    condition(ibu, "PrepInProgress")
        .filter(|c| c.1 == "Failed")
        .map(|c| c.2)
}

/// Wait (at most `limit`) until Prep failed, which must come before any completion; its
/// message.
pub async fn wait_prep_failed(e: &Env, limit: Duration) -> String {
    let ibu =
        e.c.wait_ibu("Prep failed", limit, |i| {
            assert!(!has(i, "PrepCompleted", "True"), "Prep completed: {:?}", i.status);
            prep_failure(i).is_some()
        })
        .await;
    prep_failure(&ibu).expect("a Prep failure")
}

/// Abort and wait for Idle.
pub async fn abort(e: &Env) -> ImageBasedUpgrade {
    let (ok, err) = e.c.patch_stage("Idle");
    assert!(ok, "abort accepted: {err}");
    e.c.wait_ibu("Idle after abort", Duration::from_secs(120), |i| {
        has(i, "Idle", "True")
    })
    .await
}

/// Start Prep, wait for its failure, check both conditions carry `want`, abort.
pub async fn prep_fails_with(e: &Env, extra: &str, want: impl Fn(&str) -> bool, what: &str) -> String {
    start_prep(e, SEED_VERSION, extra);
    let ibu =
        e.c.wait_ibu(what, Duration::from_secs(120), |i| prep_failure(i).is_some())
            .await;
    let msg = prep_failure(&ibu).expect("failure");
    assert!(want(&msg), "{what}: {msg}");
    assert_eq!(
        condition(&ibu, "PrepCompleted").map(|c| c.2),
        Some(format!("{}: {msg}", lca_api::consts::messages::PREP_FAILED)),
        "{what}: the hub sees the reason"
    );
    let health = e.c.probe("/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "{what}: operator answers: {health}"
    );
    abort(e).await;
    assert!(
        !e.c.node_root()
            .join("sysroot/ostree/deploy/rhcos_4.18.0")
            .exists(),
        "{what}: nothing deployed"
    );
    msg
}

/// The names in `dir` (none when it does not exist).
pub fn listing(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What a node looks like before its first Prep, to check that a cycle (aborted, failed,
/// killed) leaves it so: `/var/tmp` as it was, no workspace, only the original stateroot.
pub struct Baseline {
    var_tmp: std::collections::BTreeSet<String>,
}

impl Baseline {
    pub fn of(root: &std::path::Path) -> Self {
        Self {
            var_tmp: listing(&root.join("var/tmp")),
        }
    }

    /// Panics, naming `what`, where the node differs.
    pub fn assert_again(&self, root: &std::path::Path, what: &str) {
        assert_eq!(listing(&root.join("var/tmp")), self.var_tmp, "{what}: var/tmp");
        assert!(!root.join("var/lib/lca/workspace").exists(), "{what}: workspace");
        let deployments = lca_testkit::reboot::deployments(root).expect("ostree admin status");
        let stateroots: Vec<&str> = deployments.iter().map(|d| d.stateroot.as_str()).collect();
        assert_eq!(stateroots, ["rhcos"], "{what}: deployments");
        let deploy = listing(&root.join("sysroot/ostree/deploy"));
        assert_eq!(
            deploy,
            std::collections::BTreeSet::from(["rhcos".to_string()]),
            "{what}: no orphan stateroot"
        );
    }
}
