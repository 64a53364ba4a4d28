//! A simulated seed node: a directory laid out like an RHCOS node, with a real ostree
//! sysroot (`init-fs`, a tiny commit with a kernel and `usr/etc`, `os-init`, `deploy`),
//! `/etc` changed against the deployment's defaults (so `config-diff` has M/A/D entries),
//! and a `/var` that exercises every exclusion and force-include rule of `var.tgz`.
//! `lca-cli create --simulated --host-root <root>` packs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result, io, run};

/// The stateroot of the simulated node.
pub const OS: &str = "rhcos";

/// A simulated seed node in a temp dir: its deployment marked booted, the host-services peer
/// in `lca-sim/bin`.
pub struct SeedNode {
    dir: tempfile::TempDir,
    /// `<csum>.<serial>` of deployment 0.
    pub deployment: String,
}

/// The seed cluster's kubeadmin password hash, which seed generation gives back.
pub const SEED_KUBEADMIN_HASH: &str = "$2a$10$seedclusterkubeadminhash";

fn write(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).map_err(io(format!("creating {}", p.display())))?;
    }
    fs::write(path, data).map_err(io(format!("writing {}", path.display())))
}

/// Lay out `root` like an RHCOS node: a real ostree sysroot (`init-fs`, no bootloader) with
/// a commit of `files` on `branch` deployed into stateroot `rhcos` with `karg`, and the
/// `/ostree`, `/etc` and `/var` links a node has. Returns the deployment (`<csum>.<serial>`).
fn deployed_node(
    root: &Path,
    files: &[(&str, &[u8])],
    branch: &str,
    version: &str,
    karg: &str,
) -> Result<String> {
    let sysroot = root.join("sysroot");
    let sys = sysroot.display().to_string();
    let repo = sysroot.join("ostree/repo").display().to_string();
    fs::create_dir_all(&sysroot).map_err(io("creating the sysroot"))?;
    run(&["ostree", "admin", "init-fs", &sys])?;
    run(&[
        "ostree",
        "config",
        &format!("--repo={repo}"),
        "set",
        "sysroot.bootloader",
        "none",
    ])?;
    let tree = root.join("tree");
    for (path, data) in files {
        write(&tree.join(path), data)?;
    }
    let tree_arg = format!("--tree=dir={}", tree.display());
    run(&[
        "ostree",
        &format!("--repo={repo}"),
        "commit",
        &format!("--branch={branch}"),
        &tree_arg,
        &format!("--add-metadata-string=version={version}"),
    ])?;
    fs::remove_dir_all(&tree).map_err(io("removing the commit tree"))?;
    run(&["ostree", "admin", "os-init", &format!("--sysroot={sys}"), OS])?;
    run(&[
        "ostree",
        "admin",
        "deploy",
        &format!("--sysroot={sys}"),
        &format!("--os={OS}"),
        &format!("--karg={karg}"),
        branch,
    ])?;
    let status = run(&["ostree", "admin", "status", &format!("--sysroot={sys}")])?;
    let deployment = status
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .nth(1)
                .filter(|id| id.contains('.'))
                .map(String::from)
        })
        .ok_or_else(|| Error::Setup(format!("no deployment in: {status}")))?;
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).map_err(io(format!("linking {name}")))
    };
    link("sysroot/ostree", "ostree")?;
    link(
        &format!("sysroot/ostree/deploy/{OS}/deploy/{deployment}/etc"),
        "etc",
    )?;
    link(&format!("sysroot/ostree/deploy/{OS}/var"), "var")?;
    Ok(deployment)
}

/// Record `deployment` (`<csum>.<serial>` of stateroot `rhcos`) as the one the node booted.
fn mark_booted(root: &Path, deployment: &str) -> Result<()> {
    let (checksum, serial) = deployment
        .split_once('.')
        .and_then(|(c, s)| Some((c.to_string(), s.parse().ok()?)))
        .ok_or_else(|| Error::Setup(format!("bad deployment {deployment}")))?;
    let booted = crate::reboot::Booted {
        stateroot: OS.into(),
        checksum,
        serial,
    };
    crate::reboot::write_booted(root, &booted)
}

