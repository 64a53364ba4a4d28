//! `lca-dev <dir>`: the embedded local environment behind `make dev-up`. Starts a loopback
//! control plane with our CRDs, a simulated node under `<dir>/node` and the operator, writes
//! `<dir>/kubeconfig`, then `<dir>/ready`, and runs until SIGTERM/SIGINT, when everything it
//! started is stopped (the guarded children also die if this process is killed).

use std::path::PathBuf;
use std::process::ExitCode;

use lca_testkit::controlplane::Options;
use lca_testkit::{ControlPlane, OperatorProcess};
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
    let node = dir.join("node");
    std::fs::create_dir_all(&node).map_err(|e| format!("creating {}: {e}", node.display()))?;
    let operator_kc = lca_testkit::rbac::operator_kubeconfig(&cp).map_err(|e| e.to_string())?;
    let operator =
        OperatorProcess::start(&operator_kc, &node, &dir.join("operator.log")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ready"), format!("{}\n", cp.server())).map_err(|e| e.to_string())?;
    println!(
        "lca-dev: control plane at {}, operator running, node root {}",
        cp.server(),
        node.display()
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(operator);
    drop(cp);
    let _ = std::fs::remove_file(dir.join("ready"));
    Ok(())
}
