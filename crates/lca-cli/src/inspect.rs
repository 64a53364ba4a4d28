//! `lca-cli inspect`: a seed's labels from its manifest and config, without layers, and
//! the format check of spec §5.2 (the cluster-dependent checks need the operator).

use std::path::PathBuf;

use crate::error::{Error, Result};
use lca_seed::SeedRegistry;
use lca_seed::checks::{ClusterFacts, check_seed_labels};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Seed image reference.
    pub image: String,
    #[arg(long)]
    pub plain_http: bool,
}

pub async fn run(args: &InspectArgs) -> Result<()> {
    let image = lca_seed::parse_reference(&args.image)?;
    let creds = crate::credentials(args.authfile.as_ref(), image.resolve_registry())?;
    let plain = args.plain_http || lca_seed::registry::is_loopback(image.resolve_registry());
    let info = SeedRegistry::new(&image, &creds, plain).inspect(&image).await?;
    let out =
        serde_json::json!({ "digest": info.manifest_digest, "labels": info.labels, "layers": info.layers });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| Error::Invalid(e.to_string()))?
    );
    // Only the format half of the checks is meaningful without a cluster.
    let facts = ClusterFacts::default();
    if let Err(e) = check_seed_labels(&info.labels, &facts) {
        let msg = e.to_string();
        if msg.contains("format version") || msg.contains("missing the") {
            return Err(e.into());
        }
    }
    Ok(())
}
