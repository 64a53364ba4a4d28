//! The one error type of lca-hostops. Every variant names what was being done on the node, and
//! `category()` tells the operator how to react (requeue soon, wait for the node, or give up).

use std::path::PathBuf;

/// How a caller should treat an error: the one category shared by every crate.
pub use lca_core::Category;

/// Errors from node operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program is not installed on the node (or in the simulated node's PATH).
    #[error("{tool} not found on the node")]
    ToolNotFound {
        /// Program name, e.g. `ostree`.
        tool: String,
    },
    /// The command ran and exited unsuccessfully.
    #[error("command `{command}` failed with {status}: {stderr_tail}")]
    CommandFailed {
        /// The argv, joined for display only.
        command: String,
        /// Exit code or signal.
        status: String,
        /// The last KiB of stderr (stdout when stderr was empty).
        stderr_tail: String,
    },
    /// The command did not finish within its timeout and was killed.
    #[error("command `{command}` timed out after {secs} s and was killed")]
    Timeout {
        /// The argv, joined for display only.
        command: String,
        /// The timeout that elapsed.
        secs: u64,
    },
    /// The command could not be started.
    #[error("failed to start `{command}`: {source}")]
    Spawn {
        /// The argv, joined for display only.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command's output did not have the expected shape.
    #[error("failed to parse the output of `{command}`: {message}")]
    Parse {
        /// The command whose output was parsed, e.g. `rpm-ostree status --json`.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// The dry-run executor refused a mutating command.
    #[error("dry run: refused to run mutating command `{command}`")]
    DryRunRefused {
        /// The argv, joined for display only.
        command: String,
    },
    /// Removing or undeploying the booted stateroot was requested.
    #[error("refusing to remove stateroot {stateroot}: it is booted")]
    BootedStateroot {
        /// The stateroot name.
        stateroot: String,
    },
    /// A deployment of a stateroot being cleaned up is booted (spec §7.3 wording).
    #[error("failed abort: deployment {index} in stateroot {stateroot} is booted")]
    BootedDeployment {
        /// Deployment index.
        index: usize,
        /// The stateroot name.
        stateroot: String,
    },
    /// The stateroot cleanup of spec §7.3 failed for some stateroots.
    #[error("failed to remove {0} stateroots")]
    StaterootCleanup(usize),
    /// No deployment is marked booted.
    #[error("no booted deployment found")]
    NoBootedDeployment,
    /// A file operation on the node failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file (as this process sees it).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// libostree returned an error.
    #[error("libostree: {op}: {message}")]
    Ostree {
        /// The operation, e.g. `loading sysroot`.
        op: &'static str,
        /// The GLib error message.
        message: String,
    },
    /// The node is in an unexpected state that the caller must handle (message explains it).
    #[error("{0}")]
    NodeState(String),
    /// Invalid input from the caller.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    /// How to react to this error.
    pub fn category(&self) -> Category {
        match self {
            Error::Timeout { .. } | Error::Spawn { .. } | Error::Io { .. } => Category::Transient,
            Error::ToolNotFound { .. }
            | Error::CommandFailed { .. }
            | Error::Parse { .. }
            | Error::BootedStateroot { .. }
            | Error::BootedDeployment { .. }
            | Error::StaterootCleanup(_)
            | Error::NoBootedDeployment
            | Error::Ostree { .. }
            | Error::NodeState(_) => Category::NodeState,
            Error::DryRunRefused { .. } | Error::Invalid(_) => Category::Invalid,
        }
    }

    /// An `Io` error builder for `map_err`.
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            context,
            path,
            source,
        }
    }

    /// A `Parse` error builder.
    pub(crate) fn parse(command: &str, message: impl std::fmt::Display) -> Error {
        Error::Parse {
            command: command.to_string(),
            message: message.to_string(),
        }
    }

    /// Whether this is a failed command whose stderr contains `needle`.
    pub fn stderr_contains(&self, needle: &str) -> bool {
        matches!(self, Error::CommandFailed { stderr_tail, .. } if stderr_tail.contains(needle))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_drive_requeue() {
        assert_eq!(
            Error::Timeout {
                command: "x".into(),
                secs: 1
            }
            .category(),
            Category::Transient
        );
        assert_eq!(
            Error::ToolNotFound {
                tool: "ostree".into()
            }
            .category(),
            Category::NodeState
        );
        assert_eq!(
            Error::DryRunRefused { command: "x".into() }.category(),
            Category::Invalid
        );
        assert_eq!(
            Error::ToolNotFound {
                tool: "ostree".into()
            }
            .to_string(),
            "ostree not found on the node"
        );
        assert_eq!(
            Error::StaterootCleanup(2).to_string(),
            "failed to remove 2 stateroots"
        );
    }
}
