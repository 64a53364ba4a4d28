//! Which images to precache (spec §5.5): the seed's `containers.list`, with the seed's release
//! registry replaced by the cluster's when the cluster pulls from a mirror the seed did not.

/// What decides the registry override.
#[derive(Clone, Debug, Default)]
pub struct RegistryFacts {
    /// Registry host of the cluster-version-operator image.
    pub cluster_release_registry: String,
    /// Registry hosts of every ICSP/IDMS mirror source.
    pub mirror_sources: Vec<String>,
    /// From the seed's cluster info.
    pub seed_release_registry: String,
    pub seed_mirror_registry_configured: bool,
}

/// True when image references must be rewritten to the cluster's release registry.
pub fn needs_override(f: &RegistryFacts) -> bool {
    if f.mirror_sources.is_empty() {
        f.seed_mirror_registry_configured
    } else {
        !f.mirror_sources.contains(&f.seed_release_registry)
    }
}

/// `containers.list` names no image (spec §5.5 text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no images specified for precaching")]
pub struct NoImages;

/// The image list from `containers.list` text; errors when empty.
pub fn image_list(containers_list: &str, f: &RegistryFacts) -> Result<Vec<String>, NoImages> {
    let rewrite = needs_override(f) && !f.seed_release_registry.is_empty();
    let images: Vec<String> = containers_list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix(f.seed_release_registry.as_str()) {
            Some(rest) if rewrite => format!("{}{rest}", f.cluster_release_registry),
            _ => l.to_string(),
        })
        .collect();
    if images.is_empty() {
        return Err(NoImages);
    }
    Ok(images)
}

/// The registry host of an image reference (the part before the first `/`).
pub fn registry_host(image: &str) -> &str {
    image.split_once('/').map_or("", |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mirrors: &[&str], seed_mirror: bool) -> RegistryFacts {
        RegistryFacts {
            cluster_release_registry: "mirror.local:5000".into(),
            mirror_sources: mirrors.iter().map(|s| s.to_string()).collect(),
            seed_release_registry: "quay.io".into(),
            seed_mirror_registry_configured: seed_mirror,
        }
    }

    #[test]
    fn override_rules() {
        assert!(!needs_override(&facts(&[], false)));
        assert!(needs_override(&facts(&[], true)));
        assert!(!needs_override(&facts(&["quay.io"], true)));
        assert!(needs_override(&facts(&["registry.example"], false)));
    }

    #[test]
    fn list_is_rewritten_and_must_not_be_empty() {
        let list = "quay.io/openshift/a@sha256:1\n\nregistry.redhat.io/b:1\n";
        assert_eq!(
            image_list(list, &facts(&["registry.example"], false)).expect("list"),
            ["mirror.local:5000/openshift/a@sha256:1", "registry.redhat.io/b:1"]
        );
        assert_eq!(
            image_list(list, &facts(&[], false)).expect("list")[0],
            "quay.io/openshift/a@sha256:1"
        );
        assert_eq!(
            image_list("\n \n", &facts(&[], false)).unwrap_err().to_string(),
            "no images specified for precaching"
        );
        assert_eq!(registry_host("quay.io/openshift/a"), "quay.io");
    }
}
