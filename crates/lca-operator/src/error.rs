//! The operator's error type. Each error has a category that decides the requeue delay and
//! the event reason, so a node mid-reboot is retried differently from a bad CR.

use std::time::Duration;

/// Errors of the operator. The node and seed crates' errors convert into it with `?` and
/// keep their own category.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error while {what}: {}", api_message(source))]
    Kube { what: &'static str, source: kube::Error },
    /// An API error in a user-facing message, as upstream words it: `<context>: <server message>`.
    #[error("{context}: {}", api_message(source))]
    Api { context: String, source: kube::Error },
    #[error(transparent)]
    Host(#[from] lca_hostops::Error),
    #[error(transparent)]
    Seed(#[from] lca_seed::Error),
    #[error("node error while {what}: {message}")]
    Node { what: &'static str, message: String },
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// A complete message of the given category (what the cluster or node is missing).
    #[error("{message}")]
    Message { message: String, category: Category },
}

pub use lca_core::Category;

impl Error {
    pub fn kube(what: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { what, source }
    }

    /// An `Api` error builder for `map_err`.
    pub fn api(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Error::Api { context, source }
    }

    /// An API error inside a sentence that `wrap` builds around the server's message.
    pub fn api_in(wrap: impl FnOnce(&str) -> String) -> impl FnOnce(kube::Error) -> Self {
        move |e| Error::Message {
            message: wrap(&api_message(&e)),
            category: kube_category(&e),
        }
    }

    /// A message error whose retry cannot help until something changes.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Message {
            message: message.into(),
            category: Category::Invalid,
        }
    }

    /// A message error about the node's or the cluster's state.
    pub fn state(message: impl Into<String>) -> Self {
        Error::Message {
            message: message.into(),
            category: Category::NodeState,
        }
    }

    /// The same error with `context` in front of its message (category kept).
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        let category = self.category();
        Error::Message {
            message: format!("{context}: {self}"),
            category,
        }
    }

    pub fn category(&self) -> Category {
        match self {
            Error::Kube { source, .. } | Error::Api { source, .. } => kube_category(source),
            Error::Host(e) => e.category(),
            Error::Seed(e) => e.category(),
            Error::Node { .. } => Category::NodeState,
            Error::Invalid { .. } => Category::Invalid,
            Error::Message { category, .. } => *category,
        }
    }

    /// Event reason for this error (PascalCase, like Kubernetes' own).
    pub fn event_reason(&self) -> &'static str {
        self.category().event_reason()
    }
}

/// The category of a Kubernetes client error: the API server's status code when it answered.
pub fn kube_category(e: &kube::Error) -> Category {
    match e {
        kube::Error::Api(status) => Category::of_http_status(status.code),
        _ => Category::Transient,
    }
}

/// Back-off for consecutive failures (see `Category::requeue`).
pub fn backoff(category: Category, consecutive_failures: u32) -> Duration {
    category.requeue(consecutive_failures)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kubernetes error as a person reads it, the way upstream's messages show it: the API
/// server's own message for a status error (`configmaps "em-nosuch" not found`), the plain
/// error text otherwise, never a `Debug` dump.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

/// Consecutive reconcile failures of one controller, for its back-off and so that a streak
/// of retries is reported as one event rather than one per retry.
#[derive(Default)]
pub struct FailureStreak(std::sync::atomic::AtomicU32);

impl FailureStreak {
    pub fn reset(&self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Record a failure: the delay before the retry, and whether this starts a new streak.
    pub fn fail(&self, category: Category) -> (Duration, bool) {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (backoff(category, n), n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(&format!("code {code}"), "Reason")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn api_errors_take_the_category_of_their_status_code() {
        assert_eq!(Error::kube("x")(api(404)).category(), Category::NotFound);
        assert_eq!(Error::kube("x")(api(409)).category(), Category::Conflict);
        assert_eq!(Error::kube("x")(api(500)).category(), Category::Transient);
        assert_eq!(Error::kube("x")(api(422)).event_reason(), "InvalidInput");
        assert_eq!(
            Error::kube("reading the IBU")(api(404)).to_string(),
            "kubernetes API error while reading the IBU: code 404"
        );
    }

    #[test]
    fn host_errors_keep_their_category() {
        let e: Error = lca_hostops::Error::Timeout {
            command: "ostree".into(),
            secs: 1,
        }
        .into();
        assert_eq!(e.category(), Category::Transient);
        assert_eq!(backoff(e.category(), 3), Duration::from_secs(16));
    }
}
