//! The API contract of lca-rs: the `lca.openshift.io/v1` custom resources, the condition,
//! reason, annotation and label strings that users and the hub (TALM) depend on, and the
//! on-disk file formats shared with the reference implementation.
//!
//! This crate sits at the bottom of the workspace (`api ← core ← hostops/seed ← operator/cli`)
//! and does no I/O, so any binary or test can depend on it without the client stack.

pub mod cli_args;
pub mod consts;
pub mod crd;
pub mod files;
pub mod ibu;
pub mod schema;
pub mod seedgen;
pub mod seedreconfig;

pub use ibu::{
    AutoRollbackOnFailure, ConfigMapRef, History, ImageBasedUpgrade, ImageBasedUpgradeSpec,
    ImageBasedUpgradeStatus, Phase, PullSecretRef, SeedImageRef, Stage,
};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
pub use k8s_openapi::jiff;
pub use seedgen::{SeedGenerator, SeedGeneratorSpec, SeedGeneratorStatus};

/// API group of every resource of this project.
pub const GROUP: &str = "lca.openshift.io";
/// The only served and stored version.
pub const VERSION: &str = "v1";
