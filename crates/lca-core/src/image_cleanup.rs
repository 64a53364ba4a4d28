//! Image cleanup selection (spec §5.3): which container images to remove when the container
//! storage disk is above its threshold. Pure; the loop that executes it is in lca-hostops.
//!
//! Order: dangling images first, then oldest `Created`; pinned images (CRI) and images in use
//! by any container (matched by id, tag, digest or name) are never candidates. Removal goes in
//! batches of `BATCH_SIZE`, re-checking disk usage after each batch.

use std::collections::{BTreeMap, HashSet};

use lca_api::consts::annotations;

/// Images removed per `podman rmi` batch before the disk usage is checked again.
pub const BATCH_SIZE: usize = 5;

/// One image as `podman images --format json` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// Image id (64 hex digits, no `sha256:` prefix).
    pub id: String,
    /// `RepoTags`.
    pub repo_tags: Vec<String>,
    /// `RepoDigests`.
    pub repo_digests: Vec<String>,
    /// `Names`.
    pub names: Vec<String>,
    /// `Created`, seconds since the epoch.
    pub created: i64,
    /// `Dangling` (no name).
    pub dangling: bool,
}

impl Image {
    /// Arguments of `podman rmi` for this image: id, then tags, then digests.
    pub fn rmi_args(&self) -> Vec<String> {
        let mut args = vec![self.id.clone()];
        args.extend(self.repo_tags.iter().cloned());
        args.extend(self.repo_digests.iter().cloned());
        args
    }

    fn references(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str())
            .chain(self.repo_tags.iter().map(String::as_str))
            .chain(self.repo_digests.iter().map(String::as_str))
            .chain(self.names.iter().map(String::as_str))
    }
}

/// Whether to clean up at Prep, from the IBU annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `image-cleanup.lca.openshift.io/on-prep: Disabled`.
    Disabled,
    /// The threshold annotation does not parse as an integer: skip (upstream logs and skips).
    InvalidThreshold(String),
    /// Clean up when usage is strictly above this percentage.
    Threshold(i64),
}

/// Read the two `image-cleanup.lca.openshift.io/*` annotations (default threshold 50).
pub fn policy(annotations_map: &BTreeMap<String, String>) -> Policy {
    if annotations_map
        .get(annotations::IMAGE_CLEANUP_ON_PREP)
        .map(String::as_str)
        == Some(annotations::DISABLED)
    {
        return Policy::Disabled;
    }
    match annotations_map.get(annotations::IMAGE_CLEANUP_DISK_USAGE_THRESHOLD) {
        None => Policy::Threshold(i64::from(annotations::DEFAULT_DISK_USAGE_THRESHOLD_PERCENT)),
        Some(v) => v
            .trim()
            .parse()
            .map(Policy::Threshold)
            .unwrap_or_else(|_| Policy::InvalidThreshold(v.clone())),
    }
}

/// Disk usage in percent as upstream computes it from statfs: `(blocks − bavail) × 100 / blocks`.
pub fn usage_percent(blocks: u64, blocks_available: u64) -> i64 {
    if blocks == 0 {
        return 0;
    }
    let used = u128::from(blocks.saturating_sub(blocks_available));
    i64::try_from(used * 100 / u128::from(blocks)).unwrap_or(i64::MAX)
}

/// Whether usage is strictly above the threshold.
pub fn needs_cleanup(usage_percent: i64, threshold: i64) -> bool {
    usage_percent > threshold
}

/// Ids are compared without the `sha256:` prefix, which CRI-O and podman print inconsistently.
fn normalize(reference: &str) -> &str {
    reference.strip_prefix("sha256:").unwrap_or(reference)
}

