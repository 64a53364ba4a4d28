//! The imager (spec §8.5): `lca-cli create` building and pushing the seed.
//!
//! - Real node: `systemd-run … podman run … --entrypoint lca-cli <lcaImage> create …` through
//!   the node executor. It stops kubelet, so this pod dies while it waits; the next operator
//!   start restores the CR (`restore`) and `podman inspect lca_image_builder` tells the outcome.
//! - Simulated node: the `lca-cli` next to this binary runs `create --simulated` as a child
//!   process. Its state is recorded in `var/lib/lca-sim/lca_image_builder.json` in the shape of
//!   `podman inspect` output, and when it exits the same restoration runs as after a real
//!   restart, so the finalizing path is the same code on both.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use lca_api::SeedGenerator;
use lca_api::consts::{names, paths};
use lca_hostops::{Cmd, NodeKind};
use serde::Deserialize;
use tracing::{error, info};

use crate::context::{Context, sim_tool_path};

const SIM_STATE: &str = "lca_image_builder.json";
const SIM_LOG: &str = "lca_image_builder.log";

/// The recert image: the CR's, else `RELATED_IMAGE_RECERT_IMAGE`, else the default.
pub fn recert_image(cr: &SeedGenerator) -> String {
    cr.spec
        .recert_image
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::var(names::RECERT_IMAGE_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| names::DEFAULT_RECERT_IMAGE.to_string())
}

fn skip_recert() -> bool {
    std::env::var(names::SEEDGEN_SKIP_RECERT_ENV).is_ok_and(|v| v == "TRUE")
}

/// `create` arguments shared by both back ends; `auth` as the imager sees the file.
fn create_args(cr: &SeedGenerator, auth: &str, recert: &str) -> Vec<String> {
    let mut v = vec![
        "create".to_string(),
        "--authfile".into(),
        auth.into(),
        "--image".into(),
        cr.spec.seed_image.clone(),
        "--recert-image".into(),
        recert.into(),
    ];
    if skip_recert() {
        v.push("--skip-recert-validation".into());
    }
    v
}

/// The operator's own image (container `manager` of pod `MY_POD_NAME`).
async fn lca_image(ctx: &Context) -> Result<String, String> {
    let pod_name = std::env::var("MY_POD_NAME")
        .map_err(|_| "failed to get pod info: MY_POD_NAME is not set".to_string())?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pod = pods
        .get(&pod_name)
        .await
        .map_err(|e| format!("failed to get pod info: {e}"))?;
    pod.spec
        .into_iter()
        .flat_map(|s| s.containers)
        .find(|c| c.name == names::MANAGER_CONTAINER)
        .and_then(|c| c.image)
        .ok_or_else(|| "unable to determine LCA image".to_string())
}

