//! `SeedGenerator` (`seedgen`), the cluster-scoped singleton `seedimage` that turns the
//! seed cluster into a seed image and pushes it. Its spec is immutable: a new seed needs a
//! new CR.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;
use crate::{Condition, Time};

/// What to build and where to push it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "lca.openshift.io",
    version = "v1",
    kind = "SeedGenerator",
    plural = "seedgenerators",
    shortname = "seedgen",
    status = "SeedGeneratorStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[-1:].type"}"#,
    printcolumn = r#"{"name":"Details","type":"string","jsonPath":".status.conditions[-1:].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SeedGeneratorSpec {
    /// The seed image to build and push.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1), regex(pattern = r"^([a-z0-9]+://)?[\S]+$"))]
    pub seed_image: String,
    /// The recert image used to prepare the seed (defaults to the operator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), regex(pattern = r"^([a-z0-9]+://)?[\S]+$"))]
    pub recert_image: Option<String>,
}

/// Observed state of seed generation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedGeneratorStatus {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    /// Declared for compatibility; the reference never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub started_at: Option<Time>,
    /// Declared for compatibility; the reference never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::date_time")]
    pub completed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
