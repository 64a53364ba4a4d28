//! The imager (spec §8.5): `lca-cli create` building and pushing the seed.
//!
//! - Real node: `systemd-run … podman run … --entrypoint lca-cli <lcaImage> create …` in the
//!   host's namespaces. It stops kubelet, so this pod normally dies while the unit runs; the
//!   next operator start restores the CR (`restore`) and `podman inspect lca_image_builder`
//!   tells the outcome. The wait runs in its own task, so the reconcile lock is not held for
//!   the hours the imager may take.
//! - Simulated node: the `lca-cli` next to this binary runs `create --simulated` as a detached
//!   local task (`lca_hostops::local_task`, under `lca-sim/tasks/imager`), whose state
//!   is read as `podman inspect` would report the container.
//!
//! Either way, when the imager ends while this operator lives, the same restoration runs as
//! after a restart, so the finalizing path is one code path. An operator that starts while
//! the imager still runs waits for its exit before restoring (`restore_after_running_imager`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use lca_api::SeedGenerator;
use lca_api::consts::{names, paths};
use lca_core::TaskState;
use lca_core::seedgen_plan::ImagerState;
use lca_hostops::local_task::LocalTask;
use lca_hostops::{Cmd, NodeKind};
use serde::Deserialize;
use tracing::{info, warn};

use crate::context::{Context, sim_tool_path};
use crate::error::{Error, Result};

/// The imager's task on a simulated node.
fn sim_task(ctx: &Context) -> LocalTask {
    LocalTask::new(&ctx.paths.sim_dir(), "imager")
}

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

pub fn skip_recert() -> bool {
    std::env::var(names::SEEDGEN_SKIP_RECERT_ENV).is_ok_and(|v| v == "TRUE")
}

/// `create` arguments shared by both back ends; `auth` as the imager sees the file.
fn create_args(cr: &SeedGenerator, auth: &str, recert: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "create",
        "--authfile",
        auth,
        "--image",
        &cr.spec.seed_image,
        "--recert-image",
        recert,
    ]
    .map(String::from)
    .into();
    if skip_recert() {
        v.push("--skip-recert-validation".into());
    }
    v
}

/// The operator's own image (container `manager` of pod `MY_POD_NAME`).
async fn lca_image(ctx: &Context) -> Result<String> {
    let pod_name = std::env::var("MY_POD_NAME")
        .map_err(|_| Error::state("failed to get pod info: MY_POD_NAME is not set"))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pod = pods
        .get(&pod_name)
        .await
        .map_err(Error::api("failed to get pod info"))?;
    pod.spec
        .into_iter()
        .flat_map(|s| s.containers)
        .find(|c| c.name == names::MANAGER_CONTAINER)
        .and_then(|c| c.image)
        .ok_or_else(|| Error::state("unable to determine LCA image"))
}

/// The `systemd-run` argv of the real node's imager unit.
fn unit_argv(cr: &SeedGenerator, image: String, recert: &str) -> Vec<String> {
    let auth = format!("/{}", paths::SEEDGEN_AUTH);
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
    .map(String::from)
    .into();
    argv.push(format!("--name={}", names::IMAGER_CONTAINER));
    argv.extend(["--replace", "--net=host", "--http-proxy=true"].map(String::from));
    for v in ["/etc", "/var", "/var/run", "/run/systemd/journal/socket", &auth] {
        argv.extend(["-v".to_string(), format!("{v}:{v}")]);
    }
    argv.extend(["--entrypoint".to_string(), "lca-cli".into(), image]);
    argv.extend(create_args(cr, &auth, recert));
    argv
}

