//! `lca-bench-upgrade [--rollback | --oadp] [--timeout-secs S]`: the Upgrade benchmark, run through
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
//!
//! `--rollback` runs the rollback paths instead (see `rollback_paths`): targets
//! `monitor_expiry_to_reboot_request_secs` and `operator_failure_to_reboot_request_secs`
//! < 2, `operator_start_to_failure_visible_secs` < 3 (the harness's reboot apart).
//!
//! `--oadp` runs the upgrade with 50 objects backed up and restored in 3 waves (see
//! `oadp.rs`): target < 1 s of operator time per wave.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use lca_api::ImageBasedUpgrade;
use lca_testkit::controlplane::Options;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, hostpeer, images, reboot, upgradeenv};

mod oadp;

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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| match args.iter().position(|a| a == name) {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let (rollback, with_oadp) = (flag("--rollback"), flag("--oadp"));
    let timeout = match args.as_slice() {
        [] => Duration::from_secs(600),
        [flag, s] if flag == "--timeout-secs" => match s.parse() {
            Ok(s) => Duration::from_secs(s),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let result = if rollback {
        rollback_paths(timeout).await
    } else if with_oadp {
        oadp::run(timeout).await
    } else {
        run(timeout).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lca-bench-upgrade: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: lca-bench-upgrade [--rollback | --oadp] [--timeout-secs S]");
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
    wait_status(api, type_, "True", limit).await
}

async fn wait_status(
    api: &Api<ImageBasedUpgrade>,
    type_: &str,
    status: &str,
    limit: Duration,
) -> Result<Instant, String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(ibu)) = api.get_opt("upgrade").await {
            let done = ibu.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status)
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

/// The node side of the reboot without the units: the default deployment booted, the control
/// plane back on its etcd, the admin kubeconfig valid again (recert's part).
async fn reboot_harness(root: &Path, cp: &mut ControlPlane) -> Result<(), String> {
    reboot::complete(root, cp).await.map_err(err("reboot"))?;
    lca_testkit::prepenv::admin_kubeconfig(cp, root).map_err(err("kubeconfig"))
}

/// The booted deployment's units, each oneshot run once.
async fn boot_units(root: &Path) -> Result<lca_testkit::units::Boot, String> {
    let env = vec![(
        "CONTAINERS_STORAGE_CONF".to_string(),
        root.join("lca-sim/containers-storage.conf").display().to_string(),
    )];
    let r = root.to_path_buf();
    tokio::task::spawn_blocking(move || lca_testkit::units::boot(&r, &env, 1))
        .await
        .map_err(err("units"))?
        .map_err(err("units"))
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

/// The node, its cluster, a registry with the seed, and the operator; Prep is done (with
/// the spec lines `extra`, e.g. extraManifests).
struct Setup {
    target: TargetNode,
    root: std::path::PathBuf,
    cp: ControlPlane,
    registry: Registry,
    api: Api<ImageBasedUpgrade>,
    op: OperatorProcess,
    /// Velero, when the run has OADP content.
    peer: Option<lca_testkit::velero::VeleroPeer>,
}

async fn setup(
    timeout: Duration,
    extra: serde_json::Value,
    prepare: bool,
    oadp_store: Option<&Path>,
) -> Result<Setup, String> {
    let target = TargetNode::build().map_err(err("target node"))?;
    let root = target.root().to_path_buf();
    upgradeenv::prepare_node(&root).map_err(err("node"))?;
    let cp = ControlPlane::start_with(Options {
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        ..Default::default()
    })
    .await
    .map_err(err("control plane"))?;
    let client = cp.client().await.map_err(err("client"))?;
    upgradeenv::prepare_cluster(&cp, &client, &root)
        .await
        .map_err(err("cluster"))?;
    if prepare {
        refused_manifest(&cp, &client).await?;
    }
    let registry = Registry::start().map_err(err("registry"))?;
    let imgs = (0..2)
        .map(|i| images::push_sized_image(&registry, &format!("ocp/app{i}:v1"), "app", 1024))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("images"))?;
    let seed = images::push_seed_with_cluster(&registry, VERSION, &imgs, false)
        .await
        .map_err(err("seed"))?;
    let peer = match oadp_store {
        Some(store) => Some(oadp::install(client.clone(), store.to_path_buf()).await?),
        None => None,
    };
    let api: Api<ImageBasedUpgrade> = Api::all(client.clone());
    let op = start_operator(&cp, &root)?;
    wait_for(&api, "Idle", timeout).await?;
    let mut spec = serde_json::json!({"stage": "Prep", "seedImageRef": {"image": seed, "version": VERSION}});
    if let (Some(s), Some(x)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(x.clone());
    }
    let t = patch(&api, spec).await?;
    let done = wait_for(&api, "PrepCompleted", timeout).await?;
    out("prep_secs", secs(done - t));
    out("operator_after_prep_vmhwm_kib", usage_of(op.pid()).1);
    Ok(Setup {
        target,
        root,
        cp,
        registry,
        api,
        op,
        peer,
    })
}

async fn run(timeout: Duration) -> Result<(), String> {
    let Setup {
        target,
        root,
        mut cp,
        registry,
        api,
        op,
        ..
    } = setup(timeout, serde_json::json!({}), false, None).await?;
    let t = patch(&api, serde_json::json!({"stage": "Upgrade"})).await?;
    let prepivot = wait_request(&root, t, timeout).await? - t;
    out("prepivot_secs", secs(prepivot));
    let (cpu1, hwm1) = usage_of(op.pid());
    out("operator_prepivot_run_cpu_secs", format!("{cpu1:.2}"));
    out("operator_prepivot_run_vmhwm_kib", hwm1);
    op.kill();

    let t = Instant::now();
    reboot_harness(&root, &mut cp).await?;
    out("reboot_harness_secs", secs(t.elapsed()));
    let t = Instant::now();
    let units = boot_units(&root).await?;
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

/// cert-manager's kind in the original cluster only, and an extra manifest of it: Prep's dry
/// run accepts it, the seed's cluster refuses it after the pivot (a config-manifest failure).
async fn refused_manifest(cp: &ControlPlane, client: &kube::Client) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    lca_testkit::openshift::install_kinds(cp, &[lca_testkit::openshift::CERTIFICATE])
        .await
        .map_err(err("cert-manager kind"))?;
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "extra"}, "data": {
        "cert.yaml": "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: web, namespace: default}\nspec: {secretName: web-tls}\n"}}))
    .map_err(err("configmap"))?;
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&Default::default(), &cm)
        .await
        .map_err(err("extra manifests"))?;
    Ok(())
}

