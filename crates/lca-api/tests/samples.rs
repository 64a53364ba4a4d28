//! The CRs users write, from the user documentation and `config/samples/`, deserialize into
//! our types and survive a round trip; the generated CRDs carry the contract's rules.

use lca_api::{ImageBasedUpgrade, SeedGenerator, Stage};

const DOC_IBU: &str = r#"
apiVersion: lca.openshift.io/v1
kind: ImageBasedUpgrade
metadata:
  name: upgrade
spec:
  stage: Idle
  seedImageRef:
    version: 4.17.0
    image: quay.io/example/seed:4.17.0
    pullSecretRef:
      name: seed-pull-secret
  autoRollbackOnFailure: {}
#    initMonitorTimeoutSeconds: 1800
  extraManifests:
  - name: example-extra-manifests
    namespace: openshift-lifecycle-agent
  oadpContent:
  - name: oadp-cm-example
    namespace: openshift-adp
"#;

const DOC_IBU_ANNOTATED: &str = r#"
apiVersion: lca.openshift.io/v1
kind: ImageBasedUpgrade
metadata:
  annotations:
    lca.openshift.io/target-ocp-version-manifest-count: "5"
  name: upgrade
spec:
  stage: Prep
  seedImageRef:
    version: 4.17.0
    image: quay.io/example/seed:4.17.0
  autoRollbackOnFailure:
    initMonitorTimeoutSeconds: 1800
"#;

const DOC_SEEDGEN: &str = r#"
apiVersion: lca.openshift.io/v1
kind: SeedGenerator
metadata:
  name: seedimage
spec:
  seedImage: quay.io/example/seed-container-image:4.17.0
"#;

#[test]
fn documented_ibu_deserializes_and_round_trips() {
    let ibu: ImageBasedUpgrade = serde_norway::from_str(DOC_IBU).expect("doc IBU parses");
    assert_eq!(ibu.spec.stage, Some(Stage::Idle));
    assert_eq!(
        ibu.spec
            .seed_image_ref
            .pull_secret_ref
            .as_ref()
            .map(|p| p.name.as_str()),
        Some("seed-pull-secret")
    );
    assert_eq!(
        ibu.spec
            .auto_rollback_on_failure
            .as_ref()
            .map(|a| a.init_monitor_timeout_seconds),
        Some(0)
    );
    assert_eq!(ibu.spec.extra_manifests[0].namespace, "openshift-lifecycle-agent");
    assert_eq!(ibu.spec.oadp_content[0].name, "oadp-cm-example");
    let json = serde_json::to_value(&ibu).expect("serializes");
    assert_eq!(
        json["spec"]["autoRollbackOnFailure"],
        serde_json::json!({}),
        "an empty object stays present"
    );
    let back: ImageBasedUpgrade = serde_json::from_value(json).expect("round trip");
    assert_eq!(back.spec, ibu.spec);

    let annotated: ImageBasedUpgrade =
        serde_norway::from_str(DOC_IBU_ANNOTATED).expect("annotated IBU parses");
    assert_eq!(annotated.spec.stage, Some(Stage::Prep));
    assert_eq!(
        annotated
            .spec
            .auto_rollback_on_failure
            .map(|a| a.init_monitor_timeout_seconds),
        Some(1800)
    );
}

#[test]
fn documented_seedgenerator_deserializes() {
    let sg: SeedGenerator = serde_norway::from_str(DOC_SEEDGEN).expect("doc SeedGenerator parses");
    assert_eq!(sg.spec.seed_image, "quay.io/example/seed-container-image:4.17.0");
    assert_eq!(sg.spec.recert_image, None);
}

#[test]
fn committed_samples_deserialize() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/samples");
    let ibu: ImageBasedUpgrade = serde_norway::from_str(
        &std::fs::read_to_string(root.join("lca_v1_imagebasedupgrade.yaml")).expect("sample"),
    )
    .expect("IBU sample parses");
    assert_eq!(ibu.metadata.name.as_deref(), Some("upgrade"));
    let sg: SeedGenerator = serde_norway::from_str(
        &std::fs::read_to_string(root.join("lca_v1_seedgenerator.yaml")).expect("sample"),
    )
    .expect("SeedGenerator sample parses");
    assert_eq!(sg.metadata.name.as_deref(), Some("seedimage"));
}

#[test]
fn scalar_pull_secret_ref_is_rejected_clearly() {
    // Public docs once showed `pullSecretRef: <name>`; the schema wants an object.
    let yaml = DOC_IBU.replace(
        "pullSecretRef:\n      name: seed-pull-secret",
        "pullSecretRef: seed-pull-secret",
    );
    let err =
        serde_norway::from_str::<ImageBasedUpgrade>(&yaml).expect_err("a scalar is not a PullSecretRef");
    assert!(
        err.to_string().contains("pullSecretRef") || err.to_string().contains("struct PullSecretRef"),
        "{err}"
    );
}

#[test]
fn crds_carry_the_contract() {
    let ibu = serde_json::to_string(&lca_api::crd::image_based_upgrade()).expect("json");
    for needle in [
        "ibu is a singleton, metadata.name must be 'upgrade'",
        "can not change spec.seedImageRef while ibu is in progress",
        "can not change spec.oadpContent while ibu is in progress",
        "can not change spec.extraManifests while ibu is in progress",
        "can not change spec.autoRollbackOnFailure while ibu is in progress",
        "the stage transition is not permitted.",
        r#""jsonPath":".status.conditions[-1:].reason""#,
        r#""shortNames":["ibu"]"#,
        r#""scope":"Cluster""#,
        r#""pattern":"^([a-z0-9]+://)?[\\S]+$""#,
    ] {
        assert!(ibu.contains(needle), "IBU CRD lacks {needle}");
    }
    let sg = serde_json::to_string(&lca_api::crd::seed_generator()).expect("json");
    for needle in [
        "seedgen is a singleton, metadata.name must be 'seedimage'",
        "cannot modify spec, cr must be deleted and recreated",
        r#""jsonPath":".status.conditions[-1:].type""#,
        r#""shortNames":["seedgen"]"#,
    ] {
        assert!(sg.contains(needle), "SeedGenerator CRD lacks {needle}");
    }
}
