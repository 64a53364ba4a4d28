//! `lca-bench startup [--idle-secs N]`: measures the operator against a real loopback
//! control plane — start → `upgrade` Idle=True visible (ms), and RSS after N s idle.
//! Run through `hack/bench-operator`, which builds the release operator first.

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
    if let Err(e) = startup(idle_secs).await {
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
        let _ = api.delete("upgrade", &Default::default()).await;
        while api.get_opt("upgrade").await.map_err(|e| e.to_string())?.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(last.take());
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
