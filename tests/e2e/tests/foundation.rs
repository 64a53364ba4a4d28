//! Foundation e2e: CRDs on a real kube-apiserver, the operator's start-up, printer columns,
//! the CEL rules of both CRDs, and the operator's behaviour without a reachable API server.

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use lca_api::consts::messages;
use lca_api::{ImageBasedUpgrade, SeedGenerator, Stage};
use lca_e2e::{Cluster, condition};

fn is_idle(ibu: &ImageBasedUpgrade) -> bool {
    condition(ibu, "Idle").is_some_and(|c| c.0 == "True")
}

#[tokio::test]
async fn crds_are_established_with_short_names() {
    let c = Cluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.client.clone());
    for (name, short) in [
        ("imagebasedupgrades.lca.openshift.io", "ibu"),
        ("seedgenerators.lca.openshift.io", "seedgen"),
    ] {
        let crd = crds.get(name).await.expect("CRD exists");
        let conds = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            conds
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"),
            "{name} Established"
        );
        assert_eq!(crd.spec.names.short_names, Some(vec![short.to_string()]));
        assert_eq!(crd.spec.scope, "Cluster");
    }
}

#[tokio::test]
async fn operator_creates_the_idle_upgrade_and_kubectl_shows_it() {
    let c = Cluster::with_operator().await;
    let ibu = c.wait_ibu("Idle=True", Duration::from_secs(30), is_idle).await;
    assert_eq!(ibu.spec.stage, Some(Stage::Idle));
    assert_eq!(
        condition(&ibu, "Idle"),
        Some(("True".into(), "Idle".into(), "Idle".into()))
    );
    let status = ibu.status.expect("status");
    assert_eq!(status.valid_next_stages, vec![Stage::Prep]);
    assert_eq!(status.conditions.len(), 1);
    assert_eq!(
        status.observed_generation,
        ibu.metadata.generation.expect("generation")
    );
    assert!(
        c.node_root().join("var/lib/lca").is_dir(),
        "the operator prepares var/lib/lca on the node"
    );

    let (ok, out, err) = c.kubectl(&["get", "ibu"]);
    assert!(ok, "kubectl get ibu: {err}");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE", "DESIRED", "STAGE", "STATE", "DETAILS"]);
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(row[0], "upgrade");
    assert_eq!(&row[2..], ["Idle", "Idle", "Idle"]);
}

#[tokio::test]
async fn cel_rejects_a_second_ibu_and_a_premature_upgrade() {
    let c = Cluster::with_operator().await;
    c.wait_ibu("Idle=True", Duration::from_secs(30), is_idle).await;

    let (ok, _, err) = c.kubectl_apply(
        "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: other\nspec:\n  stage: Idle\n",
    );
    assert!(!ok, "a second IBU must be rejected");
    assert!(err.contains(messages::IBU_SINGLETON), "{err}");

    let (ok, _, err) = c.kubectl(&[
        "patch",
        "ibu",
        "upgrade",
        "--type=merge",
        "-p",
        r#"{"spec":{"stage":"Upgrade"}}"#,
    ]);
    assert!(!ok, "Idle -> Upgrade must be rejected");
    assert!(err.contains(messages::STAGE_TRANSITION_NOT_PERMITTED), "{err}");

    let (ok, _, err) = c.kubectl(&[
        "patch",
        "ibu",
        "upgrade",
        "--type=merge",
        "-p",
        r#"{"spec":{"stage":"Sideways"}}"#,
    ]);
    assert!(!ok, "unknown stage values are refused by the schema");
    assert!(err.contains("Unsupported value: \"Sideways\""), "{err}");

    let ibu = c.ibus().get("upgrade").await.expect("ibu");
    assert_eq!(
        ibu.spec.stage,
        Some(Stage::Idle),
        "rejected requests change nothing"
    );
}

#[tokio::test]
async fn seedgenerator_is_a_singleton_with_an_immutable_spec() {
    let c = Cluster::start().await;
    let (ok, _, err) = c.kubectl_apply(
        "apiVersion: lca.openshift.io/v1\nkind: SeedGenerator\nmetadata:\n  name: other\nspec:\n  seedImage: quay.io/example/seed:4.17\n",
    );
    assert!(!ok);
    assert!(err.contains(messages::SEEDGEN_SINGLETON), "{err}");

    let api: Api<SeedGenerator> = Api::all(c.client.clone());
    let sg: SeedGenerator = serde_json::from_value(serde_json::json!({
        "apiVersion": "lca.openshift.io/v1", "kind": "SeedGenerator",
        "metadata": {"name": "seedimage"}, "spec": {"seedImage": "quay.io/example/seed:4.17"}
    }))
    .expect("valid SeedGenerator");
    api.create(&PostParams::default(), &sg)
        .await
        .expect("seedimage is accepted");
    let (ok, _, err) = c.kubectl(&[
        "patch",
        "seedgen",
        "seedimage",
        "--type=merge",
        "-p",
        r#"{"spec":{"seedImage":"quay.io/example/seed:4.18"}}"#,
    ]);
    assert!(!ok, "the spec is immutable");
    assert!(err.contains(messages::SEEDGEN_SPEC_IMMUTABLE), "{err}");
}

