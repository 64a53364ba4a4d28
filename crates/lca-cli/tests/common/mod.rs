//! Shared fixtures of the `lca-cli` integration tests: running the built `lca-cli`, a seed
//! made by `lca-cli create --simulated` and pushed to a loopback registry, tiny hand-written
//! OCI images pushed with skopeo, and the `create` tests' checks ([`seed`]).
#![allow(dead_code, clippy::unwrap_used)]

pub mod seed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lca_testkit::seednode::SeedNode;

/// Run a setup command, panicking with its stderr on failure.
pub fn sh(argv: &[&str]) -> String {
    lca_testkit::run(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// The `lca-cli` test build (built on first use: call it before timing a command).
pub fn lca_cli_bin() -> std::path::PathBuf {
    lca_testkit::assets::workspace_binary("lca-cli").expect("the lca-cli test build")
}

/// `lca-cli --host-root <root> <args…>` with extra environment.
pub fn lca_cli(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(lca_cli_bin())
        .arg("--host-root")
        .arg(root)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// As [`lca_cli`], failing the test when the command is still running after `limit` (a
/// hang must fail a test, not stall CI). The command is killed then; tools it started in
/// their own process groups end when the test's registries go away.
pub fn lca_cli_within(root: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let child = Command::new(lca_cli_bin())
        .arg("--host-root")
        .arg(root)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("lca-cli {args:?} still running after {limit:?}");
        }
    }
}

/// Send `signal` (`STOP`, `CONT`) to `pid` with kill(1): a frozen registry accepts
/// connections (the kernel completes the handshake) and never answers.
pub fn signal(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Build a simulated seed node whose MachineConfig has kernel arguments, pack it with
/// `lca-cli create --simulated` and push it to `<registry>/seed/sno:4.17.0`.
pub fn push_seed(registry: &str, work: &Path) -> (SeedNode, String) {
    let node = SeedNode::build(64).unwrap();
    let mc = r#"{"spec":{"kernelArguments":["ip=dhcp","console=ttyS0,115200n8"],"fips":false}}"#;
    std::fs::write(node.root().join("etc/machine-config-daemon/currentconfig"), mc).unwrap();
    let authfile = work.join("seed-auth.json");
    std::fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    let image = format!("{registry}/seed/sno:4.17.0");
    let out = lca_cli(
        node.root(),
        &[
            "create",
            "--simulated",
            "--image",
            &image,
            "--authfile",
            authfile.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "create: {}", stderr(&out));
    (node, image)
}

/// An OCI image layout with one uncompressed layer holding `files`, tagged `tag`.
pub fn oci_layout(layout: &Path, tag: &str, files: &[(&str, &[u8])]) {
    lca_testkit::images::oci_layout(layout, tag, files).unwrap();
}

/// Push a hand-written image with `files` to `<registry>/<name>:<tag>`.
pub fn push_image(work: &Path, registry: &str, name: &str, tag: &str, files: &[(&str, &[u8])]) -> String {
    let layout = work.join(format!("oci-{}-{tag}", name.replace('/', "_")));
    oci_layout(&layout, tag, files);
    let dest = format!("{registry}/{name}:{tag}");
    sh(&[
        "skopeo",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{dest}"),
    ]);
    dest
}

/// `podman images` names in a simulated node's private storage (the file `precache` writes).
pub fn podman_names(root: &Path) -> Vec<String> {
    let conf: PathBuf = root.join("lca-sim/containers-storage.conf");
    let out = Command::new("podman")
        .args(["images", "--format", "{{range .Names}}{{.}}\n{{end}}"])
        .env("CONTAINERS_STORAGE_CONF", conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// `precache --simulated` of the images listed in `list`, status in `status`, 3 pulls at a
/// time, plain HTTP, then `extra`.
pub fn precache_args<'a>(list: &'a Path, status: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "precache",
        "--simulated",
        "--images-file",
        list.to_str().unwrap(),
        "--status-file",
        status.to_str().unwrap(),
        "--parallel",
        "3",
        "--tls-verify",
        "false",
    ];
    args.extend_from_slice(extra);
    args
}
