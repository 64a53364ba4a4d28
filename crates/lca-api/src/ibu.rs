//! `ImageBasedUpgrade` (`ibu`), the cluster-scoped singleton `upgrade` that drives one
//! image-based upgrade through Idle → Prep → Upgrade → (Rollback) → Idle.
//!
//! Field names, validations, CEL rules and printer columns match the reference CRD so that
//! hub tooling and GitOps manifests written for it keep working unchanged.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;
use crate::{Condition, Time};

/// Desired stage of the upgrade (`spec.stage`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum Stage {
    Idle,
    Prep,
    Upgrade,
    Rollback,
}

impl Stage {
    /// All stages, in the order the reference evaluates "in progress" (Idle first).
    pub const ALL: [Stage; 4] = [Stage::Idle, Stage::Prep, Stage::Upgrade, Stage::Rollback];

    /// The string used in the API and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Idle => "Idle",
            Stage::Prep => "Prep",
            Stage::Upgrade => "Upgrade",
            Stage::Rollback => "Rollback",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Desired state of the upgrade.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "lca.openshift.io",
    version = "v1",
    kind = "ImageBasedUpgrade",
    plural = "imagebasedupgrades",
    shortname = "ibu",
    status = "ImageBasedUpgradeStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Desired Stage","type":"string","jsonPath":".spec.stage"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[-1:].reason"}"#,
    printcolumn = r#"{"name":"Details","type":"string","jsonPath":".status.conditions[-1:].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageBasedUpgradeSpec {
    /// Stage of the upgrade: Idle, Prep, Upgrade or Rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::non_nullable::<Stage>")]
    pub stage: Option<Stage>,
    /// The seed image to upgrade to, its version and the secret to pull it.
    #[serde(default, skip_serializing_if = "SeedImageRef::is_empty")]
    pub seed_image_ref: SeedImageRef,
    /// ConfigMaps holding the OADP Backup and Restore CRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oadp_content: Vec<ConfigMapRef>,
    /// ConfigMaps holding extra manifests applied after the pivot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_manifests: Vec<ConfigMapRef>,
    /// Automatic rollback settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::non_nullable::<AutoRollbackOnFailure>")]
    pub auto_rollback_on_failure: Option<AutoRollbackOnFailure>,
}

/// Seed image, target version and pull secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedImageRef {
    /// Target platform version; must match the seed image's version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Full pull-spec of the seed container image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1), regex(pattern = r"^([a-z0-9]+://)?[\S]+$"))]
    pub image: String,
    /// Secret with the credentials to pull the seed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::non_nullable::<PullSecretRef>")]
    pub pull_secret_ref: Option<PullSecretRef>,
}

impl SeedImageRef {
    /// True when nothing is set, so the field is left out like Go's `omitempty` would.
    pub fn is_empty(&self) -> bool {
        self.version.is_empty() && self.image.is_empty() && self.pull_secret_ref.is_none()
    }
}

/// Reference to a Secret in the operator namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PullSecretRef {
    pub name: String,
}

/// Reference to a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ConfigMapRef {
    pub name: String,
    pub namespace: String,
}

/// Automatic rollback when the upgrade does not complete after the first reboot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRollbackOnFailure {
    /// Seconds to wait after the first reboot; 0 or unset means 1800.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    pub init_monitor_timeout_seconds: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Observed state of the upgrade.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageBasedUpgradeStatus {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub completed_at: Option<Time>,
    /// Conditions in write order: the last one feeds the State and Details columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    /// Stages that `spec.stage` may be set to next (enforced by CEL at the API server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valid_next_stages: Vec<Stage>,
    /// When rolling back may start to need manual recovery of expired control-plane certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub rollback_availability_expiration: Option<Time>,
    /// One entry per stage run in this cycle, with its phases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// Timing of one stage of the current cycle.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::non_nullable::<Stage>")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub completion_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

/// Timing of one phase of a stage (`Stateroot`, `Precache`, `PrePivot`, `PostPivot`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub completion_time: Option<Time>,
}
