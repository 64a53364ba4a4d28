//! Failpoints at the step boundaries of every flow, for the fault campaign. They sit after a
//! step's work and before its done-marker, where a crash hurts most, in the operator (Prep,
//! pre-pivot, post-pivot, rollback, abort, finalize) and in `lca-cli` (stateroot-setup,
//! precache, post-pivot, init-monitor, create). Built on the `fail` crate, which compiles them
//! in only with this crate's `failpoints` feature (turned on by the binaries' `test-hooks`):
//! in any other build [`hit`] does nothing. Even in a test build they fire on a simulated node
//! only, so a real node never dies on an environment variable.
//!
//! Arming, in `fail`'s syntax (`<name>=<action>`, several joined by `;` or newlines), from the
//! `FAILPOINTS` environment variable of the process or from `lca-sim/failpoints` on the
//! simulated node (read at each hit, so a test can arm a point in a process that already
//! runs, and the processes the operator starts see it too). Actions:
//!
//! - `return(kill)`: the process SIGKILLs itself there (an operator crash, a node losing power);
//! - `return(<text>)`: the step fails with `failpoint <name>: <text>`.
//!
//! A point fires once per node: before acting it appends its name to `lca-sim/failpoints.fired`
//! (fsynced), and a fired point is off from then on, so the restarted process, which has the
//! same environment, goes on where the killed one stopped.

use std::path::Path;

/// The one failpoint name prefix per flow, so the campaign can list them.
pub mod names {
    pub const PREP: &str = "prep";
    pub const STATEROOT_SETUP: &str = "stateroot-setup";
    pub const PRECACHE: &str = "precache";
    pub const PREPIVOT: &str = "prepivot";
    pub const POSTPIVOT: &str = "postpivot";
    pub const CLI_POST_PIVOT: &str = "post-pivot";
    pub const AUTO_ROLLBACK: &str = "auto-rollback";
    pub const ROLLBACK: &str = "rollback";
    pub const FINALIZE: &str = "finalize";
    pub const ABORT: &str = "abort";
    /// The clean-up before a default IBU is created (a forgotten cycle's work).
    pub const FRESH_START: &str = "fresh-start";
    pub const CREATE: &str = "create";
}

/// The file of a simulated node (under its `lca-sim`) that arms failpoints.
pub const ARM_FILE: &str = "failpoints";
/// The file of a simulated node (under its `lca-sim`) listing the points that fired.
pub const FIRED_FILE: &str = "failpoints.fired";

/// Pass failpoint `<flow>/<step>`. `sim_dir` is the simulated node's `lca-sim` (`None` on a
/// real node: nothing fires). Returns the injected error's message when the point fires with
/// an error; does not return when it fires with `kill`.
pub fn hit(sim_dir: Option<&Path>, flow: &str, step: &str) -> Result<(), String> {
    #[cfg(feature = "failpoints")]
    if let Some(dir) = sim_dir {
        return armed::hit(dir, &format!("{flow}/{step}"));
    }
    let _ = (sim_dir, flow, step);
    Ok(())
}

/// [`hit`] on `node`: armed on a simulated node only.
pub fn hit_on(node: &crate::Node, flow: &str, step: &str) -> Result<(), String> {
    let sim = (node.kind == crate::NodeKind::Simulated).then(|| node.paths.sim_dir());
    hit(sim.as_deref(), flow, step)
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::path::Path;
    use std::sync::{Mutex, Once};

    use super::{ARM_FILE, FIRED_FILE};

    static FROM_ENV: Once = Once::new();
    static FROM_FILE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

    pub(super) fn hit(dir: &Path, name: &str) -> Result<(), String> {
        FROM_ENV.call_once(|| {
            // The scenario would clear the registry on drop; it lives as long as the process.
            std::mem::forget(fail::FailScenario::setup());
        });
        let fired = dir.join(FIRED_FILE);
        if std::fs::read_to_string(&fired).is_ok_and(|t| t.lines().any(|l| l == name)) {
            return Ok(());
        }
        // The file is the truth for the points it armed: one it no longer names is off.
        let mut from_file = FROM_FILE.lock().unwrap_or_else(|p| p.into_inner());
        match armed_in_file(&dir.join(ARM_FILE), name) {
            Some(action) => match fail::cfg(name, &action) {
                Ok(()) => {
                    from_file.insert(name.to_string());
                }
                Err(e) => tracing::warn!(failpoint = name, action, "ignoring a bad failpoint action: {e}"),
            },
            None if from_file.remove(name) => fail::remove(name),
            None => {}
        }
        drop(from_file);
        let Some(arg) = fail::eval(name, |arg| arg.unwrap_or_default()) else {
            return Ok(());
        };
        // Recorded before acting, so the process that takes over does not fire it again.
        if let Err(e) = record(&fired, name) {
            tracing::warn!(failpoint = name, "cannot record the fired failpoint: {e}");
        }
        tracing::warn!(failpoint = name, action = arg, "failpoint fired");
        if arg == "kill" {
            // SIGKILL cannot be caught: nothing after this line runs.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Err(format!("failpoint {name}: {arg}"))
    }

    fn armed_in_file(file: &Path, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        text.split([';', '\n']).find_map(|entry| {
            let (n, action) = entry.trim().split_once('=')?;
            (n.trim() == name).then(|| action.trim().to_string())
        })
    }

    fn record(fired: &Path, name: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(fired)?;
        f.write_all(format!("{name}\n").as_bytes())?;
        f.sync_all()
    }
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::*;

    #[test]
    fn an_armed_point_fails_once_per_node_and_other_points_pass() {
        let dir = std::env::temp_dir().join(format!("lca-failpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(ARM_FILE), "test/a=return(boom)\ntest/b=off\n").expect("arm");
        assert_eq!(hit(Some(&dir), "test", "b"), Ok(()));
        assert_eq!(hit(None, "test", "a"), Ok(()), "a real node never fires");
        assert_eq!(
            hit(Some(&dir), "test", "a"),
            Err("failpoint test/a: boom".to_string())
        );
        assert_eq!(hit(Some(&dir), "test", "a"), Ok(()), "fired once");
        let fired = std::fs::read_to_string(dir.join(FIRED_FILE)).expect("fired file");
        assert_eq!(fired, "test/a\n");
        // Armed again after the record is cleared, then disarmed by the file alone.
        std::fs::remove_file(dir.join(FIRED_FILE)).expect("clear");
        std::fs::write(dir.join(ARM_FILE), "test/c=return(x)\n").expect("arm c");
        assert_eq!(hit(Some(&dir), "test", "a"), Ok(()), "no longer armed");
        std::fs::remove_file(dir.join(ARM_FILE)).expect("disarm");
        assert_eq!(hit(Some(&dir), "test", "c"), Ok(()), "no arm file");

        let _ = std::fs::remove_dir_all(&dir);
    }
}
