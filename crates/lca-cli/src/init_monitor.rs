//! `lca-cli init-monitor` (spec §6.7): the watchdog of the first boots of the new stateroot.
//! `--monitor` is started by the seed's `lca-init-monitor.service`; unless the operator stops
//! it when the upgrade completed (§6.5 step 7), it rolls the node back once
//! `monitor_timeout` from `autorollback_config.json` has passed. The time counts from the
//! first start in this boot (kept with the boot id in the workspace), so a restarted monitor
//! keeps the deadline. `--exec-stop-post <component>` is for a unit's `ExecStopPost`: a
//! `SERVICE_RESULT` other than `success` rolls back when the component is enabled.
//!
//! Only one monitor runs at a time (a lock in the workspace); a rollback decided earlier is
//! carried on at once.

use std::path::Path;
use std::time::Duration;

use lca_api::consts::paths;
use lca_core::autorollback::{self, Trigger};
use lca_hostops::{Executor, NodeFs, rollback};
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Which controller's monitor runs (`/var/lib/lca/workspace/initmonitor_mode`).
pub const MODE_FILE: &str = "var/lib/lca/workspace/initmonitor_mode";
const START_FILE: &str = "var/lib/lca/workspace/initmonitor_start";
const LOCK_FILE: &str = "var/lib/lca/workspace/initmonitor.lock";
/// The unit the operator removes when the upgrade completed.
const UNIT_FILE: &str = "etc/systemd/system/lca-init-monitor.service";

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct InitMonitorArgs {
    /// Watch the upgrade and roll back when it does not complete in time.
    #[arg(long, conflicts_with = "exec_stop_post")]
    pub monitor: bool,
    /// Run as a unit's ExecStopPost for `component` (`config`, `postpivot`).
    #[arg(long, value_name = "COMPONENT")]
    pub exec_stop_post: Option<String>,
    /// The host root is a simulated node directory.
    #[arg(long, env = "LCA_SIMULATED")]
    pub simulated: bool,
}

pub async fn run(host_root: &Path, args: &InitMonitorArgs) -> Result<()> {
    let exec = crate::post_pivot::node_executor(host_root, args.simulated);
    let config = read_config(exec.as_ref())?;
    if let Some(component) = &args.exec_stop_post {
        let result = std::env::var("SERVICE_RESULT").unwrap_or_default();
        if result == "success" {
            return Ok(());
        }
        let trigger = Trigger::ServiceUnit(component.clone());
        if !trigger.enabled(&config, None) {
            info!(
                component,
                result, "the unit failed; automatic rollback is disabled for it"
            );
            return Ok(());
        }
        return roll_back(exec.as_ref(), &trigger.message()).await;
    }
    if !args.monitor {
        return Err(Error::Invalid(
            "init-monitor needs --monitor or --exec-stop-post".into(),
        ));
    }
    check_mode(exec.as_ref())?;
    let fs = NodeFs::new(exec.as_ref());
    let lock_path = exec.node().paths.host(LOCK_FILE);
    if let Some(dir) = lock_path.parent() {
        fs.create_private_dir(dir)?;
    }
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::Io {
        what: "opening the init monitor lock".into(),
        path: lock_path.clone(),
        source: e,
    })?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| Error::NodeState("another init monitor is already running on this node".into()))?;
    if !config.monitor_enabled {
        info!("the init monitor is disabled");
        return Ok(());
    }
    if let Some(message) = rollback::decided(exec.as_ref())? {
        return roll_back(exec.as_ref(), &message).await;
    }
    let timeout = config.monitor_timeout;
    let left = remaining(exec.as_ref(), timeout)?;
    info!(
        timeout_secs = timeout,
        left_secs = left.as_secs(),
        "init monitor started"
    );
    tokio::time::sleep(left).await;
    if !fs.exists(&exec.node().paths.host(UNIT_FILE))? {
        info!("the upgrade completed while the monitor waited");
        return Ok(());
    }
    roll_back(exec.as_ref(), &Trigger::InitMonitorTimeout(timeout).message()).await
}

/// The frozen configuration of the booted (new) stateroot; never fails on its content.
pub fn read_config(exec: &dyn Executor) -> Result<lca_api::files::AutoRollbackConfig> {
    let fs = NodeFs::new(exec);
    let bytes = fs.read_optional(&exec.node().paths.host(paths::AUTO_ROLLBACK_CONFIG))?;
    let (config, warning) = autorollback::parse_config(bytes.as_deref());
    if let Some(w) = warning {
        warn!("{w}");
    }
    Ok(config)
}

/// Roll back, then (on a real node) wait for the reboot to end this process.
pub async fn roll_back(exec: &dyn Executor, message: &str) -> Result<()> {
    let acted = rollback::initiate(exec, message, None).await?;
    info!(message = %acted, "rollback requested");
    if exec.node().kind == lca_hostops::NodeKind::Real {
        tokio::time::sleep(lca_hostops::reboot::REBOOT_WAIT).await;
        return Err(Error::NodeState(lca_hostops::reboot::REBOOT_FAILED.into()));
    }
    Ok(())
}

fn check_mode(exec: &dyn Executor) -> Result<()> {
    let fs = NodeFs::new(exec);
    let mode = fs.read_string_optional(&exec.node().paths.host(MODE_FILE))?;
    match mode.as_deref().map(str::trim) {
        None | Some("ibu") | Some("") => Ok(()),
        Some("ipconfig") => Err(Error::Invalid(
            "init monitor mode ipconfig: IPConfig is not supported by this build of lca-rs".into(),
        )),
        Some(other) => {
            warn!(mode = other, "unknown init monitor mode; monitoring the upgrade");
            Ok(())
        }
    }
}

/// What is left of `timeout_secs` since the first monitor start of this boot.
fn remaining(exec: &dyn Executor, timeout_secs: i64) -> Result<Duration> {
    let fs = NodeFs::new(exec);
    let file = exec.node().paths.host(START_FILE);
    let boot = lca_hostops::sim::boot_id(exec)?;
    let now = lca_api::jiff::Timestamp::now().as_second();
    let recorded = fs.read_string_optional(&file)?.and_then(|s| {
        let (b, t) = s.trim().split_once(' ')?;
        (b == boot).then(|| t.parse::<i64>().ok()).flatten()
    });
    let start = match recorded {
        Some(t) => t,
        None => {
            fs.write_atomic(&file, format!("{boot} {now}").as_bytes())?;
            now
        }
    };
    let left = (start + timeout_secs - now).max(0);
    Ok(Duration::from_secs(left.unsigned_abs()))
}
