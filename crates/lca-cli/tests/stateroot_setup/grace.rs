//! SIGTERM to a running stateroot setup (spec §5.4 step 1): before the seed is pulled the
//! run stops at once with a status that says so; after it the work goes on and completes,
//! unless the grace period (shortened here by the test build's `LCA_TEST_GRACE_SECS`) ends
//! first.

use std::process::{Command, Stdio};

use super::*;

/// Start `lca-cli stateroot-setup` detached from the test, with `env`.
fn spawn_setup(node: &TargetNode, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    Command::new(common::lca_cli_bin())
        .arg("--host-root")
        .arg(node.root())
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until the status file names `step` as running.
fn wait_step(status: &Path, step: &str) {
    let start = Instant::now();
    while !fs::read(status)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|s| s["phase"] == "running" && s["step"] == step)
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never reached {step}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM `child`, then its exit code, which must come within `limit`.
fn terminate(child: std::process::Child, limit: Duration) -> (Option<i32>, Duration) {
    signal(child.id() as i32, "TERM");
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(took < limit, "{took:?}: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), took)
}

#[test]
fn sigterm_stops_a_setup_before_the_pull_and_lets_it_finish_after() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_seed, image) = push_seed(registry.addr(), work.path());
    let status = work.path().join("status.json");

    // Before the pull (the registry frozen mid-pull): out at once, nothing deployed.
    let node = TargetNode::build().unwrap();
    let slow = ["--registry-read-timeout", "120s"];
    signal(registry.pid(), "STOP");
    let child = spawn_setup(&node, &setup_args(&image, "4.17.0", &status, &slow), &[]);
    wait_step(&status, "pull");
    let (code, took) = terminate(child, Duration::from_secs(10));
    signal(registry.pid(), "CONT");
    eprintln!("SIGTERM before the pull: exit {code:?} after {took:?}");
    assert_eq!(code, Some(1));
    assert_eq!(
        status_json(&status),
        serde_json::json!({"phase":"failed","step":"terminated",
            "message":"terminated (SIGTERM) before the seed image was pulled"})
    );
    assert_eq!(deployments(&node).len(), 1, "nothing deployed");

    // After the pull, held right after extracting the ostree repo: the work completes.
    let node = TargetNode::build().unwrap();
    let hold = [("FAILPOINTS", "stateroot-setup/extract-ostree=sleep(3000)")];
    let child = spawn_setup(&node, &setup_args(&image, "4.17.0", &status, &[]), &hold);
    wait_step(&status, "extract-ostree");
    let (code, _) = terminate(child, Duration::from_secs(120));
    assert_eq!(code, Some(0));
    assert_eq!(status_json(&status)["phase"], "succeeded");
    assert_eq!(deployments(&node).len(), 2);

    // After the pull, with a grace period shorter than the work: failed when it ends.
    let node = TargetNode::build().unwrap();
    let env = [
        ("FAILPOINTS", "stateroot-setup/extract-ostree=sleep(30000)"),
        ("LCA_TEST_GRACE_SECS", "1"),
    ];
    let child = spawn_setup(&node, &setup_args(&image, "4.17.0", &status, &[]), &env);
    wait_step(&status, "extract-ostree");
    let (code, took) = terminate(child, Duration::from_secs(20));
    eprintln!("SIGTERM with a 1 s grace: exit {code:?} after {took:?}");
    assert_eq!(code, Some(1));
    assert_eq!(
        status_json(&status),
        serde_json::json!({"phase":"failed","step":"terminated",
            "message":"terminated (SIGTERM): the grace period ended before stateroot setup did"})
    );
}
