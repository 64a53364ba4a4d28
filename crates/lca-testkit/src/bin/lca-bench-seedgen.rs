//! Whole-flow seed generation benchmark, run through `hack/bench-seed --flow [PAYLOAD_MIB]`
//! (release binaries): on a loopback control plane with a healthy SNO's objects, the operator
//! on a simulated seed node whose etcd data holds PAYLOAD_MIB, a registry with htpasswd auth.
//! Measures SeedGenerator creation → `SeedGenCompleted`, split into the kubelet-down window
//! (the host-services peer's `systemctl stop kubelet.service` → `systemctl enable
//! kubelet.service --now`: what the seed cluster's users notice) and the rest, and compares
//! the window with the raw tools on the same tree: `tar czf` of `/var`, `/etc` and the ostree
//! repo, then `skopeo copy` of that tarball as a one-layer image to the same registry.
//! `lca-bench-seedgen install-peer ROOT` installs the host-services peer (for the shell part
//! of `hack/bench-seed`). Prints `key: value` lines.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use lca_api::consts::{condition_types as ct, names};
use lca_api::{SeedGenerator, SeedGeneratorSpec};
use lca_testkit::openshift as os;
use lca_testkit::seednode::SeedNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, hostpeer, prepenv, rbac};
use sha2::Digest;

const USER: &str = "bench";
const PASSWORD: &str = "bench-pass";

