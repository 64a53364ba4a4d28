//! The one error category every crate's error maps to (`lca-hostops`, `lca-seed`, `lca-cli`,
//! the operator). It sits in `lca-core` because what to do about an error — retry soon, wait
//! for the node, wait for the user — is a decision, and the operator's requeue delay and event
//! reason are chosen from it alone.

use std::time::Duration;

/// How a caller should treat an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Likely to succeed on retry: a timeout, a registry or API hiccup, an I/O error.
    Transient,
    /// The node is not in the state the step needs (a tool missing, a failed command).
    NodeState,
    /// The request or the input is wrong (bad CR, bad seed, refused by a dry run).
    Invalid,
    /// Someone else changed the object first (HTTP 409): re-read and retry at once.
    Conflict,
    /// Something the step needs does not exist (HTTP 404).
    NotFound,
}

impl Category {
    /// Delay before the next attempt after `consecutive_failures` failures in a row.
    pub fn requeue(self, consecutive_failures: u32) -> Duration {
        match self {
            Category::Conflict => Duration::from_secs(1),
            Category::Transient => Duration::from_secs((2u64 << consecutive_failures.min(8)).min(300)),
            Category::NodeState | Category::NotFound => Duration::from_secs(20),
            Category::Invalid => Duration::from_secs(300),
        }
    }

    /// The reason of the Warning event that reports an error of this category.
    pub fn event_reason(self) -> &'static str {
        match self {
            Category::Transient => "TransientError",
            Category::NodeState => "NodeError",
            Category::Invalid => "InvalidInput",
            Category::Conflict => "Conflict",
            Category::NotFound => "NotFound",
        }
    }

    /// Whether retrying without any change can help.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Category::Invalid)
    }

    /// The category of an HTTP status code from the API server or a registry.
    pub fn of_http_status(code: u16) -> Category {
        match code {
            404 | 410 => Category::NotFound,
            409 => Category::Conflict,
            // Not 401/403: an API server that has just come back refuses requests until its
            // authenticator and RBAC caches are filled, and the operator's own permissions are
            // fixed by its manifests; a final verdict on them would fail a Prep or an Upgrade
            // step (or roll back) for a moment's outage. They back off as transient errors.
            400 | 405 | 413 | 415 | 422 => Category::Invalid,
            _ => Category::Transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_a_restarting_api_server_are_retried_bad_requests_are_not() {
        for code in [401, 403, 500, 503, 429] {
            assert_eq!(Category::of_http_status(code), Category::Transient, "{code}");
        }
        for code in [400, 422] {
            assert_eq!(Category::of_http_status(code), Category::Invalid, "{code}");
        }
    }

    #[test]
    fn transient_backoff_doubles_and_caps() {
        let d: Vec<u64> = (0..10)
            .map(|n| Category::Transient.requeue(n).as_secs())
            .collect();
        assert_eq!(d, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(Category::Invalid.requeue(0), Duration::from_secs(300));
        assert_eq!(Category::Conflict.requeue(7), Duration::from_secs(1));
    }

    #[test]
    fn http_codes_map_to_categories() {
        assert_eq!(Category::of_http_status(404), Category::NotFound);
        assert_eq!(Category::of_http_status(409), Category::Conflict);
        assert_eq!(Category::of_http_status(422), Category::Invalid);
        assert_eq!(Category::of_http_status(503), Category::Transient);
        assert_eq!(Category::of_http_status(429), Category::Transient);
        assert!(!Category::Invalid.is_retryable());
        assert!(Category::NotFound.is_retryable());
    }
}
