//! The error type of lca-seed. Each error has a category so the SeedGenerator and Prep
//! callers can tell a registry hiccup (retry) from a bad seed or bad credentials (stop).

use std::io;
use std::path::PathBuf;

/// Errors of seed packing, registry transfer and unpacking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: image reference, labels, auth JSON, seed content. The message is user-facing.
    #[error("{0}")]
    Invalid(String),
    /// The `seedAuth` key is missing from the `seedgen` Secret (spec §8.3 message).
    #[error("could not find seedAuth in seedgen secret")]
    MissingSeedAuth,
    #[error("registry {registry} rejected the credentials (401 Unauthorized) while {what}")]
    Unauthorized { registry: String, what: String },
    #[error("registry {registry} is unreachable while {what}: {message}")]
    Unreachable {
        registry: String,
        what: String,
        message: String,
    },
    #[error("registry {registry} failed while {what}: {message}")]
    Registry {
        registry: String,
        what: String,
        message: String,
    },
    /// Downloaded bytes do not match their digest; nothing of them is kept.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Archive(#[from] lca_hostops::archive::Error),
    #[error("io error on {path} while {what}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("command `{argv}` failed: {message}")]
    Command { argv: String, message: String },
}

/// How a caller should treat an error: the one category shared by every crate.
pub use lca_hostops::Category;

impl Error {
    pub fn category(&self) -> Category {
        match self {
            Error::Unreachable { .. } | Error::Registry { .. } | Error::Io { .. } | Error::Command { .. } => {
                Category::Transient
            }
            Error::Archive(e) if !e.is_bad_archive() => Category::Transient,
            Error::Invalid(_)
            | Error::MissingSeedAuth
            | Error::Unauthorized { .. }
            | Error::Digest { .. }
            | Error::Archive(_) => Category::Invalid,
        }
    }

    /// An I/O error mapper naming the path and the action.
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let (what, path) = (what.into(), path.into());
        move |source| Error::Io { what, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
