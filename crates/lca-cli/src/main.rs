//! `lca-cli`: the host-side binary of lca-rs. One module per subcommand: `create` builds
//! and pushes a seed image; `inspect` prints a seed's labels and checks its format;
//! `pull` downloads, verifies and unpacks a seed; `extract` safely unpacks one tarball. Logs go to stderr (plain text at a
//! terminal, JSON otherwise); progress bars only at a terminal.

mod create;
mod error;
mod extract;
mod init_monitor;
mod inspect;
mod post_pivot;
mod precache;
mod pull;
mod stateroot_setup;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `--version` names the test build (see `Cargo.toml`), so a test harness can refuse a
/// production binary and a node running a test build can be told apart.
const VERSION: &str = if cfg!(feature = "test-hooks") {
    concat!(env!("CARGO_PKG_VERSION"), " (test-hooks)")
} else {
    env!("CARGO_PKG_VERSION")
};

/// Host-side tool of lca-rs.
#[derive(Parser)]
#[command(version = VERSION, about)]
struct Cli {
    /// Root of the node (`/host` in a pod, a directory for a simulated node).
    #[arg(long, global = true, default_value = "/", env = "LCA_HOST_ROOT")]
    host_root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a seed image from this node and push it (spec §8.5).
    Create(create::CreateArgs),
    /// Print a seed image's labels (reads only manifest and config).
    Inspect(inspect::InspectArgs),
    /// Pull a seed image by digest, verify it, and unpack it into a directory.
    Pull(pull::PullArgs),
    /// Safely unpack a tar or tar.gz file into a directory, all or nothing.
    Extract(extract::ExtractArgs),
    /// Install a seed as the new stateroot, not as the default (spec §5.4; resumable).
    StaterootSetup(stateroot_setup::StaterootSetupArgs),
    /// Pull the new release's images into the node's container storage (spec §5.5).
    Precache(precache::PrecacheArgs),
    /// First boot of the new stateroot: make the seed's node this cluster's (spec §6.4).
    PostPivot(post_pivot::PostPivotArgs),
    /// Roll back when the upgrade does not complete in time or a unit fails (spec §6.7).
    InitMonitor(init_monitor::InitMonitorArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        fmt.init()
    } else {
        fmt.json().init()
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lca-cli: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Create(a) => create::run(&cli.host_root, a).await,
            Command::Inspect(a) => inspect::run(a).await,
            Command::Pull(a) => pull::run(&cli.host_root, a).await,
            Command::StaterootSetup(a) => stateroot_setup::run(&cli.host_root, a).await,
            Command::Precache(a) => precache::run(&cli.host_root, a).await,
            Command::PostPivot(a) => post_pivot::run(&cli.host_root, a).await,
            Command::InitMonitor(a) => init_monitor::run(&cli.host_root, a).await,
            Command::Extract(a) => {
                let (root, a) = (cli.host_root.clone(), a);
                tokio::task::block_in_place(|| extract::run(&root, a))
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, category = ?e.category(), "failed");
            eprintln!("lca-cli: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Credentials for `image` from an optional docker auth JSON file.
pub(crate) fn credentials(
    authfile: Option<&PathBuf>,
    registry: &str,
) -> lca_seed::Result<lca_seed::Credentials> {
    match authfile {
        Some(f) => {
            let json = std::fs::read(f).map_err(lca_seed::Error::io("reading the auth file", f))?;
            lca_seed::Credentials::from_auth_json(&json, registry)
        }
        None => Ok(lca_seed::Credentials::Anonymous),
    }
}

#[cfg(test)]
mod argv_tests {
    use std::time::Duration;

    use clap::Parser;
    use lca_api::cli_args::{PrecacheArgs, StaterootSetupArgs};

    use super::{Cli, Command};

    fn parse(argv: Vec<String>) -> Cli {
        let full = ["lca-cli".to_string(), "--host-root=/host".into()]
            .into_iter()
            .chain(argv);
        Cli::try_parse_from(full).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What the operator writes is what this binary reads, field by field.
    #[test]
    fn the_operators_argv_parses_back_to_the_same_args() {
        let mut s = StaterootSetupArgs::new("reg:5000/seed:1".into(), "4.18.0".into(), "/w/s.json".into());
        for (authfile, cfg, simulated, pull) in [
            (None, None, false, Duration::from_secs(1800)),
            (
                Some("/w/auth".into()),
                Some(r#"{"a":1, "b":"x y"}"#.to_string()),
                true,
                Duration::from_millis(1500),
            ),
        ] {
            s.authfile = authfile;
            s.autorollback_config_json = cfg;
            s.simulated = simulated;
            s.pull_timeout = pull;
            let Command::StaterootSetup(got) = parse(s.to_argv()).command else {
                panic!("not stateroot-setup")
            };
            assert_eq!(got, s);
        }
        let mut p = PrecacheArgs::new("/w/images".into(), "/w/status.json".into());
        for (tls, best, parallel) in [(true, false, 10), (false, true, 3)] {
            p.tls_verify = tls;
            p.best_effort = best;
            p.parallel = parallel;
            p.authfile = best.then(|| "/var/lib/kubelet/config.json".into());
            let Command::Precache(got) = parse(p.to_argv()).command else {
                panic!("not precache")
            };
            assert_eq!(got, p);
        }
    }
}
