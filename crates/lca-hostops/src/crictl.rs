//! crictl on the node: images of CRI containers (in use) and CRI-pinned images, for the image
//! cleanup. crictl exists only with CRI-O, i.e. on a real node. A simulated node has no CRI-O,
//! so a missing crictl there means "no CRI containers, nothing pinned"; on a real node it is a
//! `ToolNotFound` error (cleaning up without knowing what kubelet uses would be unsafe).

use serde::Deserialize;

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind};

const PS: &str = "crictl ps -a -o json";
const IMAGES: &str = "crictl images -o json";

#[derive(Deserialize)]
struct PsOutput {
    #[serde(default)]
    containers: Vec<Container>,
}

#[derive(Deserialize)]
struct Container {
    image: ImageSpec,
}

#[derive(Deserialize)]
struct ImageSpec {
    image: String,
}

#[derive(Deserialize)]
struct ImagesOutput {
    #[serde(default)]
    images: Vec<CriImage>,
}

#[derive(Deserialize)]
struct CriImage {
    id: String,
    #[serde(default)]
    pinned: bool,
}

/// Parse `crictl ps -a -o json` into `containers[].image.image`.
pub fn parse_ps_images(json: &str) -> Result<Vec<String>> {
    let out: PsOutput = serde_json::from_str(json).map_err(|e| Error::parse(PS, e))?;
    Ok(out.containers.into_iter().map(|c| c.image.image).collect())
}

/// Parse `crictl images -o json` into the ids of pinned images.
pub fn parse_pinned_images(json: &str) -> Result<Vec<String>> {
    let out: ImagesOutput = serde_json::from_str(json).map_err(|e| Error::parse(IMAGES, e))?;
    Ok(out
        .images
        .into_iter()
        .filter(|i| i.pinned)
        .map(|i| i.id)
        .collect())
}

async fn run_or_absent(exec: &dyn Executor, args: &[&str]) -> Result<Option<String>> {
    match exec.run(&Cmd::new("crictl").args(args).read_only()).await {
        Ok(out) => Ok(Some(out.stdout)),
        Err(Error::ToolNotFound { .. }) if exec.node().kind == NodeKind::Simulated => {
            tracing::debug!("crictl absent on the simulated node: no CRI containers");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Image references used by CRI containers.
pub async fn container_images(exec: &dyn Executor) -> Result<Vec<String>> {
    match run_or_absent(exec, &["ps", "-a", "-o", "json"]).await? {
        Some(json) => parse_ps_images(&json),
        None => Ok(Vec::new()),
    }
}

/// Ids of images that CRI-O pins (never removed).
pub async fn pinned_images(exec: &dyn Executor) -> Result<Vec<String>> {
    match run_or_absent(exec, &["images", "-o", "json"]).await? {
        Some(json) => parse_pinned_images(&json),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ChrootExecutor, LocalExecutor};

    use crate::test_fixture as fixture;

    #[test]
    fn ps_fixture() {
        let images = parse_ps_images(&fixture("crictl-ps.json")).unwrap();
        assert_eq!(images.len(), 2);
        assert!(images[0].starts_with("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:"));
        assert_eq!(
            images[1],
            "5683d03822a1564b571f70eceded9b0b172a4e8ecf080e7553b59a18a2ceeab4"
        );
        assert!(parse_ps_images("{}").unwrap().is_empty());
    }

    #[test]
    fn images_fixture() {
        let pinned = parse_pinned_images(&fixture("crictl-images.json")).unwrap();
        assert_eq!(
            pinned,
            ["8f6d71ad824bd83e9cf6f54be866036deee18f4a3f2498cd8ff6364a2e56069a"]
        );
        let e = parse_pinned_images("{\"images\": {}}").unwrap_err();
        assert!(e.to_string().contains("crictl images -o json"), "{e}");
    }

    #[tokio::test]
    async fn missing_crictl_is_empty_only_on_a_simulated_node() {
        // crictl is not installable on Debian 12, so this runs the real lookup failure.
        let sim = LocalExecutor::new("/tmp");
        assert!(container_images(&sim).await.unwrap().is_empty());
        assert!(pinned_images(&sim).await.unwrap().is_empty());
        let real = ChrootExecutor::new("/");
        let e = container_images(&real).await.unwrap_err();
        assert_eq!(e.to_string(), "crictl not found on the node");
    }
}
