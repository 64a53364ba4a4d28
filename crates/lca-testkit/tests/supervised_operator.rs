//! The supervised operator (as `make dev-up` runs it) against a real control plane: after a
//! `kill -9` a new operator process comes up on its own and reconciles again, and stopping
//! the supervisor leaves no operator process behind.

use std::path::Path;
use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;
use kube::runtime::wait::await_condition;
use lca_api::ImageBasedUpgrade;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, rbac};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const IBU: &str = "upgrade";

/// Wait until the IBU exists and its uid is not `old`; returns the new uid.
async fn ibu_created(ibus: &Api<ImageBasedUpgrade>, old: Option<&str>, op: &OperatorProcess) -> String {
    let cond = |ibu: Option<&ImageBasedUpgrade>| {
        ibu.and_then(|i| i.metadata.uid.as_deref())
            .is_some_and(|uid| Some(uid) != old)
    };
    let found = tokio::time::timeout(Duration::from_secs(60), await_condition(ibus.clone(), IBU, cond)).await;
    match found {
        Ok(Ok(Some(ibu))) => ibu.metadata.uid.expect("uid"),
        other => panic!("IBU not (re-)created: {other:?}\noperator log:\n{}", op.log()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervised_operator_is_restarted_and_reconciles_again() {
    let cp = ControlPlane::start().await.expect("control plane starts");
    let client = cp.client().await.expect("admin client");
    let ibus: Api<ImageBasedUpgrade> = Api::all(client);
    // The operator cleans the node (ostree stateroots) before it creates the default IBU.
    let node = TargetNode::build().expect("simulated node");
    let kubeconfig = rbac::operator_kubeconfig(&cp).expect("operator RBAC installs");
    let pid_file = cp.dir().join("operator.pid");
    let log = cp.dir().join("operator.log");
    let op = OperatorProcess::start_supervised(&kubeconfig, node.root(), &log, &pid_file, &[])
        .expect("operator starts");
    let first_uid = ibu_created(&ibus, None, &op).await;

    let first = op.pid();
    let from_file: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(from_file, first);
    kill(Pid::from_raw(first), Signal::SIGKILL).expect("kill -9 the operator");
    let waiter = tokio::task::block_in_place(|| op.wait_restarted(first, Duration::from_secs(30)));
    let second = waiter.unwrap_or_else(|| panic!("no operator restarted:\n{}", op.log()));
    assert_ne!(second, first);
    assert!(op.alive());
    assert!(
        !Path::new(&format!("/proc/{first}")).exists(),
        "the killed operator was reaped"
    );

    // Only the new operator can re-create it: the old one is gone.
    ibus.delete(IBU, &DeleteParams::default())
        .await
        .expect("delete the IBU");
    let second_uid = ibu_created(&ibus, Some(&first_uid), &op).await;
    assert_ne!(second_uid, first_uid);
    assert_eq!(
        op.pid(),
        second,
        "the operator that reconciled is the restarted one"
    );

    op.kill();
    assert!(
        !Path::new(&format!("/proc/{second}")).exists(),
        "an operator is left after stop"
    );
    assert!(!pid_file.exists());
}
