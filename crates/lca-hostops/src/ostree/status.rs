//! Parsers for the two deployment listings: `rpm-ostree status --json` (a real node) and the
//! text of `ostree admin status` (fallback, and the simulated node, whose ostree 2022.7 has
//! no `--json`). Both produce the same `Status`, in ostree's deployment order (index 0 is the
//! default boot entry).

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::paths::HostPaths;

const RPM_OSTREE_STATUS: &str = "rpm-ostree status --json";
const OSTREE_ADMIN_STATUS: &str = "ostree admin status";

/// One ostree deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// Position in the deployment list; `ostree admin undeploy/set-default` take this.
    pub index: usize,
    /// The stateroot (rpm-ostree calls it `osname`).
    pub stateroot: String,
    /// Commit checksum.
    pub checksum: String,
    /// Deploy serial (several deployments of one commit differ by it).
    pub serial: u32,
    /// Whether this is the running deployment.
    pub booted: bool,
    /// Commit `version` metadata.
    pub version: Option<String>,
    /// Origin refspec.
    pub origin: Option<String>,
    /// Pinned against automatic cleanup.
    pub pinned: bool,
}

impl Deployment {
    /// rpm-ostree's id, `<stateroot>-<checksum>.<serial>` (what a seed's `rpm-ostree.json` holds).
    pub fn id(&self) -> String {
        format!("{}-{}.{}", self.stateroot, self.checksum, self.serial)
    }

    /// The deployment's root directory under `paths`.
    pub fn dir(&self, paths: &HostPaths) -> PathBuf {
        paths.deployment_dir(&self.stateroot, &self.checksum, self.serial)
    }
}

/// All deployments of the sysroot, in boot order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Deployments; `deployments[0]` is the default for the next boot.
    pub deployments: Vec<Deployment>,
}

impl Status {
    /// The booted deployment, if the node (or simulation) says one is.
    pub fn booted(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.booted)
    }

    /// The booted stateroot, or `NoBootedDeployment`.
    pub fn booted_stateroot(&self) -> Result<&str> {
        self.booted()
            .map(|d| d.stateroot.as_str())
            .ok_or(Error::NoBootedDeployment)
    }

    /// Deployments of one stateroot, in index order.
    pub fn of_stateroot<'a>(&'a self, stateroot: &'a str) -> impl Iterator<Item = &'a Deployment> + 'a {
        self.deployments.iter().filter(move |d| d.stateroot == stateroot)
    }

    /// The first deployment whose stateroot differs from the booted one (the rollback target).
    pub fn first_unbooted_stateroot(&self) -> Option<&Deployment> {
        let booted = self.booted()?.stateroot.clone();
        self.deployments.iter().find(|d| d.stateroot != booted)
    }
}

#[derive(Deserialize)]
struct RpmOstreeStatus {
    deployments: Vec<RpmOstreeDeployment>,
}

#[derive(Deserialize)]
struct RpmOstreeDeployment {
    osname: String,
    checksum: String,
    serial: u32,
    #[serde(default)]
    booted: bool,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    pinned: bool,
}

/// Parse `rpm-ostree status --json`.
pub fn parse_rpm_ostree_status(json: &str) -> Result<Status> {
    let raw: RpmOstreeStatus = serde_json::from_str(json).map_err(|e| Error::parse(RPM_OSTREE_STATUS, e))?;
    let deployments = raw
        .deployments
        .into_iter()
        .enumerate()
        .map(|(index, d)| Deployment {
            index,
            stateroot: d.osname,
            checksum: d.checksum,
            serial: d.serial,
            booted: d.booted,
            version: d.version,
            origin: d.origin,
            pinned: d.pinned,
        })
        .collect();
    Ok(Status { deployments })
}

