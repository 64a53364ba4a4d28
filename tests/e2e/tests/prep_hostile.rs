//! Prep under hostile input, end to end (issue: Prep hardening): malformed and malicious
//! manifest ConfigMaps, references to missing objects, over-long and unsafe spec values.
//! Each case must fail Prep with a message naming what is wrong (also in the `PrepCompleted`
//! message the hub reads), keep the operator answering and its memory bounded, and leave
//! the node as it was.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use lca_e2e::condition;
use lca_e2e::prep::{
    Env, SEED_VERSION, abort, env_with_seed, prep_fails_with, prep_failure, start_prep,
    start_prep_with_image, wait_prep_completed,
};

const T: Duration = Duration::from_secs(120);
const NS: &str = "openshift-lifecycle-agent";

async fn config_map(e: &Env, name: &str, key: &str, value: &str) {
    let cms: Api<ConfigMap> = Api::namespaced(e.c.client.clone(), NS);
    let cm = serde_json::json!({"metadata": {"name": name}, "data": {key: value}});
    cms.create(&PostParams::default(), &serde_json::from_value(cm).expect("cm"))
        .await
        .expect("create cm");
}

/// Peak resident memory of the operator so far (`VmHWM`), in KiB.
fn operator_peak_kib(e: &Env) -> u64 {
    let pid = e.c.operator.as_ref().expect("operator").pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("operator status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn extra_manifests(name: &str) -> String {
    format!("  extraManifests:\n  - name: {name}\n    namespace: {NS}\n")
}

fn alias_bomb() -> String {
    let mut y = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let mut prev = "a";
    for n in ["b", "c", "d", "e", "f", "g", "h", "i", "j"] {
        let refs = vec![format!("*{prev}"); 9].join(",");
        y.push_str(&format!("{n}: &{n} [{refs}]\n"));
        prev = n;
    }
    y
}

#[tokio::test]
async fn malformed_manifest_config_maps_fail_prep_clearly_with_bounded_memory() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let prefix = "failed to validate IBU spec: failed to validate extramanifest cms: ";
    let list: String = (0..500)
        .map(|i| format!("- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c{i}}}\n"))
        .collect();
    let cases: Vec<(&str, &str, String, String)> = vec![
        (
            "em-abc",
            "m.yaml",
            "a: b: c\n".into(),
            format!("{prefix}failed to decode m.yaml in the configMap {NS}/em-abc: mapping values are not allowed"),
        ),
        (
            "em-bomb",
            "bomb.yaml",
            alias_bomb(),
            format!("{prefix}failed to decode bomb.yaml in the configMap {NS}/em-bomb: "),
        ),
        (
            "em-list",
            "list.yaml",
            list,
            format!("{prefix}failed to decode list.yaml in the configMap {NS}/em-list: document 1 is a list, not a Kubernetes object"),
        ),
        (
            "em-wave",
            "w.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w\n  namespace: default\n  annotations:\n    lca.openshift.io/apply-wave: \"abc\"\n".into(),
            format!("{prefix}ConfigMap[w] in w.yaml of the configMap {NS}/em-wave: invalid lca.openshift.io/apply-wave annotation \"abc\": must be an integer"),
        ),
    ];
    let mut peaks = Vec::new();
    for (name, key, value, want) in &cases {
        config_map(&e, name, key, value).await;
        prep_fails_with(&e, &extra_manifests(name), |m| m.starts_with(want.as_str()), name).await;
        peaks.push((*name, operator_peak_kib(&e)));
    }
    // The same malformed value as OADP content (with OADP installed and configured).
    use lca_testkit::openshift::{self as os, BACKUP_STORAGE_LOCATION, DPA};
    let reconciled = serde_json::json!({"conditions": [{"type": "Reconciled", "status": "True",
        "reason": "Complete", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    os::create(
        &e.c.client,
        DPA,
        "openshift-adp",
        "dpa",
        serde_json::json!({"spec": {}}),
        reconciled,
    )
    .await
    .expect("DPA");
    let available = serde_json::json!({"phase": "Available"});
    os::create(
        &e.c.client,
        BACKUP_STORAGE_LOCATION,
        "openshift-adp",
        "bsl",
        serde_json::json!({"spec": {}}),
        available,
    )
    .await
    .expect("BSL");
    config_map(&e, "oadp-abc", "b.yaml", "a: b: c\n").await;
    let oadp = format!("  oadpContent:\n  - name: oadp-abc\n    namespace: {NS}\n");
    prep_fails_with(
        &e,
        &oadp,
        |m| {
            m.starts_with(&format!(
                "failed to validate IBU spec: failed to validate oadp configMap: failed to decode b.yaml in the configMap {NS}/oadp-abc: mapping values"
            ))
        },
        "oadp-abc",
    )
    .await;
    peaks.push(("oadp-abc", operator_peak_kib(&e)));
    // A reference to a ConfigMap that does not exist reads as the API server says it.
    prep_fails_with(
        &e,
        &extra_manifests("em-nosuch"),
        |m| {
            m == format!("{prefix}the extraManifests configMap is not found, error: configmaps \"em-nosuch\" not found. Please create the configMap.")
        },
        "em-nosuch",
    )
    .await;
    println!("operator peak RSS after each bad ConfigMap (KiB): {peaks:?}");
    let (_, peak) = peaks.last().copied().expect("peaks");
    assert!(peak < 256 * 1024, "operator memory stays bounded: {peaks:?}");
}

#[tokio::test]
async fn unsafe_or_over_long_seed_references_fail_with_a_readable_message() {
    let e = env_with_seed(SEED_VERSION, false).await;
    // A version that would not make a safe stateroot name.
    for version in ["4.18.0-a/../../x", "4.18.0+.."] {
        start_prep_with_image(&e, &e.seed, version, "");
        let ibu = e.c.wait_ibu(version, T, |i| prep_failure(i).is_some()).await;
        assert_eq!(
            prep_failure(&ibu).expect("failure"),
            format!(
                "failed to validate IBU spec: failed to validate seed image OCP version: invalid version {version:?}"
            )
        );
        abort(&e).await;
    }
    // A 40 KB image reference: the message is cut, but the status is written.
    let image = format!("{}/{}:v1", e.registry.addr(), "a".repeat(40_000));
    start_prep_with_image(&e, &image, SEED_VERSION, "");
    let ibu =
        e.c.wait_ibu("long reference", T, |i| prep_failure(i).is_some())
            .await;
    let msg = prep_failure(&ibu).expect("failure");
    assert!(msg.len() <= 32768, "{}", msg.len());
    assert!(
        msg.starts_with("failed to validate seed image info: "),
        "{}",
        &msg[..200]
    );
    assert!(
        msg.ends_with("more bytes)"),
        "says it was cut: {}",
        &msg[msg.len() - 80..]
    );
    let done = condition(&ibu, "PrepCompleted").expect("completed").2;
    assert!(done.starts_with("Prep failed: failed to validate seed image info: ") && done.len() <= 32768);
    abort(&e).await;
}

#[tokio::test]
async fn extra_manifests_of_ordinary_kinds_pass_their_dry_run_as_the_node_admin() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let manifests = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app-ns\n  annotations:\n    lca.openshift.io/apply-wave: \"1\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secret\n  namespace: app-ns\n  annotations:\n    lca.openshift.io/apply-wave: \"2\"\nstringData:\n  k: v\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: default\ndata:\n  k: v\n---\napiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: app-backup\n  namespace: openshift-adp\nspec: {}\n";
    config_map(&e, "em-ordinary", "apps.yaml", manifests).await;
    start_prep(&e, SEED_VERSION, &extra_manifests("em-ordinary"));
    let ibu = wait_prep_completed(&e).await;
    let annotations = ibu.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.contains_key("extra-manifest.lca.openshift.io/validation-warning"),
        "{annotations:?}"
    );
    // Dry runs create nothing; the namespace made for the Secret's dry run is gone again.
    let (_, out, _) =
        e.c.kubectl(&["get", "cm", "app-config", "-n", "default", "--ignore-not-found"]);
    assert!(out.trim().is_empty(), "{out}");
    let (_, out, _) = e.c.kubectl(&[
        "get",
        "ns",
        "app-ns",
        "-o",
        "jsonpath={.status.phase}",
        "--ignore-not-found",
    ]);
    assert!(out.trim().is_empty() || out.trim() == "Terminating", "{out}");
}
