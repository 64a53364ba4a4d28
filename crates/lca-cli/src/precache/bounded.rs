//! One `podman pull` in bounded time, for `precache` (every image) and `stateroot-setup`
//! (the seed on a real node): each attempt is killed after `timeout`, and failed attempts
//! are retried after a doubling backoff, except when retrying cannot help (`manifest
//! unknown`, podman missing, dry run). podman has no stall detection of its own: against
//! a registry that accepts connections and never answers it waits forever, so the
//! attempt's timeout is what ends it.
//!
//! (The `--pull-timeout`-style duration parser of the flags is `lca_api::cli_args::parse_duration`.)

use std::time::Duration;

use lca_hostops::Error as HostError;
use lca_hostops::Executor;
use lca_hostops::podman::{self, PullOptions};

/// How one image is pulled.
#[derive(Clone, Debug)]
pub struct BoundedPull {
    /// authfile and TLS of `podman pull`; its `attempts` are ours (`attempts` below).
    pub opts: PullOptions,
    /// Total attempts (upstream: 5 for precache); 0 is treated as 1.
    pub attempts: u32,
    /// Limit of one attempt; the podman process group is killed when it elapses.
    pub timeout: Duration,
    /// Delay before the second attempt, doubled after each further one.
    pub backoff: Duration,
}

impl BoundedPull {
    /// The longest [`BoundedPull::pull`] can take: every attempt timing out, plus the
    /// backoffs between them.
    pub fn bound(&self) -> Duration {
        let attempts = self.attempts.max(1);
        let backoffs: Duration = (0..attempts - 1)
            .map(|i| self.backoff.saturating_mul(1 << i.min(16)))
            .sum();
        self.timeout.saturating_mul(attempts) + backoffs
    }

    /// Pull `image`; the error of the last attempt when none succeeded.
    pub async fn pull(&self, exec: &dyn Executor, image: &str) -> Result<(), HostError> {
        let once = PullOptions {
            attempts: 1,
            ..self.opts.clone()
        };
        let attempts = self.attempts.max(1);
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            // Dropping the pull on timeout kills podman's whole process group (lca-hostops).
            let result = match tokio::time::timeout(self.timeout, podman::pull(exec, image, &once)).await {
                Ok(r) => r,
                Err(_) => Err(HostError::Timeout {
                    command: format!("podman pull {image}"),
                    secs: self.timeout.as_secs(),
                }),
            };
            let e = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let hopeless = e.stderr_contains("manifest unknown")
                || matches!(
                    e,
                    HostError::ToolNotFound { .. } | HostError::DryRunRefused { .. }
                );
            if attempt >= attempts || hopeless {
                return Err(e);
            }
            tracing::warn!(image, attempt, error = %e, retry_in = ?delay, "pull failed, retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lca_api::cli_args::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn the_bound_is_every_attempt_timing_out_plus_the_backoffs() {
        let p = BoundedPull {
            opts: PullOptions::default(),
            attempts: 5,
            timeout: Duration::from_secs(600),
            backoff: Duration::from_secs(2),
        };
        assert_eq!(p.bound(), Duration::from_secs(5 * 600 + 2 + 4 + 8 + 16));
        let once = BoundedPull { attempts: 0, ..p };
        assert_eq!(once.bound(), Duration::from_secs(600));
    }
}