impl SeedNode {
    /// Build a node whose `/var/lib/etcd` holds `payload_kib` KiB of mixed data.
    pub fn build(payload_kib: usize) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lca-seednode-")
            .tempdir()
            .map_err(io("creating the node dir"))?;
        let root = dir.path();
        let deployment = deployed_node(
            root,
            &[
                ("usr/lib/modules/6.0.0-sim/vmlinuz", b"kernel"),
                ("usr/etc/os-release", b"ID=rhcos\nVERSION_ID=4.17\n"),
                ("usr/etc/foo.conf", b"setting=default\n"),
                ("usr/etc/removed.conf", b"gone\n"),
                ("usr/etc/hostname", b"seed\n"),
                ("usr/bin/hello", b"#!/bin/sh\necho hello\n"),
            ],
            "rhcos/4.17",
            "417.94.sim",
            "root=UUID=fake",
        )?;

        let etc = root.join("etc");
        write(&etc.join("foo.conf"), b"setting=LOCAL\n")?;
        write(&etc.join("local.conf"), b"added=1\n")?;
        fs::remove_file(etc.join("removed.conf")).map_err(io("removing removed.conf"))?;
        write(&etc.join("hostname"), b"seed-node\n")?;
        write(
            &etc.join("NetworkManager/system-connections/eth0.nmconnection"),
            b"[connection]\n",
        )?;
        write(
            &etc.join("kubernetes/manifests/etcd-pod.yaml"),
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: etcd, namespace: openshift-etcd}\nspec:\n  containers:\n  - name: etcd\n    image: quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd\n",
        )?;
        let mc = br#"{"spec":{"config":{"storage":{"files":[{"path":"/var/lib/containers/keep.conf"},{"path":"/etc/x"}]}}}}"#;
        write(&etc.join("machine-config-daemon/currentconfig"), mc)?;

        let var = root.join("var");
        write(&var.join("lib/kubelet/config.json"), b"{\"auths\":{}}")?;
        write(&var.join("lib/kubelet/pods/p1/volume"), b"pod data")?;
        write(&var.join("lib/containers/storage/overlay/l1"), b"layer")?;
        write(&var.join("lib/containers/keep.conf"), b"mcd managed")?;
        write(&var.join("log/messages"), b"log")?;
        write(&var.join("tmp/scratch"), b"tmp")?;
        write(&var.join("home/core/.bash_history"), b"history")?;
        write(&var.join("home/core/notes"), b"notes")?;
        write(&var.join("lib/lca/ibu-seedgen-orch/seed-cluster-info.json"), br#"{"seed_cluster_ocp_version":"4.17.0","base_domain":"example.com","cluster_name":"seed","has_proxy":false,"has_fips":false,"node_ips":["192.168.1.10"]}"#)?;
        // What the operator backs up for recert before the imager runs (§8.5 step 5).
        let certs = var.join("tmp/backupCertsDir");
        for f in [
            "admin-kubeconfig-client-ca.crt",
            "loadbalancer-serving-signer.key",
            "localhost-serving-signer.key",
            "service-network-serving-signer.key",
            "ingresskey-ingress-operator.key",
        ] {
            write(&certs.join(f), format!("SEED {f}").as_bytes())?;
        }
        write(
            &certs.join("kubeadmin-password-hash.txt"),
            SEED_KUBEADMIN_HASH.as_bytes(),
        )?;
        write(&var.join("lib/etcd/member/snap/db"), &payload(payload_kib * 1024))?;
        let secret = var.join("lib/kubelet/secret");
        write(&secret, b"s")?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).map_err(io("chmod"))?;
        std::os::unix::fs::symlink("../etcd/member", var.join("lib/kubelet/etcd-link"))
            .map_err(io("symlink"))?;
        // The node's CRI-O image store, as the host-services peer's `crictl images` lists it.
        write(
            &root.join("lca-sim/images.list"),
            b"quay.io/openshift/a@sha256:1\nregistry.redhat.io/redhat/redhat-operator-index:v4.17\n",
        )?;
        crate::hostpeer::install(root)?;
        mark_booted(root, &deployment)?;
        Ok(Self { dir, deployment })
    }

    /// The node's `/`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// What the SeedGenerator's prerequisites (§8.2) look for on the node beyond the peer:
    /// an `ostree` with `set-default` (the libostree test peer, built next to the operator
    /// binary) and the IBU dnsmasq script.
    pub fn prepare_seedgen(&self) -> Result<()> {
        let operator = crate::assets::binary("LCA_OPERATOR_BIN", "lca-operator")?;
        let peer = operator.with_file_name("lca-ostree-set-default-peer");
        let peer = if peer.exists() {
            peer.display().to_string()
        } else {
            "false".into()
        };
        crate::write_executable(
            &self.root().join("lca-sim/bin/ostree"),
            &format!(
                "#!/bin/sh\nif [ \"$1\" = admin ] && [ \"$2\" = set-default ]; then exec {peer} \"$@\"; fi\n\
                 if [ \"$1\" = admin ] && [ \"$2\" = --help ]; then /usr/bin/ostree \"$@\"; echo '  set-default        Change the default bootloader entry'; exit 0; fi\n\
                 exec /usr/bin/ostree \"$@\"\n"
            ),
        )?;
        crate::write_executable(
            &self.root().join("usr/local/bin/dnsmasq_config.sh"),
            "#!/bin/sh\n",
        )
    }

    /// The deployment directory (its `/etc` is the node's `/etc`).
    pub fn deployment_dir(&self) -> PathBuf {
        self.root()
            .join(format!("sysroot/ostree/deploy/{OS}/deploy/{}", self.deployment))
    }
}

