//! The CustomResourceDefinitions of this project, as the API server must see them.
//!
//! The derive produces the structural schema; this module adds what the derive cannot
//! express on the root object (the CEL rules that reference `metadata` and `oldSelf`), so
//! `config/crd/` and the test harness install exactly the same definition.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, ValidationRule,
};
use kube::CustomResourceExt;

use crate::consts::messages;
use crate::{ImageBasedUpgrade, SeedGenerator};

/// The fields that cannot change while an upgrade is in progress (CEL rules 2–5).
const IMMUTABLE_WHILE_IN_PROGRESS: [&str; 4] = [
    "seedImageRef",
    "oadpContent",
    "extraManifests",
    "autoRollbackOnFailure",
];

fn rule(rule: String, message: String) -> ValidationRule {
    ValidationRule {
        rule,
        message: Some(message),
        ..Default::default()
    }
}

fn immutable_while_in_progress(field: &str) -> ValidationRule {
    rule(
        format!(
            "!has(oldSelf.status) || oldSelf.status.conditions.exists(c, c.type=='Idle' && c.status=='True') \
             || self.spec.stage=='Idle' || has(oldSelf.spec.{field}) && has(self.spec.{field}) \
             && oldSelf.spec.{field}==self.spec.{field} || !has(self.spec.{field}) && !has(oldSelf.spec.{field})"
        ),
        format!("can not change spec.{field} while ibu is in progress"),
    )
}

fn root_schema(crd: &mut CustomResourceDefinition) -> &mut JSONSchemaProps {
    let version = crd
        .spec
        .versions
        .first_mut()
        .expect("derived CRDs have one version");
    let validation = version.schema.as_mut().expect("derived CRDs have a schema");
    validation
        .open_api_v3_schema
        .as_mut()
        .expect("derived CRDs have an OpenAPI schema")
}

/// The `imagebasedupgrades.lca.openshift.io` CRD.
pub fn image_based_upgrade() -> CustomResourceDefinition {
    let mut crd = ImageBasedUpgrade::crd();
    let root = root_schema(&mut crd);
    let mut rules = vec![rule(
        "self.metadata.name == 'upgrade'".into(),
        messages::IBU_SINGLETON.into(),
    )];
    rules.extend(
        IMMUTABLE_WHILE_IN_PROGRESS
            .iter()
            .map(|f| immutable_while_in_progress(f)),
    );
    rules.push(rule(
        "!has(oldSelf.status) || has(oldSelf.status.validNextStages) && self.spec.stage in \
         oldSelf.status.validNextStages || has(oldSelf.spec.stage) && has(self.spec.stage) && \
         oldSelf.spec.stage==self.spec.stage"
            .into(),
        messages::STAGE_TRANSITION_NOT_PERMITTED.into(),
    ));
    root.x_kubernetes_validations = Some(rules);
    crd
}

/// The `seedgenerators.lca.openshift.io` CRD.
pub fn seed_generator() -> CustomResourceDefinition {
    let mut crd = SeedGenerator::crd();
    let root = root_schema(&mut crd);
    root.x_kubernetes_validations = Some(vec![rule(
        "self.metadata.name == 'seedimage'".into(),
        messages::SEEDGEN_SINGLETON.into(),
    )]);
    let spec = root
        .properties
        .as_mut()
        .and_then(|p| p.get_mut("spec"))
        .expect("SeedGenerator has a spec");
    spec.x_kubernetes_validations = Some(vec![rule(
        "self == oldSelf".into(),
        messages::SEEDGEN_SPEC_IMMUTABLE.into(),
    )]);
    crd
}

/// Both CRDs with the file name each is committed under in `config/crd/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("lca.openshift.io_imagebasedupgrades.yaml", image_based_upgrade()),
        ("lca.openshift.io_seedgenerators.yaml", seed_generator()),
    ]
}

/// Render a CRD as the YAML committed in `config/crd/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_norway::to_string(crd).expect("a CRD always serializes")
}
