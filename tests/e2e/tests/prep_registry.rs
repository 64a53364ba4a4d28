//! A registry that accepts connections and never answers (SIGSTOPped), end to end (issue:
//! Prep hardening): the accepted Prep shows at once, an abort is served while the registry
//! is silent, and a Prep against it fails with a message after a bounded number of bounded
//! attempts instead of hanging.

use std::time::{Duration, Instant};

use lca_api::Stage;
use lca_e2e::prep::{SEED_VERSION, abort, env_with, prep_failure, start_prep};
use lca_e2e::{condition, has};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(180);

#[tokio::test]
async fn a_silent_registry_never_blocks_the_stage_machine() {
    let e = env_with(SEED_VERSION, false, &["--registry-timeout=2s"]).await;
    let registry = Pid::from_raw(e.registry.pid());
    kill(registry, Signal::SIGSTOP).expect("freeze the registry");

    let start = Instant::now();
    start_prep(&e, SEED_VERSION, "");
    let ibu =
        e.c.wait_ibu("Prep accepted", Duration::from_secs(10), |i| {
            has(i, "PrepInProgress", "True")
        })
        .await;
    let accepted = start.elapsed();
    assert_eq!(
        ibu.status.as_ref().expect("status").valid_next_stages,
        vec![Stage::Idle]
    );
    let start = Instant::now();
    abort(&e).await;
    let aborted = start.elapsed();

    let start = Instant::now();
    let (ok, err) = e.c.patch_stage("Prep");
    assert!(ok, "{err}");
    let retrying =
        e.c.wait_ibu("a retry message", T, |i| {
            condition(i, "PrepInProgress")
                .is_some_and(|c| c.2.starts_with("Retrying the seed image inspection"))
        })
        .await;
    let first_message = start.elapsed();
    let msg = condition(&retrying, "PrepInProgress").expect("condition").2;
    assert!(
        msg.starts_with(&format!(
            "Retrying the seed image inspection (attempt 1 of 5 failed): registry {} is unreachable while",
            e.registry.addr()
        )),
        "{msg}"
    );
    let ibu =
        e.c.wait_ibu("Prep failed", T, |i| prep_failure(i).is_some())
            .await;
    let failed = start.elapsed();
    let msg = prep_failure(&ibu).expect("failure");
    assert!(
        msg.starts_with(&format!(
            "failed to validate seed image info: registry {} is unreachable while",
            e.registry.addr()
        )),
        "{msg}"
    );
    assert!(msg.ends_with("(after 5 attempts)"), "{msg}");
    println!(
        "silent registry: Prep accepted in {accepted:?}, abort done in {aborted:?}, first message after {first_message:?}, Prep failed after {failed:?}"
    );
    kill(registry, Signal::SIGCONT).expect("thaw the registry");
    abort(&e).await;
    assert!(
        !e.c.node_root()
            .join("sysroot/ostree/deploy/rhcos_4.18.0")
            .exists()
    );
}