/// Launch the imager; returns once it has started.
pub async fn launch(ctx: &Arc<Context>, cr: &SeedGenerator) -> Result<()> {
    let recert = recert_image(cr);
    if ctx.exec.node().kind == NodeKind::Simulated {
        return launch_local(ctx, cr, &recert);
    }
    let image = lca_image(ctx).await?;
    let cmd = Cmd::new("systemd-run")
        .args(unit_argv(cr, image, &recert))
        .timeout(Duration::from_secs(6 * 3600));
    let (ctx, host) = (ctx.clone(), ctx.host_namespace_executor());
    tokio::spawn(async move {
        // The unit outlives this pod; this wait normally ends with the pod being killed.
        match host.run(&cmd).await {
            Ok(_) => warn!("the imager unit returned while this operator still runs"),
            Err(e) => warn!("imager failed: failed to run imager container: {e}"),
        }
        super::restore::after_imager(&ctx).await;
    });
    Ok(())
}

fn launch_local(ctx: &Arc<Context>, cr: &SeedGenerator, recert: &str) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::state(format!("imager failed: locating the operator binary: {e}")))?;
    let cli = exe.with_file_name("lca-cli");
    let auth = ctx.paths.host(paths::SEEDGEN_AUTH).display().to_string();
    let mut argv = vec![
        cli.display().to_string(),
        format!("--host-root={}", ctx.paths.root().display()),
    ];
    argv.extend(create_args(cr, &auth, recert));
    argv.push("--simulated".into());
    let envs: Vec<(String, String)> = sim_tool_path(&ctx.paths)
        .map(|p| ("PATH".to_string(), p.to_string_lossy().into_owned()))
        .into_iter()
        .collect();
    let (restore_ctx, runtime) = (ctx.clone(), tokio::runtime::Handle::current());
    sim_task(ctx)
        .start(&argv, &envs, move || {
            // What kubelet's restart of the operator pod does on a real node.
            runtime.spawn(async move { super::restore::after_imager(&restore_ctx).await });
        })
        .map_err(|e| {
            Error::state(format!(
                "imager failed: failed to run imager container: {}: {e}",
                cli.display()
            ))
        })?;
    info!(cli = %cli.display(), "imager started as a local task (simulated node)");
    Ok(())
}

/// At operator start, while the imager still runs (this operator was restarted during
/// seed generation, before the imager stopped kubelet or after it started it again): the
/// restoration waits for the imager's exit, as the finalizing phase must judge its exit
/// status. Returns whether the imager runs.
pub async fn restore_after_running_imager(ctx: &Arc<Context>) -> bool {
    let running =
        matches!(observe(ctx).await, ImagerState::Container { ref status, .. } if status == "running");
    if !running {
        return false;
    }
    if ctx.exec.node().kind == NodeKind::Simulated {
        let (restore_ctx, runtime) = (ctx.clone(), tokio::runtime::Handle::current());
        let watched = sim_task(ctx).on_exit(move || {
            runtime.spawn(async move { super::restore::after_imager(&restore_ctx).await });
        });
        if let Err(e) = watched {
            // Restoring now would finalize a running imager; the next start restores instead.
            warn!("cannot wait for the running imager: {e}");
        }
        return true;
    }
    let wait = Cmd::new("podman")
        .args(["wait", names::IMAGER_CONTAINER])
        .read_only()
        .timeout(Duration::from_secs(6 * 3600));
    let (ctx, host) = (ctx.clone(), ctx.host_namespace_executor());
    tokio::spawn(async move {
        if let Err(e) = host.run(&wait).await {
            warn!("waiting for the imager container: {e}");
        }
        super::restore::after_imager(&ctx).await;
    });
    true
}

/// Forget a previous run's imager (its container or local task).
pub async fn remove_previous(ctx: &Context) -> Result<()> {
    if ctx.exec.node().kind == NodeKind::Simulated {
        sim_task(ctx).remove();
        return Ok(());
    }
    let rm = Cmd::new("podman").args(["rm", "-i", "-f", names::IMAGER_CONTAINER]);
    ctx.host_namespace_executor().run(&rm).await.map_err(|e| {
        Error::from(e).context("failed to delete previous imager container: failed to run podman rm command")
    })?;
    Ok(())
}

