//! SeedGenerator e2e: a real control plane with the OpenShift fixtures of a healthy SNO, the
//! operator as its ServiceAccount on a simulated seed node (real ostree sysroot), and a real
//! registry with htpasswd auth whose credentials are in the `seedgen` Secret. From
//! `seedimage` creation to `SeedGenCompleted` with the v4 seed in the registry; each
//! prerequisite rejection reproducible here; the missing `seedAuth` key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lca_api::consts::{condition_types as ct, messages as m, names};
use lca_api::{SeedGenerator, SeedGeneratorSpec};
use lca_testkit::openshift::{self as os, Kind};
use lca_testkit::seednode::SeedNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry};
use serde_json::{Value, json};

const USER: &str = "seeduser";
const PASSWORD: &str = "seedpass";
const NS: &str = names::OPERATOR_NAMESPACE;

struct Env {
    cp: ControlPlane,
    client: Client,
    node: SeedNode,
    registry: Registry,
    operator: OperatorProcess,
}

async fn setup() -> Env {
    let cp = ControlPlane::start().await.expect("control plane");
    let client = cp.client().await.expect("admin client");
    os::install(&cp).await.expect("OpenShift CRDs");
    os::healthy_sno(&client).await.expect("healthy SNO objects");
    // The signer keys, admin CA and ingress CA that seed generation backs up for recert.
    lca_testkit::prepenv::crypto_fixtures(&client)
        .await
        .expect("crypto fixtures");
    let registry = Registry::start_with_auth(USER, PASSWORD).expect("registry");
    let node = SeedNode::build(64).expect("seed node");
    node.prepare_seedgen().expect("seed node prerequisites");
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&cp).expect("operator RBAC");
    create_seedgen_secret(&client, &registry, true).await;
    // Supervised, as kubelet runs the pod: a test may kill it and sees it restarted.
    let operator = OperatorProcess::start_supervised(
        &kubeconfig,
        node.root(),
        &cp.dir().join("operator.log"),
        &cp.dir().join("operator.pid"),
        &["--node=simulated"],
    )
    .expect("operator starts");
    Env {
        cp,
        client,
        node,
        registry,
        operator,
    }
}

async fn create_seedgen_secret(client: &Client, registry: &Registry, with_auth: bool) {
    let data = if with_auth {
        json!({"seedAuth": registry.auth_json()})
    } else {
        json!({"other": "x"})
    };
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": names::SEEDGEN_SECRET, "namespace": NS},
        "stringData": data,
    }))
    .unwrap();
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let _ = api.delete(names::SEEDGEN_SECRET, &DeleteParams::default()).await;
    api.create(&PostParams::default(), &secret)
        .await
        .expect("seedgen secret");
}

impl Env {
    fn seed_image(&self) -> String {
        format!("{}/ocp/seed:4.17.0", self.registry.addr())
    }

    fn api(&self) -> Api<SeedGenerator> {
        Api::all(self.client.clone())
    }

    async fn create_cr(&self) {
        let cr = SeedGenerator::new(
            names::SEEDGEN,
            SeedGeneratorSpec {
                seed_image: self.seed_image(),
                recert_image: None,
            },
        );
        self.api()
            .create(&PostParams::default(), &cr)
            .await
            .expect("create seedimage");
    }

    async fn delete_cr(&self) {
        self.api()
            .delete(names::SEEDGEN, &DeleteParams::default())
            .await
            .expect("delete seedimage");
        self.wait_gone(Duration::from_secs(10)).await;
    }