/// The metrics endpoint serves the certificate mounted in `--metrics-tls-cert-dir` (the
/// service CA's Secret on OpenShift) and the new one as soon as it is rotated, without a
/// restart.
#[tokio::test]
async fn metrics_serve_the_mounted_certificate_and_its_rotation() {
    let certs = tempfile::tempdir().expect("cert dir");
    let issue = |name: &str| {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
        let ca = certs.path().join(name);
        std::fs::write(&ca, made.cert.pem()).expect("ca");
        // Written aside and renamed in, as the kubelet swaps a Secret volume's files.
        let staged = certs.path().join("staged");
        std::fs::create_dir_all(&staged).expect("staged");
        std::fs::write(staged.join("tls.crt"), made.cert.pem()).expect("crt");
        std::fs::write(staged.join("tls.key"), made.signing_key.serialize_pem()).expect("key");
        let dir = certs.path().join("mounted");
        std::fs::create_dir_all(&dir).expect("mounted");
        std::fs::rename(staged.join("tls.key"), dir.join("tls.key")).expect("key in");
        std::fs::rename(staged.join("tls.crt"), dir.join("tls.crt")).expect("crt in");
        ca
    };
    let first = issue("first.pem");
    let mut c = Cluster::start().await;
    let dir = certs.path().join("mounted");
    c.start_operator_with(&[&format!("--metrics-tls-cert-dir={}", dir.display())]);
    c.wait_ibu("Idle=True", Duration::from_secs(30), is_idle).await;
    let token = c.account_token("metrics-reader", Some("lifecycle-agent-metrics-reader"));
    let (code, body) = c.scrape_trusting("/metrics", Some(&token), Some(&first));
    assert_eq!(code, 200, "{body}");
    let second = issue("second.pem");
    let (code, body) = c.scrape_trusting("/metrics", Some(&token), Some(&second));
    assert_eq!(code, 200, "the rotated certificate is served: {body}");
    assert_eq!(
        c.scrape_trusting("/metrics", Some(&token), Some(&first)).0,
        0,
        "the old one no longer"
    );
}

#[tokio::test]
async fn operator_stops_gracefully_on_sigterm_and_serves_probes() {
    let mut c = Cluster::with_operator().await;
    c.wait_ibu("Idle=True", Duration::from_secs(30), is_idle).await;
    assert!(c.probe("/healthz").ends_with("\r\n\r\nok"));
    assert!(c.probe("/readyz").starts_with("HTTP/1.1 200 OK"));
    assert!(c.probe("/nope").starts_with("HTTP/1.1 404"));
    assert!(
        c.probe("/metrics").starts_with("HTTP/1.1 404"),
        "metrics are not on the plain probe port"
    );
    // The HTTPS metrics endpoint asks the API server about every scraper.
    assert_eq!(c.scrape("/metrics", None), (401, "Unauthorized".into()));
    assert_eq!(c.scrape("/metrics", Some("not-a-token")).0, 401);
    let stranger = c.account_token("stranger", None);
    assert_eq!(c.scrape("/metrics", Some(&stranger)), (403, "Forbidden".into()));
    let text = c.metrics();
    assert!(
        text.contains("lca_reconcile_total{controller=\"imagebasedupgrade\"}"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text: {text}");
    let reader = c.account_token("metrics-reader", None);
    assert_eq!(
        c.scrape("/debug", Some(&reader)).0,
        403,
        "the reader role grants /metrics only"
    );
    let op = c.operator.take().expect("operator");
    let start = Instant::now();
    op.terminate();
    while op.alive() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!op.alive(), "the operator exits after SIGTERM");
    assert!(op.log().contains("shutting down"), "{}", op.log());
}

fn run_operator(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let bin = lca_testkit::assets::workspace_binary("lca-operator").expect("operator binary");
    let node = tempfile::tempdir().expect("tmp");
    let out = Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", node.path())
        .envs(env.iter().copied())
        .arg(format!("--host-root={}", node.path().display()))
        .arg("--health-addr=127.0.0.1:0")
        .args(args)
        .output()
        .expect("operator runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_kubeconfig_is_a_one_line_error() {
    let (ok, err) = run_operator(&[("KUBECONFIG", "/nonexistent/kubeconfig")], &[]);
    assert!(!ok);
    let line = err.lines().last().expect("an error line");
    assert!(
        line.starts_with(
            "lca-operator: no Kubernetes configuration: tried the in-cluster service account and KUBECONFIG"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
}

#[test]
fn unreachable_api_server_is_a_one_line_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: x\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
    )
    .expect("write kubeconfig");
    let (ok, err) = run_operator(
        &[("KUBECONFIG", kc.to_str().expect("utf8"))],
        &["--startup-timeout=1s"],
    );
    assert!(!ok);
    let line = err.lines().last().expect("an error line");
    assert!(
        line.starts_with("lca-operator: API server https://127.0.0.1:1/ unreachable after 1s"),
        "{err}"
    );
}
