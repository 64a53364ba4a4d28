//! oci-client errors as lca-seed errors, mapped to what the user must do: fix the
//! credentials (401), reach the registry (connection failures and timeouts: transient,
//! named by the limit that elapsed), or rebuild a corrupt seed. Messages are the error
//! chain's `Display`, never a `Debug` dump.

use oci_client::errors::OciDistributionError;

use crate::Error;
use crate::timeouts::{RegistryTimeouts, human};

pub(crate) fn map_error(registry: &str, what: &str, t: &RegistryTimeouts, e: OciDistributionError) -> Error {
    let (registry, what) = (registry.to_string(), what.to_string());
    match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            Error::Unauthorized { registry, what }
        }
        OciDistributionError::ServerError { code: 401, .. } => Error::Unauthorized { registry, what },
        OciDistributionError::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(401) => {
            Error::Unauthorized { registry, what }
        }
        OciDistributionError::DigestError(d) => Error::Digest {
            what,
            expected: String::new(),
            actual: d.to_string(),
        },
        OciDistributionError::RequestError(r) if r.is_timeout() => Error::Unreachable {
            registry,
            what,
            message: if r.is_connect() {
                format!("could not connect within {} (connect timeout)", human(t.connect))
            } else {
                format!("no response within {} (read timeout)", human(t.read))
            },
        },
        OciDistributionError::RequestError(r) if r.is_connect() => Error::Unreachable {
            registry,
            what,
            message: source_chain(&r),
        },
        OciDistributionError::ImageManifestNotFoundError(m) => {
            Error::Invalid(format!("image not found in {registry} while {what}: {m}"))
        }
        other => Error::Registry {
            registry,
            what,
            message: source_chain(&other),
        },
    }
}

/// An error of a response body stream (oci-client wraps reqwest's error in an `io::Error`):
/// a read timeout there means the body stopped flowing.
pub(crate) fn body_error(registry: &str, what: &str, t: &RegistryTimeouts, e: &std::io::Error) -> Error {
    let (registry, what) = (registry.to_string(), what.to_string());
    let timed_out = e
        .get_ref()
        .and_then(|inner| as_request_error(OciDistributionError::RequestError, inner))
        .is_some_and(|r| r.is_timeout());
    if timed_out {
        return Error::Unreachable {
            registry,
            what,
            message: format!("no data for {} (read timeout)", human(t.read)),
        };
    }
    Error::Registry {
        registry,
        what,
        message: source_chain(e),
    }
}

/// Downcast to oci-client's `reqwest::Error` without depending on reqwest ourselves (its
/// version is oci-client's business): the enum variant's constructor names the type.
fn as_request_error<'a, T: std::error::Error + 'static>(
    _variant: fn(T) -> OciDistributionError,
    e: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a T> {
    e.downcast_ref::<T>()
}

pub(crate) fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
