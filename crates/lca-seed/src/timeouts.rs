//! How long `SeedRegistry` waits for a registry, and the two guards that enforce what
//! oci-client's (reqwest's) own timeouts cannot: a cap on a whole metadata operation, and
//! the stall detector of a blob upload.
//!
//! reqwest offers a per-read timeout that restarts with every received chunk (right for
//! downloads: a slow but flowing blob is never cut) but it starts when a request is sent
//! and does not restart while the request body is being uploaded, so on an upload it would
//! be a cap on the whole layer push. Uploads therefore go through a client without it and
//! are watched here instead: the upload stream reports every chunk it hands over.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Timeouts of every registry call of [`crate::SeedRegistry`]. A timeout is reported as
/// [`crate::Error::Unreachable`] (transient), naming the registry and which limit elapsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryTimeouts {
    /// TCP connection (and TLS handshake) set-up.
    pub connect: Duration,
    /// Longest silence while waiting for a response or for the next bytes of a response
    /// body. Restarts with every chunk, so a slow but flowing download is never cut.
    pub read: Duration,
    /// Cap on one metadata operation as a whole (inspect: auth, manifest, config; the push
    /// access check; the config and manifest pushes), against a registry that drips bytes
    /// just fast enough to dodge `read`.
    pub metadata: Duration,
    /// After the last byte of a blob upload was handed to the socket: how long the
    /// registry may take to answer (the socket buffers may still be draining on a slow
    /// link, and the registry verifies the digest of the whole blob).
    pub upload_commit: Duration,
}

impl Default for RegistryTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            metadata: Duration::from_secs(60),
            upload_commit: Duration::from_secs(300),
        }
    }
}

/// `30 s`, or `500 ms` below whole seconds (tests use short timeouts).
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Authenticating and opening the upload session.
    Starting,
    /// Handing chunks of the blob to the connection.
    Sending,
    /// Every byte handed over; waiting for the registry's answer.
    Sent,
}

/// The upload stream's side of the watchdog. Shared (`Arc`) between the stream and the
/// caller, so the watchdog keeps running after the stream is dropped at its end.
#[derive(Clone)]
pub(crate) struct UploadFeed(Arc<watch::Sender<Phase>>);

impl UploadFeed {
    pub(crate) fn new() -> (Self, UploadWatch) {
        let (tx, rx) = watch::channel(Phase::Starting);
        (Self(Arc::new(tx)), UploadWatch(rx))
    }

    /// A chunk was handed to the connection.
    pub(crate) fn chunk(&self) {
        self.0.send_replace(Phase::Sending);
    }

    /// The stream ended: the whole blob was handed over.
    pub(crate) fn sent(&self) {
        self.0.send_replace(Phase::Sent);
    }
}

/// The watchdog's side: resolves (with a message) only when the upload stalls.
pub(crate) struct UploadWatch(watch::Receiver<Phase>);

impl UploadWatch {
    /// Wait until the phase shows no progress within its limit: `metadata` to get the
    /// first chunk taken, `read` between chunks, `upload_commit` for the answer.
    pub(crate) async fn stalled(mut self, t: &RegistryTimeouts) -> String {
        loop {
            let phase = *self.0.borrow_and_update();
            let limit = match phase {
                Phase::Starting => t.metadata,
                Phase::Sending => t.read,
                Phase::Sent => t.upload_commit,
            };
            match tokio::time::timeout(limit, self.0.changed()).await {
                Ok(Ok(())) => {}
                // Every sender is gone only once the push returned, and then nobody awaits this.
                Ok(Err(_)) => std::future::pending::<()>().await,
                Err(_) => {
                    return match phase {
                        Phase::Starting => format!(
                            "no answer within {} while starting the upload (metadata timeout)",
                            human(limit)
                        ),
                        Phase::Sending => format!("no data taken for {} (stalled upload)", human(limit)),
                        Phase::Sent => format!(
                            "no response within {} after the last byte (upload commit timeout)",
                            human(limit)
                        ),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(30)), "30 s");
        assert_eq!(human(Duration::from_millis(1500)), "1500 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_names_the_phase_that_stalled() {
        let t = RegistryTimeouts {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(2),
            metadata: Duration::from_secs(5),
            upload_commit: Duration::from_secs(7),
        };
        let (_feed, watch) = UploadFeed::new();
        let start = tokio::time::Instant::now();
        assert!(watch.stalled(&t).await.contains("starting the upload"));
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        let (feed, watch) = UploadFeed::new();
        let start = tokio::time::Instant::now();
        let chunks = async {
            for _ in 0..3 {
                feed.chunk();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        let (_, msg) = tokio::join!(chunks, watch.stalled(&t));
        assert_eq!(msg, "no data taken for 2 s (stalled upload)");
        assert_eq!(start.elapsed(), Duration::from_secs(2 + 2));

        let (feed, watch) = UploadFeed::new();
        feed.chunk();
        feed.sent();
        let start = tokio::time::Instant::now();
        assert!(watch.stalled(&t).await.contains("upload commit timeout"));
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }
}
