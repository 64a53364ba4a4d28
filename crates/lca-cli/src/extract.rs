//! `lca-cli extract`: unpack a tar or tar.gz file into a directory through the same safe
//! extractor Prep uses (`lca_hostops::archive`), all or nothing. For operators handling a
//! seed's `var.tgz` by hand, and for `hack/bench-extract`, which times it against `tar xzf`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use lca_hostops::archive;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// Directory that receives the archive's contents (replaced atomically).
    #[arg(long)]
    pub target: PathBuf,
    /// Refuse absolute symlink targets (for archives that are not a root filesystem).
    #[arg(long)]
    pub refuse_absolute_symlinks: bool,
    /// The tar or tar.gz file (told apart by the gzip magic).
    pub archive: PathBuf,
}

pub fn run(host_root: &std::path::Path, args: &ExtractArgs) -> Result<()> {
    let paths = lca_hostops::HostPaths::new(host_root);
    let (archive_path, target) = (paths.host(&args.archive), paths.host(&args.target));
    let mut opts = archive::Options::default();
    if args.refuse_absolute_symlinks {
        opts.absolute_symlinks = archive::AbsoluteSymlinks::Refuse;
    }
    let started = std::time::Instant::now();
    let size = std::fs::metadata(&archive_path).map(|m| m.len()).ok();
    let progress = lca_seed::Progress::new("extract", size);
    let counter = progress.clone();
    let stats =
        archive::extract_file_atomically_counted(&archive_path, &target, &opts, move |n| counter.inc(n));
    progress.finish();
    let stats = stats.map_err(Error::from)?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        entries = stats.entries,
        bytes = stats.bytes,
        xattrs_skipped = stats.xattrs_skipped,
        secs,
        mb_per_s = stats.bytes as f64 / secs.max(0.001) / 1e6,
        "extracted"
    );
    Ok(())
}
