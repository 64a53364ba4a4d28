//! The arguments of the `lca-cli` subcommands the operator launches (`stateroot-setup`,
//! `precache`). One struct per subcommand serves both sides: `lca-cli` parses it (with the
//! `clap` feature), the operator fills it in and calls `to_argv`, so the two can never
//! disagree on a flag's name or format. Pure data; no I/O.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `lca-cli stateroot-setup`: install a seed as the new stateroot (spec §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct StaterootSetupArgs {
    /// Seed image reference.
    #[cfg_attr(feature = "clap", arg(long))]
    pub image: String,
    /// Target OCP version (the CR's `seedImageRef.version`); names the stateroot.
    #[cfg_attr(feature = "clap", arg(long))]
    pub version: String,
    /// Docker auth JSON for the seed's registry (a path this process sees; on a real node it
    /// must be under `--host-root`, because podman reads it inside the node's root).
    #[cfg_attr(feature = "clap", arg(long))]
    pub authfile: Option<PathBuf>,
    /// Progress and outcome, JSON, rewritten atomically.
    #[cfg_attr(feature = "clap", arg(long))]
    pub status_file: PathBuf,
    /// `AutoRollbackConfig` JSON computed by the operator (§6.7); spec defaults if absent.
    #[cfg_attr(feature = "clap", arg(long))]
    pub autorollback_config_json: Option<String>,
    /// The node under `--host-root` is simulated (ostree runs for real; no podman mount).
    #[cfg_attr(feature = "clap", arg(long))]
    pub simulated: bool,
    /// Real node: limit of one `podman pull` attempt of the seed (3 attempts).
    #[cfg_attr(feature = "clap", arg(long, default_value = "30m", value_parser = parse_duration))]
    pub pull_timeout: Duration,
    /// Simulated node: longest silence of the registry during the seed pull (lca-seed's
    /// read timeout; a slow but flowing download is never cut).
    #[cfg_attr(feature = "clap", arg(long, default_value = "30s", value_parser = parse_duration))]
    pub registry_read_timeout: Duration,
}

impl StaterootSetupArgs {
    /// The defaults `lca-cli` applies to the flags with one.
    pub fn new(image: String, version: String, status_file: PathBuf) -> Self {
        Self {
            image,
            version,
            authfile: None,
            status_file,
            autorollback_config_json: None,
            simulated: false,
            pull_timeout: Duration::from_secs(30 * 60),
            registry_read_timeout: Duration::from_secs(30),
        }
    }

    /// The subcommand and its flags (after `lca-cli --host-root=…`).
    pub fn to_argv(&self) -> Vec<String> {
        let mut a = vec!["stateroot-setup".to_string()];
        a.push(format!("--image={}", self.image));
        a.push(format!("--version={}", self.version));
        if let Some(f) = &self.authfile {
            a.push(format!("--authfile={}", f.display()));
        }
        a.push(format!("--status-file={}", self.status_file.display()));
        if let Some(cfg) = &self.autorollback_config_json {
            a.push(format!("--autorollback-config-json={cfg}"));
        }
        if self.simulated {
            a.push("--simulated".into());
        }
        a.push(format!("--pull-timeout={}", duration_arg(self.pull_timeout)));
        a.push(format!(
            "--registry-read-timeout={}",
            duration_arg(self.registry_read_timeout)
        ));
        a
    }
}