/// Launch the imager. On a real node this returns only if something went wrong.
pub async fn launch(ctx: &Arc<Context>, cr: &SeedGenerator) -> Result<(), String> {
    let recert = recert_image(cr);
    if ctx.exec.node().kind == NodeKind::Simulated {
        return launch_local(ctx, cr, &recert);
    }
    let image = lca_image(ctx).await?;
    let auth = format!("/{}", paths::SEEDGEN_AUTH);
    let volume = |s: &str| format!("{s}:{s}");
    let mut argv: Vec<String> = [
        "--collect",
        "--wait",
        "--property",
        "ExitType=cgroup",
        "--unit",
        names::IMAGER_UNIT,
        "--setenv",
        "HTTP_PROXY",
        "--setenv",
        "HTTPS_PROXY",
        "--setenv",
        "NO_PROXY",
        "podman",
        "run",
        "--privileged",
        "--pid=host",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(format!("--name={}", names::IMAGER_CONTAINER));
    argv.extend(["--replace", "--net=host", "--http-proxy=true"].map(String::from));
    for v in ["/etc", "/var", "/var/run", "/run/systemd/journal/socket", &auth] {
        argv.push("-v".into());
        argv.push(volume(v));
    }
    argv.extend(["--entrypoint".to_string(), "lca-cli".into(), image]);
    argv.extend(create_args(cr, &auth, &recert));
    // The unit outlives this pod; the wait below normally ends with the pod being killed.
    let cmd = Cmd::new("systemd-run")
        .args(&argv)
        .timeout(Duration::from_secs(6 * 3600));
    ctx.exec
        .run(&cmd)
        .await
        .map_err(|e| format!("imager failed: failed to run imager container: {e}"))?;
    Err("unexpected return from launching imager container".into())
}

fn sim_file(ctx: &Context, name: &str) -> PathBuf {
    ctx.paths.sim_dir().join(name)
}

fn record(ctx: &Context, status: &str, code: i32) {
    let json = serde_json::json!([{ "State": { "Status": status, "ExitCode": code } }]);
    let path = sim_file(ctx, SIM_STATE);
    let res =
        std::fs::create_dir_all(ctx.paths.sim_dir()).and_then(|()| std::fs::write(&path, json.to_string()));
    if let Err(e) = res {
        error!("cannot record the imager state in {}: {e}", path.display());
    }
}

fn launch_local(ctx: &Arc<Context>, cr: &SeedGenerator, recert: &str) -> Result<(), String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("imager failed: locating the operator binary: {e}"))?;
    let cli = exe.with_file_name("lca-cli");
    let auth = ctx.paths.host(paths::SEEDGEN_AUTH).display().to_string();
    std::fs::create_dir_all(ctx.paths.sim_dir()).map_err(|e| format!("imager failed: {e}"))?;
    let log = std::fs::File::create(sim_file(ctx, SIM_LOG)).map_err(|e| format!("imager failed: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("imager failed: {e}"))?;
    let mut cmd = tokio::process::Command::new(&cli);
    cmd.arg(format!("--host-root={}", ctx.paths.root().display()))
        .args(create_args(cr, &auth, recert))
        .arg("--simulated")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if let Some(path) = sim_tool_path(&ctx.paths) {
        cmd.env("PATH", path);
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "imager failed: failed to run imager container: {}: {e}",
            cli.display()
        )
    })?;
    record(ctx, "running", 0);
    info!(cli = %cli.display(), "imager started as a local process (simulated node)");
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let code = match child.wait().await {
            Ok(status) => status.code().unwrap_or(-1),
            Err(e) => {
                error!("waiting for the imager: {e}");
                -1
            }
        };
        info!(exit_code = code, "imager exited");
        record(&ctx, "exited", code);
        // What kubelet's restart of the operator pod does on a real node.
        crate::seedgen::restore::after_imager(&ctx).await;
    });
    Ok(())
}

#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "State")]
    state: State,
}

#[derive(Deserialize)]
struct State {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
}

/// The imager container exited with 0 (`checkImagerStatus`).
pub async fn check_status(ctx: &Context) -> Result<(), String> {
    let output = if ctx.exec.node().kind == NodeKind::Simulated {
        std::fs::read_to_string(sim_file(ctx, SIM_STATE))
            .map_err(|e| format!("failed to run podman inspect command: {e}"))?
    } else {
        let cmd = Cmd::new("podman")
            .args([
                "inspect",
                "--format",
                "json",
                "--log-level",
                "error",
                names::IMAGER_CONTAINER,
            ])
            .read_only();
        ctx.exec
            .run(&cmd)
            .await
            .map_err(|e| format!("failed to run podman inspect command: {e}"))?
            .stdout
    };
    parse_status(&output)
}

/// Judge `podman inspect` output.
pub fn parse_status(output: &str) -> Result<(), String> {
    let containers: Vec<Inspect> = serde_json::from_str(output)
        .map_err(|e| format!("unable to parse podman inspect command output: {e}"))?;
    let [c] = containers.as_slice() else {
        return Err(format!(
            "expected 1 item in podman inspect output, got {}",
            containers.len()
        ));
    };
    if c.state.status != "exited" {
        return Err(format!(
            "expected container status exited, found: {}",
            c.state.status
        ));
    }
    if c.state.exit_code != 0 {
        return Err(format!(
            "expected container status 0, found: {}",
            c.state.exit_code
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn inspect_outcomes() {
        let one = |s: &str, c: i32| format!(r#"[{{"State":{{"Status":"{s}","ExitCode":{c}}}}}]"#);
        assert_eq!(parse_status(&one("exited", 0)), Ok(()));
        assert_eq!(
            parse_status(&one("exited", 1)),
            Err("expected container status 0, found: 1".into())
        );
        assert_eq!(
            parse_status(&one("running", 0)),
            Err("expected container status exited, found: running".into())
        );
        assert_eq!(
            parse_status("[]"),
            Err("expected 1 item in podman inspect output, got 0".into())
        );
        assert!(parse_status("nope").is_err());
    }
}
