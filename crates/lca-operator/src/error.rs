//! The operator's error type. Each error has a category that decides the requeue delay and
//! the event reason, so a node mid-reboot is retried differently from a bad CR.

use std::time::Duration;

/// Errors of the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error while {what}: {source}")]
    Kube { what: &'static str, source: kube::Error },
    #[error("node error while {what}: {message}")]
    Node { what: &'static str, message: String },
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
}

/// How an error should be treated by the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// The API server or the node may recover on its own: retry soon, with back-off.
    Transient,
    /// Needs a change to the CR or the node: retry rarely.
    Permanent,
}

impl Error {
    pub fn kube(what: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { what, source }
    }

    pub fn category(&self) -> Category {
        match self {
            Error::Kube { .. } | Error::Node { .. } => Category::Transient,
            Error::Invalid { .. } => Category::Permanent,
        }
    }

    /// Event reason for this error (PascalCase, like Kubernetes' own).
    pub fn event_reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "APIError",
            Error::Node { .. } => "NodeError",
            Error::Invalid { .. } => "InvalidInput",
        }
    }
}

/// Back-off for consecutive failures: 2 s doubling up to 5 min for transient errors,
/// 5 min for permanent ones.
pub fn backoff(category: Category, consecutive_failures: u32) -> Duration {
    match category {
        Category::Transient => Duration::from_secs((2u64 << consecutive_failures.min(8)).min(300)),
        Category::Permanent => Duration::from_secs(300),
    }
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

    #[test]
    fn transient_backoff_grows_and_caps() {
        assert_eq!(backoff(Category::Transient, 0), Duration::from_secs(2));
        assert_eq!(backoff(Category::Transient, 3), Duration::from_secs(16));
        assert_eq!(backoff(Category::Transient, 30), Duration::from_secs(300));
        assert_eq!(backoff(Category::Permanent, 0), Duration::from_secs(300));
    }
}
