//! The one error type of lca-cli. Host and seed errors keep their own text and their own
//! category (a command that timed out stays transient, a bad seed stays invalid), so the
//! log line and the exit of every subcommand say how the caller should react.

use std::io;
use std::path::PathBuf;

/// How a caller should treat an error: the one category shared by every crate.
pub use lca_core::Category;

/// Errors of the lca-cli subcommands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node operation failed (command, ostree, node file).
    #[error(transparent)]
    Host(#[from] lca_hostops::Error),
    /// A seed operation failed (registry, packing, labels).
    #[error(transparent)]
    Seed(#[from] lca_seed::Error),
    /// A safe extraction failed.
    #[error(transparent)]
    Archive(#[from] lca_hostops::archive::Error),
    /// A node operation failed while doing `context` (`"{context}: {source}"`).
    #[error("{context}: {source}")]
    HostContext {
        /// What was being done.
        context: String,
        /// The node error; its category is this error's.
        source: lca_hostops::Error,
    },
    /// A file operation of this process failed.
    #[error("io error on {path} while {what}: {source}", path = path.display())]
    Io {
        /// What was being done.
        what: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An OS error without a path (runtime start, a blocking task).
    #[error(transparent)]
    Os(#[from] io::Error),
    /// The node is not in the state the subcommand needs (message explains it).
    #[error("{0}")]
    NodeState(String),
    /// Bad input: flags, seed content. The message is user-facing.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// How to react to this error.
    pub fn category(&self) -> Category {
        match self {
            Error::Host(e) | Error::HostContext { source: e, .. } => e.category(),
            Error::Seed(e) => e.category(),
            Error::Archive(e) if e.is_bad_archive() => Category::Invalid,
            Error::Archive(_) | Error::Io { .. } | Error::Os(_) => Category::Transient,
            Error::NodeState(_) => Category::NodeState,
            Error::Invalid(_) => Category::Invalid,
        }
    }

    /// An I/O error mapper naming the path and the action.
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let (what, path) = (what.into(), path.into());
        move |source| Error::Io { what, path, source }
    }

    /// Failpoint `flow/step` (`lca_hostops::failpoint`) of a run on `host_root`: armed only
    /// in test builds and only on a simulated node.
    pub fn failpoint(host_root: &std::path::Path, simulated: bool, flow: &str, step: &str) -> Result<()> {
        let sim = simulated.then(|| lca_hostops::HostPaths::new(host_root).sim_dir());
        lca_hostops::failpoint::hit(sim.as_deref(), flow, step).map_err(Error::NodeState)
    }

    /// A host error mapper that says what was being done.
    pub fn host(context: impl Into<String>) -> impl FnOnce(lca_hostops::Error) -> Error {
        let context = context.into();
        move |source| Error::HostContext { context, source }
    }
}

/// Result alias of lca-cli.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_seed_errors_keep_their_text_and_category() {
        let timeout = lca_hostops::Error::Timeout {
            command: "ostree admin deploy".into(),
            secs: 300,
        };
        let text = timeout.to_string();
        let e = Error::from(timeout);
        assert_eq!(e.to_string(), text);
        assert_eq!(e.category(), Category::Transient);
        let e = Error::from(lca_hostops::Error::NoBootedDeployment);
        assert_eq!(e.category(), Category::NodeState);
        let e = Error::from(lca_seed::Error::MissingSeedAuth);
        assert_eq!(e.to_string(), "could not find seedAuth in seedgen secret");
        assert_eq!(e.category(), Category::Invalid);
        let e = Error::host("podman is not usable on the node")(lca_hostops::Error::ToolNotFound {
            tool: "podman".into(),
        });
        assert_eq!(
            e.to_string(),
            "podman is not usable on the node: podman not found on the node"
        );
        assert_eq!(e.category(), Category::NodeState);
        let e = Error::io("reading", "/x")(io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("io error on /x while reading: "), "{e}");
        assert_eq!(e.category(), Category::Transient);
        assert_eq!(Error::Invalid("bad".into()).category(), Category::Invalid);
    }
}
