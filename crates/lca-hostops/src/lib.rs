//! The node boundary of lca-rs: every command run on the node and every node path.
//! Never depends on the kube client, so host-side binaries can use it while the API is down.

pub mod archive;
pub mod paths;

pub use paths::HostPaths;
