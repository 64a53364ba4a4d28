//! Seed generation that breaks after the seed cluster was stopped: a second SeedGenerator
//! while the imager runs is refused without disturbing it, and a failure between stopping
//! kubelet and packing leaves the seed cluster running again, with its certificates given
//! back and the SeedGenerator failed with the reason; an operator killed while the imager
//! runs (as stopping kubelet kills its pod) comes back and the generation still completes.

use super::*;

#[tokio::test]
async fn a_failure_after_kubelet_stopped_leaves_the_cluster_running() {
    let env = setup().await;
    let root = env.node.root();
    // The imager waits in its certificate expiry; the node's multus keys cannot be removed
    // (a file where their directory should be), which fails create right after the expiry.
    let expiry = "RECERT_CONFIG=/var/tmp/backup/recert_config.json";
    std::fs::create_dir_all(root.join("lca-sim/hold")).unwrap();
    std::fs::write(root.join("lca-sim/hold/podman"), expiry).unwrap();
    std::fs::create_dir_all(root.join("etc/cni/multus")).unwrap();
    std::fs::write(root.join("etc/cni/multus/certs"), "not a directory").unwrap();
    env.create_cr().await;
    env.wait_host_call(expiry, "expired the certificates").await;
    let calls = lca_testkit::hostpeer::calls(root);
    assert!(
        calls.iter().any(|c| c == "systemctl stop kubelet.service"),
        "{calls:#?}"
    );

    // The operator deleted `seedimage` before launching the imager: a new one is refused
    // while the imager runs, and the imager goes on.
    env.create_cr().await;
    let refused = env
        .wait_condition(
            ct::SEEDGEN_IN_PROGRESS,
            "False",
            "Failed",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(refused, m::SEEDGEN_REJECT_IMAGER_RUNNING);
    std::fs::remove_file(root.join("lca-sim/hold/podman")).unwrap();

    // The imager fails; the saved SeedGenerator replaces the refused one and fails with why.
    let refused_completed = format!("{}: {refused}", m::SEEDGEN_FAILED);
    let start = Instant::now();
    let failed = loop {
        let got = env
            .wait_condition(ct::SEEDGEN_COMPLETED, "False", "Failed", Duration::from_secs(120))
            .await;
        if got != refused_completed {
            break got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the saved SeedGenerator never replaced the refused one\n{}",
            env.operator.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Upstream's wording (the failure helper prefixes it twice), then what the imager said.
    assert_eq!(
        failed,
        format!(
            "{f}: {f}: {}: expected container status 0, found: 1; lca-cli: removing the node's \
             certificates before packing: removing {}/etc/cni/multus/certs: Not a directory (os error 20)",
            m::SEEDGEN_IMAGER_STATUS_CHECK_FAILED,
            root.display(),
            f = m::SEEDGEN_FAILED,
        )
    );
    assert_eq!(
        lca_testkit::hostpeer::recert_configs(root),
        [
            "/var/tmp/backup/recert_config.json",
            "/var/tmp/backupCertsDir/recert_restore_config.json"
        ],
        "expired, then given back"
    );
    std::fs::remove_file(root.join("etc/cni/multus/certs")).unwrap();
    aftermath::assert_seed_cluster_given_back(&env).await;
}

#[tokio::test]
async fn an_operator_killed_while_the_imager_runs_restarts_and_the_generation_completes() {
    let env = setup().await;
    let root = env.node.root();
    // The imager waits where it stops kubelet: on a real node that takes the operator's pod
    // down, and the operator comes back while the imager still works.
    let stop_kubelet = "stop kubelet.service";
    std::fs::create_dir_all(root.join("lca-sim/hold")).unwrap();
    std::fs::write(root.join("lca-sim/hold/systemctl"), stop_kubelet).unwrap();
    env.create_cr().await;
    env.wait_host_call(stop_kubelet, "stopped kubelet").await;
    let old = env.operator.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGKILL).unwrap();
    let new = env
        .operator
        .wait_restarted(old, Duration::from_secs(30))
        .expect("the operator restarts");
    // Started and past its start-up restoration while the imager still holds.
    let start = Instant::now();
    while !env
        .operator
        .log()
        .contains("the imager still runs: the SeedGenerator is restored when it exits")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "operator {new} never saw the running imager\n{}",
            env.operator.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let early = env.api().get_opt(names::SEEDGEN).await.unwrap();
    assert!(early.is_none(), "restored while the imager runs: {early:?}");
    std::fs::remove_file(root.join("lca-sim/hold/systemctl")).unwrap();

    env.wait_completed().await;
    assert_eq!(env.operator.pid(), new, "one restart only");
}
