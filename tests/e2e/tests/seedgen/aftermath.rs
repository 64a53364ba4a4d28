//! After seed generation: the seed cluster as its users find it again (spec §8.4, §8.5 step
//! 12), and the made seed judged by Prep on a cluster set up differently (§5.2).

use super::*;

/// kubelet enabled and started last, the original pull secret back (API and node), the
/// SeedGenerator restored, the IBU re-created Idle, and no work dir left on the node.
pub async fn assert_seed_cluster_given_back(env: &Env) {
    let root = env.node.root();
    let calls = lca_testkit::hostpeer::calls(root);
    assert_eq!(
        calls.last().map(String::as_str),
        Some("systemctl enable kubelet.service --now"),
        "{calls:#?}"
    );
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/kubelet.service")
            .is_symlink(),
        "kubelet enabled again"
    );
    assert_eq!(os::pull_secret(&env.client).await.unwrap(), os::PULL_SECRET);
    let kubelet = std::fs::read_to_string(root.join("var/lib/kubelet/config.json")).unwrap();
    assert_eq!(kubelet, os::PULL_SECRET);
    assert!(env.api().get_opt(names::SEEDGEN).await.unwrap().is_some());
    for dir in [
        "var/tmp/backup",
        "var/tmp/checks",
        "var/tmp/seed-blobs",
        "var/tmp/backupCertsDir",
        "var/seed_data",
    ] {
        assert!(!root.join(dir).exists(), "{dir} left on the seed node");
    }
    let ibus: Api<lca_api::ImageBasedUpgrade> = Api::all(env.client.clone());
    let start = Instant::now();
    loop {
        let ibu = ibus.get_opt(names::IBU).await.unwrap();
        let idle = ibu.as_ref().is_some_and(|i| {
            i.spec.stage == Some(lca_api::Stage::Idle)
                && i.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Idle" && c.status == "True")
                })
        });
        if idle {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "IBU not re-created Idle: {ibu:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prep of the seed just made, on this cluster set up as an older target: first without
/// the proxy the seed has, then with it but without the seed's user CA bundle. Each Prep
/// fails before pulling with the §5.2 message, and an abort brings the IBU back to Idle.
pub async fn prep_of_the_seed_elsewhere(env: &Env) {
    let root = env.node.root();
    // Prep's node side: the workspace and the IBU dnsmasq script are there; the seed's
    // registry credentials come from a pull-secret reference.
    os::set_cluster_version(&env.client, "4.16.0").await.unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "seed-pull", "namespace": NS},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": env.registry.auth_json()},
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let proxy = |spec: Value| async move {
        os::PROXY
            .api(&env.client, "")
            .patch(
                "cluster",
                &Default::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap();
    };
    proxy(json!({"noProxy": null, "trustedCA": null})).await;
    let no_proxy = prep_fails(env).await;
    assert_eq!(
        no_proxy,
        "failed to validate seed image info: seed image has a proxy but the cluster being upgraded does not, this combination is not supported"
    );
    proxy(json!({"noProxy": ".internal.example.com"})).await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), "openshift-config");
    cms.delete("user-ca-bundle", &DeleteParams::default())
        .await
        .unwrap();
    let no_bundle = prep_fails(env).await;
    assert_eq!(
        no_bundle,
        "failed to validate seed image info: seed image has an openshift-config/user-ca-bundle configmap but the cluster being upgraded does not, this combination is not supported"
    );
    assert!(
        !root.join("var/lib/lca/workspace/seed-pull-secret").exists(),
        "the seed pull secret is not kept"
    );
}

/// Apply `stage: Prep` with the made seed, wait for its failure, abort; the failure message.
async fn prep_fails(env: &Env) -> String {
    let yaml = format!(
        "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: upgrade\nspec:\n  stage: Prep\n  seedImageRef:\n    version: {}\n    image: {}\n    pullSecretRef:\n      name: seed-pull\n",
        os::OCP_VERSION,
        env.seed_image()
    );
    let out = kubectl_stdin(env, &["apply", "-f", "-"], &yaml);
    assert!(out.0, "{}", out.2);
    let ibus: Api<lca_api::ImageBasedUpgrade> = Api::all(env.client.clone());
    let start = Instant::now();
    let message = loop {
        let ibu = ibus.get(names::IBU).await.unwrap();
        let failed = ibu
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .find(|c| c.type_ == "PrepInProgress" && c.reason == "Failed");
        if let Some(c) = failed {
            break c.message.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prep did not fail: {:?}\n{}",
            ibu.status,
            env.operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = kubectl(
        env,
        &[
            "patch",
            "ibu",
            "upgrade",
            "--type=merge",
            "-p",
            r#"{"spec":{"stage":"Idle"}}"#,
        ],
    );
    assert!(out.0, "{}", out.2);
    let start = Instant::now();
    loop {
        let ibu = ibus.get(names::IBU).await.unwrap();
        let conditions = ibu.status.map(|s| s.conditions).unwrap_or_default();
        if conditions.iter().any(|c| c.type_ == "Idle" && c.status == "True") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "abort did not end: {conditions:#?}\n{}",
            env.operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    message
}

fn kubectl_stdin(env: &Env, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", env.cp.kubeconfig().display()))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
