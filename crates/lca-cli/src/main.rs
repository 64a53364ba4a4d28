//! `lca-cli`: the host-side binary. Subcommands are added by the stage issues (`create`,
//! `stateroot-setup`, `precache`, `post-pivot`, `init-monitor`).

use clap::Parser;

/// Host-side tool of lca-rs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Root of the node (`/host` in a pod, a directory for a simulated node).
    #[arg(long, default_value = "/")]
    host_root: std::path::PathBuf,
}

fn main() {
    let cli = Cli::parse();
    let paths = lca_hostops::HostPaths::new(cli.host_root);
    println!("lca-cli: node root {}", paths.root().display());
}
