//! The auto-rollback configuration frozen into the new stateroot at Prep (spec §6.7): which
//! post-reboot failures roll back automatically, and the init-monitor timeout.

use std::collections::BTreeMap;

use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations as a;
use lca_api::files::{AutoRollbackComponents, AutoRollbackConfig, DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS};

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
