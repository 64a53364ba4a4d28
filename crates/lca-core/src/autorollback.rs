//! Automatic rollback (spec §6.7): the configuration frozen into the new stateroot at Prep
//! (which post-reboot failures roll back, the init-monitor timeout), the triggers with their
//! exact messages and gates, and the saved CR a rollback leaves for the original stateroot.
//! Only `…/upgrade-completion` is read live from the CR; the other two annotations and the
//! timeout count as they were at Prep.

use std::collections::BTreeMap;

use lca_api::consts::annotations as a;
use lca_api::files::{AutoRollbackComponents, AutoRollbackConfig, DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS};
use lca_api::{ImageBasedUpgrade, Stage, Time};

use crate::outcome::{StepOutcome, apply_step};

/// What made the upgrade roll back by itself, with what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The init monitor ran out of time (seconds).
    InitMonitorTimeout(i64),
    /// A unit's `ExecStopPost` saw it fail (the component name).
    ServiceUnit(String),
    /// `lca-cli post-pivot` failed.
    PostPivot(String),
    MissingDataProtectionApplication(String),
    PolicyManifests(String),
    ConfigManifests(String),
    Restore(String),
}

impl Trigger {
    /// The message recorded as the Upgrade failure on the original stateroot.
    pub fn message(&self) -> String {
        match self {
            Trigger::InitMonitorTimeout(secs) => {
                format!(
                    "Rollback due to LCA Init Monitor timeout, after {}",
                    go_duration(*secs)
                )
            }
            Trigger::ServiceUnit(c) => format!("Rollback due to service-unit failure: component {c}"),
            Trigger::PostPivot(e) => format!("Rollback due to postpivot failure: {e}"),
            Trigger::MissingDataProtectionApplication(e) => {
                format!("Rollback due to missing DataProtectionApplication: {e}")
            }
            Trigger::PolicyManifests(e) => format!("Rollback due to failure applying policy manifests: {e}"),
            Trigger::ConfigManifests(e) => format!("Rollback due to failure applying config manifests: {e}"),
            Trigger::Restore(e) => format!("Rollback due to restore failure: {e}"),
        }
    }

    /// Whether this trigger rolls back: the host's triggers by the frozen `config`, the
    /// operator's by the CR's live `upgrade-completion` annotation (`annotations`).
    pub fn enabled(
        &self,
        config: &AutoRollbackConfig,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let components = config.enabled_components.clone().unwrap_or_default();
        match self {
            Trigger::InitMonitorTimeout(_) => config.monitor_enabled,
            Trigger::ServiceUnit(c) => match c.as_str() {
                "config" => components.config,
                "postpivot" => components.postpivot,
                _ => false,
            },
            Trigger::PostPivot(_) => components.postpivot,
            _ => annotations
                .and_then(|m| m.get(a::AUTO_ROLLBACK_UPGRADE_COMPLETION))
                .is_none_or(|v| v != a::DISABLED),
        }
    }
}

/// Whole seconds as Go's `time.Duration.String()` prints them: `20s`, `1m30s`, `30m0s`,
/// `1h0m0s`.
pub fn go_duration(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, _) => format!("{sign}{m}m{s}s"),
        _ => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// Read `autorollback_config.json`. A file that cannot be read as one gives the defaults
/// (monitor on, 1800 s, every component) with the reason: a garbled file must never leave the
/// node without its watchdog. Keys left out are off, as upstream writes them (omitempty).
pub fn parse_config(bytes: Option<&[u8]>) -> (AutoRollbackConfig, Option<String>) {
    let defaults = AutoRollbackConfig {
        monitor_enabled: true,
        monitor_timeout: DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS,
        enabled_components: Some(AutoRollbackComponents {
            config: true,
            postpivot: true,
        }),
    };
    let Some(bytes) = bytes else {
        return (
            defaults,
            Some("no auto-rollback configuration; using the defaults".into()),
        );
    };
    // serde also reads a struct from a JSON list; only an object is a configuration.
    let parsed = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v @ serde_json::Value::Object(_)) => {
            serde_json::from_value::<AutoRollbackConfig>(v).map_err(|e| e.to_string())
        }
        Ok(other) => Err(format!("expected an object, found {other}")),
        Err(e) => Err(e.to_string()),
    };
    match parsed {
        Ok(mut c) => {
            if c.monitor_timeout <= 0 {
                c.monitor_timeout = DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS;
            }
            (c, None)
        }
        Err(e) => (
            defaults,
            Some(format!(
                "unreadable auto-rollback configuration ({e}); using the defaults"
            )),
        ),
    }
}

