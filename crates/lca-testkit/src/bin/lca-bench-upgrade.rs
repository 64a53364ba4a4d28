//! `lca-bench-upgrade [--timeout-secs S]`: the Upgrade benchmark, run through
//! `hack/bench-upgrade` (which builds the release operator and `lca-cli`).
//!
//! One run of the whole flow on the simulated node of `lca_testkit::upgradeenv` (the
//! cluster lives in the node, the seed carries a seed cluster, 2 images of 1 MiB), timed per
//! phase: Prep (patch → PrepCompleted), pre-pivot (Upgrade patch → reboot request), the
//! reboot harness without the units (operator killed, deployment booted, control plane back
//! on the new etcd), host post-pivot (the `installation-configuration.service` run, with the
//! number of host-service peer commands it made), operator post-pivot (operator start →
//! UpgradeCompleted) and finalize (Idle patch → Idle). For each operator process (before and
//! after the pivot): CPU time (utime + stime from `/proc/<pid>/stat`) and peak RSS (VmHWM),
//! read just before it is stopped; and the operator's share of the Upgrade's wall time (its
//! CPU time over pre-pivot + operator post-pivot wall: the rest is the API server, the
//! node's tools and waiting).
//!
//! Targets of the issue: `prepivot_secs` < 3, `operator_postpivot_secs` < 3,
//! `host_postpivot_secs` < 2, every `*_vmhwm_kib` < 40960.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use lca_api::ImageBasedUpgrade;
use lca_testkit::controlplane::Options;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, hostpeer, images, reboot, upgradeenv};

const VERSION: &str = "4.18.0";

fn out(key: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    println!("{key}: {value}");
    let _ = std::io::stdout().flush();
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let timeout = match std::env::args().nth(1).as_deref() {
        None => Duration::from_secs(600),
        Some("--timeout-secs") => match std::env::args().nth(2).and_then(|s| s.parse().ok()) {
            Some(s) => Duration::from_secs(s),
            None => return usage(),
        },
        Some(_) => return usage(),
    };
    match run(timeout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lca-bench-upgrade: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: lca-bench-upgrade [--timeout-secs S]");
    ExitCode::from(2)
}

/// CPU seconds (utime + stime) and VmHWM (KiB) of `pid`.
fn usage_of(pid: i32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    let hz = 100.0; // USER_HZ on Linux
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    (ticks / hz, hwm)
}

async fn wait_for(api: &Api<ImageBasedUpgrade>, type_: &str, limit: Duration) -> Result<Instant, String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(ibu)) = api.get_opt("upgrade").await {
            let done = ibu.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == "True")
            });
            if done {
                return Ok(Instant::now());
            }
        }
        if start.elapsed() > limit {
            return Err(format!("no {type_} within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn patch(api: &Api<ImageBasedUpgrade>, spec: serde_json::Value) -> Result<Instant, String> {
    api.patch(
        "upgrade",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": spec})),
    )
    .await
    .map_err(err("patching the IBU"))?;
    Ok(Instant::now())
}

fn start_operator(cp: &ControlPlane, root: &Path) -> Result<OperatorProcess, String> {
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(cp).map_err(err("operator RBAC"))?;
    OperatorProcess::start_with_args(
        &kubeconfig,
        root,
        &cp.dir().join("operator.log"),
        &["--node=simulated"],
    )
    .map_err(err("operator"))
}

async fn run(timeout: Duration) -> Result<(), String> {
    let target = TargetNode::build().map_err(err("target node"))?;
    let root = target.root().to_path_buf();
    upgradeenv::prepare_node(&root).map_err(err("node"))?;
    let mut cp = ControlPlane::start_with(Options {
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        ..Default::default()
    })
    .await
    .map_err(err("control plane"))?;
    let client = cp.client().await.map_err(err("client"))?;
    upgradeenv::prepare_cluster(&cp, &client, &root)
        .await
        .map_err(err("cluster"))?;
    let registry = Registry::start().map_err(err("registry"))?;
    let imgs = (0..2)
        .map(|i| images::push_sized_image(&registry, &format!("ocp/app{i}:v1"), "app", 1024))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("images"))?;
    let seed = images::push_seed_with_cluster(&registry, VERSION, &imgs, false)
        .await
        .map_err(err("seed"))?;
    let api: Api<ImageBasedUpgrade> = Api::all(client.clone());
    let op = start_operator(&cp, &root)?;
    wait_for(&api, "Idle", timeout).await?;

    let t = patch(
        &api,
        serde_json::json!({"stage": "Prep", "seedImageRef": {"image": seed, "version": VERSION}}),
    )
    .await?;
    let done = wait_for(&api, "PrepCompleted", timeout).await?;
    out("prep_secs", secs(done - t));
    out("operator_after_prep_vmhwm_kib", usage_of(op.pid()).1);

    let t = patch(&api, serde_json::json!({"stage": "Upgrade"})).await?;
    while !reboot::requested(&root) {
        if t.elapsed() > timeout {
            return Err("no reboot request".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let prepivot = t.elapsed();
    out("prepivot_secs", secs(prepivot));
    let (cpu1, hwm1) = usage_of(op.pid());
    out("operator_prepivot_run_cpu_secs", format!("{cpu1:.2}"));
    out("operator_prepivot_run_vmhwm_kib", hwm1);
    op.kill();

    let t = Instant::now();
    reboot::complete(&root, &mut cp).await.map_err(err("reboot"))?;
    lca_testkit::prepenv::admin_kubeconfig(&cp, &root).map_err(err("kubeconfig"))?;
    out("reboot_harness_secs", secs(t.elapsed()));
    let env = vec![(
        "CONTAINERS_STORAGE_CONF".to_string(),
        root.join("lca-sim/containers-storage.conf").display().to_string(),
    )];
    let t = Instant::now();
    let r = root.clone();
    let units = tokio::task::spawn_blocking(move || lca_testkit::units::boot(&r, &env, 1))
        .await
        .map_err(err("units"))?
        .map_err(err("units"))?;
    out("host_postpivot_secs", secs(t.elapsed()));
    out("host_postpivot_ok", units.oneshots.iter().all(|u| u.2));
    out("host_service_peer_commands", hostpeer::calls(&root).len());

    let t = Instant::now();
    let op = start_operator(&cp, &root)?;
    let client = cp.client().await.map_err(err("client"))?;
    let api: Api<ImageBasedUpgrade> = Api::all(client);
    let done = wait_for(&api, "UpgradeCompleted", timeout).await?;
    let postpivot = done - t;
    out("operator_postpivot_secs", secs(postpivot));
    let t = patch(&api, serde_json::json!({"stage": "Idle"})).await?;
    let done = wait_for(&api, "Idle", timeout).await?;
    out("finalize_secs", secs(done - t));
    let (cpu2, hwm2) = usage_of(op.pid());
    out("operator_postpivot_run_cpu_secs", format!("{cpu2:.2}"));
    out("operator_postpivot_run_vmhwm_kib", hwm2);
    out(
        "operator_cpu_share_of_upgrade_wall",
        format!(
            "{:.2}",
            (cpu1 + cpu2) / (prepivot + postpivot).as_secs_f64().max(1e-3)
        ),
    );
    drop(op);
    drop(units);
    drop(registry);
    drop(target);
    Ok(())
}
