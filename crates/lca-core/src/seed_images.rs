//! The seed's `containers.list` (spec §8.5 step 3): the images a target node precaches
//! before it pivots into the seed. Upstream's rule: the node's images (tags, else digests)
//! without the CatalogSources' index images (they change with every catalog update) and
//! without any `registry.redhat.io/redhat/<name>-index:<tag>`, plus the recert image and every
//! CSV's related image except the cloud-specific ones (`-for-microsoft-azure`, `-for-gcp`,
//! `-for-csi`), which a single-node edge cluster never runs.

use lca_api::files::SeedImages;

/// `^registry\.redhat\.io/redhat/.+-index:.+`
fn is_redhat_index(image: &str) -> bool {
    image
        .strip_prefix("registry.redhat.io/redhat/")
        .and_then(|rest| rest.find("-index:").map(|at| (at, rest)))
        .is_some_and(|(at, rest)| at > 0 && rest.len() > at + "-index:".len())
}

fn is_cloud_specific(image: &str) -> bool {
    ["-for-microsoft-azure", "-for-gcp", "-for-csi"]
        .iter()
        .any(|m| image.contains(m))
}

/// The sorted, de-duplicated list.
pub fn containers_list(node_images: &[String], seed: &SeedImages, recert_image: &str) -> Vec<String> {
    let mut images: Vec<String> = node_images
        .iter()
        .filter(|i| !seed.catalog_source_images.contains(i) && !is_redhat_index(i))
        .cloned()
        .collect();
    if !recert_image.is_empty() {
        images.push(recert_image.to_string());
    }
    images.extend(
        seed.related_images
            .iter()
            .filter(|i| !is_cloud_specific(i))
            .cloned(),
    );
    images.sort();
    images.dedup();
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn catalogs_and_index_images_go_recert_and_related_images_come() {
        let node = v(&[
            "quay.io/openshift/a@sha256:1",
            "registry.redhat.io/redhat/redhat-operator-index:v4.17",
            "mirror.example.com/olm/my-catalog:latest",
            "registry.redhat.io/redhat/-index:x",
        ]);
        let seed = SeedImages {
            catalog_source_images: v(&["mirror.example.com/olm/my-catalog:latest"]),
            related_images: v(&[
                "registry.redhat.io/lvms4/lvms-rhel9-operator@sha256:2",
                "registry.redhat.io/ptp/driver-for-gcp@sha256:3",
                "registry.redhat.io/x/disk-for-microsoft-azure@sha256:4",
                "registry.redhat.io/y/snap-for-csi@sha256:5",
                "quay.io/openshift/a@sha256:1",
            ]),
        };
        assert_eq!(
            containers_list(&node, &seed, "quay.io/edge-infrastructure/recert:v0"),
            v(&[
                "quay.io/edge-infrastructure/recert:v0",
                "quay.io/openshift/a@sha256:1",
                "registry.redhat.io/lvms4/lvms-rhel9-operator@sha256:2",
                // `.+` before `-index:` needs a name: not an index image by the rule.
                "registry.redhat.io/redhat/-index:x",
            ])
        );
    }

    #[test]
    fn without_the_operators_facts_only_index_images_go() {
        let node = v(&["registry.redhat.io/redhat/certified-operator-index:v4.17", "b"]);
        assert_eq!(containers_list(&node, &SeedImages::default(), ""), v(&["b"]));
    }
}
