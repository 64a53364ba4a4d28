use proptest::prelude::*;
use serde_json::json;

use super::*;

fn target(group: &str, version: &str, resource: &str, namespace: &str, name: &str) -> LabelTarget {
    LabelTarget {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[test]
fn the_seed_documents_klusterlet_list_parses_in_all_its_shapes() {
    let value = "apps/v1/deployments/open-cluster-management-agent/klusterlet,v1/secrets/open-cluster-management-agent/bootstrap-hub-kubeconfig,rbac.authorization.k8s.io/v1/clusterroles/klusterlet,rbac.authorization.k8s.io/v1/clusterrolebindings/system:openshift:scc:test";
    assert_eq!(
        parse_apply_label(value).unwrap(),
        vec![
            target(
                "apps",
                "v1",
                "deployments",
                "open-cluster-management-agent",
                "klusterlet"
            ),
            target(
                "",
                "v1",
                "secrets",
                "open-cluster-management-agent",
                "bootstrap-hub-kubeconfig"
            ),
            target(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterroles",
                "",
                "klusterlet"
            ),
            target(
                "rbac.authorization.k8s.io",
                "v1",
                "clusterrolebindings",
                "",
                "system:openshift:scc:test"
            ),
        ]
    );
}

#[test]
fn an_object_listed_twice_is_labelled_once() {
    let got = parse_apply_label("v1/secrets/ns/a,v1/secrets/ns/b, v1/secrets/ns/a").unwrap();
    let names: Vec<&str> = got.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn three_parts_name_a_core_cluster_scoped_object() {
    let got = parse_apply_label("v1/namespaces/app").unwrap();
    assert_eq!(got, vec![target("", "v1", "namespaces", "", "app")]);
    assert_eq!(got[0].api_version(), "v1");
}

#[test]
fn entries_are_trimmed_around_commas() {
    let got = parse_apply_label(" v1/configmaps/app/a , apps/v1/deployments/app/d").unwrap();
    assert_eq!(got[0].name, "a");
    assert_eq!(got[1].api_version(), "apps/v1");
}

#[test]
fn other_shapes_are_refused_with_upstreams_message() {
    for bad in [
        "v1 /secrets/ns/n",
        "v1/configmaps",
        "a/b/c/d/e/f",
        "",
        "v1//app/a",
        "v1/configmaps/app/a,",
        "/",
    ] {
        let err = parse_apply_label(bad).unwrap_err();
        assert!(
            err.starts_with("invalid apply-label obj in annotation value: "),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        parse_apply_label("v1/configmaps,v1/secrets/app/s").unwrap_err(),
        "invalid apply-label obj in annotation value: v1/configmaps"
    );
}

#[test]
fn phases_are_classified_as_velero_defines_them() {
    assert_eq!(classify("Completed"), Progress::Succeeded);
    for p in ["FailedValidation", "PartiallyFailed", "Failed"] {
        assert_eq!(classify(p), Progress::Failed);
    }
    assert_eq!(classify(""), Progress::Pending);
    for p in ["New", "InProgress", "WaitingForPluginOperations", "Finalizing"] {
        assert_eq!(classify(p), Progress::Running);
    }
}

fn wave(items: &[(&str, Option<Progress>)]) -> Vec<(String, Option<Progress>)> {
    items.iter().map(|(n, p)| (n.to_string(), *p)).collect()
}

#[test]
fn a_failed_object_fails_the_wave_naming_every_failure() {
    let w = wave(&[
        ("a", Some(Progress::Failed)),
        ("b", Some(Progress::Running)),
        ("c", Some(Progress::Failed)),
    ]);
    assert_eq!(
        judge(Work::Backup, &w),
        WaveVerdict::Failed("Failed backup CRs: a,c".into())
    );
    assert_eq!(
        judge(Work::Restore, &w),
        WaveVerdict::Failed("Failed restore CRs: a,c".into())
    );
}

#[test]
fn running_is_polled_sooner_than_pending_or_unsynced() {
    let running = wave(&[("a", Some(Progress::Pending)), ("b", Some(Progress::Running))]);
    assert_eq!(judge(Work::Backup, &running), WaveVerdict::Wait(RUNNING_POLL));
    let pending = wave(&[("a", Some(Progress::Succeeded)), ("b", Some(Progress::Pending))]);
    assert_eq!(judge(Work::Backup, &pending), WaveVerdict::Wait(PENDING_POLL));
    let unsynced = wave(&[("a", None)]);
    assert_eq!(judge(Work::Restore, &unsynced), WaveVerdict::Wait(PENDING_POLL));
    let done = wave(&[("a", Some(Progress::Succeeded))]);
    assert_eq!(judge(Work::Restore, &done), WaveVerdict::Done);
}

#[test]
fn waves_follow_the_apply_wave_then_the_name() {
    let objects: Vec<(String, Option<i64>)> = vec![
        ("app".into(), Some(4)),
        ("acm".into(), None),
        ("lvm".into(), Some(2)),
        ("cluster".into(), Some(2)),
    ];
    assert_eq!(waves(&objects), vec![vec![3, 2], vec![0], vec![1]]);
}

#[test]
fn a_backup_gets_the_cluster_label_and_a_selector_only_when_it_labels_objects() {
    let mut b = json!({"metadata": {"name": "acm-klusterlet", "labels": {"velero.io/storage-location": "default"}},
                       "spec": {"includedNamespaces": ["x"]}});
    prepare_backup(&mut b, "id-1", true);
    assert_eq!(b["metadata"]["labels"]["config.openshift.io/clusterID"], "id-1");
    assert_eq!(b["metadata"]["labels"]["velero.io/storage-location"], "default");
    assert_eq!(
        b["spec"]["labelSelector"]["matchLabels"]["lca.openshift.io/backup"],
        "acm-klusterlet"
    );
    assert_eq!(b["spec"]["includedNamespaces"][0], "x");
    let mut plain = json!({"metadata": {"name": "app"}});
    prepare_backup(&mut plain, "id-1", false);
    assert!(plain.pointer("/spec/labelSelector").is_none());
}

#[test]
fn only_topolvm_volumes_reclaimed_with_delete_are_retained() {
    let pv = |policy: &str, by: &str| {
        json!({"metadata": {"annotations": {"pv.kubernetes.io/provisioned-by": by}},
               "spec": {"persistentVolumeReclaimPolicy": policy}})
    };
    assert!(pv_needs_retain(&pv("Delete", "topolvm.io")));
    assert!(!pv_needs_retain(&pv("Retain", "topolvm.io")));
    assert!(!pv_needs_retain(&pv("Delete", "kubernetes.io/no-provisioner")));
    let marked = json!({"metadata": {"annotations": {"lca.openshift.io/updated-reclaim-policy": "true"}}});
    assert!(pv_was_retained(&marked));
    assert!(!pv_was_retained(&pv("Retain", "topolvm.io")));
}

#[test]
fn restore_waves_are_read_in_numeric_order() {
    let names: Vec<String> = ["restore10", "restore2", "stray", "restore1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        restore_group_order(&names),
        vec!["restore1", "restore2", "restore10"]
    );
    assert_eq!(
        restore_path(2, 1, "test-app", "openshift-adp"),
        "restore2/1_test-app_openshift-adp.yaml"
    );
}

proptest! {
    /// Whatever the text, the parser ends with objects whose every part is non-empty and
    /// has no `/` or `,`, or with upstream's message.
    #[test]
    fn any_value_parses_to_clean_parts_or_the_message(value in "[a-z0-9./,:-]{0,60}") {
        match parse_apply_label(&value) {
            Ok(targets) => for t in targets {
                for part in [&t.version, &t.resource, &t.name] {
                    prop_assert!(!part.is_empty() && !part.contains('/') && !part.contains(','));
                }
            },
            Err(e) => prop_assert!(e.starts_with("invalid apply-label obj in annotation value: ")),
        }
    }
}