/// `ibu` as the original stateroot should show it after a rollback it did not finish:
/// Upgrade failed with `message`, valid next stages as seen from before the pivot.
pub fn upgrade_failed_copy(ibu: &ImageBasedUpgrade, message: &str, now: &Time) -> ImageBasedUpgrade {
    let mut failed = ibu.clone();
    let status = failed.status.get_or_insert_with(Default::default);
    let generation = ibu.metadata.generation.unwrap_or_default();
    let outcome = StepOutcome::Failed {
        message: message.to_string(),
    };
    apply_step(&mut status.conditions, Stage::Upgrade, &outcome, generation, now);
    status.valid_next_stages = crate::valid_next_stages(&status.conditions, ibu.spec.stage, false);
    failed
}

/// The config for `ibu` (its annotations and `spec.autoRollbackOnFailure`).
pub fn config(ibu: &ImageBasedUpgrade) -> AutoRollbackConfig {
    let empty = BTreeMap::new();
    let ann = ibu.metadata.annotations.as_ref().unwrap_or(&empty);
    let disabled = |key: &str| ann.get(key).is_some_and(|v| v == a::DISABLED);
    let timeout = ibu
        .spec
        .auto_rollback_on_failure
        .as_ref()
        .map_or(0, |x| x.init_monitor_timeout_seconds);
    let post_reboot = !disabled(a::AUTO_ROLLBACK_POST_REBOOT_CONFIG);
    AutoRollbackConfig {
        monitor_enabled: !disabled(a::AUTO_ROLLBACK_INIT_MONITOR),
        monitor_timeout: if timeout > 0 {
            timeout
        } else {
            DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS
        },
        enabled_components: Some(AutoRollbackComponents {
            config: post_reboot,
            postpivot: post_reboot,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lca_api::{AutoRollbackOnFailure, ImageBasedUpgradeSpec};

    #[test]
    fn durations_print_as_go_prints_them() {
        for (secs, want) in [
            (0, "0s"),
            (20, "20s"),
            (59, "59s"),
            (60, "1m0s"),
            (90, "1m30s"),
            (1800, "30m0s"),
            (3600, "1h0m0s"),
            (3661, "1h1m1s"),
            (90061, "25h1m1s"),
            (-90, "-1m30s"),
        ] {
            assert_eq!(go_duration(secs), want);
        }
    }

    #[test]
    fn trigger_messages_are_upstreams() {
        let cases = [
            (
                Trigger::InitMonitorTimeout(1800),
                "Rollback due to LCA Init Monitor timeout, after 30m0s",
            ),
            (
                Trigger::ServiceUnit("config".into()),
                "Rollback due to service-unit failure: component config",
            ),
            (
                Trigger::PostPivot("e".into()),
                "Rollback due to postpivot failure: e",
            ),
            (
                Trigger::MissingDataProtectionApplication("e".into()),
                "Rollback due to missing DataProtectionApplication: e",
            ),
            (
                Trigger::PolicyManifests("e".into()),
                "Rollback due to failure applying policy manifests: e",
            ),
            (
                Trigger::ConfigManifests("e".into()),
                "Rollback due to failure applying config manifests: e",
            ),
            (Trigger::Restore("e".into()), "Rollback due to restore failure: e"),
        ];
        for (t, want) in cases {
            assert_eq!(t.message(), want);
        }
    }

    #[test]
    fn each_gate_is_its_own() {
        let all = parse_config(None).0;
        let none = parse_config(Some(b"{}")).0;
        let disabled = BTreeMap::from([(a::AUTO_ROLLBACK_UPGRADE_COMPLETION.to_string(), "Disabled".into())]);
        let host = [
            Trigger::InitMonitorTimeout(1),
            Trigger::ServiceUnit("config".into()),
            Trigger::ServiceUnit("postpivot".into()),
            Trigger::PostPivot("e".into()),
        ];
        for t in &host {
            assert!(
                t.enabled(&all, Some(&disabled)),
                "{t:?}: the annotation is not the host's gate"
            );
            assert!(!t.enabled(&none, None), "{t:?}");
        }
        assert!(!Trigger::ServiceUnit("other".into()).enabled(&all, None));
        let operator = [
            Trigger::MissingDataProtectionApplication("e".into()),
            Trigger::PolicyManifests("e".into()),
            Trigger::ConfigManifests("e".into()),
            Trigger::Restore("e".into()),
        ];
        for t in &operator {
            assert!(
                t.enabled(&none, None),
                "{t:?}: the file is not the operator's gate"
            );
            assert!(!t.enabled(&all, Some(&disabled)), "{t:?}");
        }
    }

    #[test]
    fn an_unreadable_config_keeps_the_watchdog() {
        for bad in [&b"{"[..], b"[]", b"{\"monitor_timeout\": \"x\"}", b"\xff"] {
            let (c, warning) = parse_config(Some(bad));
            assert!(c.monitor_enabled && c.monitor_timeout == 1800, "{bad:?}");
            assert!(
                warning
                    .unwrap()
                    .starts_with("unreadable auto-rollback configuration")
            );
        }
        let (c, warning) = parse_config(Some(br#"{"monitor_enabled":true,"monitor_timeout":20}"#));
        assert_eq!((c.monitor_enabled, c.monitor_timeout, warning), (true, 20, None));
        assert_eq!(c.enabled_components, None, "left out means off");
        let (c, _) = parse_config(Some(br#"{"monitor_enabled":true}"#));
        assert_eq!(c.monitor_timeout, 1800);
    }

    #[test]
    fn the_failed_copy_offers_only_an_abort() {
        let mut ibu = ImageBasedUpgrade::new(
            "upgrade",
            ImageBasedUpgradeSpec {
                stage: Some(Stage::Upgrade),
                ..Default::default()
            },
        );
        ibu.metadata.generation = Some(4);
        let now = Time(lca_api::jiff::Timestamp::UNIX_EPOCH);
        let copy = upgrade_failed_copy(&ibu, "Rollback due to postpivot failure: x", &now);
        let status = copy.status.unwrap();
        assert_eq!(status.valid_next_stages, vec![Stage::Idle]);
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == "UpgradeInProgress")
            .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("False", "Failed", "Rollback due to postpivot failure: x")
        );
        assert_eq!(c.observed_generation, Some(4));
    }

    #[test]
    fn defaults_and_annotations() {
        let mut ibu = ImageBasedUpgrade::new("upgrade", ImageBasedUpgradeSpec::default());
        let c = config(&ibu);
        assert!(c.monitor_enabled);
        assert_eq!(c.monitor_timeout, 1800);
        assert_eq!(
            serde_json::to_string(&c).expect("json"),
            r#"{"monitor_enabled":true,"monitor_timeout":1800,"enabled_components":{"config":true,"postpivot":true}}"#
        );
        ibu.spec.auto_rollback_on_failure = Some(AutoRollbackOnFailure {
            init_monitor_timeout_seconds: 600,
        });
        ibu.metadata.annotations = Some(BTreeMap::from([
            (a::AUTO_ROLLBACK_INIT_MONITOR.to_string(), "Disabled".to_string()),
            (
                a::AUTO_ROLLBACK_POST_REBOOT_CONFIG.to_string(),
                "Disabled".to_string(),
            ),
        ]));
        let c = config(&ibu);
        assert_eq!(
            serde_json::to_string(&c).expect("json"),
            r#"{"monitor_timeout":600,"enabled_components":{}}"#
        );
    }
}
