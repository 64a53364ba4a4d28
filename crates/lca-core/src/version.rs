//! OpenShift versions as semver (`4.17.0`, `4.16.0-rc.1`), the Prep rule that a seed must be
//! strictly newer than the cluster (spec §5.1), and the stateroot-name derivation.

use std::cmp::Ordering;

/// A parsed semantic version; build metadata is ignored, as semver requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Vec<String>,
}

/// A string that is not a semantic version (`invalid version "x"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {0:?}")]
pub struct InvalidVersion(pub String);

/// Why the seed's version fails the Prep gate (the reference's texts).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedVersionError {
    /// The seed's or the cluster's version does not parse.
    #[error("failed to validate seed image OCP version: {0}")]
    Unparsable(InvalidVersion),
    /// The seed is not strictly newer than the cluster.
    #[error(
        "failed to validate seed image OCP version: seed OCP version ({seed}) must be higher than current OCP version ({cluster})"
    )]
    NotNewer { seed: String, cluster: String },
}

/// An annotation whose value is not a non-negative integer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for annotation {annotation}: must be a non-negative integer")]
pub struct InvalidCount {
    pub value: String,
    pub annotation: &'static str,
}

impl Version {
    pub fn parse(s: &str) -> Result<Self, InvalidVersion> {
        let invalid = || InvalidVersion(s.to_string());
        let (core_pre, build) = s.split_once('+').map_or((s, None), |(v, b)| (v, Some(b)));
        // Semver identifiers are `[0-9A-Za-z-]+`. Holding to that is what keeps the version
        // safe to use in the stateroot name and the paths built from it (no `/`, no `..`).
        let ident_ok =
            |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if build.is_some_and(|b| !b.split('.').all(ident_ok)) {
            return Err(invalid());
        }
        let (core, pre) = core_pre
            .split_once('-')
            .map_or((core_pre, None), |(c, p)| (c, Some(p)));
        let nums: Vec<&str> = core.split('.').collect();
        let num = |i: usize| -> Result<u64, InvalidVersion> {
            let part = nums.get(i).ok_or_else(invalid)?;
            if part.is_empty() || (part.len() > 1 && part.starts_with('0')) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        if nums.len() != 3 {
            return Err(invalid());
        }
        let pre: Vec<String> = pre
            .map(|p| p.split('.').map(str::to_string).collect())
            .unwrap_or_default();
        if !pre.iter().all(|p| ident_ok(p)) {
            return Err(invalid());
        }
        Ok(Self {
            major: num(0)?,
            minor: num(1)?,
            patch: num(2)?,
            pre,
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// The Prep version gate: the seed must be strictly newer than the cluster's desired version.
/// Errors carry the reference's text (without the `failed to validate IBU spec: ` prefix).
pub fn check_seed_newer(seed: &str, cluster: &str) -> Result<(), SeedVersionError> {
    let s = Version::parse(seed).map_err(SeedVersionError::Unparsable)?;
    let c = Version::parse(cluster).map_err(SeedVersionError::Unparsable)?;
    if s > c {
        Ok(())
    } else {
        Err(SeedVersionError::NotNewer {
            seed: seed.to_string(),
            cluster: cluster.to_string(),
        })
    }
}

/// The target stateroot of a version: `rhcos_` + version with `-` replaced by `_`.
pub fn stateroot_name(version: &str) -> String {
    format!("rhcos_{}", version.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_follows_semver() {
        let v = |s| Version::parse(s).expect(s);
        assert!(v("4.17.0") > v("4.16.3"));
        assert!(v("4.17.0") > v("4.17.0-rc.1"));
        assert!(v("4.17.0-rc.10") > v("4.17.0-rc.2"));
        assert!(v("4.17.0-rc.1") > v("4.17.0-ec.3"));
        assert_eq!(v("4.17.0+build.5"), v("4.17.0"));
        for bad in ["4.17", "4.17.x", "v4.17.0", "4.017.0", "4.17.0-", ""] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_must_be_strictly_newer() {
        assert!(check_seed_newer("4.17.0", "4.16.3").is_ok());
        assert_eq!(
            check_seed_newer("4.16.3", "4.16.3").unwrap_err().to_string(),
            "failed to validate seed image OCP version: seed OCP version (4.16.3) must be higher than current OCP version (4.16.3)"
        );
        assert!(check_seed_newer("4.16.0", "4.16.3").is_err());
        assert!(
            check_seed_newer("x", "4.16.3")
                .unwrap_err()
                .to_string()
                .contains("invalid version \"x\"")
        );
        assert_eq!(stateroot_name("4.16.0-rc.1"), "rhcos_4.16.0_rc.1");
    }

    #[test]
    fn versions_that_would_not_make_a_safe_stateroot_name_are_refused() {
        for bad in [
            "4.18.0-a/b",
            "4.18.0-..",
            "4.18.0-rc..1",
            "4.18.0+../../etc",
            "4.18.0+a/b",
            "4.18.0+",
            "4.18.0-rc.1+",
            "4.18.0-rc 1",
            "4.18.0-\u{e9}",
        ] {
            let err = check_seed_newer(bad, "4.17.0").expect_err(bad).to_string();
            assert!(err.contains(&format!("invalid version {bad:?}")), "{bad}: {err}");
        }
        for good in ["4.18.0-rc.1", "4.18.0-ec.3+build.7", "4.18.0+x-y", "4.18.0-0a-b"] {
            assert!(Version::parse(good).is_ok(), "{good}");
        }
    }
}

/// The `lca.openshift.io/target-ocp-version-manifest-count` annotation as a count; a value
/// that is not a non-negative integer is a user error with a clear message, never a panic.
pub fn parse_manifest_count(value: &str) -> Result<u32, InvalidCount> {
    value.trim().parse().map_err(|_| InvalidCount {
        value: value.to_string(),
        annotation: lca_api::consts::annotations::TARGET_OCP_VERSION_MANIFEST_COUNT,
    })
}

#[cfg(test)]
mod annotation_tests {
    use super::parse_manifest_count;

    #[test]
    fn manifest_count_must_be_an_integer() {
        assert_eq!(parse_manifest_count("5"), Ok(5));
        assert_eq!(parse_manifest_count(" 0 "), Ok(0));
        for bad in ["five", "-1", "", "1.5", "99999999999"] {
            let err = parse_manifest_count(bad).expect_err(bad).to_string();
            assert_eq!(
                err,
                format!(
                    "invalid value {bad:?} for annotation lca.openshift.io/target-ocp-version-manifest-count: must be a non-negative integer"
                )
            );
        }
    }
}
