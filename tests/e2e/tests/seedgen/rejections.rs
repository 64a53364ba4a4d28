//! The prerequisite rejections of spec §8.2 on one cluster, in the reference's order: break one
//! prerequisite, create `seedimage`, expect the exact message, delete it, repair. Then a
//! health failure that clears, and a `seedgen` Secret without `seedAuth`.

use super::*;

async fn remove_pv_protection(env: &Env, name: &str) {
    let pvs: Api<PersistentVolume> = Api::all(env.client.clone());
    let patch = json!({"metadata": {"finalizers": null}});
    let _ = pvs
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

#[tokio::test]
async fn prerequisites_reject_with_the_exact_messages() {
    let started = Instant::now();
    let env = setup().await;
    let bin = "lca-sim/bin";

    env.rename(&format!("{bin}/ostree"), &format!("{bin}/ostree.off"));
    env.expect_rejection(m::SEEDGEN_REJECT_SET_DEFAULT).await;
    env.rename(&format!("{bin}/ostree.off"), &format!("{bin}/ostree"));

    env.rename(&format!("{bin}/systemctl"), &format!("{bin}/systemctl.off"));
    env.expect_rejection(m::SEEDGEN_REJECT_SHARED_STORAGE).await;
    env.rename(&format!("{bin}/systemctl.off"), &format!("{bin}/systemctl"));

    os::install_kinds(&env.cp, &[os::KLUSTERLET]).await.unwrap();
    env.expect_rejection(m::SEEDGEN_REJECT_KLUSTERLET).await;
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(env.client.clone());
    crds.delete(&os::KLUSTERLET.crd_name(), &DeleteParams::default())
        .await
        .unwrap();
    let start = Instant::now();
    while crds.get_opt(&os::KLUSTERLET.crd_name()).await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "klusterlet CRD not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    env.rename(
        "usr/local/bin/dnsmasq_config.sh",
        "usr/local/bin/dnsmasq_config.off",
    );
    env.expect_rejection(m::SEEDGEN_REJECT_DNSMASQ).await;
    env.rename(
        "usr/local/bin/dnsmasq_config.off",
        "usr/local/bin/dnsmasq_config.sh",
    );

    let kubelet = env.node.root().join("var/lib/kubelet/config.json");
    let original = std::fs::read(&kubelet).unwrap();
    std::fs::write(&kubelet, names::SANITIZED_PULL_SECRET).unwrap();
    env.expect_rejection(m::SEEDGEN_REJECT_SANITIZED_PULL_SECRET)
        .await;
    std::fs::write(&kubelet, original).unwrap();

    let pvs: Api<PersistentVolume> = Api::all(env.client.clone());
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv1"}},
    }))
    .unwrap();
    pvs.create(&PostParams::default(), &pv).await.unwrap();
    env.expect_rejection(m::SEEDGEN_REJECT_PVS).await;
    pvs.delete("pv1", &DeleteParams::default()).await.unwrap();
    // No controller-manager here to drop the pv-protection finalizer.
    remove_pv_protection(&env, "pv1").await;

    os::install_kinds(&env.cp, &[os::LOCAL_VOLUME, os::LVM_CLUSTER])
        .await
        .unwrap();
    env.create_object(os::LOCAL_VOLUME, "openshift-local-storage", "lv")
        .await;
    env.expect_rejection(m::SEEDGEN_REJECT_LOCAL_VOLUMES).await;
    env.delete_object(os::LOCAL_VOLUME, "openshift-local-storage", "lv")
        .await;

    env.create_object(os::LVM_CLUSTER, "openshift-storage", "lvm")
        .await;
    env.expect_rejection(m::SEEDGEN_REJECT_LVM_CLUSTERS).await;
    env.delete_object(os::LVM_CLUSTER, "openshift-storage", "lvm")
        .await;

    env.create_object(os::DPA, names::OADP_NAMESPACE, "dpa").await;
    env.expect_rejection(m::SEEDGEN_REJECT_DPA).await;
    env.delete_object(os::DPA, names::OADP_NAMESPACE, "dpa").await;

    os::set_oadp_version(&env.client, "1.3.0").await.unwrap();
    env.expect_rejection(&format!(
        "{}{}",
        m::SEEDGEN_REJECT_OADP_VERSION,
        names::OADP_MIN_VERSION
    ))
    .await;
    os::set_oadp_version(&env.client, "1.3.1").await.unwrap();

    // Last: without a namespace controller the addon namespace never goes away.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    for ns in [
        "open-cluster-management-addon-observability",
        "open-cluster-management-addon-search",
    ] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &n).await.unwrap();
    }
    env.expect_rejection(&format!(
        "{}open-cluster-management-addon-observability, open-cluster-management-addon-search",
        m::SEEDGEN_REJECT_ACM_ADDONS
    ))
    .await;
    eprintln!("rejections e2e took {:?}", started.elapsed());
}

#[tokio::test]
async fn unhealthy_cluster_waits_then_missing_seed_auth_fails() {
    let env = setup().await;
    create_seedgen_secret(&env.client, &env.registry, false).await;
    os::set_operator_degraded(&env.client, "etcd", true)
        .await
        .unwrap();
    env.create_cr().await;
    let waiting = env
        .wait_condition(
            ct::SEEDGEN_IN_PROGRESS,
            "True",
            "InProgress",
            Duration::from_secs(20),
        )
        .await;
    let want = format!(
        "{}: one or more health checks failed: one or more ClusterOperators not yet ready: etcd",
        m::SEEDGEN_WAITING_FOR_STABLE
    );
    let start = Instant::now();
    let mut got = waiting;
    while got != want && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = env
            .wait_condition(
                ct::SEEDGEN_IN_PROGRESS,
                "True",
                "InProgress",
                Duration::from_secs(5),
            )
            .await;
    }
    assert_eq!(got, want);
    os::set_operator_degraded(&env.client, "etcd", false)
        .await
        .unwrap();
    // The health check is retried every 20 s.
    let failed = env
        .wait_condition(
            ct::SEEDGEN_IN_PROGRESS,
            "False",
            "Failed",
            Duration::from_secs(40),
        )
        .await;
    assert_eq!(failed, m::SEEDGEN_MISSING_SEED_AUTH);
    let completed = env
        .wait_condition(ct::SEEDGEN_COMPLETED, "False", "Failed", Duration::from_secs(1))
        .await;
    assert_eq!(
        completed,
        format!("Seed generation failed: {}", m::SEEDGEN_MISSING_SEED_AUTH)
    );
    // Nothing was taken apart: the Secret and the pull secret are untouched.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    assert!(secrets.get(names::SEEDGEN_SECRET).await.is_ok());
    assert_eq!(os::pull_secret(&env.client).await.unwrap(), os::PULL_SECRET);
    assert_eq!(
        env.api().get(names::SEEDGEN).await.unwrap().name_any(),
        names::SEEDGEN
    );
}
