//! `lca-cli create` on a simulated seed node against a real registry (Debian
//! docker-registry with htpasswd), then Prep's side through the lca-seed API: inspect the
//! labels, run the §5.2 checks, pull by digest, unpack, and compare trees with the node.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use lca_hostops::archive;
use lca_seed::{Credentials, Error, SeedRegistry};
use lca_testkit::Registry;
use lca_testkit::seednode::SeedNode;

fn create(node: &SeedNode, image: &str, authfile: &Path) -> std::process::Output {
    create_with(node, image, authfile, &[])
}

fn create_with(node: &SeedNode, image: &str, authfile: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(lca_testkit::assets::workspace_binary("lca-cli").expect("the lca-cli test build"))
        .arg("--host-root")
        .arg(node.root())
        .args(["create", "--simulated", "--image", image, "--authfile"])
        .arg(authfile)
        .args(extra)
        .output()
        .unwrap()
}

/// Makes `dir` undeletable and undoes it on drop, so the temp dir can be removed even when
/// an assertion fails first. As root (which permissions do not stop) the immutable bit;
/// unprivileged a read-only parent, which forbids unlinking `dir`.
enum Immutable {
    Bit(std::path::PathBuf),
    ReadOnlyParent(std::path::PathBuf),
}

impl Immutable {
    fn set(dir: &Path) -> Self {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let root = fs::metadata("/proc/self").unwrap().uid() == 0;
        if !root {
            let parent = dir.parent().unwrap().to_path_buf();
            fs::set_permissions(&parent, fs::Permissions::from_mode(0o555)).unwrap();
            return Immutable::ReadOnlyParent(parent);
        }
        let ok = Command::new("chattr").arg("+i").arg(dir).status().unwrap();
        assert!(
            ok.success(),
            "chattr +i {} (needs root on ext4/xfs)",
            dir.display()
        );
        Immutable::Bit(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        match self {
            // Best effort in a drop: a failure shows up as a temp dir that cannot be removed.
            Immutable::Bit(dir) => {
                let _ = Command::new("chattr").arg("-i").arg(&*dir).status();
            }
            Immutable::ReadOnlyParent(parent) => {
                let _ = fs::set_permissions(&*parent, fs::Permissions::from_mode(0o755));
            }
        }
    }
}

fn same_file(a: &Path, b: &Path) {
    let (ma, mb) = (fs::symlink_metadata(a).unwrap(), fs::symlink_metadata(b).unwrap());
    assert_eq!(ma.mode(), mb.mode(), "{}", a.display());
    if ma.file_type().is_symlink() {
        assert_eq!(fs::read_link(a).unwrap(), fs::read_link(b).unwrap());
    } else if ma.is_file() {
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{} differs",
            a.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_push_inspect_pull_unpack_round_trip() {
    let registry = Registry::start_with_auth("lca", "s3cret").unwrap();
    let node = SeedNode::build(2048).unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(
        &authfile,
        Credentials::auth_json(registry.addr(), "lca", "s3cret"),
    )
    .unwrap();
    let image = format!("{}/seed/sno:4.17.0", registry.addr());

    // Wrong credentials: a clear 401 from the probe before packing, in seconds, with the
    // node untouched (kubelet never stopped, nothing packed) and no password in the output.
    let badauth = work.path().join("bad.json");
    fs::write(
        &badauth,
        Credentials::auth_json(registry.addr(), "lca", "wr0ngpass"),
    )
    .unwrap();
    lca_testkit::assets::workspace_binary("lca-cli").expect("the lca-cli test build");
    let started = std::time::Instant::now();
    let out = create(&node, &image, &badauth);
    assert!(!out.status.success());
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "rejected the credentials (401 Unauthorized) while checking push access before packing"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("wr0ngpass"), "password leaked: {stderr}");
    assert!(!node.root().join("var/tmp/backup").exists(), "nothing packed");
    let calls = lca_testkit::hostpeer::calls(node.root());
    assert!(
        !calls.iter().any(|c| c.starts_with("systemctl stop")),
        "{calls:?}"
    );

    // What the operator gathered from the cluster: a CatalogSource whose image the node has,
    // and the CSVs' related images, one of them cloud-specific.
    fs::write(
        node.root().join("lca-sim/images.list"),
        "quay.io/openshift/a@sha256:1\nregistry.redhat.io/redhat/redhat-operator-index:v4.17\nmirror.example.com/olm/catalog:v1\n",
    )
    .unwrap();
    let seed_images = serde_json::json!({
        "catalog_source_images": ["mirror.example.com/olm/catalog:v1"],
        "related_images": ["registry.example.com/op/x@sha256:9", "registry.example.com/op/y-for-gcp@sha256:8"],
    });
    fs::write(
        node.root().join(lca_api::consts::paths::SEED_IMAGES),
        seed_images.to_string(),
    )
    .unwrap();
    let out = create(&node, &image, &authfile);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !node.root().join("var/tmp/backup").exists(),
        "backup dir cleaned up"
    );
    // The real node's commands, as the host-services peer saw them: kubelet stopped (CRI-O
    // is not running), each recert next to its etcd sidecar, kubelet enabled again last.
    let calls = lca_testkit::hostpeer::calls(node.root());
    let recert = "quay.io/edge-infrastructure/recert:v0";
    // The sidecar runs the seed's own etcd image (from its static pod) on its data.
    let sidecar = "--detach --name recert_etcd --entrypoint etcd -v /var/lib/etcd:/store \
                   quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd --name editor --data-dir /store";
    let order = [
        "podman image prune -f".to_string(),
        "crictl images -o json".to_string(),
        "systemctl enable installation-configuration.service".to_string(),
        "systemctl stop kubelet.service".to_string(),
        "systemctl disable kubelet.service".to_string(),
        "systemctl is-active crio".to_string(),
        sidecar.to_string(),
        format!(
            "-e RECERT_CONFIG=/var/tmp/backup/recert_config.json --authfile {} {recert}",
            authfile.display()
        ),
        "podman stop recert_etcd".to_string(),
        "systemctl disable --now installation-configuration.service".to_string(),
        sidecar.to_string(),
        format!(
            "-e RECERT_CONFIG=/var/tmp/backupCertsDir/recert_restore_config.json --authfile {} {recert}",
            authfile.display()
        ),
        "podman stop recert_etcd".to_string(),
        "systemctl enable kubelet.service --now".to_string(),
    ];
    let mut at = 0;
    for want in &order {
        at += calls[at..]
            .iter()
            .position(|c| c.contains(want.as_str()))
            .unwrap_or_else(|| panic!("{want} after call {at} in {calls:#?}"))
            + 1;
    }
    assert_eq!(calls.last().unwrap(), "systemctl enable kubelet.service --now");
    // The expiry threw the kubeadmin password away; the restoration gave the cluster its own
    // keys, admin CA and kubeadmin hash back; the backup is gone.
    let config = |n: u32| -> serde_json::Value {
        serde_json::from_slice(&fs::read(node.root().join(format!("lca-sim/recert/{n}.json"))).unwrap())
            .unwrap()
    };
    let (expire, restore) = (config(1), config(2));
    assert_eq!(
        (&expire["force_expire"], &expire["etcd_defrag"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    let disposable = expire["kubeadmin_password_hash"].as_str().unwrap();
    assert!(disposable.starts_with("$2b$") && disposable != lca_testkit::seednode::SEED_KUBEADMIN_HASH);
    assert_eq!(restore["extend_expiration"], true);
    assert_eq!(
        restore["kubeadmin_password_hash"],
        lca_testkit::seednode::SEED_KUBEADMIN_HASH
    );
    assert_eq!(
        restore["use_cert_rules"],
        serde_json::json!(["/var/tmp/backupCertsDir/admin-kubeconfig-client-ca.crt"])
    );
    assert!(
        !node.root().join("var/tmp/backupCertsDir").exists(),
        "the keys do not stay behind"
    );

    let reference = lca_seed::parse_reference(&image).unwrap();
    let creds = Credentials::Basic {
        user: "lca".into(),
        password: "s3cret".into(),
    };
    let reg = SeedRegistry::new(&reference, &creds, true);
    let (_, target) = common::seed::pull_valid_seed(&reg, &reference, &node.deployment, work.path()).await;
    assert_eq!(
        fs::read_to_string(target.join("etc.deletions")).unwrap(),
        "/etc/removed.conf\n"
    );
    let list = fs::read_to_string(target.join("containers.list")).unwrap();
    assert_eq!(
        list,
        "quay.io/edge-infrastructure/recert:v0\nquay.io/openshift/a@sha256:1\nregistry.example.com/op/x@sha256:9\n",
        "the node's images without the catalog and index images, with recert and the related images"
    );

    // Unpack the inner tarballs and compare with the node.
    let tree = work.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let opts = archive::Options::default();
    for t in ["var.tgz", "etc.tgz"] {
        archive::extract_tar_gz(fs::File::open(target.join(t)).unwrap(), &tree, &opts).unwrap();
    }
    let var = node.root().join("var");
    for f in [
        "lib/kubelet/config.json",
        "lib/kubelet/secret",
        "lib/etcd/member/snap/db",
        "lib/kubelet/etcd-link",
        "home/core/notes",
        "lib/containers/keep.conf",
    ] {
        same_file(&tree.join("var").join(f), &var.join(f));
    }
    for gone in [
        "lib/kubelet/pods/p1",
        "lib/containers/storage",
        "log/messages",
        "tmp/scratch",
        "home/core/.bash_history",
        "lib/lca",
    ] {
        assert!(!tree.join("var").join(gone).exists(), "{gone} must be excluded");
    }
    assert!(tree.join("var/log").is_dir() && tree.join("var/tmp").is_dir());
    // What the new stateroot needs to boot (spec §6.4): the enabled units, lca-cli, the seed info.
    let units = tree.join("etc/systemd/system");
    let post_pivot = fs::read_to_string(units.join("installation-configuration.service")).unwrap();
    for line in [
        "Type=oneshot",
        "ExecStart=/usr/local/bin/lca-cli post-pivot",
        "Restart=on-failure",
        "RestartSec=5s",
        "After=coreos-update-ca-trust.service",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            post_pivot.lines().any(|l| l == line),
            "{line} missing from {post_pivot}"
        );
    }
    let monitor = fs::read_to_string(units.join("lca-init-monitor.service")).unwrap();
    for line in [
        "ExecStart=/usr/local/bin/lca-cli init-monitor --monitor",
        "ExecStopPost=systemctl disable lca-init-monitor.service",
        "After=NetworkManager-wait-online.service",
    ] {
        assert!(
            monitor.lines().any(|l| l == line),
            "{line} missing from {monitor}"
        );
    }
    for unit in ["installation-configuration.service", "lca-init-monitor.service"] {
        let link = units.join("multi-user.target.wants").join(unit);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("/etc/systemd/system").join(unit),
            "{unit} enabled"
        );
    }
    same_file(&tree.join("var/usrlocal/bin/lca-cli"), &target.join("lca-cli"));
    same_file(
        &tree.join("var/seed_data/manifest.json"),
        &target.join("manifest.json"),
    );
    // ... and the seed node is left without them.
    for gone in [
        "etc/systemd/system/installation-configuration.service",
        "etc/systemd/system/lca-init-monitor.service",
        "etc/systemd/system/multi-user.target.wants/installation-configuration.service",
        "etc/systemd/system/multi-user.target.wants/lca-init-monitor.service",
        "var/seed_data",
    ] {
        assert!(
            fs::symlink_metadata(node.root().join(gone)).is_err(),
            "{gone} left on the seed node"
        );
    }
    same_file(&tree.join("etc/foo.conf"), &node.root().join("etc/foo.conf"));
    same_file(&tree.join("etc/local.conf"), &node.root().join("etc/local.conf"));
    for gone in ["hostname", "NetworkManager/system-connections", "os-release"] {
        assert!(
            !tree.join("etc").join(gone).exists(),
            "etc/{gone} must be excluded"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_blob_and_unreachable_registry_leave_nothing() {
    let registry = Registry::start().unwrap();
    let node = SeedNode::build(64).unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    let image = format!("{}/seed/sno:4.17.0", registry.addr());
    let out = create(&node, &image, &authfile);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let reference = lca_seed::parse_reference(&image).unwrap();
    let reg = SeedRegistry::new(&reference, &Credentials::Anonymous, true);
    let info = reg.inspect(&reference).await.unwrap();
    // Corrupt the layer in the registry's storage (the registry serves it unchecked).
    let hex = info.layers[0].digest.trim_start_matches("sha256:").to_string();
    let data = registry.dir().join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    let target = work.path().join("seed");
    let err = lca_seed::pull_and_unpack(&reg, &reference, &target)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Digest { .. }), "{err:?}");
    assert_eq!(err.category(), lca_seed::Category::Invalid);
    assert_eq!(
        fs::read_dir(work.path()).unwrap().count(),
        1,
        "only auth.json is left"
    );

    let addr = registry.addr().to_string();
    drop(registry);
    let gone = lca_seed::parse_reference(&format!("{addr}/seed/sno:4.17.0")).unwrap();
    let err = SeedRegistry::new(&gone, &Credentials::Anonymous, true)
        .inspect(&gone)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert_eq!(err.category(), lca_seed::Category::Transient);
}

/// The node's OVN and multus keys are removed right before `var.tgz` is packed; when that
/// removal fails the keys would travel inside the seed, so create must stop there.
#[tokio::test(flavor = "multi_thread")]
async fn undeletable_node_certs_abort_before_packing() {
    let registry = Registry::start().unwrap();
    let node = SeedNode::build(64).unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    let image = format!("{}/seed/sno:4.17.0", registry.addr());
    let certs = node.root().join("var/lib/ovn-ic/etc/ovnkube-node-certs");
    fs::create_dir_all(&certs).unwrap();
    fs::write(certs.join("ovnkube-client-current.pem"), "node key").unwrap();
    let guard = Immutable::set(&certs);

    // --skip-cleanup keeps the backup dir, so what was packed can be looked at.
    let out = create_with(&node, &image, &authfile, &["--skip-cleanup"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("removing the node's certificates")
            && stderr.contains("var/lib/ovn-ic/etc/ovnkube-node-certs"),
        "{stderr}"
    );
    let backup = node.root().join("var/tmp/backup");
    assert!(!backup.join("var.tgz").exists(), "var.tgz packed");
    assert!(!node.root().join("var/tmp/checks/var-tgz.done").exists());
    assert!(
        !node.root().join("var/tmp/seed-blobs").exists(),
        "seed blob built"
    );
    // The push-access probe uploads the empty config `{}`; any other blob is seed data.
    let blobs = registry.dir().join("data/docker/registry/v2/blobs/sha256");
    for prefix in fs::read_dir(&blobs).unwrap() {
        for blob in fs::read_dir(prefix.unwrap().path()).unwrap() {
            let data = fs::read(blob.unwrap().path().join("data")).unwrap();
            assert_eq!(data, b"{}", "a seed blob was pushed");
        }
    }
    let reference = lca_seed::parse_reference(&image).unwrap();
    let reg = SeedRegistry::new(&reference, &Credentials::Anonymous, true);
    assert!(reg.inspect(&reference).await.is_err(), "the tag exists");
    drop(guard);
    assert!(certs.join("ovnkube-client-current.pem").exists());
}

/// The seed carries its cluster: the seed node's etcd (stopped with the kubelet) travels in
/// `var.tgz`, and a control plane on the unpacked `var/lib/etcd` — what the new stateroot
/// boots into — serves the seed's cluster at the seed's version.
#[tokio::test(flavor = "multi_thread")]
async fn the_seed_carries_its_cluster() {
    let registry = Registry::start().unwrap();
    let node = SeedNode::build(4).unwrap();
    lca_testkit::seedcluster::install(node.root(), "4.18.0")
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(&authfile, "{\"auths\":{}}").unwrap();
    let image = format!("{}/seed/sno:4.18.0", registry.addr());
    let out = create(&node, &image, &authfile);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let reference = lca_seed::parse_reference(&image).unwrap();
    let reg = SeedRegistry::new(&reference, &Credentials::Anonymous, true);
    let seed = work.path().join("seed");
    lca_seed::pull_and_unpack(&reg, &reference, &seed).await.unwrap();
    let stateroot = work.path().join("stateroot");
    fs::create_dir(&stateroot).unwrap();
    let file = fs::File::open(seed.join("var.tgz")).unwrap();
    archive::extract_tar_gz(file, &stateroot, &archive::Options::default()).unwrap();

    let options = lca_testkit::controlplane::Options {
        etcd_data_dir: Some(stateroot.join("var/lib/etcd")),
        skip_crds: true,
        ..Default::default()
    };
    let cp = lca_testkit::ControlPlane::start_with(options).await.unwrap();
    let client = cp.client().await.unwrap();
    let version = lca_testkit::openshift::desired_version(&client).await.unwrap();
    assert_eq!(version, "4.18.0");
    let ibus: kube::Api<lca_api::ImageBasedUpgrade> = kube::Api::all(client);
    assert!(
        ibus.list(&Default::default()).await.unwrap().items.is_empty(),
        "no IBU in a seed"
    );
}
