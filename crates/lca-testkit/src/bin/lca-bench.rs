//! Operator benchmarks against a real loopback control plane, run through
//! `hack/bench-operator` (which builds the release operator first):
//! - `lca-bench startup [--idle-secs N]`: start → `upgrade` Idle=True visible (ms), RSS after
//!   N s idle;
//! - `lca-bench transitions [--count N]`: `kubectl patch`-equivalent stage patches (Prep, then
//!   Idle to abort, repeated) → in-progress condition visible through a watch, p50/p99 over N
//!   transitions; and CPU time per no-op reconcile (trigger-reconcile annotation changes).

use std::time::{Duration, Instant};

use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_testkit::{ControlPlane, OperatorProcess};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idle_secs: u64 = args
        .iter()
        .position(|a| a == "--idle-secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let count: usize = args
        .iter()
        .position(|a| a == "--count")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let res = match args.get(1).map(String::as_str) {
        Some("transitions") => transitions(count).await,
        _ => startup(idle_secs).await,
    };
    if let Err(e) = res {
        eprintln!("lca-bench: {e}");
        std::process::exit(1);
    }
}

fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}

fn idle_true(ibu: &ImageBasedUpgrade) -> bool {
    ibu.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Idle" && c.status == "True")
    })
}

async fn startup(idle_secs: u64) -> Result<(), String> {
    let cp = ControlPlane::start().await.map_err(|e| e.to_string())?;
    let client = cp.client().await.map_err(|e| e.to_string())?;
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&cp).map_err(|e| e.to_string())?;
    let node = tempfile::tempdir().map_err(|e| e.to_string())?;
    let api: Api<ImageBasedUpgrade> = Api::all(client);
    let mut samples = Vec::new();
    let mut last_pid = 0;
    let mut last = None;
    for run in 0..5 {
        // Stop the previous operator first, or it re-creates the IBU we delete.
        drop(last.take());
        let _ = api.delete("upgrade", &Default::default()).await;
        while api.get_opt("upgrade").await.map_err(|e| e.to_string())?.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let start = Instant::now();
        let op = OperatorProcess::start(
            &kubeconfig,
            node.path(),
            &cp.dir().join(format!("operator-{run}.log")),
        )
        .map_err(|e| e.to_string())?;
        loop {
            if let Ok(Some(ibu)) = api.get_opt("upgrade").await
                && idle_true(&ibu)
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!("no Idle=True after 30s; log:\n{}", op.log()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(start.elapsed().as_millis() as u64);
        last_pid = op.pid();
        last = Some(op);
    }
    samples.sort_unstable();
    println!(
        "startup_to_idle_ms: runs={:?} median={}",
        samples,
        samples[samples.len() / 2]
    );
    println!("rss_after_start_kib: {}", rss_kib(last_pid).unwrap_or(0));
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    println!(
        "rss_after_{idle_secs}s_idle_kib: {}",
        rss_kib(last_pid).unwrap_or(0)
    );
    Ok(())
}

fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn has_true(ibu: &ImageBasedUpgrade, t: &str) -> bool {
    ibu.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == t && c.status == "True"))
}

async fn transitions(count: usize) -> Result<(), String> {
    use futures::StreamExt;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::{WatchStreamExt, watcher};

    let cp = ControlPlane::start().await.map_err(|e| e.to_string())?;
    let client = cp.client().await.map_err(|e| e.to_string())?;
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&cp).map_err(|e| e.to_string())?;
    let node = tempfile::tempdir().map_err(|e| e.to_string())?;
    let work = node.path().join("lca-sim/stage-work");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    std::fs::write(work.join("prep"), "stall").map_err(|e| e.to_string())?;
    let op = OperatorProcess::start_with_args(
        &kubeconfig,
        node.path(),
        &cp.dir().join("operator.log"),
        &["--stage-work=test-peer"],
    )
    .map_err(|e| e.to_string())?;
    let api: Api<ImageBasedUpgrade> = Api::all(client);
    let mut events = watcher(
        api.clone(),
        watcher::Config::default().fields("metadata.name=upgrade"),
    )
    .applied_objects()
    .boxed();
    let mut wait_for = async |pred: &dyn Fn(&ImageBasedUpgrade) -> bool| -> Result<(), String> {
        let limit = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(limit, events.next())
                .await
                .map_err(|_| "timed out".to_string())?;
            if let Some(Ok(ibu)) = next
                && pred(&ibu)
            {
                return Ok(());
            }
        }
    };
    wait_for(&idle_true).await?;
    let params = PatchParams::default();
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let (stage, ready): (&str, &dyn Fn(&ImageBasedUpgrade) -> bool) = if i % 2 == 0 {
            ("Prep", &|i| has_true(i, "PrepInProgress"))
        } else {
            ("Idle", &idle_true)
        };
        let patch = serde_json::json!({"spec": {"stage": stage}});
        let start = Instant::now();
        api.patch("upgrade", &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
        wait_for(ready).await?;
        samples.push(start.elapsed().as_micros() as u64);
    }
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)] as f64 / 1000.0;
    println!(
        "stage_patch_to_condition_ms: n={} p50={:.1} p99={:.1} max={:.1}",
        samples.len(),
        pct(50),
        pct(99),
        pct(100)
    );

    let before = cpu_ticks(op.pid());
    let n = 200;
    for i in 0..n {
        let patch = serde_json::json!({"metadata": {"annotations": {"lca.openshift.io/trigger-reconcile": i.to_string()}}});
        api.patch("upgrade", &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks = cpu_ticks(op.pid()).saturating_sub(before);
    // /proc reports clock ticks of 10 ms (USER_HZ = 100).
    println!(
        "cpu_per_noop_reconcile_ms: {:.3} ({} ticks over {n} reconciles)",
        ticks as f64 * 10.0 / n as f64,
        ticks
    );
    println!("rss_after_transitions_kib: {}", rss_kib(op.pid()).unwrap_or(0));
    Ok(())
}