/// Parse the text of `ostree admin status`:
/// ```text
/// * rhcos 75f1…c3.0
///     Version: 416.94.202410211619-0
///     origin refspec: rhcos/4.16b
///   rhcos 267b…f9.0 (rollback)
///     Pinned: yes
/// ```
pub fn parse_admin_status(text: &str) -> Result<Status> {
    let mut deployments: Vec<Deployment> = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim() == "No deployments." {
            continue;
        }
        let bad = |what: &str| {
            Error::parse(
                OSTREE_ADMIN_STATUS,
                format!("line {}: {what}: {line:?}", lineno + 1),
            )
        };
        if let Some(detail) = line.strip_prefix("    ") {
            let current = deployments
                .last_mut()
                .ok_or_else(|| bad("detail before any deployment"))?;
            let detail = detail.trim();
            if let Some(v) = detail.strip_prefix("Version: ") {
                current.version = Some(v.to_string());
            } else if let Some(v) = detail.strip_prefix("origin refspec: ") {
                current.origin = Some(v.to_string());
            } else if detail == "Pinned: yes" {
                current.pinned = true;
            }
            // Other details (Unlocked, GPG, origin: <unknown>) are not needed.
            continue;
        }
        let (booted, rest) = if let Some(r) = line.strip_prefix("* ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("  ") {
            (false, r)
        } else {
            return Err(bad("unexpected indentation"));
        };
        let mut words = rest.split_whitespace();
        let (Some(stateroot), Some(csum_serial)) = (words.next(), words.next()) else {
            return Err(bad("expected `<stateroot> <checksum>.<serial>`"));
        };
        let (checksum, serial) = csum_serial
            .rsplit_once('.')
            .ok_or_else(|| bad("missing deploy serial"))?;
        let serial: u32 = serial.parse().map_err(|_| bad("deploy serial is not a number"))?;
        if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("checksum is not 64 hex digits"));
        }
        deployments.push(Deployment {
            index: deployments.len(),
            stateroot: stateroot.to_string(),
            checksum: checksum.to_string(),
            serial,
            booted,
            version: None,
            origin: None,
            pinned: false,
        });
    }
    Ok(Status { deployments })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_fixture as fixture;

    #[test]
    fn rpm_ostree_status_fixture() {
        let s = parse_rpm_ostree_status(&fixture("rpm-ostree-status.json")).unwrap();
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.booted_stateroot().unwrap(), "rhcos_4.17.0");
        assert_eq!(
            s.deployments[1].id(),
            "rhcos-267b75d885d0674986a3af9d6cb5a10636645869bab7a5f3f95460d7dad19af9.0"
        );
        assert_eq!(s.first_unbooted_stateroot().unwrap().index, 1);
        assert_eq!(s.deployments[0].version.as_deref(), Some("417.94.202411061438-0"));
    }

    #[test]
    fn admin_status_unbooted_fixture() {
        let s = parse_admin_status(&fixture("ostree-admin-status.txt")).unwrap();
        assert_eq!(s.deployments.len(), 3);
        assert!(s.booted().is_none());
        assert_eq!(s.deployments[1].stateroot, "rhcos");
        assert!(s.deployments[1].pinned);
        assert_eq!(s.deployments[2].stateroot, "rhcos_4.17.0");
        assert_eq!(s.deployments[2].origin.as_deref(), Some("rhcos/4.17"));
        assert_eq!(s.of_stateroot("rhcos").count(), 2);
    }

    #[test]
    fn admin_status_booted_fixture() {
        let s = parse_admin_status(&fixture("ostree-admin-status-booted.txt")).unwrap();
        let b = s.booted().unwrap();
        assert_eq!((b.index, b.stateroot.as_str(), b.serial), (0, "rhcos", 0));
        assert_eq!(s.deployments[1].version.as_deref(), Some("416.94.202410211619-0"));
    }

    #[test]
    fn malformed_outputs_name_the_command() {
        let e = parse_rpm_ostree_status("{\"deployments\": 3}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to parse the output of `rpm-ostree status --json`"),
            "{e}"
        );
        let e = parse_admin_status("garbage\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to parse the output of `ostree admin status`: line 1"),
            "{e}"
        );
        assert!(parse_admin_status("  rhcos abc.x\n").is_err());
        assert!(parse_admin_status("    Version: 1\n").is_err());
        assert_eq!(
            parse_admin_status("No deployments.\n").unwrap().deployments.len(),
            0
        );
    }
}