async fn wait_request(root: &Path, since: Instant, timeout: Duration) -> Result<Instant, String> {
    while !reboot::requested(root) {
        if since.elapsed() > timeout {
            return Err("no reboot request".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Instant::now())
}

/// The rollback paths: an init monitor running out of time, and the operator's post-pivot
/// failing on a config manifest, each timed from the failure to the rollback's reboot
/// request; then the reboot back and the operator's start to the failure visible on the
/// original cluster. Harness time (the simulated reboot) is reported apart.
async fn rollback_paths(timeout: Duration) -> Result<(), String> {
    let extra = serde_json::json!({"extraManifests": [{"name": "extra", "namespace": "default"}]});
    let Setup {
        target,
        root,
        mut cp,
        registry,
        api,
        op,
        ..
    } = setup(timeout, extra, true, None).await?;
    let t = patch(&api, serde_json::json!({"stage": "Upgrade"})).await?;
    wait_request(&root, t, timeout).await?;
    op.kill();
    reboot_harness(&root, &mut cp).await?;
    let units = boot_units(&root).await?;
    drop(units); // the seed's monitor (30 min); the one measured below is started by hand

    // The monitor, with a 1 s timeout: its wall time past that second is expiry -> request.
    let lca = root.join("var/lib/lca");
    std::fs::write(
        lca.join("autorollback_config.json"),
        r#"{"monitor_enabled":true,"monitor_timeout":1}"#,
    )
    .map_err(err("config"))?;
    let _ = std::fs::remove_file(lca.join("workspace/initmonitor_start"));
    let cli = lca_testkit::assets::binary("LCA_CLI_BIN", "lca-cli").map_err(err("lca-cli"))?;
    let path = format!(
        "{}:{}",
        root.join("lca-sim/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = Instant::now();
    let status = std::process::Command::new(&cli)
        .arg("--host-root")
        .arg(&root)
        .args(["init-monitor", "--monitor", "--simulated"])
        .env("PATH", path)
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(err("init-monitor"))?;
    if !status.success() || !reboot::requested(&root) {
        return Err(format!("the monitor did not roll back ({status})"));
    }
    out(
        "monitor_expiry_to_reboot_request_secs",
        secs(t.elapsed().saturating_sub(Duration::from_secs(1))),
    );
    // Undo it: the operator's path is measured on the same pivoted node.
    let paths = lca_hostops::HostPaths::new(&root);
    lca_hostops::sim::clear_reboot_request(&paths).map_err(err("request"))?;
    let _ = std::fs::remove_file(root.join(lca_hostops::rollback::DECISION));
    let exec = lca_hostops::LocalExecutor::new(&root);
    let status = lca_hostops::ostree::status(&exec).await.map_err(err("status"))?;
    let new = status
        .deployments
        .iter()
        .position(|d| d.stateroot != "rhcos")
        .ok_or("no new deployment")?;
    // The raw tool's share of a rollback: the one deployment reorder (libostree here, where
    // the CLI has no set-default).
    let t = Instant::now();
    lca_hostops::ostree::set_default(&exec, new)
        .await
        .map_err(err("set-default"))?;
    out("raw_set_default_secs", secs(t.elapsed()));

    // The operator: the failing step shows the rollback's message, then the request comes.
    let t = Instant::now();
    let op = start_operator(&cp, &root)?;
    let client = cp.client().await.map_err(err("client"))?;
    let api: Api<ImageBasedUpgrade> = Api::all(client);
    let mut decided = None;
    while !reboot::requested(&root) {
        if t.elapsed() > timeout {
            return Err("no rollback request from the operator".into());
        }
        if decided.is_none()
            && let Ok(Some(ibu)) = api.get_opt("upgrade").await
            && ibu.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.message.starts_with("Rollback due to"))
            })
        {
            decided = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let requested = Instant::now();
    out(
        "operator_failure_to_reboot_request_secs",
        secs(requested - decided.unwrap_or(requested)),
    );
    out("operator_start_to_reboot_request_secs", secs(requested - t));
    let (cpu, hwm) = usage_of(op.pid());
    out("operator_rollback_run_cpu_secs", format!("{cpu:.2}"));
    out("operator_rollback_run_vmhwm_kib", hwm);
    op.kill();

    let t = Instant::now();
    reboot::complete(&root, &mut cp).await.map_err(err("reboot"))?;
    out("rollback_reboot_harness_secs", secs(t.elapsed()));
    let t = Instant::now();
    let op = start_operator(&cp, &root)?;
    let client = cp.client().await.map_err(err("client"))?;
    let api: Api<ImageBasedUpgrade> = Api::all(client);
    let done = wait_status(&api, "UpgradeCompleted", "False", timeout).await?;
    out("operator_start_to_failure_visible_secs", secs(done - t));
    out("operator_after_rollback_vmhwm_kib", usage_of(op.pid()).1);
    drop(op);
    drop(registry);
    drop(target);
    Ok(())
}
