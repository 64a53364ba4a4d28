//! `lca-operator`: the manager binary. Loads the kube config (in-cluster or `KUBECONFIG`),
//! waits for the API server, makes sure the singleton IBU exists, then runs the controllers
//! until SIGTERM/SIGINT, serving health and readiness probes meanwhile.
//!
//! The scripted test peer (`--stage-work=test-peer`) exists only in builds with the
//! `test-hooks` feature (tests, the local environment); a production build refuses it at
//! argument parsing, and `--version` says which kind of build this is.

mod cluster_facts;
mod cluster_health;
mod context;
mod controller;
mod error;
mod health;
mod ibu;
mod jobs;
mod kubeapi;
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

/// `--version` names the test build, so a test harness can refuse a production binary and an
/// operator can tell that a node runs a test build.
const VERSION: &str = if cfg!(feature = "test-hooks") {
    concat!(env!("CARGO_PKG_VERSION"), " (test-hooks)")
} else {
    env!("CARGO_PKG_VERSION")
};

/// Lifecycle Agent operator (lca-rs).
#[derive(Parser, Debug)]
#[command(version = VERSION, about)]
struct Args {
    /// The node's root filesystem as mounted in the operator's pod.
    #[arg(long, default_value = "/host")]
    host_root: PathBuf,
    /// Address of the /healthz and /readyz probes.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_addr: SocketAddr,
    /// Address of the HTTPS /metrics endpoint (`:PORT` for every address, `0` for none).
    #[arg(long, default_value = ":6443")]
    metrics_bind_address: String,
    /// Directory with the metrics serving certificate (`tls.crt`, `tls.key`); a self-signed
    /// one is made when it is unset or empty.
    #[arg(long)]
    metrics_tls_cert_dir: Option<PathBuf>,
    /// How long to wait for the API server at start-up before giving up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Stage work implementation: `node` (the real work) or `test-peer` (scripted through
    /// files on a simulated node; builds with the `test-hooks` feature only).
    #[arg(long, default_value = "node", hide = true, value_parser = parse_stage_work)]
    stage_work: StageWorkKind,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StageWorkKind {
    Node,
    #[cfg(feature = "test-hooks")]
    TestPeer,
}

/// Refused here rather than at start-up so a production build fails before it touches the
/// API server, and never falls back to the real work for a command line meant for a test.
fn parse_stage_work(s: &str) -> Result<StageWorkKind, Startup> {
    match s {
        "node" => Ok(StageWorkKind::Node),
        #[cfg(feature = "test-hooks")]
        "test-peer" => Ok(StageWorkKind::TestPeer),
        #[cfg(not(feature = "test-hooks"))]
        "test-peer" => Err(Startup(
            "this build has no test hooks (the test peer needs a build with `--features test-hooks`)".into(),
        )),
        other => Err(Startup(format!("unknown stage work {other:?} (expected node)"))),
    }
}

fn parse_duration(s: &str) -> Result<Duration, Startup> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(Startup(format!(
            "invalid duration unit in {s:?} (use ms, s or m)"
        ))),
    }
}

/// Why the operator could not start (printed, exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Startup(String);

impl From<String> for Startup {
    fn from(message: String) -> Self {
        Startup(message)
    }
}

