//! Seed images of lca-rs (format v4, byte-compatible with the reference Lifecycle Agent):
//! pack a node's files into the single-layer image on all cores, push it to an OCI
//! registry, read its labels, pull and verify it, and unpack it safely.
//!
//! Sits between `lca-hostops` (node paths, safe extraction) and the callers: `lca-cli
//! create` (SeedGenerator) packs and pushes; the operator's Prep inspects
//! ([`SeedRegistry::inspect`] + [`checks::check_seed_labels`]) and pulls
//! ([`unpack::pull_and_unpack`]). Every registry call is bounded ([`RegistryTimeouts`]).

pub mod auth;
pub mod checks;
pub mod error;
pub mod layout;
pub mod pack;
pub mod pgzip;
pub mod progress;
pub mod registry;
mod registry_error;
mod registry_push;
pub mod timeouts;
pub mod treetar;
pub mod unpack;

pub use auth::Credentials;
pub use error::{Category, Error, Result};
pub use pack::{LayerBlob, build_layer};
pub use progress::Progress;
pub use registry::{SeedImageInfo, SeedRegistry, parse_reference};
pub use timeouts::RegistryTimeouts;
pub use unpack::pull_and_unpack;
