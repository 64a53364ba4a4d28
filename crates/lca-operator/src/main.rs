//! `lca-operator`: the manager binary. Loads the kube config (in-cluster or `KUBECONFIG`),
//! waits for the API server, makes sure the singleton IBU exists, then runs the controllers
//! until SIGTERM/SIGINT, serving health and readiness probes meanwhile.

mod cluster_health;
mod context;
mod error;
mod health;
mod ibu;
mod jobs;
mod metrics;
mod node_work;
mod seedgen;
mod tasks;
mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use kube::{Client, Config};
use lca_hostops::HostPaths;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::context::Context;

/// Lifecycle Agent operator (lca-rs).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The node's root filesystem as mounted in the operator's pod.
    #[arg(long, default_value = "/host")]
    host_root: PathBuf,
    /// Address of the /healthz and /readyz probes.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// How long to wait for the API server at start-up before giving up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Stage work implementation: `node` (the real work) or `test-peer` (scripted through
    /// files on a simulated node; tests only).
    #[arg(long, default_value = "node", hide = true)]
    stage_work: String,
    /// What `--host-root` is: `real` (an ostree-booted node) or `simulated` (a directory
    /// standing in for one: tests and the local environment).
    #[arg(long, default_value = "real")]
    node: String,
    /// Run stateroot setup and precache as Jobs with this image (in a cluster; default
    /// `PRECACHE_WORKLOAD_IMG` on a real node); local processes when unset on a simulated node.
    #[arg(long, env = "PRECACHE_WORKLOAD_IMG")]
    job_image: Option<String>,
    /// The host-side `lca-cli` binary (default: next to this executable).
    #[arg(long)]
    lca_cli: Option<PathBuf>,
    /// How long a registry may stay silent before a request to it fails (the seed inspect
    /// at Prep); such a failure is retried with back-off across reconciles.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    registry_timeout: Duration,
    /// Namespace of the operator (downward API).
    #[arg(long, env = "MY_POD_NAMESPACE", default_value = lca_api::consts::names::OPERATOR_NAMESPACE)]
    namespace: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lca-operator: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let config = Config::infer().await.map_err(|e| {
        format!("no Kubernetes configuration: tried the in-cluster service account and KUBECONFIG/~/.kube/config ({e})")
    })?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("cannot build a client for {server}: {e}"))?;
    wait_for_api(&client, &server, args.startup_timeout).await?;

    let paths = HostPaths::new(&args.host_root);
    let lca_dir = paths.lca_dir();
    std::fs::create_dir_all(&lca_dir).map_err(|e| format!("cannot create {}: {e}", lca_dir.display()))?;
    let simulated = match args.node.as_str() {
        "real" => false,
        "simulated" => true,
        other => return Err(format!("unknown --node {other:?} (expected real or simulated)")),
    };
    if !simulated && args.job_image.is_none() {
        return Err(
            "a real node needs --job-image (or PRECACHE_WORKLOAD_IMG): its long-running work runs as Jobs"
                .into(),
        );
    }
    let exec = context::node_executor(&paths, simulated);
    let lca_cli = match args.lca_cli.clone() {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("lca-cli"),
    };
    let task_env = if simulated {
        context::simulated_env(&paths)
            .into_iter()
            .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
            .collect()
    } else {
        vec![]
    };
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel();
    let work: Arc<dyn ibu::work::StageWork> = match args.stage_work.as_str() {
        "node" => Arc::new(node_work::NodeStageWork {
            client: client.clone(),
            exec: exec.clone(),
            namespace: args.namespace.clone(),
            lca_cli,
            task_env,
            wake: wake_tx,
            job_image: args.job_image.clone(),
            registry_timeouts: lca_seed::RegistryTimeouts {
                read: args.registry_timeout,
                metadata: args.registry_timeout * 2,
                ..Default::default()
            },
        }),
        "test-peer" => Arc::new(ibu::test_peer::TestPeerStageWork::new(paths.clone())),
        other => {
            return Err(format!(
                "unknown --stage-work {other:?} (expected node or test-peer)"
            ));
        }
    };
    let ctx = Context::new(client, paths, args.namespace, work, exec);

    let ready = health::Readiness::default();
    let listener = health::bind(args.health_addr)
        .await
        .map_err(|e| format!("cannot listen on {} for probes: {e}", args.health_addr))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    info!(addr = %bound, "health probes listening");
    tokio::spawn(health::serve(listener, ready.clone()));

    ensure_ibu(&ctx).await;
    seedgen::restore::at_startup(&ctx).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let controller = tokio::spawn(ibu::run(ctx.clone(), wake_rx, shutdown));
    tokio::spawn(seedgen::run(ctx.clone(), {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }));
    ready.set_ready();
    info!(elapsed_ms = started.elapsed().as_millis() as u64, namespace = %ctx.namespace, "lca-operator started");

    wait_for_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(8), controller)
        .await
        .is_err()
    {
        warn!("controllers did not stop within 8s");
    }
    Ok(())
}

/// Retry the API server with back-off until it answers or `limit` passes.
async fn wait_for_api(client: &Client, server: &str, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match client.apiserver_version().await {
            Ok(v) => {
                info!(server, version = %v.git_version, "connected to the API server");
                return Ok(());
            }
            Err(e) if start.elapsed() + delay > limit => {
                return Err(format!(
                    "API server {server} unreachable after {}s: {e}",
                    limit.as_secs()
                ));
            }
            Err(e) => {
                warn!(server, error = %e, retry_in = ?delay, "API server not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Create or restore the singleton IBU, retrying API errors with back-off.
async fn ensure_ibu(ctx: &Context) {
    let mut attempt = 0;
    loop {
        match ibu::init::init_ibu(ctx).await {
            Ok(()) => return,
            Err(e) => {
                let delay = error::backoff(e.category(), attempt);
                warn!(error = %e, retry_in = ?delay, "cannot initialize the ImageBasedUpgrade");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

async fn wait_for_signal() {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        warn!("cannot install signal handlers; running until killed");
        return futures::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
