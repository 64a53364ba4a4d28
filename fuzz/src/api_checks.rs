//! The invariants of the fuzz targets on the JSON files a node keeps between stages:
//! `seed_reconfiguration` (`SeedReconfiguration::parse`, post-pivot's input),
//! `autorollback_config` (`autorollback::parse_config`, the init monitor's input) and
//! `ibu_json` (the saved `ImageBasedUpgrade`, `var/lib/lca/ibu.json`, that the operator
//! restores and a rollback marks failed).
//!
//! Shared by the fuzz targets (`lca_fuzz::api_checks`) and the stable replay test
//! `crates/lca-cli/tests/fuzz_corpus.rs`, which includes this file with `#[path]`: only `std`,
//! `serde_json`, `lca_api` and `lca_core`. Every check panics with a message naming the
//! input, which is what libFuzzer records as a crash.

use lca_api::consts::{annotations, condition_types, messages};
use lca_api::files::AutoRollbackConfig;
use lca_api::jiff::Timestamp;
use lca_api::seedreconfig::{ReadError, SEED_RECONFIGURATION_VERSION, SeedReconfiguration};
use lca_api::{ImageBasedUpgrade, Time};
use lca_core::autorollback;
use serde_json::Value;

/// `seed_reconfiguration`: never panics; `Ok` has the one known version and survives being
/// written and read back unchanged, with the keys upstream always writes; `Version` is a
/// well-formed file of another version; `Garbled` is bytes serde refuses.
pub fn seed_reconfiguration(data: &[u8]) {
    let shape = serde_json::from_slice::<SeedReconfiguration>(data);
    match SeedReconfiguration::parse(data) {
        Ok(sr) => {
            assert_eq!(sr.api_version, SEED_RECONFIGURATION_VERSION, "version of {sr:?}");
            let json = serde_json::to_vec(&sr).expect("serialize a parsed SeedReconfiguration");
            let back = SeedReconfiguration::parse(&json).expect("re-read a written SeedReconfiguration");
            assert_eq!(back, sr, "written and read back");
            let written: Value = serde_json::from_slice(&json).expect("written JSON");
            for key in [
                "api_version",
                "KubeconfigCryptoRetention",
                "additionalTrustBundle",
            ] {
                assert!(written.get(key).is_some(), "{key} missing from {written}");
            }
        }
        Err(ReadError::Version(v)) => {
            assert_ne!(v, SEED_RECONFIGURATION_VERSION, "refused its own version");
            let parsed = shape.expect("a version error for bytes that do not parse");
            assert_eq!(
                parsed.api_version, v,
                "the version error names the file's version"
            );
        }
        Err(e @ ReadError::Garbled(_)) => {
            assert!(shape.is_err(), "garbled ({e}) but serde reads it");
            assert!(
                e.to_string()
                    .starts_with("failed to decode the seed reconfiguration: "),
                "{e}"
            );
        }
    }
}

/// The configuration `parse_config` falls back to (it says so with a reason).
fn defaults() -> AutoRollbackConfig {
    autorollback::parse_config(None).0
}

/// `autorollback_config`: never panics; the timeout is always positive; a reason means the
/// defaults (a garbled file never leaves the node without its watchdog), no reason means
/// the bytes were a JSON object and the configuration survives being written and read back.
pub fn autorollback_config(data: &[u8]) {
    let (config, reason) = autorollback::parse_config(Some(data));
    check_parsed_config(&config, reason.as_deref());
    if reason.is_none() {
        assert!(
            matches!(serde_json::from_slice::<Value>(data), Ok(Value::Object(_))),
            "read a configuration from bytes that are not a JSON object"
        );
    }
}

fn check_parsed_config(config: &AutoRollbackConfig, reason: Option<&str>) {
    assert!(config.monitor_timeout > 0, "timeout {}", config.monitor_timeout);
    match reason {
        Some(r) => {
            assert_eq!(*config, defaults(), "not the defaults with the reason {r:?}");
            assert!(
                r.starts_with("unreadable auto-rollback configuration (")
                    && r.ends_with("); using the defaults"),
                "reason {r:?}"
            );
        }
        None => {
            let json = serde_json::to_vec(config).expect("serialize an AutoRollbackConfig");
            let (again, reason) = autorollback::parse_config(Some(&json));
            assert_eq!(reason, None, "a written configuration is unreadable");
            assert_eq!(again, *config, "written and read back");
        }
    }
}

/// The failure message `ibu_json` marks the saved CR with.
pub const ROLLBACK_MESSAGE: &str = "Rollback due to LCA Init Monitor timeout, after 30m0s";