    async fn wait_gone(&self, limit: Duration) {
        let start = Instant::now();
        while self.api().get_opt(names::SEEDGEN).await.unwrap().is_some() {
            assert!(start.elapsed() < limit, "seedimage not deleted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Poll the CR until a condition of `type_` matches (status, reason); returns its message.
    async fn wait_condition(&self, type_: &str, status: &str, reason: &str, limit: Duration) -> String {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < limit {
            if let Ok(Some(cr)) = self.api().get_opt(names::SEEDGEN).await {
                let conds = cr.status.clone().unwrap_or_default().conditions;
                if let Some(c) = conds
                    .iter()
                    .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
                {
                    return c.message.clone();
                }
                last = Some(conds);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for {type_}={status}/{reason}; last conditions {last:#?}\n--- operator log ---\n{}",
            self.operator.log()
        );
    }

    /// Wait for `SeedGenCompleted` True with the spec's message.
    async fn wait_completed(&self) {
        let msg = self
            .wait_condition(
                ct::SEEDGEN_COMPLETED,
                "True",
                "Completed",
                Duration::from_secs(180),
            )
            .await;
        assert_eq!(msg, m::SEEDGEN_COMPLETED);
    }

    /// Wait until the imager has called a host service with `needle` in its argv (the call a
    /// `lca-sim/hold` file holds); `what` names it in the failure.
    async fn wait_host_call(&self, needle: &str, what: &str) {
        let start = Instant::now();
        while !lca_testkit::hostpeer::calls(self.node.root())
            .iter()
            .any(|c| c.contains(needle))
        {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the imager never {what}\n{}",
                self.operator.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Create the CR, expect the rejection `message`, delete the CR.
    async fn expect_rejection(&self, message: &str) {
        self.create_cr().await;
        let got = self
            .wait_condition(
                ct::SEEDGEN_IN_PROGRESS,
                "False",
                "Failed",
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(got, message);
        let completed = self
            .wait_condition(ct::SEEDGEN_COMPLETED, "False", "Failed", Duration::from_secs(1))
            .await;
        assert_eq!(completed, format!("{}: {message}", m::SEEDGEN_FAILED));
        self.delete_cr().await;
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.node.root().join(from), self.node.root().join(to)).unwrap();
    }

    async fn create_object(&self, kind: Kind, ns: &str, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        let _ = namespaces.create(&PostParams::default(), &n).await;
        os::create(&self.client, kind, ns, name, json!({"spec": {}}), json!(null))
            .await
            .unwrap();
    }

    async fn delete_object(&self, kind: Kind, ns: &str, name: &str) {
        kind.api(&self.client, ns)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// A file of the pushed seed (its one layer, unpacked).
async fn seed_file(env: &Env, name: &str) -> String {
    let reference = lca_seed::parse_reference(&env.seed_image()).unwrap();
    let creds = lca_seed::Credentials::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let reg = lca_seed::SeedRegistry::new(&reference, &creds, true);
    let dir = tempfile::tempdir().unwrap();
    lca_seed::pull_and_unpack(&reg, &reference, dir.path())
        .await
        .unwrap();
    std::fs::read_to_string(dir.path().join(name)).unwrap()
}

fn skopeo_labels(env: &Env) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:{PASSWORD}"),
        ])
        .arg(format!("docker://{}", env.seed_image()))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Labels"].clone()
}

#[tokio::test]
async fn seed_image_is_generated_and_pushed() {
    let started = Instant::now();
    let env = setup().await;
    // What a seed must tell Prep about its cluster (§1.7): a proxy set by noProxy alone, the
    // user CA bundle as the Proxy's trusted CA, a mirror configuration and the install-config's
    // machine network (the ingress CA is among the crypto fixtures).
    lca_testkit::prepenv::install_config(&env.client, "seed", "example.com", "192.168.1.0/24")
        .await
        .unwrap();
    os::install_kinds(&env.cp, &[os::IMAGE_DIGEST_MIRROR_SET])
        .await
        .unwrap();
    os::create(
        &env.client,
        os::IMAGE_DIGEST_MIRROR_SET,
        "",
        "mirrors",
        json!({"spec": {"imageDigestMirrors": [{"source": "quay.io/openshift-release-dev", "mirrors": ["mirror.example.com/ocp"]}]}}),
        Value::Null,
    )
    .await
    .unwrap();
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), "openshift-config");
    let bundle = json!({"metadata": {"name": "user-ca-bundle"}, "data": {"ca-bundle.crt": "USER CA"}});
    cms.create(&Default::default(), &serde_json::from_value(bundle).unwrap())
        .await
        .unwrap();
    os::PROXY
        .api(&env.client, "")
        .patch(
            "cluster",
            &Default::default(),
            &Patch::Merge(json!({"spec": {"noProxy": ".internal.example.com", "trustedCA": {"name": "user-ca-bundle"}}})),
        )
        .await
        .unwrap();
    // An operator catalog (its index image is on the node) and an operator whose related
    // images the seed's users precache, one of them for another cloud.
    os::install_kinds(&env.cp, &[os::CATALOG_SOURCE]).await.unwrap();
    std::fs::write(
        env.node.root().join("lca-sim/images.list"),
        "quay.io/openshift/a@sha256:1\nregistry.redhat.io/redhat/redhat-operator-index:v4.17\nmirror.example.com/olm/catalog:v1\n",
    )
    .unwrap();
    os::create(
        &env.client,
        os::CATALOG_SOURCE,
        "openshift-operators",
        "edge-catalog",
        json!({"spec": {"sourceType": "grpc", "image": "mirror.example.com/olm/catalog:v1"}}),
        Value::Null,
    )
    .await
    .unwrap();
    os::create(
        &env.client,
        os::CSV,
        "openshift-operators",
        "lvms-operator.v4.17.0",
        json!({"spec": {"version": "4.17.0", "relatedImages": [
            {"name": "operator", "image": "registry.redhat.io/lvms4/lvms-rhel9-operator@sha256:2"},
            {"name": "gcp", "image": "registry.redhat.io/lvms4/disk-for-gcp@sha256:3"}]}}),
        json!({"phase": "Succeeded"}),
    )
    .await
    .unwrap();
    env.create_cr().await;
    env.wait_completed().await;
    let cr = env.api().get(names::SEEDGEN).await.unwrap();
    let conds = cr.status.unwrap().conditions;
    let in_progress = conds.iter().find(|c| c.type_ == ct::SEEDGEN_IN_PROGRESS).unwrap();
    assert_eq!(
        (
            in_progress.status.as_str(),
            in_progress.reason.as_str(),
            in_progress.message.as_str()
        ),
        ("False", "Completed", m::SEEDGEN_COMPLETED)
    );
    assert_eq!(
        conds.last().unwrap().type_,
        ct::SEEDGEN_COMPLETED,
        "State column shows the type"
    );

    let labels = skopeo_labels(&env);
    assert_eq!(labels["com.openshift.lifecycle-agent.seed_format_version"], "4");
    let info: serde_json::Value = serde_json::from_str(
        labels["com.openshift.lifecycle-agent.seed_cluster_info"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["seed_cluster_ocp_version"], os::OCP_VERSION);
    assert_eq!(info["cluster_name"], "seed");
    assert_eq!(info["base_domain"], "example.com");
    assert_eq!(info["node_ips"], json!(["192.168.1.10"]));
    assert_eq!(
        info["container_storage_mountpoint_target"],
        "/dev/disk/by-partlabel/varlibcontainers"
    );
    assert_eq!(info["has_proxy"], true, "noProxy alone is a proxy: {info}");
    assert_eq!(info["has_fips"], false);
    assert_eq!(info["mirror_registry_configured"], true);
    assert_eq!(
        info["additionalTrustBundle"],
        json!({"hasUserCaBundle": true, "proxyConfigmapName": "user-ca-bundle"})
    );
    assert_eq!(info["machine_networks"], json!(["192.168.1.0/24"]));
    assert_eq!(info["ingress_certificate_cn"], lca_testkit::prepenv::INGRESS_CN);
    assert_eq!(
        seed_file(&env, "containers.list").await,
        format!(
            "{}\nquay.io/openshift/a@sha256:1\nregistry.redhat.io/lvms4/lvms-rhel9-operator@sha256:2\n",
            names::DEFAULT_RECERT_IMAGE
        ),
        "no catalog or index image, the recert image and the related images but the cloud-specific one"
    );

    // Restored after the imager: the Secret, the original pull secret (API and node), the IBU.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    assert!(
        secrets
            .get(names::SEEDGEN_SECRET)
            .await
            .unwrap()
            .data
            .unwrap()
            .contains_key("seedAuth")
    );
    assert!(
        !env.node.root().join("var/lib/lca/ibu-seedgen-orch").exists(),
        "workspace wiped"
    );
    let mcs = os::names(&env.client, os::MACHINE_CONFIG).await.unwrap();
    assert!(
        mcs.contains(&os::RENDERED_CURRENT.to_string()) && !mcs.contains(&os::RENDERED_STALE.to_string())
    );
    aftermath::assert_seed_cluster_given_back(&env).await;
    let (ok, out, err) = kubectl(&env, &["get", "seedgen"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("SeedGenCompleted") && out.contains(m::SEEDGEN_COMPLETED),
        "{out}"
    );
    aftermath::prep_of_the_seed_elsewhere(&env).await;
    eprintln!("seed generation e2e took {:?}", started.elapsed());
}

fn kubectl(env: &Env, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", env.cp.kubeconfig().display()))
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[path = "seedgen/aftermath.rs"]
mod aftermath;
#[path = "seedgen/faults.rs"]
mod faults;
#[path = "seedgen/rejections.rs"]
mod rejections;
