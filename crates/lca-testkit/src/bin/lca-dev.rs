//! `lca-dev <dir>`: the embedded local environment behind `make dev-up`. Starts a loopback
//! control plane with our CRDs and a healthy single-node OpenShift as objects, a simulated
//! SNO node (real ostree sysroot booted into `rhcos` 4.17, private podman storage) linked at
//! `<dir>/node`, a loopback registry holding a demo seed for 4.18.0 (made by our own
//! `lca-cli create`) and the images it lists, and the operator. Writes `<dir>/kubeconfig`,
//! `<dir>/seed-image` (`<image> <version>`), then `<dir>/ready`, and runs until
//! SIGTERM/SIGINT, when everything it started is stopped (the guarded children also die if
//! this process is killed).
//!
//! The operator is supervised as the kubelet would: killed (`kill -9 $(cat
//! <dir>/operator.pid)`) or exited, it is started again after a short back-off, with its log
//! appended to `<dir>/operator.log`.
//!
//! The cluster lives in the node (`lca_testkit::upgradeenv`), and the environment reboots
//! the node by itself: when the operator asks for a reboot, the operator is stopped, the
//! node boots its default deployment (the control plane follows its etcd), the booted
//! deployment's units run (`lca-cli post-pivot`, logs in `<dir>/node/lca-sim/units/`), and
//! the operator starts again once the kubelet is enabled. A user only patches the stage.
//!
//! Velero runs as the test peer (`lca_testkit::velero`, object storage in
//! `<dir>/object-store`, shared by the clusters before and after the pivot); `<dir>/oadp/`
//! holds an application, a DPA and the OADP ConfigMap to try it with.

use std::path::PathBuf;
use std::process::ExitCode;

use lca_testkit::controlplane::Options;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, images, reboot, upgradeenv};

/// The demo seed's version: newer than the simulated cluster's (`openshift::OCP_VERSION`).
const DEMO_VERSION: &str = "4.18.0";
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: lca-dev <state-dir>");
        return ExitCode::FAILURE;
    };
    match run(dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lca-dev: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: PathBuf) -> Result<(), String> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let target = TargetNode::build().map_err(|e| e.to_string())?;
    let root = target.root().to_path_buf();
    upgradeenv::prepare_node(&root).map_err(|e| e.to_string())?;
    let mut cp = ControlPlane::start_with(Options {
        base_dir: Some(dir.join("run")),
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(cp.kubeconfig(), &kubeconfig)
        .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))?;
    let client = cp.client().await.map_err(|e| e.to_string())?;
    upgradeenv::prepare_cluster(&cp, &client, &root)
        .await
        .map_err(|e| e.to_string())?;
    let node = dir.join("node");
    std::os::unix::fs::symlink(&root, &node).map_err(|e| format!("linking {}: {e}", node.display()))?;
    let registry = Registry::start().map_err(|e| e.to_string())?;
    let demo_images: Vec<String> = (0..3)
        .map(|i| images::push_test_image(&registry, &format!("ocp/demo{i}:v1"), &format!("demo {i}")))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let seed = images::push_seed_with_cluster(&registry, DEMO_VERSION, &demo_images, false)
        .await
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("seed-image"), format!("{seed} {DEMO_VERSION}\n")).map_err(|e| e.to_string())?;
    // Velero (the test peer) with its object storage outside the node, and the seed
    // document's OADP example for `hack/demo-upgrade.sh --oadp` to apply.
    let _velero = lca_testkit::velero::VeleroPeer::start(client.clone(), dir.join("object-store"));
    write_oadp_example(&dir.join("oadp"))?;
    let mut operator = Some(start_operator(&cp, &root, &dir)?);
    std::fs::write(dir.join("ready"), format!("{}\n", cp.server())).map_err(|e| e.to_string())?;
    println!(
        "lca-dev: control plane at {}, operator running (supervised), node root {}",
        cp.server(),
        node.display()
    );
    let mut units = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            () = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
        }
        if !reboot::requested(&root) {
            continue;
        }
        println!("lca-dev: the operator asked for a reboot; rebooting the node");
        if let Some(op) = operator.take() {
            op.kill();
        }
        // A reboot ends what the last boot still ran (the init monitor).
        drop(units.take());
        let booted = upgradeenv::boot(&root, &mut cp)
            .await
            .map_err(|e| e.to_string())?;
        for (unit, runs, ok) in &booted.units.oneshots {
            println!(
                "lca-dev: {unit}: {} after {runs} run(s)",
                if *ok { "succeeded" } else { "failed" }
            );
        }
        if booted.kubelet {
            operator = Some(start_operator(&cp, &root, &dir)?);
            println!(
                "lca-dev: node up on {}, operator started",
                booted_stateroot(&root)
            );
        } else {
            println!(
                "lca-dev: the kubelet is not enabled; the operator stays down (see node/lca-sim/units/)"
            );
        }
        // Units still running (the init monitor) live until the next boot.
        units = Some(booted.units);
    }
    drop(units);
    drop(operator);
    drop(registry);
    drop(target);
    drop(cp);
    let _ = std::fs::remove_file(dir.join("ready"));
    Ok(())
}

/// The operator, supervised, with a fresh ServiceAccount token of the cluster `cp` serves.
fn start_operator(
    cp: &ControlPlane,
    root: &std::path::Path,
    dir: &std::path::Path,
) -> Result<OperatorProcess, String> {
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(cp).map_err(|e| e.to_string())?;
    OperatorProcess::start_supervised(
        &kubeconfig,
        root,
        &dir.join("operator.log"),
        &dir.join("operator.pid"),
        &["--node=simulated"],
    )
    .map_err(|e| e.to_string())
}

fn booted_stateroot(root: &std::path::Path) -> String {
    reboot::default_deployment(root)
        .map(|b| b.stateroot)
        .unwrap_or_default()
}

/// The OADP example (`lca_testkit::oadpenv`) as files a user applies with kubectl.
fn write_oadp_example(dir: &std::path::Path) -> Result<(), String> {
    use lca_testkit::oadpenv as o;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": o::CONFIG_MAP, "namespace": o::OADP_NS},
        "data": {"PlatformBackupRestore.yaml": o::PLATFORM_BACKUP_RESTORE, "ApplicationBackupRestore.yaml": o::APP_BACKUP_RESTORE}});
    let cm = serde_norway::to_string(&cm).map_err(|e| e.to_string())?;
    for (name, text) in [
        ("1-dpa.yaml", o::DPA_YAML),
        ("2-apps.yaml", o::APPS_YAML),
        ("3-oadp-cm.yaml", cm.as_str()),
    ] {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))?;
    }
    Ok(())
}