/// The imager's container as `podman inspect` shows it (`checkImagerStatus`); on a simulated
/// node, its local task read the same way.
pub async fn observe(ctx: &Context) -> ImagerState {
    if ctx.exec.node().kind == NodeKind::Simulated {
        return from_task(sim_task(ctx).state());
    }
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
    match ctx.host_namespace_executor().run(&cmd).await {
        Ok(out) => parse_inspect(&out.stdout),
        Err(e) => ImagerState::Unknown {
            reason: format!("failed to run podman inspect command: {e}"),
        },
    }
}

/// The imager's final error line (`lca-cli: …`), from its container's log or, on a
/// simulated node, its task's log; `None` when there is none to read.
pub async fn last_error(ctx: &Context) -> Option<String> {
    let log = if ctx.exec.node().kind == NodeKind::Simulated {
        sim_task(ctx).log_tail(50)
    } else {
        let cmd = Cmd::new("podman")
            .args(["logs", "--tail", "50", names::IMAGER_CONTAINER])
            .read_only();
        match ctx.host_namespace_executor().run(&cmd).await {
            // lca-cli writes its error to stderr, which podman logs replays there.
            Ok(out) => format!("{}\n{}", out.stdout, out.stderr),
            Err(e) => {
                warn!("reading the imager's log: {e}");
                return None;
            }
        }
    };
    lca_core::seedgen_plan::imager_error_line(&log)
}

/// A local task's state as the container state `podman inspect` would report.
fn from_task(state: TaskState) -> ImagerState {
    let exited = |exit_code| ImagerState::Container {
        status: "exited".into(),
        exit_code,
    };
    match state {
        TaskState::Succeeded => exited(0),
        TaskState::Failed { code } => exited(code.into()),
        // Killed without recording an exit code: a non-zero exit, as for a killed container.
        TaskState::Interrupted | TaskState::Deleting => exited(-1),
        TaskState::Running => ImagerState::Container {
            status: "running".into(),
            exit_code: 0,
        },
        TaskState::NotStarted => parse_inspect("[]"),
    }
}

#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "State")]
    state: InspectState,
}

#[derive(Deserialize)]
struct InspectState {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
}

/// Read `podman inspect` output.
pub fn parse_inspect(output: &str) -> ImagerState {
    let containers: Vec<Inspect> = match serde_json::from_str(output) {
        Ok(c) => c,
        Err(e) => {
            return ImagerState::Unknown {
                reason: format!("unable to parse podman inspect command output: {e}"),
            };
        }
    };
    match containers.as_slice() {
        [c] => ImagerState::Container {
            status: c.state.status.clone(),
            exit_code: c.state.exit_code,
        },
        other => ImagerState::Unknown {
            reason: format!("expected 1 item in podman inspect output, got {}", other.len()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_reads_as_the_container_state() {
        let one = |s: &str, c: i32| format!(r#"[{{"State":{{"Status":"{s}","ExitCode":{c}}}}}]"#);
        let container = |s: &str, c| ImagerState::Container {
            status: s.into(),
            exit_code: c,
        };
        assert_eq!(parse_inspect(&one("exited", 0)), container("exited", 0));
        assert_eq!(parse_inspect(&one("running", 3)), container("running", 3));
        assert_eq!(
            parse_inspect("[]"),
            ImagerState::Unknown {
                reason: "expected 1 item in podman inspect output, got 0".into()
            }
        );
        let ImagerState::Unknown { reason } = parse_inspect("nope") else {
            panic!("not unknown")
        };
        assert!(
            reason.starts_with("unable to parse podman inspect command output: "),
            "{reason}"
        );
    }

    #[test]
    fn a_local_task_reads_like_its_container() {
        let container = |s: &str, c| ImagerState::Container {
            status: s.into(),
            exit_code: c,
        };
        assert_eq!(from_task(TaskState::Succeeded), container("exited", 0));
        assert_eq!(from_task(TaskState::Failed { code: 2 }), container("exited", 2));
        assert_eq!(from_task(TaskState::Interrupted), container("exited", -1));
        assert_eq!(from_task(TaskState::Running), container("running", 0));
        assert!(matches!(
            from_task(TaskState::NotStarted),
            ImagerState::Unknown { .. }
        ));
    }
}
