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
//! <dir>/operator.pid)`, or a simulated reboot) or exited, it is started again after a
//! short back-off, with its log appended to `<dir>/operator.log`.

use std::path::PathBuf;
use std::process::ExitCode;

use lca_testkit::controlplane::Options;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, images, openshift, prepenv, simnode};

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
    let cp = ControlPlane::start_with(Options {
        base_dir: Some(dir.join("run")),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::copy(cp.kubeconfig(), &kubeconfig)
        .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))?;
    let client = cp.client().await.map_err(|e| e.to_string())?;
    openshift::install(&cp).await.map_err(|e| e.to_string())?;
    openshift::healthy_sno(&client).await.map_err(|e| e.to_string())?;
    prepenv::crypto_fixtures(&client)
        .await
        .map_err(|e| e.to_string())?;
    let target = TargetNode::build().map_err(|e| e.to_string())?;
    simnode::configure(target.root()).map_err(|e| e.to_string())?;
    prepenv::admin_kubeconfig(&cp, target.root()).map_err(|e| e.to_string())?;
    let node = dir.join("node");
    std::os::unix::fs::symlink(target.root(), &node)
        .map_err(|e| format!("linking {}: {e}", node.display()))?;
    let registry = Registry::start().map_err(|e| e.to_string())?;
    let demo_images: Vec<String> = (0..3)
        .map(|i| images::push_test_image(&registry, &format!("ocp/demo{i}:v1"), &format!("demo {i}")))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let seed = images::push_seed(&registry, DEMO_VERSION, &demo_images).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("seed-image"), format!("{seed} {DEMO_VERSION}\n")).map_err(|e| e.to_string())?;
    let operator_kc = lca_testkit::rbac::operator_kubeconfig(&cp).map_err(|e| e.to_string())?;
    let operator = OperatorProcess::start_supervised(
        &operator_kc,
        target.root(),
        &dir.join("operator.log"),
        &dir.join("operator.pid"),
        &["--node=simulated"],
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ready"), format!("{}\n", cp.server())).map_err(|e| e.to_string())?;
    println!(
        "lca-dev: control plane at {}, operator running (supervised), node root {}",
        cp.server(),
        node.display()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(operator);
    drop(registry);
    drop(target);
    drop(cp);
    let _ = std::fs::remove_file(dir.join("ready"));
    Ok(())
}
