//! The order of the Upgrade and Rollback steps, and the property that guards the node: the
//! new stateroot becomes the default only after its setup and every export.

use proptest::prelude::*;

use super::*;

fn facts<S>(done: Vec<S>) -> StageFacts<S> {
    StageFacts {
        unhealthy: None,
        stateroot_ready: true,
        done,
        failed: None,
        rolling_back: None,
    }
}

#[test]
fn pre_pivot_runs_its_steps_in_the_spec_order_with_their_messages() {
    let mut done: Vec<PrePivot> = Vec::new();
    let mut seen = Vec::new();
    while let StageAction::Run { step, message } = next(&facts(done.clone()), PRE_PIVOT_WAITING) {
        seen.push(message);
        done.push(step);
    }
    assert_eq!(
        seen,
        [
            "Backing up Application Data",
            "Exporting Application Configuration",
            "Exporting Policy and Config Manifests",
            "Exporting Cluster, LVM, and cert-manager configuration",
            "In progress",
            "In progress",
            "In progress",
        ]
    );
    assert_eq!(done, PrePivot::ORDER);
}

#[test]
fn health_and_failures_come_before_any_step() {
    let mut f = facts::<PostPivot>(vec![]);
    f.unhealthy = Some("node not ready".into());
    let StageAction::Report(r) = next(&f, POST_PIVOT_WAITING) else {
        panic!()
    };
    assert_eq!(
        r.outcome,
        StepOutcome::InProgress {
            message: Some("Waiting for system to stabilize: node not ready".into()),
            requeue: HEALTH_RETRY
        }
    );
    f.failed = Some((
        PostPivot::ApplyPolicyManifests,
        "failed to apply manifest: x".into(),
    ));
    let StageAction::Report(r) = next(&f, POST_PIVOT_WAITING) else {
        panic!()
    };
    assert_eq!(
        r.outcome,
        StepOutcome::Failed {
            message: "failed to apply manifest: x".into()
        }
    );
}

#[test]
fn rollback_starts_by_initiating_and_completes_after_the_reboot_step() {
    assert_eq!(
        next(&facts::<Rollback>(vec![]), ""),
        StageAction::Run {
            step: Rollback::SetDefault,
            message: "Initiating rollback"
        }
    );
    let all = Rollback::ORDER.to_vec();
    assert!(matches!(
        next(&facts(all), ""),
        StageAction::Report(StepReport {
            outcome: StepOutcome::Completed { .. },
            ..
        })
    ));
}

fn pre_pivot_facts() -> impl Strategy<Value = StageFacts<PrePivot>> {
    (
        proptest::sample::subsequence(PrePivot::ORDER.to_vec(), 0..=PrePivot::ORDER.len()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(done, ready, healthy)| StageFacts {
            unhealthy: (!healthy).then(|| "x".into()),
            stateroot_ready: ready,
            done,
            failed: None,
            rolling_back: None,
        })
}

fn post_pivot_facts() -> impl Strategy<Value = StageFacts<PostPivot>> {
    (
        proptest::sample::subsequence(PostPivot::ORDER.to_vec(), 0..=PostPivot::ORDER.len()),
        any::<bool>(),
        proptest::option::of("[a-z ]{0,12}"),
        proptest::option::of("[a-z ]{1,12}"),
    )
        .prop_map(|(done, healthy, failed, rolling_back)| StageFacts {
            unhealthy: (!healthy).then(|| "x".into()),
            stateroot_ready: true,
            done,
            failed: failed.map(|m| (PostPivot::ApplyConfigManifests, m)),
            rolling_back,
        })
}

proptest! {
    /// No set of facts makes the new stateroot the default (or reboots into it) before its
    /// setup completed, the cluster is healthy, and every earlier step is done.
    #[test]
    fn set_default_only_after_setup_and_every_export(f in pre_pivot_facts()) {
        if let StageAction::Run { step, .. } = next(&f, PRE_PIVOT_WAITING)
            && matches!(step, PrePivot::SetDefault | PrePivot::Reboot)
        {
            prop_assert!(f.stateroot_ready && f.unhealthy.is_none());
            let earlier = PrePivot::ORDER.iter().take_while(|s| **s != step);
            for s in earlier {
                prop_assert!(f.done.contains(s), "{:?} before {:?}", step, s);
            }
        }
    }

    /// Once a rollback is decided, no step of the upgrade runs again and nothing completes
    /// or fails it: whatever else is observed, the rollback goes on with its first message.
    #[test]
    fn a_decided_rollback_is_all_that_happens(f in post_pivot_facts()) {
        let action = next(&f, POST_PIVOT_WAITING);
        match &f.rolling_back {
            Some(m) => prop_assert_eq!(action, StageAction::RollBack { message: m.clone() }),
            None => {
                let rolls_back = matches!(action, StageAction::RollBack { .. });
                prop_assert!(!rolls_back);
            }
        }
    }
}
