//! What the fault campaigns (issue #16) share: arming failpoints on the simulated node, the
//! points that fired, the outcome table, and [`Watch`], a sampler that checks the node's
//! invariants at every moment of a flow rather than only at its end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lca_hostops::failpoint::{ARM_FILE, FIRED_FILE};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Kill,
    Error,
}

impl Mode {
    pub fn action(self) -> &'static str {
        match self {
            Mode::Kill => "return(kill)",
            Mode::Error => "return(injected)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Kill => "SIGKILL",
            Mode::Error => "error",
        }
    }
}

/// The message of an injected error at `point`.
pub fn injected(point: &str) -> String {
    format!("failpoint {point}: injected")
}

/// Arm `points` on the node at `root` (replacing what was armed) and forget what fired.
pub fn arm(root: &Path, points: &[(String, Mode)]) {
    let sim = root.join("lca-sim");
    let _ = std::fs::remove_file(sim.join(FIRED_FILE));
    let text: String = points
        .iter()
        .map(|(p, m)| format!("{p}={}\n", m.action()))
        .collect();
    std::fs::write(sim.join(ARM_FILE), text).expect("arming failpoints");
}

/// Disarm every point of the node at `root`.
pub fn disarm(root: &Path) {
    let _ = std::fs::remove_file(root.join("lca-sim").join(ARM_FILE));
}

/// The points that fired on the node at `root`, in order.
pub fn fired(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("lca-sim").join(FIRED_FILE))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// A markdown table of `header` and `rows`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push_str(&line(&vec!["---".to_string(); header.len()]));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// Where a campaign writes its table: `target/<name>`.
pub fn report_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(name)
}

/// The node clean-up steps of abort and finalize (`node_work::cleanup::remove_node_work`),
/// each followed by failpoint `abort/<step>` or `finalize/<step>`.
pub const CLEANUP_STEPS: [&str; 6] = [
    "StaterootTask",
    "Stateroots",
    "PrecacheTask",
    "SeedWork",
    "HandOff",
    "Workspace",
];

/// The failpoint names (`{step:?}`, as the operator's step runner names them) of step list
/// `S`, without the reboot that ends a list: the node's to carry out, not work to mark.
pub fn steps<S: lca_core::upgrade_plan::Steps + std::fmt::Debug>() -> Vec<String> {
    S::ORDER
        .iter()
        .map(|s| format!("{s:?}"))
        .filter(|s| s != "Reboot")
        .collect()
}

/// Patch stage Idle (an abort or a finalize) and wait until it ends. Without `errors` it
/// must reach Idle; with them it must fail (`AbortFailed`, `FinalizeFailed`) with exactly
/// those errors and the manual clean-up suffix, then reach Idle once the user says the
/// clean-up is done. Returns the outcome for a table.
pub async fn to_idle(c: &crate::Cluster, errors: &[String], limit: Duration) -> String {
    use lca_api::consts::{annotations, messages};
    let (ok, err) = c.patch_stage("Idle");
    assert!(ok, "stage Idle accepted: {err}");
    let failed =
        |i: &lca_api::ImageBasedUpgrade| crate::condition(i, "Idle").filter(|c| c.1.ends_with("Failed"));
    let ibu = c
        .wait_ibu("Idle or a failed clean-up", limit, |i| {
            crate::has(i, "Idle", "True") || failed(i).is_some()
        })
        .await;
    if errors.is_empty() {
        assert!(crate::has(&ibu, "Idle", "True"), "{:?}", failed(&ibu));
        return "Idle".into();
    }
    let (_, reason, msg) = failed(&ibu).expect("a failed clean-up");
    let want: String = errors.iter().map(|e| format!("{e} ")).collect();
    assert_eq!(msg, format!("{want}{}", messages::MANUAL_CLEANUP_SUFFIX));
    let annotate = format!("{}=", annotations::MANUAL_CLEANUP_DONE);
    let (ok, _, err) = c.kubectl(&["annotate", "ibu", "upgrade", &annotate]);
    assert!(ok, "{err}");
    c.wait_ibu("Idle after the manual clean-up", limit, |i| {
        crate::has(i, "Idle", "True")
    })
    .await;
    format!("{reason} (exact message), then Idle after manual-cleanup-done")
}

/// Whether the whole campaign runs (`LCA_FAULT_CAMPAIGN=full`, hack/fault-campaign.sh) or
/// the CI cases only.
pub fn full() -> bool {
    std::env::var("LCA_FAULT_CAMPAIGN").is_ok_and(|v| v == "full")
}

/// Samples the node at `root` every 200 ms on its own thread until dropped: at most one
/// deployment per stateroot and no more than two stateroots deployed; every saved IBU
/// (`var/lib/lca/ibu.json` of the node and of each stateroot) parses whenever it exists.
/// A sample that cannot read the sysroot (ostree mid-write) is skipped, not counted.
pub struct Watch {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<WatchState>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct WatchState {
    samples: u64,
    violations: BTreeMap<String, u64>,
}

impl Watch {
    pub fn start(root: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(WatchState::default()));
        let (s, st, root) = (stop.clone(), state.clone(), root.to_path_buf());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(found) = sample(&root) {
                    let mut st = st.lock().expect("watch state");
                    st.samples += 1;
                    for v in found {
                        *st.violations.entry(v).or_default() += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self {
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// Stop sampling; panics, naming `what`, on any violation seen. Returns the samples.
    pub fn finish(mut self, what: &str) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("watch thread");
        }
        let st = self.state.lock().expect("watch state");
        assert!(
            st.violations.is_empty(),
            "{what}: invariants broken ({} samples): {:#?}",
            st.samples,
            st.violations
        );
        assert!(st.samples > 0, "{what}: the watch took no sample");
        st.samples
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One sample: the violations seen, or `None` when the sysroot could not be read.
fn sample(root: &Path) -> Option<Vec<String>> {
    let deployments = lca_testkit::reboot::deployments(root).ok()?;
    let mut found = Vec::new();
    let mut per_stateroot: BTreeMap<&str, u32> = BTreeMap::new();
    for d in &deployments {
        *per_stateroot.entry(&d.stateroot).or_default() += 1;
    }
    for (stateroot, n) in &per_stateroot {
        if *n > 1 {
            found.push(format!("{n} deployments of stateroot {stateroot}"));
        }
    }
    if per_stateroot.len() > 2 {
        found.push(format!("{} stateroots deployed", per_stateroot.len()));
    }
    let deploy = root.join("sysroot/ostree/deploy");
    let mut saved = vec![root.join(lca_api::consts::paths::SAVED_IBU)];
    for dir in std::fs::read_dir(&deploy).into_iter().flatten().flatten() {
        saved.push(dir.path().join(lca_api::consts::paths::SAVED_IBU));
    }
    for path in saved {
        // Written atomically: present means whole.
        if let Ok(bytes) = std::fs::read(&path)
            && let Err(e) = serde_json::from_slice::<lca_api::ImageBasedUpgrade>(&bytes)
        {
            found.push(format!("{} does not parse: {e}", path.display()));
        }
    }
    Some(found)
}

/// Files under `dir` that a write in progress would leave: `*.tmp` (the atomic writes'
/// temporaries) and `*.partial` (directories filled before their rename). `var/lib/etcd` is
/// the running cluster's: etcd preallocates its next WAL file as `<n>.tmp`.
pub fn half_written(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".partial") {
                out.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !path.ends_with("var/lib/etcd") {
                stack.push(path);
            }
        }
    }
    out
}