/// Half compressible text, half pseudo-random bytes, like an etcd db with certificates.
pub fn payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        for _ in 0..512 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&b"apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n".repeat(80));
    }
    out.truncate(len);
    out
}

impl Drop for SeedNode {
    fn drop(&mut self) {
        // ostree marks deployment dirs immutable; the temp dir cannot go otherwise.
        let _ = Command::new("chattr")
            .arg("-i")
            .arg(self.deployment_dir())
            .status();
    }
}

/// A simulated *target* node (the one being upgraded): a real ostree sysroot with stateroot
/// `rhcos` deployed from `rhcos/4.16` and marked booted in `lca-sim/node.json`
/// (see `lca_hostops::sim`), `/etc`, `/var` and `/ostree` linked like a node's, an empty
/// `/var/tmp`. `lca-cli stateroot-setup --simulated --host-root <root>` installs seeds on it.
pub struct TargetNode {
    dir: tempfile::TempDir,
    /// `<csum>.<serial>` of the booted deployment.
    pub deployment: String,
}

impl TargetNode {
    /// Build the node (about 50 ms of ostree commands).
    pub fn build() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lca-targetnode-")
            .tempdir()
            .map_err(io("creating the node dir"))?;
        let root = dir.path();
        let deployment = deployed_node(
            root,
            &[
                ("usr/lib/modules/5.14.0-sim/vmlinuz", b"kernel 4.16"),
                ("usr/etc/os-release", b"ID=rhcos\nVERSION_ID=4.16\n"),
                ("usr/etc/foo.conf", b"setting=target-4.16\n"),
            ],
            "rhcos/4.16",
            "416.94.sim",
            "root=UUID=target",
        )?;
        fs::create_dir_all(root.join("var/tmp")).map_err(io("creating var/tmp"))?;
        mark_booted(root, &deployment)?;
        Ok(Self { dir, deployment })
    }

    /// The node's `/`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `ostree admin status --sysroot=<root>/sysroot` (index 0 first = the default).
    pub fn ostree_status(&self) -> Result<String> {
        let sys = format!("--sysroot={}", self.root().join("sysroot").display());
        run(&["ostree", "admin", "status", &sys])
    }
}

impl Drop for TargetNode {
    fn drop(&mut self) {
        // Every deployment root (the booted one and those set up by tests) is `chattr +i`.
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(self.root().join("sysroot/ostree/deploy"))
            .output();
    }
}
