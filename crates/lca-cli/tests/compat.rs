//! Compatibility with the reference's tools, both ways:
//! - a seed made by `lca-cli create` is pulled by `podman pull` (private vfs storage) and
//!   `podman image mount` shows its files, which is how the reference reads a seed;
//! - a seed built the reference's way (`podman build` of `FROM scratch` / `COPY . /` on the
//!   seed dir, then `podman push`) is read by our `inspect` and `pull`. podman cannot build
//!   here, so the test lays the image out as buildah does (one gzip layer of the files,
//!   labels in the config, OCI manifest) and pushes it with `skopeo copy oci:... docker://`,
//!   in OCI and in Docker v2s2 form.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use lca_api::consts::labels;
use lca_seed::Credentials;
use lca_seed::layout::sha256;
use lca_testkit::Registry;
use lca_testkit::seednode::SeedNode;

fn lca(args: &[&str]) -> Output {
    Command::new(lca_testkit::assets::workspace_binary("lca-cli").expect("the lca-cli test build"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// podman with its own vfs storage under `dir` (notes §3), never the host's.
fn podman(dir: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn podman_pulls_and_mounts_a_seed_made_by_create() {
    if !have("podman") || !is_root() {
        eprintln!("skipped: needs podman and root");
        return;
    }
    let registry = Registry::start().unwrap();
    let node = SeedNode::build(512).unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    let image = format!("{}/seed/podman:4.17.0", registry.addr());
    let root = node.root().display().to_string();
    let auth = authfile.display().to_string();
    ok(&lca(&[
        "--host-root",
        &root,
        "create",
        "--simulated",
        "--image",
        &image,
        "--authfile",
        &auth,
    ]));

    let store = work.path().join("podman");
    fs::create_dir(&store).unwrap();
    fs::write(
        store.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
            store.display()
        ),
    )
    .unwrap();
    // podman checks every layer's diff_id while pulling: the stored (level 0) members of
    // our layer must decompress to exactly the tar the config names.
    ok(&podman(&store, &["pull", "-q", "--tls-verify=false", &image]));
    let labels_out = ok(&podman(
        &store,
        &["image", "inspect", "--format", "{{json .Labels}}", &image],
    ));
    let got: serde_json::Value = serde_json::from_str(labels_out.trim()).unwrap();
    assert_eq!(got[labels::SEED_FORMAT_VERSION], "4", "{labels_out}");
    assert!(
        got[labels::SEED_CLUSTER_INFO]
            .as_str()
            .unwrap()
            .contains("4.17.0")
    );
    let mount = ok(&podman(&store, &["image", "mount", &image]));
    let mount = Path::new(mount.trim());
    for f in [
        "var.tgz",
        "etc.tgz",
        "ostree.tgz",
        "lca-cli",
        "manifest.json",
        "containers.list",
        "etc.deletions",
        "recert_config.json",
        "rpm-ostree.json",
        "mco-currentconfig.json",
    ] {
        assert!(mount.join(f).is_file(), "{f} missing from the podman mount");
    }
    assert!(mount.join(format!("ostree-{}.origin", node.deployment)).is_file());
    // GNU tar reads var.tgz from podman's copy, as the reference's post-pivot does.
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(mount.join("var.tgz"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ok_out(listing)).contains("var/lib/kubelet/config.json"));
    ok(&podman(&store, &["image", "unmount", &image]));
    ok(&podman(&store, &["rmi", "-f", &image]));
}

fn ok_out(out: Output) -> Vec<u8> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Write `seed_dir` as the OCI image `podman build` makes of `FROM scratch` + `COPY . /`
/// (+ the two LABELs) into the OCI layout `oci_dir`, tagged `seed`.
fn reference_image(seed_dir: &Path, oci_dir: &Path, cluster_info: &str) {
    let blobs = oci_dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> String {
        let digest = sha256(data);
        fs::write(blobs.join(digest.trim_start_matches("sha256:")), data).unwrap();
        digest
    };
    // buildah's layer: the copied files, root-owned, names without "./", gzip.
    let tar = Command::new("tar")
        .args([
            "-c",
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(seed_dir)
        .args(["--format=pax", "."])
        .output()
        .unwrap();
    let tar = ok_out(tar);
    let layer_path = oci_dir.join("layer.tar");
    fs::write(&layer_path, &tar).unwrap();
    let gz = ok_out(
        Command::new("gzip")
            .args(["-n", "-c"])
            .arg(&layer_path)
            .output()
            .unwrap(),
    );
    fs::remove_file(&layer_path).unwrap();
    let layer = put(&gz);
    let config = serde_json::json!({
        "created": "2026-11-25T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": {
            labels::SEED_FORMAT_VERSION: "4",
            labels::SEED_CLUSTER_INFO: cluster_info,
        }},
        "rootfs": { "type": "layers", "diff_ids": [sha256(&tar)] },
        "history": [{ "created": "2026-11-25T00:00:00Z", "created_by": "/bin/sh -c #(nop) COPY dir:0123 in / " }],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(&config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": gz.len() }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": put(&manifest),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "seed" },
        }],
    });
    fs::write(oci_dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(oci_dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn inspect_and_pull_read_a_seed_built_the_reference_way() {
    if !have("skopeo") {
        eprintln!("skipped: needs skopeo");
        return;
    }
    let registry = Registry::start_with_auth("lca", "s3cret").unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(
        &authfile,
        Credentials::auth_json(registry.addr(), "lca", "s3cret"),
    )
    .unwrap();
    let auth = authfile.display().to_string();

    // The seed dir as the reference fills /var/tmp/backup: tarballs made by GNU tar.
    let seed = work.path().join("backup");
    let var = work.path().join("var-src/var/lib/kubelet");
    fs::create_dir_all(&var).unwrap();
    fs::write(var.join("config.json"), b"{\"kind\":\"KubeletConfiguration\"}").unwrap();
    fs::create_dir(&seed).unwrap();
    let tgz = Command::new("tar")
        .arg("czf")
        .arg(seed.join("var.tgz"))
        .arg("-C")
        .arg(work.path().join("var-src"))
        .arg("var")
        .output()
        .unwrap();
    ok_out(tgz);
    fs::write(seed.join("manifest.json"), b"{}").unwrap();
    fs::write(seed.join("containers.list"), b"quay.io/a@sha256:1\n").unwrap();
    fs::write(seed.join("etc.deletions"), b"/etc/removed.conf\n").unwrap();
    let info = r#"{"seed_cluster_ocp_version":"4.17.3","has_proxy":false,"has_fips":false}"#;

    for (tag, format) in [("oci", None), ("v2s2", Some("v2s2"))] {
        let oci = work.path().join(format!("oci-{tag}"));
        reference_image(&seed, &oci, info);
        let image = format!("{}/ref/seed:{tag}", registry.addr());
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "-q", "--dest-tls-verify=false", "--dest-authfile", &auth]);
        if let Some(f) = format {
            copy.args(["--format", f]);
        }
        ok_out(
            copy.arg(format!("oci:{}:seed", oci.display()))
                .arg(format!("docker://{image}"))
                .output()
                .unwrap(),
        );

        let out = ok(&lca(&["inspect", "--authfile", &auth, &image]));
        let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(shown["labels"][labels::SEED_FORMAT_VERSION], "4", "{out}");
        assert_eq!(shown["layers"].as_array().unwrap().len(), 1);

        let target = work.path().join(format!("pulled-{tag}"));
        let target_s = target.display().to_string();
        ok(&lca(&[
            "--host-root",
            "/",
            "pull",
            "--authfile",
            &auth,
            "--target",
            &target_s,
            &image,
        ]));
        for f in ["var.tgz", "manifest.json", "containers.list", "etc.deletions"] {
            assert_eq!(
                fs::read(target.join(f)).unwrap(),
                fs::read(seed.join(f)).unwrap(),
                "{tag}: {f}"
            );
        }
    }
}
