//! The argv a *real* node gets (no `--sysroot`, `rpm-ostree`, `unshare` + remount, nsenter for
//! `podman image mount`), checked with a scripted executor because this machine is not an
//! RHCOS node. Everything that can run here runs for real in the other test files; this file
//! covers only the production-only command lines.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use lca_hostops::executor::BoxFuture;
use lca_hostops::ostree;
use lca_hostops::reboot::{self, Rationale};
use lca_hostops::{Cmd, Error, Executor, HostPaths, Node, NodeKind, Output, podman};

/// Answers commands from a script of `(argv prefix, result)`; records every argv.
#[derive(Debug)]
struct Scripted {
    node: Node,
    script: Vec<(&'static str, Result<&'static str, &'static str>)>,
    calls: Mutex<Vec<(String, bool)>>,
}

impl Scripted {
    fn new(root: &std::path::Path, script: Vec<(&'static str, Result<&'static str, &'static str>)>) -> Self {
        let node = Node {
            kind: NodeKind::Real,
            paths: HostPaths::new(root),
            cmd_paths: HostPaths::new("/"),
        };
        Self {
            node,
            script,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }
}

impl Executor for Scripted {
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, lca_hostops::Result<Output>> {
        let shown = cmd.display();
        self.calls
            .lock()
            .unwrap()
            .push((shown.clone(), cmd.wants_host_namespaces()));
        let answer = self
            .script
            .iter()
            .find(|(prefix, _)| shown.starts_with(prefix))
            .map(|(_, r)| *r);
        Box::pin(async move {
            match answer {
                Some(Ok(stdout)) => Ok(Output {
                    code: Some(0),
                    stdout: stdout.to_string(),
                    stderr: String::new(),
                }),
                Some(Err("not found")) => Err(Error::ToolNotFound {
                    tool: cmd.program().to_string(),
                }),
                Some(Err(stderr)) => Err(Error::CommandFailed {
                    command: shown,
                    status: "exit status: 1".into(),
                    stderr_tail: stderr.into(),
                }),
                None => panic!("unscripted command {shown}"),
            }
        })
    }

    fn node(&self) -> &Node {
        &self.node
    }
}

const RPM_OSTREE: &str = include_str!("../../../tests/fixtures/rpm-ostree-status.json");
const ADMIN_STATUS_BOOTED: &str = include_str!("../../../tests/fixtures/ostree-admin-status-booted.txt");

#[tokio::test]
async fn status_uses_rpm_ostree_then_falls_back_to_ostree() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Scripted::new(dir.path(), vec![("rpm-ostree status --json", Ok(RPM_OSTREE))]);
    assert_eq!(
        ostree::status(&exec).await.unwrap().booted_stateroot().unwrap(),
        "rhcos_4.17.0"
    );
    assert_eq!(exec.calls(), ["rpm-ostree status --json"]);

    let exec = Scripted::new(
        dir.path(),
        vec![
            ("rpm-ostree", Err("not found")),
            ("ostree admin status", Ok(ADMIN_STATUS_BOOTED)),
        ],
    );
    assert_eq!(ostree::status(&exec).await.unwrap().booted().unwrap().index, 0);
    assert_eq!(exec.calls(), ["rpm-ostree status --json", "ostree admin status"]);

    let exec = Scripted::new(dir.path(), vec![("rpm-ostree", Ok("{not json"))]);
    let err = ostree::status(&exec).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to parse the output of `rpm-ostree status --json`"),
        "{err}"
    );
}

#[tokio::test]
async fn set_default_cli_and_reboot_argv_on_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Scripted::new(
        dir.path(),
        vec![
            (
                "ostree admin --help",
                Ok("  set-default        Change the default bootloader entry\n"),
            ),
            ("ostree admin set-default", Ok("")),
            ("mount /sysroot", Ok("")),
            ("systemd-run", Ok("")),
            ("rpm-ostree cleanup -b", Ok("")),
        ],
    );
    ostree::remount_sysroot_rw(&exec).await.unwrap();
    assert_eq!(
        ostree::set_default(&exec, 2).await.unwrap(),
        ostree::SetDefaultPath::Cli
    );
    ostree::cleanup_base(&exec).await.unwrap();
    reboot::reboot_for(&exec, Rationale::Upgrade).await.unwrap();
    assert_eq!(
        exec.calls(),
        [
            "mount /sysroot -o remount,rw",
            "ostree admin --help",
            "ostree admin set-default 2",
            "rpm-ostree cleanup -b",
            "systemd-run --unit lifecycle-agent-reboot --description lifecycle-agent: upgrade systemctl --message=Image Based Upgrade reboot",
        ]
    );
}

#[tokio::test]
async fn stateroot_removal_on_a_real_node_remounts_in_a_private_namespace() {
    let dir = tempfile::tempdir().unwrap();
    // The process-side view of the node has the stateroot dir with one leftover deployment.
    let paths = HostPaths::new(dir.path());
    std::fs::create_dir_all(paths.stateroot_deployments("rhcos").join("abc.0")).unwrap();
    let status = r#"{"deployments":[
        {"osname":"rhcos_4.17.0","checksum":"a","serial":0,"booted":true},
        {"osname":"rhcos","checksum":"b","serial":0,"booted":false}]}"#;
    let exec = Scripted::new(
        dir.path(),
        vec![
            ("rpm-ostree status", Ok(status)),
            ("ostree admin undeploy 1", Ok("")),
            ("unshare", Ok("")),
        ],
    );
    ostree::remove_stateroot(&exec, "rhcos").await.unwrap();
    let calls = exec.calls();
    assert_eq!(calls[2], "ostree admin undeploy 1");
    assert!(
        calls[3].starts_with("unshare -m -- bash -c mount -o remount,rw /sysroot && "),
        "{}",
        calls[3]
    );
    assert!(calls[3].ends_with(
        " lca-rm-stateroot /sysroot/ostree/deploy/rhcos /sysroot/ostree/deploy/rhcos/deploy/abc.0"
    ));

    let err = ostree::remove_stateroot(&exec, "rhcos_4.17.0").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to remove stateroot rhcos_4.17.0: it is booted"
    );
}

#[tokio::test]
async fn image_mount_goes_to_the_host_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Scripted::new(
        dir.path(),
        vec![(
            "podman image mount",
            Ok("/var/lib/containers/storage/overlay/x/merged\n"),
        )],
    );
    let mnt = podman::image_mount(&exec, "quay.io/seed:4.17").await.unwrap();
    assert_eq!(
        mnt.to_str().unwrap(),
        "/var/lib/containers/storage/overlay/x/merged"
    );
    assert!(
        exec.calls.lock().unwrap()[0].1,
        "podman image mount must be marked in_host_namespaces"
    );
}