fn out(key: &str, value: impl std::fmt::Display) {
    println!("{key}: {value}");
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("install-peer") => match args.get(2) {
            Some(root) => hostpeer::install(Path::new(root)).map_err(|e| e.to_string()),
            None => Err("usage: lca-bench-seedgen install-peer ROOT".into()),
        },
        _ => {
            let mib = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(256);
            flow(mib).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lca-bench-seedgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn flow(payload_mib: usize) -> Result<(), String> {
    let cp = ControlPlane::start().await.map_err(err("control plane"))?;
    let client = cp.client().await.map_err(err("client"))?;
    os::install(&cp).await.map_err(err("OpenShift CRDs"))?;
    os::healthy_sno(&client).await.map_err(err("healthy SNO"))?;
    prepenv::crypto_fixtures(&client)
        .await
        .map_err(err("crypto fixtures"))?;
    let registry = Registry::start_with_auth(USER, PASSWORD).map_err(err("registry"))?;
    let node = SeedNode::build(payload_mib * 1024).map_err(err("seed node"))?;
    node.prepare_seedgen().map_err(err("seed node prerequisites"))?;
    // The operator's namespace, ServiceAccount and roles first: the Secret goes there.
    let kubeconfig = rbac::operator_kubeconfig(&cp).map_err(err("operator RBAC"))?;
    let secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": names::SEEDGEN_SECRET, "namespace": names::OPERATOR_NAMESPACE},
        "stringData": {"seedAuth": registry.auth_json()},
    }))
    .map_err(err("secret"))?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), names::OPERATOR_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(err("seedgen secret"))?;
    let _operator = OperatorProcess::start_with_args(
        &kubeconfig,
        node.root(),
        &cp.dir().join("operator.log"),
        &["--node=simulated"],
    )
    .map_err(err("operator"))?;

    let image = format!("{}/bench/seed:1", registry.addr());
    let api: Api<SeedGenerator> = Api::all(client.clone());
    let cr = SeedGenerator::new(
        names::SEEDGEN,
        SeedGeneratorSpec {
            seed_image: image,
            recert_image: None,
        },
    );
    let started = Instant::now();
    let t0 = unix_now();
    api.create(&PostParams::default(), &cr)
        .await
        .map_err(err("creating seedimage"))?;
    let mut shown = String::new();
    loop {
        if let Some(cr) = api
            .get_opt(names::SEEDGEN)
            .await
            .map_err(err("reading seedimage"))?
        {
            let conds = cr.status.map(|s| s.conditions).unwrap_or_default();
            // Each progress message as it first shows, to see where the time before the
            // imager goes.
            if let Some(c) = conds.iter().find(|c| c.type_ == ct::SEEDGEN_IN_PROGRESS)
                && c.message != shown
            {
                shown = c.message.clone();
                out(
                    "progress",
                    format!("{:6.2} s {shown}", started.elapsed().as_secs_f64()),
                );
            }
            if conds
                .iter()
                .any(|c| c.type_ == ct::SEEDGEN_COMPLETED && c.status == "True")
            {
                break;
            }
            if let Some(c) = conds.iter().find(|c| c.reason == "Failed") {
                return Err(format!("seed generation failed: {}", c.message));
            }
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("seed generation did not complete within 30 min".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed().as_secs_f64();
    let calls = hostpeer::timed_calls(node.root());
    let at = |what: &str, last: bool| {
        let mut it = calls.iter().filter(|(_, c)| c == what).map(|(t, _)| *t);
        if last { it.next_back() } else { it.next() }
    };
    let (Some(down), Some(up)) = (
        at("systemctl stop kubelet.service", false),
        at("systemctl enable kubelet.service --now", true),
    ) else {
        return Err(format!("no kubelet stop/start in the peer's log: {calls:?}"));
    };
    let window = up - down;
    out("payload_mib", payload_mib);
    out(
        "machine_cores",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    out("seedgen_total_s", format!("{total:.2}"));
    out("before_kubelet_stop_s", format!("{:.2}", down - t0));
    out("kubelet_down_window_s", format!("{window:.2}"));
    out("after_kubelet_start_s", format!("{:.2}", total - (up - t0)));

    let (tar_s, push_s, size) = raw_tools(&node, &registry)?;
    out("raw_tar_czf_s", format!("{tar_s:.2}"));
    out("raw_skopeo_push_s", format!("{push_s:.2}"));
    out("raw_tarball_mb", format!("{:.1}", size as f64 / 1e6));
    out(
        "window_over_raw",
        format!("{:.2} (target <= 1.00)", window / (tar_s + push_s)),
    );
    Ok(())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `tar czf` of the node's `/var`, `/etc` and ostree repo, then that tarball pushed by
/// `skopeo copy` as the one layer of an image in `dir:` form; (tar s, push s, tarball bytes).
fn raw_tools(node: &SeedNode, registry: &Registry) -> Result<(f64, f64, u64), String> {
    let work = tempfile::tempdir().map_err(err("work dir"))?;
    let tgz = work.path().join("raw.tgz");
    let deploy = node.root().join("sysroot/ostree/deploy/rhcos");
    let started = Instant::now();
    let mut tar = Command::new("tar");
    tar.arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&deploy)
        .arg("var")
        .arg("-C")
        .arg(node.deployment_dir())
        .arg("etc")
        .arg("-C")
        .arg(node.root().join("sysroot/ostree"))
        .arg("repo");
    run(&mut tar)?;
    let tar_s = started.elapsed().as_secs_f64();

    let dir = work.path().join("image");
    std::fs::create_dir(&dir).map_err(err("image dir"))?;
    let layer = std::fs::read(&tgz).map_err(err("reading the tarball"))?;
    let size = layer.len() as u64;
    let layer_hex = format!("{:x}", sha2::Sha256::digest(&layer));
    std::fs::rename(&tgz, dir.join(&layer_hex)).map_err(err("layer blob"))?;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_hex = format!("{:x}", sha2::Sha256::digest(config));
    std::fs::write(dir.join(&config_hex), config).map_err(err("config blob"))?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_hex}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{layer_hex}"), "size": size}],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).map_err(err("manifest"))?;
    std::fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").map_err(err("version"))?;
    let started = Instant::now();
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("dir:{}", dir.display()))
        .arg(format!("docker://{}/bench/raw:1", registry.addr())))?;
    Ok((tar_s, started.elapsed().as_secs_f64(), size))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(err("spawning a raw tool"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
