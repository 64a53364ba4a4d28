//! podman on the node: list images and containers (the JSON of `podman images` / `podman ps`),
//! pull with retries, `rmi`, `image exists`, `image mount`/`umount`. Seed and precache images
//! live in the node's podman storage; a simulated node points podman at a private storage
//! through `CONTAINERS_STORAGE_CONF` on its `LocalExecutor`.

use std::path::PathBuf;
use std::time::Duration;

use lca_core::image_cleanup::Image;
use serde::Deserialize;

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::Executor;

const PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const IMAGES: &str = "podman images --format json";
const PS: &str = "podman ps -a --format json";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawImage {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    created: i64,
    // `omitempty` in podman: absent means false.
    #[serde(default)]
    dangling: bool,
}

/// Parse `podman images --format json`.
pub fn parse_images(json: &str) -> Result<Vec<Image>> {
    let raw: Vec<RawImage> = serde_json::from_str(json).map_err(|e| Error::parse(IMAGES, e))?;
    Ok(raw
        .into_iter()
        .map(|r| Image {
            id: r.id,
            repo_tags: r.repo_tags.unwrap_or_default(),
            repo_digests: r.repo_digests.unwrap_or_default(),
            names: r.names.unwrap_or_default(),
            created: r.created,
            dangling: r.dangling,
        })
        .collect())
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(rename = "ImageID")]
    image_id: String,
}

/// Parse `podman ps -a --format json` into the image ids of all containers.
pub fn parse_ps_image_ids(json: &str) -> Result<Vec<String>> {
    let raw: Vec<RawContainer> = serde_json::from_str(json).map_err(|e| Error::parse(PS, e))?;
    Ok(raw.into_iter().map(|c| c.image_id).collect())
}

/// All images in the node's podman storage.
pub async fn list_images(exec: &dyn Executor) -> Result<Vec<Image>> {
    let cmd = Cmd::new("podman")
        .args(["images", "--format", "json", "--log-level", "error"])
        .read_only();
    parse_images(&exec.run(&cmd).await?.stdout)
}

/// Image ids used by any podman container (running or not).
pub async fn container_image_ids(exec: &dyn Executor) -> Result<Vec<String>> {
    let cmd = Cmd::new("podman")
        .args(["ps", "-a", "--format", "json", "--log-level", "error"])
        .read_only();
    parse_ps_image_ids(&exec.run(&cmd).await?.stdout)
}

/// Options of `podman pull`.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// `--authfile` (as the commands see it).
    pub authfile: Option<PathBuf>,
    /// `--tls-verify=false` (loopback registries in tests).
    pub insecure: bool,
    /// Total attempts (upstream precache: 5); 0 is treated as 1.
    pub attempts: u32,
    /// Delay between attempts, doubled each time.
    pub backoff: Duration,
}

/// `podman pull <image>` with retries; stops retrying on `manifest unknown` (a wrong tag will
/// not appear by retrying).
pub async fn pull(exec: &dyn Executor, image: &str, opts: &PullOptions) -> Result<()> {
    if image.starts_with('-') {
        return Err(Error::Invalid(format!("bad image reference {image:?}")));
    }
    let mut cmd = Cmd::new("podman").arg("pull").arg("--quiet");
    if let Some(a) = &opts.authfile {
        cmd = cmd.arg("--authfile").arg(a);
    }
    if opts.insecure {
        cmd = cmd.arg("--tls-verify=false");
    }
    let cmd = cmd.arg(image).timeout(PULL_TIMEOUT);
    let attempts = opts.attempts.max(1);
    let mut delay = opts.backoff;
    for attempt in 1..=attempts {
        match exec.run(&cmd).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt == attempts || e.stderr_contains("manifest unknown") => return Err(e),
            Err(e) if matches!(e, Error::ToolNotFound { .. } | Error::DryRunRefused { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(image, attempt, error = %e, "pull failed, retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
    }
    Ok(())
}

/// `podman rmi <refs…>` (id, tags, digests of one image, as the cleanup passes them).
pub async fn rmi(exec: &dyn Executor, refs: &[String]) -> Result<()> {
    if refs.is_empty() || refs.iter().any(|r| r.starts_with('-')) {
        return Err(Error::Invalid(format!("bad rmi arguments {refs:?}")));
    }
    exec.run(&Cmd::new("podman").arg("rmi").args(refs))
        .await
        .map(drop)
}

/// `podman image exists <image>` (exit 1 = no).
pub async fn image_exists(exec: &dyn Executor, image: &str) -> Result<bool> {
    let cmd = Cmd::new("podman")
        .args(["image", "exists", image])
        .read_only()
        .allow_exit_codes(&[1]);
    Ok(exec.run(&cmd).await?.success())
}

/// `podman image mount <image>` in the host's namespaces; returns the mount point as the
/// commands see it (the seed's files are read from there).
pub async fn image_mount(exec: &dyn Executor, image: &str) -> Result<PathBuf> {
    let cmd = Cmd::new("podman")
        .args(["image", "mount", image])
        .in_host_namespaces();
    let out = exec.run(&cmd).await?;
    let path = out.stdout.trim();
    if path.is_empty() || !path.starts_with('/') {
        return Err(Error::parse(
            "podman image mount",
            format!("expected a mount point, got {path:?}"),
        ));
    }
    Ok(PathBuf::from(path))
}

/// `podman image umount <image>`.
pub async fn image_umount(exec: &dyn Executor, image: &str) -> Result<()> {
    exec.run(
        &Cmd::new("podman")
            .args(["image", "umount", image])
            .in_host_namespaces(),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_fixture as fixture;

    #[test]
    fn images_fixture() {
        let images = parse_images(&fixture("podman-images.json")).unwrap();
        assert_eq!(images.len(), 4);
        let dangling: Vec<_> = images.iter().filter(|i| i.dangling).collect();
        assert_eq!(dangling.len(), 1);
        assert!(dangling[0].names.is_empty());
        let mini = images.iter().find(|i| i.names == ["localhost/mini:1"]).unwrap();
        assert!(
            mini.repo_tags.is_empty(),
            "podman 4.3 prints RepoTags: null for these"
        );
        assert_eq!(mini.repo_digests.len(), 1);
        assert!(mini.created > 1_700_000_000);
    }

    #[test]
    fn ps_fixture() {
        let ids = parse_ps_image_ids(&fixture("podman-ps.json")).unwrap();
        assert_eq!(
            ids,
            ["25abd79dbd36eea92a248a1b181c381460f74458c83ffe6037caa717ef022259"]
        );
        assert_eq!(parse_ps_image_ids("[]").unwrap().len(), 0);
    }

    #[test]
    fn malformed_json_names_the_command() {
        let e = parse_images("{").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to parse the output of `podman images --format json`"),
            "{e}"
        );
        let e = parse_ps_image_ids("[{}]").unwrap_err();
        assert!(e.to_string().contains("podman ps -a --format json"), "{e}");
    }
}