/// The images to remove, in removal order: not pinned, not in use, dangling first, then oldest.
/// `in_use` holds references of containers' images (crictl `image.image`, podman `ImageID`);
/// `pinned` holds image ids that CRI-O pins.
pub fn select_candidates(images: &[Image], in_use: &HashSet<String>, pinned: &HashSet<String>) -> Vec<Image> {
    let in_use: HashSet<&str> = in_use.iter().map(|s| normalize(s)).collect();
    let pinned: HashSet<&str> = pinned.iter().map(|s| normalize(s)).collect();
    let mut candidates: Vec<Image> = images
        .iter()
        .filter(|img| !pinned.contains(normalize(&img.id)))
        .filter(|img| !img.references().any(|r| in_use.contains(normalize(r))))
        .cloned()
        .collect();
    // Stable: equal keys keep podman's order, as upstream's sort.SliceStable does.
    candidates.sort_by_key(|img| (!img.dangling, img.created));
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, created: i64, dangling: bool, tag: Option<&str>) -> Image {
        Image {
            id: id.to_string(),
            repo_tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            names: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            repo_digests: vec![format!("quay.io/x@sha256:{id}")],
            created,
            dangling,
        }
    }

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn policy_reads_annotations() {
        let mut a = BTreeMap::new();
        assert_eq!(policy(&a), Policy::Threshold(50));
        a.insert(
            annotations::IMAGE_CLEANUP_DISK_USAGE_THRESHOLD.to_string(),
            "65".to_string(),
        );
        assert_eq!(policy(&a), Policy::Threshold(65));
        a.insert(
            annotations::IMAGE_CLEANUP_DISK_USAGE_THRESHOLD.to_string(),
            "lots".to_string(),
        );
        assert_eq!(policy(&a), Policy::InvalidThreshold("lots".into()));
        a.insert(
            annotations::IMAGE_CLEANUP_ON_PREP.to_string(),
            "Disabled".to_string(),
        );
        assert_eq!(policy(&a), Policy::Disabled);
    }

    #[test]
    fn usage_is_integer_percent_and_threshold_is_strict() {
        assert_eq!(usage_percent(1000, 500), 50);
        assert_eq!(usage_percent(1000, 499), 50);
        assert_eq!(usage_percent(1000, 489), 51);
        assert_eq!(usage_percent(0, 0), 0);
        assert!(!needs_cleanup(50, 50));
        assert!(needs_cleanup(51, 50));
    }

    #[test]
    fn dangling_first_then_oldest_skipping_pinned_and_in_use() {
        let images = vec![
            img("aa", 300, false, Some("quay.io/a:1")),
            img("bb", 100, false, Some("quay.io/b:1")),
            img("cc", 500, true, None),
            img("dd", 50, false, Some("quay.io/d:1")),
            img("ee", 10, false, Some("quay.io/e:1")),
            img("ff", 20, false, None),
        ];
        // dd pinned (CRI prints sha256:), ee in use by tag, ff in use by digest, bb by id.
        let in_use = set(&["quay.io/e:1", "quay.io/x@sha256:ff", "sha256:bb"]);
        let pinned = set(&["sha256:dd"]);
        let ids: Vec<_> = select_candidates(&images, &in_use, &pinned)
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["cc", "aa"]);
    }

    #[test]
    fn equal_keys_keep_listing_order_and_rmi_args() {
        let images = vec![img("b", 1, true, None), img("a", 1, true, None)];
        let ids: Vec<_> = select_candidates(&images, &HashSet::new(), &HashSet::new())
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(
            img("a", 1, false, Some("t:1")).rmi_args(),
            ["a", "t:1", "quay.io/x@sha256:a"]
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn image() -> impl Strategy<Value = Image> {
            (
                "[a-f]{2}",
                0i64..50,
                any::<bool>(),
                proptest::option::of("[a-c]:[12]"),
            )
                .prop_map(|(id, created, dangling, tag)| img(&id, created, dangling, tag.as_deref()))
        }

        proptest! {
            #[test]
            fn never_pinned_never_in_use_always_ordered(
                images in proptest::collection::vec(image(), 0..12),
                in_use in proptest::collection::hash_set("[a-c]:[12]|sha256:[a-f]{2}", 0..4),
                pinned in proptest::collection::hash_set("[a-f]{2}", 0..4),
            ) {
                let out = select_candidates(&images, &in_use, &pinned);
                for c in &out {
                    prop_assert!(!pinned.contains(&c.id));
                    prop_assert!(!c.references().any(|r| in_use.iter().any(|u| normalize(u) == normalize(r))));
                }
                for w in out.windows(2) {
                    prop_assert!((!w[0].dangling, w[0].created) <= (!w[1].dangling, w[1].created));
                }
                let kept = images.iter().filter(|i| {
                    !pinned.contains(&i.id) && !i.references().any(|r| in_use.iter().any(|u| normalize(u) == normalize(r)))
                }).count();
                prop_assert_eq!(out.len(), kept);
            }
        }
    }
}
