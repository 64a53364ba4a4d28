//! Table tests: one case per row of spec §2.3 (validNextStages), §2.4 (accepted transitions),
//! §2.5 (rejections) and the step/idle rows of §3.1, with the exact strings.

use lca_api::consts::{condition_types as ct, messages as m, reasons as r};
use lca_api::{Condition, Stage, Time};
use lca_core::conditions::{self, FALSE, TRUE, Write, set};
use lca_core::outcome::{apply_idle, apply_step};
use lca_core::{IdleKind, IdleOutcome, Outcome, StepOutcome, apply_transition, valid_next_stages};

use Stage::*;

fn now() -> Time {
    Time(lca_api::jiff::Timestamp::from_second(1_700_000_000).expect("valid"))
}

fn conds(list: &[(&str, &str, &str)]) -> Vec<Condition> {
    let mut c = Vec::new();
    for (t, s, reason) in list {
        set(&mut c, Write::new(t, s, reason, "x"), 1, &now());
    }
    c
}

fn get<'a>(c: &'a [Condition], t: &str) -> Option<(&'a str, &'a str, &'a str)> {
    c.iter()
        .find(|x| x.type_ == t)
        .map(|x| (x.status.as_str(), x.reason.as_str(), x.message.as_str()))
}

/// (name, conditions, spec.stage, after pivot, expected validNextStages)
type Row = (
    &'static str,
    Vec<(&'static str, &'static str, &'static str)>,
    Option<Stage>,
    bool,
    Vec<Stage>,
);

#[test]
fn valid_next_stages_rows() {
    let idle_false = (ct::IDLE, FALSE, r::IN_PROGRESS);
    let rows: Vec<Row> = vec![
        (
            "1 aborting",
            vec![(ct::IDLE, FALSE, r::ABORTING)],
            Some(Idle),
            false,
            vec![],
        ),
        (
            "1 abort failed",
            vec![(ct::IDLE, FALSE, r::ABORT_FAILED)],
            Some(Idle),
            false,
            vec![],
        ),
        (
            "1 finalizing",
            vec![(ct::IDLE, FALSE, r::FINALIZING)],
            Some(Idle),
            true,
            vec![],
        ),
        (
            "1 finalize failed",
            vec![(ct::IDLE, FALSE, r::FINALIZE_FAILED)],
            Some(Idle),
            true,
            vec![],
        ),
        (
            "1 rollback in progress",
            vec![idle_false, (ct::ROLLBACK_IN_PROGRESS, TRUE, r::IN_PROGRESS)],
            Some(Rollback),
            true,
            vec![],
        ),
        (
            "1 rollback failed",
            vec![idle_false, (ct::ROLLBACK_COMPLETED, FALSE, r::FAILED)],
            Some(Rollback),
            false,
            vec![],
        ),
        (
            "2 prep in progress",
            vec![idle_false, (ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS)],
            Some(Prep),
            false,
            vec![Idle],
        ),
        (
            "2 prep failed",
            vec![idle_false, (ct::PREP_COMPLETED, FALSE, r::FAILED)],
            Some(Prep),
            false,
            vec![Idle],
        ),
        (
            "3 upgrade before pivot",
            vec![idle_false, (ct::UPGRADE_IN_PROGRESS, TRUE, r::IN_PROGRESS)],
            Some(Upgrade),
            false,
            vec![Idle],
        ),
        (
            "3 upgrade after pivot",
            vec![idle_false, (ct::UPGRADE_IN_PROGRESS, TRUE, r::IN_PROGRESS)],
            Some(Upgrade),
            true,
            vec![Rollback],
        ),
        (
            "3 upgrade failed after pivot",
            vec![idle_false, (ct::UPGRADE_COMPLETED, FALSE, r::FAILED)],
            Some(Upgrade),
            true,
            vec![Rollback],
        ),
        (
            "3 upgrade failed before pivot",
            vec![idle_false, (ct::UPGRADE_COMPLETED, FALSE, r::FAILED)],
            Some(Upgrade),
            false,
            vec![Idle],
        ),
        (
            "4 rollback completed",
            vec![idle_false, (ct::ROLLBACK_COMPLETED, TRUE, r::COMPLETED)],
            Some(Rollback),
            false,
            vec![Idle],
        ),
        (
            "5 upgrade completed",
            vec![idle_false, (ct::UPGRADE_COMPLETED, TRUE, r::COMPLETED)],
            Some(Upgrade),
            true,
            vec![Idle, Rollback],
        ),
        (
            "6 prep completed",
            vec![idle_false, (ct::PREP_COMPLETED, TRUE, r::COMPLETED)],
            Some(Prep),
            false,
            vec![Idle, Upgrade],
        ),
        (
            "7 idle",
            vec![(ct::IDLE, TRUE, r::IDLE)],
            Some(Idle),
            false,
            vec![Prep],
        ),
        ("8 fresh", vec![], Some(Idle), false, vec![Idle]),
        (
            "9 blocked",
            vec![(ct::IDLE, FALSE, r::BLOCKED)],
            Some(Prep),
            false,
            vec![Prep],
        ),
        (
            "10 other",
            vec![(ct::IDLE, FALSE, r::INVALID_TRANSITION)],
            Some(Prep),
            false,
            vec![],
        ),
        (
            "2 before 6: a failed prep dominates an older completion",
            vec![
                idle_false,
                (ct::PREP_COMPLETED, TRUE, r::COMPLETED),
                (ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS),
            ],
            Some(Prep),
            false,
            vec![Idle],
        ),
    ];
    for (name, c, spec, pivot, want) in rows {
        assert_eq!(valid_next_stages(&conds(&c), spec, pivot), want, "row {name}");
    }
}

#[test]
fn accepted_transitions_write_the_documented_conditions() {
    let mut c = conds(&[(ct::IDLE, TRUE, r::IDLE)]);
    assert_eq!(
        apply_transition(&mut c, Prep, false, 2, &now()),
        Outcome::Accepted {
            stage: Prep,
            idle: None
        }
    );
    assert_eq!(get(&c, ct::IDLE), Some((FALSE, r::IN_PROGRESS, m::IN_PROGRESS)));
    assert_eq!(
        get(&c, ct::PREP_IN_PROGRESS),
        Some((TRUE, r::IN_PROGRESS, m::IN_PROGRESS))
    );
    assert_eq!(c.last().map(|x| x.type_.as_str()), Some(ct::PREP_IN_PROGRESS));

    let mut c = conds(&[
        (ct::IDLE, FALSE, r::IN_PROGRESS),
        (ct::PREP_COMPLETED, TRUE, r::COMPLETED),
    ]);
    assert!(matches!(
        apply_transition(&mut c, Upgrade, false, 2, &now()),
        Outcome::Accepted { .. }
    ));
    assert_eq!(
        get(&c, ct::UPGRADE_IN_PROGRESS),
        Some((TRUE, r::IN_PROGRESS, m::IN_PROGRESS))
    );

    let mut c = conds(&[
        (ct::IDLE, FALSE, r::IN_PROGRESS),
        (ct::UPGRADE_COMPLETED, TRUE, r::COMPLETED),
    ]);
    assert!(matches!(
        apply_transition(&mut c, Rollback, true, 2, &now()),
        Outcome::Accepted { .. }
    ));
    assert_eq!(
        get(&c, ct::UPGRADE_COMPLETED),
        Some((FALSE, r::FAILED, m::ROLLBACK_REQUESTED))
    );
    assert_eq!(
        get(&c, ct::UPGRADE_IN_PROGRESS),
        Some((FALSE, r::FAILED, m::ROLLBACK_REQUESTED))
    );
    assert_eq!(
        get(&c, ct::ROLLBACK_IN_PROGRESS),
        Some((TRUE, r::IN_PROGRESS, m::IN_PROGRESS))
    );

    let mut c = conds(&[
        (ct::IDLE, FALSE, r::IN_PROGRESS),
        (ct::UPGRADE_COMPLETED, TRUE, r::COMPLETED),
    ]);
    assert_eq!(
        apply_transition(&mut c, Idle, true, 2, &now()),
        Outcome::Accepted {
            stage: Idle,
            idle: Some(IdleKind::Finalize)
        }
    );
    assert_eq!(get(&c, ct::IDLE), Some((FALSE, r::FINALIZING, m::FINALIZING)));

    let mut c = conds(&[
        (ct::IDLE, FALSE, r::IN_PROGRESS),
        (ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS),
    ]);
    assert_eq!(
        apply_transition(&mut c, Idle, false, 2, &now()),
        Outcome::Accepted {
            stage: Idle,
            idle: Some(IdleKind::Abort)
        }
    );
    assert_eq!(get(&c, ct::IDLE), Some((FALSE, r::ABORTING, m::ABORTING)));
    assert_eq!(
        c.last().map(|x| x.type_.as_str()),
        Some(ct::IDLE),
        "State/Details show Aborting"
    );

    let mut c = Vec::new();
    assert_eq!(
        apply_transition(&mut c, Idle, false, 1, &now()),
        Outcome::Accepted {
            stage: Idle,
            idle: Some(IdleKind::Initial)
        }
    );
    assert_eq!(c.len(), 1);
    assert_eq!(get(&c, ct::IDLE), Some((TRUE, r::IDLE, m::IDLE)));
}

#[test]
fn rejected_transitions_use_the_exact_messages() {
    let idle = conds(&[(ct::IDLE, TRUE, r::IDLE)]);
    for (stage, t, msg) in [
        (Upgrade, ct::UPGRADE_IN_PROGRESS, m::PREVIOUS_STAGE_NOT_SUCCEEDED),
        (
            Rollback,
            ct::ROLLBACK_IN_PROGRESS,
            m::UPGRADE_NOT_STARTED_OR_FINALIZED,
        ),
    ] {
        let mut c = idle.clone();
        assert_eq!(
            apply_transition(&mut c, stage, false, 2, &now()),
            Outcome::Rejected { stage, message: msg }
        );
        assert_eq!(get(&c, t), Some((FALSE, r::INVALID_TRANSITION, msg)));
    }
    let mut c = conds(&[
        (ct::IDLE, FALSE, r::IN_PROGRESS),
        (ct::PREP_COMPLETED, FALSE, r::FAILED),
    ]);
    assert!(matches!(
        apply_transition(&mut c, Prep, false, 2, &now()),
        Outcome::Rejected {
            message: m::PREVIOUS_STAGE_NOT_SUCCEEDED,
            ..
        }
    ));

    let idle_cases = [
        (
            vec![
                (ct::IDLE, FALSE, r::IN_PROGRESS),
                (ct::ROLLBACK_COMPLETED, FALSE, r::FAILED),
            ],
            false,
            m::IDLE_NOT_ALLOWED_ROLLBACK_FAILED,
        ),
        (
            vec![
                (ct::IDLE, FALSE, r::IN_PROGRESS),
                (ct::ROLLBACK_IN_PROGRESS, TRUE, r::IN_PROGRESS),
            ],
            true,
            m::IDLE_NOT_ALLOWED_ROLLBACK_IN_PROGRESS,
        ),
        (
            vec![
                (ct::IDLE, FALSE, r::IN_PROGRESS),
                (ct::UPGRADE_IN_PROGRESS, TRUE, r::IN_PROGRESS),
            ],
            true,
            m::IDLE_NOT_ALLOWED_ROLLBACK_FIRST,
        ),
        (
            vec![(ct::IDLE, FALSE, r::ABORTING)],
            false,
            m::ABORT_OR_FINALIZE_NOT_ALLOWED,
        ),
    ];
    for (list, pivot, msg) in idle_cases {
        let mut c = conds(&list);
        assert_eq!(
            apply_transition(&mut c, Idle, pivot, 2, &now()),
            Outcome::Rejected {
                stage: Idle,
                message: msg
            },
            "{msg}"
        );
        assert_eq!(get(&c, ct::IDLE), Some((FALSE, r::INVALID_TRANSITION, msg)));
    }
}

#[test]
fn an_accepted_request_clears_earlier_rejections() {
    let mut c = conds(&[(ct::IDLE, TRUE, r::IDLE)]);
    apply_transition(&mut c, Upgrade, false, 2, &now());
    assert!(get(&c, ct::UPGRADE_IN_PROGRESS).is_some());
    assert!(matches!(
        apply_transition(&mut c, Prep, false, 3, &now()),
        Outcome::Accepted { .. }
    ));
    assert_eq!(
        get(&c, ct::UPGRADE_IN_PROGRESS),
        None,
        "the InvalidTransition condition is removed"
    );
}

#[test]
fn step_and_idle_outcomes_write_the_condition_table() {
    let start = || {
        conds(&[
            (ct::IDLE, FALSE, r::IN_PROGRESS),
            (ct::PREP_IN_PROGRESS, TRUE, r::IN_PROGRESS),
        ])
    };
    let mut c = start();
    apply_step(&mut c, Prep, &StepOutcome::Completed { message: None }, 1, &now());
    assert_eq!(
        get(&c, ct::PREP_IN_PROGRESS),
        Some((FALSE, r::COMPLETED, m::PREP_COMPLETED))
    );
    assert_eq!(
        get(&c, ct::PREP_COMPLETED),
        Some((TRUE, r::COMPLETED, m::PREP_STAGE_COMPLETED))
    );
    let mut c = start();
    apply_step(
        &mut c,
        Prep,
        &StepOutcome::Failed {
            message: "seed not found".into(),
        },
        1,
        &now(),
    );
    assert_eq!(
        get(&c, ct::PREP_IN_PROGRESS),
        Some((FALSE, r::FAILED, "seed not found"))
    );
    assert_eq!(
        get(&c, ct::PREP_COMPLETED),
        Some((FALSE, r::FAILED, "Prep failed: seed not found"))
    );

    for (stage, ip, done, ok_ip, ok_done, failed) in [
        (
            Upgrade,
            ct::UPGRADE_IN_PROGRESS,
            ct::UPGRADE_COMPLETED,
            m::UPGRADE_COMPLETED,
            m::UPGRADE_COMPLETED,
            m::UPGRADE_FAILED,
        ),
        (
            Rollback,
            ct::ROLLBACK_IN_PROGRESS,
            ct::ROLLBACK_COMPLETED,
            m::ROLLBACK_COMPLETED,
            m::ROLLBACK_COMPLETED,
            m::ROLLBACK_FAILED,
        ),
    ] {
        let mut c = Vec::new();
        apply_step(
            &mut c,
            stage,
            &StepOutcome::Completed { message: None },
            1,
            &now(),
        );
        assert_eq!(get(&c, ip), Some((FALSE, r::COMPLETED, ok_ip)));
        assert_eq!(get(&c, done), Some((TRUE, r::COMPLETED, ok_done)));
        let mut c = Vec::new();
        apply_step(
            &mut c,
            stage,
            &StepOutcome::Failed {
                message: "boom".into(),
            },
            1,
            &now(),
        );
        let want = format!("{failed}: boom");
        assert_eq!(get(&c, done), Some((FALSE, r::FAILED, want.as_str())));
    }

    let mut c = conds(&[(ct::IDLE, FALSE, r::ABORTING)]);
    apply_idle(
        &mut c,
        false,
        &IdleOutcome::Failed {
            errors: vec!["a".into(), "b".into()],
        },
        1,
        &now(),
    );
    let want = format!("a b {}", m::MANUAL_CLEANUP_SUFFIX);
    assert_eq!(get(&c, ct::IDLE), Some((FALSE, r::ABORT_FAILED, want.as_str())));
    let mut c = conds(&[(ct::IDLE, FALSE, r::FINALIZING)]);
    apply_idle(
        &mut c,
        true,
        &IdleOutcome::Waiting {
            error: "node not ready".into(),
        },
        1,
        &now(),
    );
    assert_eq!(
        get(&c, ct::IDLE),
        Some((
            FALSE,
            r::FINALIZING,
            "Waiting for system to stabilize before finalize (idle) stage can continue: node not ready"
        ))
    );
    apply_idle(
        &mut c,
        true,
        &IdleOutcome::Failed {
            errors: vec!["x".into()],
        },
        1,
        &now(),
    );
    assert_eq!(get(&c, ct::IDLE).map(|x| x.1), Some(r::FINALIZE_FAILED));
    apply_idle(&mut c, true, &IdleOutcome::Done, 1, &now());
    assert_eq!(c.len(), 1);
    assert_eq!(get(&c, ct::IDLE), Some((TRUE, r::IDLE, m::IDLE)));
}

#[test]
fn an_over_long_failure_message_is_cut_to_what_the_api_server_accepts() {
    // A 40 KB image reference inside a failure message: the write must still fit.
    let image = format!("registry.example.com/{}:v1", "é".repeat(20_000));
    let mut c = Vec::new();
    apply_step(
        &mut c,
        Prep,
        &StepOutcome::Failed {
            message: format!("failed to validate seed image info: {image}"),
        },
        1,
        &now(),
    );
    for t in [ct::PREP_IN_PROGRESS, ct::PREP_COMPLETED] {
        let msg = &c.iter().find(|x| x.type_ == t).expect("condition").message;
        assert!(msg.len() <= conditions::MAX_MESSAGE_BYTES, "{t}: {}", msg.len());
        assert!(msg.ends_with("more bytes)"), "{t} says it was cut");
        assert!(msg.contains("message truncated"), "{t}");
    }
    let done = &c
        .iter()
        .find(|x| x.type_ == ct::PREP_COMPLETED)
        .expect("completed")
        .message;
    assert!(done.starts_with("Prep failed: failed to validate seed image info: registry.example.com/"));
    let short = conditions::bounded_message("ok");
    assert_eq!(short, "ok");
}
