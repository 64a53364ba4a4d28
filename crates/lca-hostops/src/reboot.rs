//! Reboot of the node (spec §9.3). A real node gets a transient unit that runs
//! `systemctl reboot` (so the reboot outlives the pod that asked for it); a simulated node gets
//! a reboot request file that the test harness acts on (see `crate::sim`).

use crate::command::Cmd;
use crate::error::Result;
use crate::executor::{Executor, NodeKind, ensure_mutation_allowed};
use crate::sim::{self, RebootRequest};

/// The wall message of an IBU reboot.
pub const IBU_MESSAGE: &str = "Image Based Upgrade";

/// How long a process that asked for a reboot waits for it to end the process (§9.3).
pub const REBOOT_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// What it reports when the wait ends and the node did not reboot.
pub const REBOOT_FAILED: &str = "failed to reboot. This should never happen! Please check the system";

/// The transient unit that performs the reboot.
pub const REBOOT_UNIT: &str = "lifecycle-agent-reboot";

/// Why the node reboots; goes into the unit description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rationale {
    /// Pivot into the new stateroot.
    Upgrade,
    /// Back to the old stateroot.
    Rollback,
}

impl Rationale {
    /// `upgrade` / `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rationale::Upgrade => "upgrade",
            Rationale::Rollback => "rollback",
        }
    }
}

/// The argv of the production reboot: `systemd-run --unit lifecycle-agent-reboot
/// --description "lifecycle-agent: <rationale>" systemctl --message=<message> reboot`.
/// Upstream wraps values in escaped quotes for `bash -c`; as argv items they need none.
pub fn reboot_cmd(rationale: &str, message: &str) -> Cmd {
    Cmd::new("systemd-run")
        .args(["--unit", REBOOT_UNIT, "--description"])
        .arg(format!("lifecycle-agent: {rationale}"))
        .arg("systemctl")
        .arg(format!("--message={message}"))
        .arg("reboot")
}

/// Ask for a reboot. On a real node this returns once systemd accepted the job; the caller
/// should then wait for SIGTERM (upstream sleeps up to an hour, then reports
/// `failed to reboot. This should never happen! Please check the system`). On a simulated
/// node it records the request and returns.
pub async fn request_reboot(exec: &dyn Executor, rationale: &str, message: &str) -> Result<()> {
    tracing::info!(rationale, message, "rebooting the node");
    match exec.node().kind {
        NodeKind::Real => exec.run(&reboot_cmd(rationale, message)).await.map(drop),
        NodeKind::Simulated => {
            ensure_mutation_allowed(exec, "reboot")?;
            let request = RebootRequest {
                rationale: rationale.to_string(),
                message: message.to_string(),
            };
            sim::write_reboot_request(&exec.node().paths, &request)
        }
    }
}

/// `request_reboot` for an IBU upgrade or rollback.
pub async fn reboot_for(exec: &dyn Executor, rationale: Rationale) -> Result<()> {
    request_reboot(exec, rationale.as_str(), IBU_MESSAGE).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::executor::{DryRunExecutor, LocalExecutor};

    #[test]
    fn production_argv() {
        let cmd = reboot_cmd("upgrade", IBU_MESSAGE);
        assert_eq!(
            cmd.display(),
            "systemd-run --unit lifecycle-agent-reboot --description lifecycle-agent: upgrade systemctl --message=Image Based Upgrade reboot"
        );
        assert_eq!(cmd.arguments().len(), 7);
        assert!(cmd.is_mutating());
    }

    #[tokio::test]
    async fn simulated_reboot_is_recorded_and_dry_run_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let exec = LocalExecutor::new(dir.path());
        reboot_for(&exec, Rationale::Rollback).await.unwrap();
        let req = sim::read_reboot_request(&exec.node().paths).unwrap().unwrap();
        assert_eq!(
            (req.rationale.as_str(), req.message.as_str()),
            ("rollback", IBU_MESSAGE)
        );
        sim::clear_reboot_request(&exec.node().paths).unwrap();
        let dry = DryRunExecutor::new(Arc::new(exec));
        assert!(reboot_for(&dry, Rationale::Upgrade).await.is_err());
        assert_eq!(sim::read_reboot_request(&dry.node().paths).unwrap(), None);
    }
}
