//! The image cleanup loop of Prep (spec §5.3): measure the container storage, and while it is
//! above the threshold remove unused images in batches, re-measuring after each batch. The
//! choice of images is `lca_core::image_cleanup`; this module only gathers facts and acts.
//! Never fails Prep because images ran out: that is a warning in the report.

use std::collections::{BTreeMap, HashSet};

use lca_core::image_cleanup::{self as select, BATCH_SIZE, Policy};

use crate::error::Result;
use crate::executor::Executor;
use crate::{crictl, disk, podman};

/// What the cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Why nothing was attempted (disabled, bad threshold, below threshold), if so.
    pub skipped: Option<String>,
    /// Usage (%) before and after.
    pub usage_before: i64,
    /// Usage (%) after the last batch.
    pub usage_after: i64,
    /// Ids of the images removed (or attempted: `podman rmi` errors are ignored, as upstream).
    pub removed: Vec<String>,
    /// All candidates were removed and usage is still above the threshold.
    pub ran_out_of_candidates: bool,
}

/// Run the cleanup for an IBU with `annotations`, measuring `/var/lib/containers` with statfs.
pub async fn run(exec: &dyn Executor, annotations: &BTreeMap<String, String>) -> Result<Report> {
    let path = exec.node().paths.container_storage();
    run_with_usage(exec, annotations, || disk::usage(&path).map(|u| u.percent())).await
}

/// `run` with the usage measurement supplied (tests cannot fill a disk to 50 %).
pub async fn run_with_usage(
    exec: &dyn Executor,
    annotations: &BTreeMap<String, String>,
    mut usage: impl FnMut() -> Result<i64> + Send,
) -> Result<Report> {
    let threshold = match select::policy(annotations) {
        Policy::Disabled => return Ok(skipped("image cleanup disabled by annotation")),
        Policy::InvalidThreshold(v) => return Ok(skipped(&format!("unparsable disk usage threshold {v:?}"))),
        Policy::Threshold(t) => t,
    };
    let before = usage()?;
    let mut report = Report {
        usage_before: before,
        usage_after: before,
        ..Report::default()
    };
    if !select::needs_cleanup(before, threshold) {
        report.skipped = Some(format!("disk usage {before}% is not above {threshold}%"));
        return Ok(report);
    }
    let candidates = candidates(exec).await?;
    tracing::info!(
        usage = before,
        threshold,
        candidates = candidates.len(),
        "image cleanup starting"
    );
    for batch in candidates.chunks(BATCH_SIZE) {
        for image in batch {
            if let Err(e) = podman::rmi(exec, &image.rmi_args()).await {
                tracing::warn!(image = %image.id, error = %e, "podman rmi failed; continuing");
            }
            report.removed.push(image.id.clone());
        }
        report.usage_after = usage()?;
        if !select::needs_cleanup(report.usage_after, threshold) {
            return Ok(report);
        }
    }
    report.ran_out_of_candidates = true;
    tracing::warn!(
        usage = report.usage_after,
        threshold,
        "no more images to remove; disk usage still above threshold"
    );
    Ok(report)
}

/// Images that may go, in removal order (facts from crictl and podman, choice from lca-core).
pub async fn candidates(exec: &dyn Executor) -> Result<Vec<select::Image>> {
    let mut in_use: HashSet<String> = crictl::container_images(exec).await?.into_iter().collect();
    in_use.extend(podman::container_image_ids(exec).await?);
    let pinned: HashSet<String> = crictl::pinned_images(exec).await?.into_iter().collect();
    let images = podman::list_images(exec).await?;
    Ok(select::select_candidates(&images, &in_use, &pinned))
}

fn skipped(why: &str) -> Report {
    Report {
        skipped: Some(why.to_string()),
        ..Report::default()
    }
}
