//! must-gather (user doc §15.3.4.1): the image's `gather` scripts run against the local
//! environment after a failed Prep collect the IBU, the operator namespace's objects and
//! events and the node's LCA files in the conventional layout, never a secret value; with
//! the API server unreachable they still collect the node's files and say what they could
//! not reach.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use lca_e2e::prep::{SEED_VERSION, env_with_seed, prep_failure, start_prep};
use lca_testkit::assets;

const NS: &str = lca_api::consts::names::OPERATOR_NAMESPACE;
/// Values that must never leave the cluster or the node through must-gather.
const SECRETS: [&str; 3] = [
    "c2VlZC1wdWxsLW1hcmtlcg",
    "seedauth-marker-8f3",
    "workspace-marker-2c1",
];

fn gather(out: &Path, kubeconfig: &Path, host_root: &Path) -> std::process::Output {
    Command::new(assets::repo_root().join("must-gather/gather"))
        .env("BASE_COLLECTION_PATH", out)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECTL", "kubectl")
        .env("LCA_HOST_ROOT", host_root)
        .output()
        .expect("gather runs")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.extend(files(&p));
        } else {
            all.push(p);
        }
    }
    all
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn must_gather_after_a_failed_prep_collects_everything_but_secrets() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    // Secrets where a careless gather would find them: a Secret in the operator's namespace, the seed generator's auth file and Prep's seed pull secret on the node.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "seed-pull", "namespace": NS},
        "data": {"token": format!("{}==", SECRETS[0])},
    }))
    .unwrap();
    Api::<Secret>::namespaced(e.c.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let orch = root.join("var/lib/lca/ibu-seedgen-orch");
    std::fs::create_dir_all(&orch).unwrap();
    std::fs::write(orch.join("auth.json"), SECRETS[1]).unwrap();
    std::fs::write(orch.join("seed-cluster-info.json"), r#"{"cluster_name":"seed"}"#).unwrap();

    // The seed is 4.18.0, the spec says 4.19.0: the stateroot setup task fails.
    start_prep(&e, "4.19.0", "");
    let ibu =
        e.c.wait_ibu("Prep failed", Duration::from_secs(120), |i| {
            prep_failure(i).is_some()
        })
        .await;
    let failure = prep_failure(&ibu).unwrap();
    let workspace = root.join("var/lib/lca/workspace");
    std::fs::write(workspace.join("seed-pull-secret"), SECRETS[2]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("must-gather");
    let run = gather(&out, e.c.cp.kubeconfig(), &root);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lca = out.join("cluster-scoped-resources/lca.openshift.io");
    let gathered: lca_api::ImageBasedUpgrade = serde_norway::from_str(&read(
        lca.join("imagebasedupgrades.lca.openshift.io/upgrade.yaml"),
    ))
    .unwrap();
    assert_eq!(prep_failure(&gathered), Some(failure));
    let nsdir = out.join(format!("namespaces/{NS}"));
    assert!(read(nsdir.join("core/events.yaml")).contains("kind: List"));
    assert!(lca.join("imagebasedupgrade-events.yaml").is_file());
    let node = out.join("node");
    assert!(read(node.join("ostree-admin-status.txt")).contains("rhcos"));
    assert_eq!(
        read(node.join("seed-cluster-info.json")),
        r#"{"cluster_name":"seed"}"#
    );
    let tasks = std::fs::read_dir(workspace.join("tasks")).unwrap();
    for t in tasks {
        let name = t.unwrap().file_name();
        let log = node.join("tasks").join(&name).join("log");
        assert!(log.is_file(), "{name:?} log gathered");
    }
    assert!(
        !out.join("gather-errors.txt").exists()
            || !read(out.join("gather-errors.txt")).contains("unreachable"),
        "the API server was reachable"
    );
    for f in files(&out) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for s in SECRETS {
            assert!(!text.contains(s), "secret {s} in {}", f.display());
        }
    }

    // The API server unreachable (a kubeconfig whose server refuses connections): the node's
    // files are still collected, and the errors say what was not.
    let kubeconfig = std::fs::read_to_string(e.c.cp.kubeconfig()).unwrap();
    let dead = dir.path().join("dead.kubeconfig");
    std::fs::write(&dead, kubeconfig.replace(e.c.cp.server(), "https://127.0.0.1:1")).unwrap();
    let out = dir.path().join("must-gather-down");
    let run = gather(&out, &dead, &root);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let errors = read(out.join("gather-errors.txt"));
    assert!(
        errors.contains("gather_lca: API server unreachable, cluster objects and pod logs not collected"),
        "{errors}"
    );
    assert!(read(out.join("node/ostree-admin-status.txt")).contains("rhcos"));
    assert!(!out.join("cluster-scoped-resources").exists());
}
