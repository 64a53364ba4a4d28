//! `lca-cli pull`: Prep's seed pull from the command line: by digest, verified, unpacked
//! all or nothing into `--target` (a node path).

use std::path::PathBuf;

use crate::error::Result;
use lca_seed::SeedRegistry;

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Directory that receives the seed's files (replaced atomically).
    #[arg(long)]
    pub target: PathBuf,
    #[arg(long)]
    pub plain_http: bool,
    /// Seed image reference.
    pub image: String,
}

pub async fn run(host_root: &std::path::Path, args: &PullArgs) -> Result<()> {
    let image = lca_seed::parse_reference(&args.image)?;
    let creds = crate::credentials(args.authfile.as_ref(), image.resolve_registry())?;
    let plain = args.plain_http || lca_seed::registry::is_loopback(image.resolve_registry());
    let reg = SeedRegistry::new(&image, &creds, plain);
    let target = lca_hostops::HostPaths::new(host_root).host(&args.target);
    let info = lca_seed::pull_and_unpack(&reg, &image, &target).await?;
    println!("{}", info.manifest_digest);
    Ok(())
}
