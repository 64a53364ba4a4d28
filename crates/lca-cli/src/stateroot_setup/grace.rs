//! SIGTERM during stateroot setup (spec §5.4 step 1): the Job's pod has a 1800 s grace
//! period, and once the seed image is on the node the work is worth finishing, so a SIGTERM
//! then only starts a countdown (the work goes on; when it ends first the process exits as
//! it would have). Before the seed is pulled there is nothing to save: the run stops at once
//! with exit status 1 and a status file that says why.

use std::path::PathBuf;
use std::time::Duration;

use super::status::{Phase, Reporter};

/// How long a terminated run keeps working once the seed is local (the Job's grace period).
pub const GRACE: Duration = Duration::from_secs(1800);

/// The message of a run stopped by SIGTERM.
pub const TERMINATED: &str = "terminated (SIGTERM) before the seed image was pulled";
/// The message of a terminated run whose grace period ran out.
pub const GRACE_OVER: &str = "terminated (SIGTERM): the grace period ended before stateroot setup did";

/// Watch for SIGTERM for the rest of the run. `pull_marker` is the `pull` step's marker;
/// `status_file` gets the failure when the run stops.
pub fn watch(pull_marker: PathBuf, status_file: PathBuf, grace: Duration) -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        if term.recv().await.is_none() {
            return;
        }
        let reporter = Reporter::new(status_file);
        // Read directly: the marker's presence is all that counts, and this task must not
        // wait on anything the work holds.
        if pull_marker.exists() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "SIGTERM: the seed image is on the node; finishing the work within the grace period"
            );
            tokio::time::sleep(grace).await;
            tracing::error!("{GRACE_OVER}");
            reporter.report(Phase::Failed, "terminated", GRACE_OVER);
        } else {
            tracing::error!("{TERMINATED}");
            reporter.report(Phase::Failed, "terminated", TERMINATED);
        }
        std::process::exit(1);
    });
    Ok(())
}