impl From<lca_hostops::Error> for Startup {
    fn from(e: lca_hostops::Error) -> Self {
        Startup(e.to_string())
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

async fn run(args: Args) -> Result<(), Startup> {
    let started = Instant::now();
    let client = connect(args.startup_timeout).await?;
    let paths = HostPaths::new(&args.host_root);
    let simulated = match args.node.as_str() {
        "real" => false,
        "simulated" => true,
        other => {
            return Err(Startup(format!(
                "unknown --node {other:?} (expected real or simulated)"
            )));
        }
    };
    if !simulated && args.job_image.is_none() {
        return Err(Startup(
            "a real node needs --job-image (or PRECACHE_WORKLOAD_IMG): its long-running work runs as Jobs"
                .into(),
        ));
    }
    let exec = context::node_executor(&paths, simulated);
    lca_hostops::NodeFs::new(exec.as_ref()).create_private_dir(&paths.lca_dir())?;
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel();
    let work = stage_work(&args, &client, &exec, &paths, simulated, wake_tx)?;
    let ctx = Context::new(client, paths, args.namespace.clone(), work, exec);

    let ready = health::Readiness::default();
    let listener = health::bind(args.health_addr)
        .await
        .map_err(|e| format!("cannot listen on {} for probes: {e}", args.health_addr))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    info!(addr = %bound, "health probes listening");
    tokio::spawn(health::serve(listener, ready.clone()));
    serve_metrics(&args, &ctx).await?;

    ensure_ibu(&ctx).await;
    seedgen::restore::at_startup(&ctx).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            // An error means the sender is gone, which is a stop as well.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let controller = tokio::spawn(ibu::run(ctx.clone(), wake_rx, shutdown));
    tokio::spawn(seedgen::run(ctx.clone(), {
        let mut rx = stop_rx.clone();
        async move {
            // An error means the sender is gone, which is a stop as well.
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }));
    ready.set_ready();
    info!(elapsed_ms = started.elapsed().as_millis() as u64, namespace = %ctx.namespace, "lca-operator started");

    wait_for_signal().await;
    info!("shutting down");
    // Fails only when every controller has already stopped.
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(8), controller)
        .await
        .is_err()
    {
        warn!("controllers did not stop within 8s");
    }
    Ok(())
}

/// Start the HTTPS metrics endpoint unless it is turned off.
async fn serve_metrics(args: &Args, ctx: &Context) -> Result<(), Startup> {
    let Some(listener) = metrics::server::bind(&args.metrics_bind_address)
        .await
        .map_err(|e| format!("cannot listen on {} for metrics: {e}", args.metrics_bind_address))?
    else {
        return Ok(());
    };
    // The names a scraper may use: the metrics Service's, as the service CA would sign them.
    let service = lca_api::consts::names::METRICS_SERVICE;
    let ns = &ctx.namespace;
    let names = vec![
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
        "localhost".to_string(),
    ];
    let tls = metrics::server::tls_config(args.metrics_tls_cert_dir.as_deref(), names)?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    info!(addr = %bound, "metrics listening (https)");
    tokio::spawn(metrics::server::serve(listener, tls, ctx.client.clone()));
    Ok(())
}

/// A client for the API server of the kubeconfig or service account, once it answers.
async fn connect(limit: Duration) -> Result<Client, Startup> {
    let config = Config::infer().await.map_err(|e| {
        format!("no Kubernetes configuration: tried the in-cluster service account and KUBECONFIG/~/.kube/config ({e})")
    })?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| format!("cannot build a client for {server}: {e}"))?;
    wait_for_api(&client, &server, limit).await?;
    Ok(client)
}

/// The stage work the IBU controller drives: the node's, or the scripted test peer.
fn stage_work(
    args: &Args,
    client: &Client,
    exec: &Arc<dyn lca_hostops::Executor>,
    paths: &HostPaths,
    simulated: bool,
    wake: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<Arc<dyn ibu::work::StageWork>, Startup> {
    let lca_cli = match args.lca_cli.clone() {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find lca-cli next to this binary: {e}"))?
            .with_file_name("lca-cli"),
    };
    let task_env = if simulated {
        context::simulated_env(paths)
            .into_iter()
            .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
            .collect()
    } else {
        vec![]
    };
    Ok(match args.stage_work {
        StageWorkKind::Node => Arc::new(node_work::NodeStageWork {
            client: client.clone(),
            exec: exec.clone(),
            namespace: args.namespace.clone(),
            lca_cli,
            task_env,
            wake,
            job_image: args.job_image.clone(),
            registry_timeouts: lca_seed::RegistryTimeouts {
                read: args.registry_timeout,
                metadata: args.registry_timeout * 2,
                ..Default::default()
            },
        }),
        #[cfg(feature = "test-hooks")]
        StageWorkKind::TestPeer => Arc::new(ibu::test_peer::TestPeerStageWork::new(paths.clone())),
    })
}

/// Retry the API server with back-off until it answers or `limit` passes.
async fn wait_for_api(client: &Client, server: &str, limit: Duration) -> Result<(), Startup> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match client.apiserver_version().await {
            Ok(v) => {
                info!(server, version = %v.git_version, "connected to the API server");
                return Ok(());
            }
            Err(e) if start.elapsed() + delay > limit => {
                return Err(Startup(format!(
                    "API server {server} unreachable after {}s: {e}",
                    limit.as_secs()
                )));
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
/// Create the default IBU (or restore the saved one). At start-up the usual failure is an
/// API server still coming up (a CRD not served yet, a 503), which clears within
/// moments: retry after 100 ms doubling to 2 s, not the controllers' back-off, so a start
/// never waits seconds for a hiccup (the occasional 2.1 s start of the first builds).
async fn ensure_ibu(ctx: &Context) {
    let mut delay = Duration::from_millis(100);
    loop {
        match ibu::init::init_ibu(ctx).await {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "cannot initialize the ImageBasedUpgrade");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("lca-operator").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_real_work_is_the_default_and_unknown_work_is_refused() {
        assert_eq!(parse(&[]).unwrap().stage_work, StageWorkKind::Node);
        assert_eq!(
            parse(&["--stage-work=node"]).unwrap().stage_work,
            StageWorkKind::Node
        );
        let err = parse(&["--stage-work=nodes"]).unwrap_err();
        assert!(err.contains("unknown stage work \"nodes\""), "{err}");
    }

    /// Runs in the production configuration (`cargo test -p lca-operator`, and `make test`,
    /// where nothing enables the feature for this crate).
    #[cfg(not(feature = "test-hooks"))]
    #[test]
    fn a_production_build_refuses_the_test_peer_and_says_so() {
        let err = parse(&["--stage-work=test-peer"]).unwrap_err();
        assert!(err.contains("this build has no test hooks"), "{err}");
        assert!(!VERSION.contains("test-hooks"), "{VERSION}");
    }

    #[cfg(feature = "test-hooks")]
    #[test]
    fn a_test_build_runs_the_test_peer_and_says_so() {
        assert_eq!(
            parse(&["--stage-work=test-peer"]).unwrap().stage_work,
            StageWorkKind::TestPeer
        );
        assert!(VERSION.ends_with(" (test-hooks)"), "{VERSION}");
    }
}