/// `ibu_json`: the bytes as `var/lib/lca/ibu.json`. Never panics. A CR that parses:
/// - survives being written and read back (timestamps cut to whole seconds, which is all
///   Kubernetes' `Time` keeps), and writing is a fixed point; for timestamps in RFC 3339's
///   years (see [`YEAR_ZERO`]);
/// - `autorollback::config` has a positive timeout, follows the annotations, and is read
///   back by `parse_config` as it was (Prep writes it, the init monitor reads it);
/// - `upgrade_failed_copy` keeps metadata and spec, marks Upgrade failed with the message,
///   is idempotent (a rollback retried after a crash), and can be saved and restored.
pub fn ibu_json(data: &[u8]) {
    let Ok(ibu) = serde_json::from_slice::<ImageBasedUpgrade>(data) else {
        return;
    };
    check_round_trip(&ibu);

    let config = autorollback::config(&ibu);
    let disabled = |key: &str| {
        ibu.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .is_some_and(|v| v == annotations::DISABLED)
    };
    assert_eq!(
        config.monitor_enabled,
        !disabled(annotations::AUTO_ROLLBACK_INIT_MONITOR)
    );
    let components = config.enabled_components.clone().expect("components always set");
    let post_reboot = !disabled(annotations::AUTO_ROLLBACK_POST_REBOOT_CONFIG);
    assert_eq!(
        (components.config, components.postpivot),
        (post_reboot, post_reboot)
    );
    check_parsed_config(&config, None);

    let now = Time(Timestamp::from_second(1_700_000_000).expect("a valid timestamp"));
    let failed = autorollback::upgrade_failed_copy(&ibu, ROLLBACK_MESSAGE, &now);
    assert_eq!(
        failed.metadata, ibu.metadata,
        "the failed copy changed the metadata"
    );
    assert_eq!(failed.spec, ibu.spec, "the failed copy changed the spec");
    let conditions = &failed.status.as_ref().expect("a status").conditions;
    let find = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t} condition in {conditions:?}"))
    };
    let done = find(condition_types::UPGRADE_COMPLETED);
    assert_eq!((done.status.as_str(), done.reason.as_str()), ("False", "Failed"));
    assert!(
        done.message
            .starts_with(&format!("{}: ", messages::UPGRADE_FAILED)),
        "{done:?}"
    );
    let in_progress = find(condition_types::UPGRADE_IN_PROGRESS);
    assert_eq!(in_progress.status, "False", "{in_progress:?}");
    let again = autorollback::upgrade_failed_copy(&failed, ROLLBACK_MESSAGE, &now);
    assert_eq!(
        again.status, failed.status,
        "marking the failed copy again changed it"
    );
    check_round_trip(&failed);
}

/// `ibu` written as the operator and the rollback write it, and read back.
fn check_round_trip(ibu: &ImageBasedUpgrade) {
    let json = serde_json::to_vec(ibu).expect("serialize an ImageBasedUpgrade");
    let Some(expected) = whole_seconds(ibu) else {
        return;
    };
    let back: ImageBasedUpgrade = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a written ImageBasedUpgrade does not read back ({e}): {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(back.metadata, expected.metadata, "metadata written and read back");
    assert_eq!(back.spec, expected.spec, "spec written and read back");
    assert_eq!(back.status, expected.status, "status written and read back");
    let again = serde_json::to_vec(&back).expect("serialize again");
    assert!(again == json, "writing a read-back CR is not a fixed point");
}

/// `0000-01-01T00:00:00Z`: Kubernetes' `Time` is RFC 3339, years 0000 to 9999. jiff reads
/// earlier ones (`-000001-...`), but `Time` writes them as `-001-...`, which nothing reads;
/// the API server never holds one, so only a hand-edited file could.
const YEAR_ZERO: i64 = -62_167_219_200;

/// `ibu` with every timestamp floored to the second, as `Time` serializes them; `None` when
/// one is before [`YEAR_ZERO`].
fn whole_seconds(ibu: &ImageBasedUpgrade) -> Option<ImageBasedUpgrade> {
    let mut in_range = true;
    let mut floor = |t: &mut Time| {
        let s = t.0.as_second() - i64::from(t.0.subsec_nanosecond() < 0);
        in_range &= s >= YEAR_ZERO;
        t.0 = Timestamp::from_second(s).expect("a floored timestamp is in range");
    };
    let mut out = ibu.clone();
    let meta = &mut out.metadata;
    meta.creation_timestamp.iter_mut().for_each(&mut floor);
    meta.deletion_timestamp.iter_mut().for_each(&mut floor);
    for entry in meta.managed_fields.iter_mut().flatten() {
        entry.time.iter_mut().for_each(&mut floor);
    }
    if let Some(status) = &mut out.status {
        status.started_at.iter_mut().for_each(&mut floor);
        status.completed_at.iter_mut().for_each(&mut floor);
        status
            .rollback_availability_expiration
            .iter_mut()
            .for_each(&mut floor);
        for c in &mut status.conditions {
            floor(&mut c.last_transition_time);
        }
        for h in &mut status.history {
            h.start_time.iter_mut().for_each(&mut floor);
            h.completion_time.iter_mut().for_each(&mut floor);
            for p in &mut h.phases {
                p.start_time.iter_mut().for_each(&mut floor);
                p.completion_time.iter_mut().for_each(&mut floor);
            }
        }
    }
    in_range.then_some(out)
}

/// A check by the name of its target (`seed_reconfiguration`, `autorollback_config`,
/// `ibu_json`).
pub fn by_target(target: &str) -> Option<fn(&[u8])> {
    match target {
        "seed_reconfiguration" => Some(seed_reconfiguration),
        "autorollback_config" => Some(autorollback_config),
        "ibu_json" => Some(ibu_json),
        _ => None,
    }
}
