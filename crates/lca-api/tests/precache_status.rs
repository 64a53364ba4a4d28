//! `precache_status.json` as the reference writes it (Go's `encoding/json` writes a nil
//! slice as `null`) must read as our `PrecacheStatus`, or the Prep progress would
//! say "could not unmarshal" and the precache metrics would stop (spec §1.7).

use lca_api::files::PrecacheStatus;

#[test]
fn upstream_null_failed_pulls_reads_as_none_failed() {
    let upstream = r#"{"total":12,"pulled":12,"failed":0,"failed_pulls":null}"#;
    let s: PrecacheStatus = serde_json::from_str(upstream).unwrap();
    assert_eq!(
        s,
        PrecacheStatus {
            total: 12,
            pulled: 12,
            failed: 0,
            failed_pulls: vec![],
        }
    );
}

#[test]
fn upstream_list_of_failed_pulls_is_kept() {
    let upstream =
        r#"{"total":3,"pulled":1,"failed":2,"failed_pulls":["quay.io/a/b@sha256:1","quay.io/c/d:v1"]}"#;
    let s: PrecacheStatus = serde_json::from_str(upstream).unwrap();
    assert_eq!(s.failed, 2);
    assert_eq!(s.failed_pulls, ["quay.io/a/b@sha256:1", "quay.io/c/d:v1"]);
}

#[test]
fn a_missing_failed_pulls_reads_as_empty() {
    let s: PrecacheStatus = serde_json::from_str(r#"{"total":1,"pulled":0,"failed":0}"#).unwrap();
    assert!(s.failed_pulls.is_empty());
}

#[test]
fn a_wrong_type_is_still_an_error() {
    for bad in [
        r#"{"total":1,"pulled":0,"failed":1,"failed_pulls":"quay.io/a/b"}"#,
        r#"{"total":1,"pulled":0,"failed":1,"failed_pulls":[null]}"#,
    ] {
        assert!(serde_json::from_str::<PrecacheStatus>(bad).is_err(), "{bad}");
    }
}

#[test]
fn what_we_write_is_the_reference_shape() {
    let s = PrecacheStatus {
        total: 2,
        pulled: 1,
        failed: 1,
        failed_pulls: vec!["quay.io/x/y:z".into()],
    };
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"total":2,"pulled":1,"failed":1,"failed_pulls":["quay.io/x/y:z"]}"#
    );
}