/// `lca-cli precache`: pull the new release's images into the node's storage (spec §5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct PrecacheArgs {
    /// Images to pull, one a line (upstream: the ConfigMap's `images.txt`).
    #[cfg_attr(feature = "clap", arg(long, env = "PRECACHE_SPEC_FILE"))]
    pub images_file: PathBuf,
    /// Progress (`PrecacheStatus` JSON), rewritten atomically after each image.
    #[cfg_attr(feature = "clap", arg(long))]
    pub status_file: PathBuf,
    /// Docker auth JSON (a path this process sees; on a real node under `--host-root`).
    /// Default: the node's `/var/lib/kubelet/config.json` when it exists.
    #[cfg_attr(feature = "clap", arg(long))]
    pub authfile: Option<PathBuf>,
    /// Pulls in flight at once.
    #[cfg_attr(feature = "clap", arg(long, env = "MAX_PULL_THREADS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..)))]
    pub parallel: u32,
    /// Limit of one `podman pull` attempt (`600`, `600s`, `10m`, `500ms`); the attempt is
    /// killed when it elapses and counts as failed.
    #[cfg_attr(feature = "clap", arg(long, env = "PRECACHE_PULL_TIMEOUT", default_value = "600s",
          value_parser = parse_duration))]
    pub pull_timeout: Duration,
    /// Attempts per image (upstream: 5); `manifest unknown` is never retried.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..)))]
    pub pull_attempts: u32,
    /// Succeed even if some images could not be pulled.
    #[cfg_attr(feature = "clap", arg(long))]
    pub best_effort: bool,
    /// Verify registry TLS (`--tls-verify false` for plain-HTTP test registries).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = true, action = clap::ArgAction::Set))]
    pub tls_verify: bool,
    /// The node under `--host-root` is simulated: private vfs storage.
    #[cfg_attr(feature = "clap", arg(long))]
    pub simulated: bool,
}

impl PrecacheArgs {
    /// The defaults `lca-cli` applies to the flags with one.
    pub fn new(images_file: PathBuf, status_file: PathBuf) -> Self {
        Self {
            images_file,
            status_file,
            authfile: None,
            parallel: 10,
            pull_timeout: Duration::from_secs(600),
            pull_attempts: 5,
            best_effort: false,
            tls_verify: true,
            simulated: false,
        }
    }

    /// The subcommand and its flags (after `lca-cli --host-root=…`).
    pub fn to_argv(&self) -> Vec<String> {
        let mut a = vec!["precache".to_string()];
        a.push(format!("--images-file={}", self.images_file.display()));
        a.push(format!("--status-file={}", self.status_file.display()));
        if let Some(f) = &self.authfile {
            a.push(format!("--authfile={}", f.display()));
        }
        a.push(format!("--parallel={}", self.parallel));
        // Left to `PRECACHE_PULL_TIMEOUT` in the task's environment unless set otherwise.
        if self.pull_timeout != Self::new(PathBuf::new(), PathBuf::new()).pull_timeout {
            a.push(format!("--pull-timeout={}", duration_arg(self.pull_timeout)));
        }
        a.push(format!("--pull-attempts={}", self.pull_attempts));
        if self.best_effort {
            a.push("--best-effort".into());
        }
        a.push(format!("--tls-verify={}", self.tls_verify));
        if self.simulated {
            a.push("--simulated".into());
        }
        a
    }
}

/// A duration as `parse_duration` reads it back exactly.
fn duration_arg(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A duration flag that did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// `600`, `600s`, `10m`, `1h`, `500ms`; zero is refused (a timeout must be able to pass).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError(format!("{s:?} is not a duration (e.g. 600s, 10m, 500ms)")))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(DurationError(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            )));
        }
    };
    if d.is_zero() {
        return Err(DurationError("a timeout must be longer than zero".into()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_through_the_argv_form() {
        for d in [
            Duration::from_secs(1800),
            Duration::from_millis(1500),
            Duration::from_millis(7),
        ] {
            assert_eq!(parse_duration(&duration_arg(d)), Ok(d));
        }
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn only_set_options_and_true_flags_are_written() {
        let a = StaterootSetupArgs::new("q/s:1".into(), "4.18.0".into(), "/w/s.json".into());
        assert_eq!(
            a.to_argv(),
            [
                "stateroot-setup",
                "--image=q/s:1",
                "--version=4.18.0",
                "--status-file=/w/s.json",
                "--pull-timeout=1800s",
                "--registry-read-timeout=30s"
            ]
        );
    }
}
