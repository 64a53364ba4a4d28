//! Table tests of the Prep plan, one row per line of spec §5.1's step list, and properties
//! over every combination of facts.

use proptest::prelude::*;

use super::*;
use crate::task::TaskDetail;

const NS: &str = "openshift-lifecycle-agent";

fn facts(stateroot: TaskState, precache: TaskState) -> PrepFacts {
    PrepFacts {
        unhealthy: None,
        other_run: None,
        stateroot: TaskFacts::new(stateroot),
        precache: TaskFacts::new(precache),
        precache_progress: "total: 3 (pulled: 1, failed: 0)".into(),
        validation_warning: false,
        namespace: NS.into(),
    }
}

fn report(a: PrepAction) -> StepReport {
    match a {
        PrepAction::Report(r) => r,
        other => panic!("expected a report, got {other:?}"),
    }
}

fn message(r: &StepReport) -> (&str, &str) {
    match &r.outcome {
        StepOutcome::InProgress { message, .. } => ("in progress", message.as_deref().unwrap_or("")),
        StepOutcome::Failed { message } => ("failed", message),
        StepOutcome::Completed { message } => ("completed", message.as_deref().unwrap_or("")),
    }
}

use TaskState::*;

#[test]
fn each_row_of_the_prep_steps() {
    let sr = "job-name: lca-prep-stateroot-setup, job-namespace: openshift-lifecycle-agent";
    let pc = "job-name: lca-prep-precache, job-namespace: openshift-lifecycle-agent";
    let rows: Vec<(TaskState, TaskState, &str, String)> = vec![
        (
            Running,
            NotStarted,
            "in progress",
            format!("Stateroot setup job in progress. {sr}"),
        ),
        (
            Deleting,
            NotStarted,
            "failed",
            format!("stateroot job is marked to be deleted, this is not allowed. {sr}"),
        ),
        (
            Failed { code: 1 },
            NotStarted,
            "failed",
            format!("stateroot setup job failed to complete. {sr}"),
        ),
        (
            Succeeded,
            Running,
            "in progress",
            format!("Precache job in progress. {pc}. total: 3 (pulled: 1, failed: 0)"),
        ),
        (
            Succeeded,
            Deleting,
            "failed",
            format!("precache job is marked to be deleted, this not allowed. {pc}"),
        ),
        (
            Succeeded,
            Failed { code: 2 },
            "failed",
            format!("precache job failed to complete. {pc}. total: 3 (pulled: 1, failed: 0)"),
        ),
        (Succeeded, Succeeded, "completed", String::new()),
    ];
    for (s, p, kind, text) in rows {
        let r = report(next(&facts(s.clone(), p.clone())));
        assert_eq!(
            message(&r),
            (kind, text.as_str()),
            "stateroot {s:?}, precache {p:?}"
        );
    }
}

#[test]
fn starts_come_in_order() {
    assert_eq!(next(&facts(NotStarted, NotStarted)), PrepAction::StartStateroot);
    assert_eq!(next(&facts(Succeeded, NotStarted)), PrepAction::StartPrecache);
    let r = started(TaskKind::Precache, NS);
    assert_eq!(
        r.phases,
        [PhaseEvent::Complete("Stateroot"), PhaseEvent::Start("Precache")]
    );
    assert_eq!(
        message(&started(TaskKind::StaterootSetup, NS)).1,
        "Successfully launched a new job for stateroot setup. job-name: lca-prep-stateroot-setup, job-namespace: openshift-lifecycle-agent"
    );
}

#[test]
fn unhealthy_waits_twenty_seconds_and_other_runs_are_forgotten_first() {
    let mut f = facts(Running, NotStarted);
    f.unhealthy = Some("node is not ready".into());
    f.other_run = Some("quay.io/x:1 4.18.0".into());
    let r = report(next(&f));
    assert_eq!(
        r.outcome,
        StepOutcome::InProgress {
            message: Some(
                "Waiting for system to stabilize before Prep stage can continue: node is not ready".into()
            ),
            requeue: HEALTH_RETRY,
        }
    );
    f.unhealthy = None;
    assert_eq!(
        next(&f),
        PrepAction::ForgetOtherRun {
            what: "quay.io/x:1 4.18.0".into()
        }
    );
}

#[test]
fn interrupted_tasks_are_resumed_three_times_then_fail() {
    let mut f = facts(Interrupted, NotStarted);
    for n in 0..MAX_RESUMES {
        f.stateroot.resumes = n;
        assert_eq!(
            next(&f),
            PrepAction::Resume {
                task: TaskKind::StaterootSetup,
                attempt: n + 1
            }
        );
    }
    f.stateroot.resumes = MAX_RESUMES;
    let r = report(next(&f));
    assert!(
        message(&r)
            .1
            .starts_with("stateroot setup job failed to complete. job-name: lca-prep-stateroot-setup")
    );
}

#[test]
fn the_status_file_shows_the_current_step_and_the_failing_steps_error() {
    let mut f = facts(Running, NotStarted);
    f.stateroot.detail = Some(TaskDetail {
        step: "deploy".into(),
        message: "deploying".into(),
        failed: false,
    });
    assert!(message(&report(next(&f))).1.ends_with(". Current step: deploy"));
    f.stateroot.state = Failed { code: 1 };
    f.stateroot.detail = Some(TaskDetail {
        step: "pull-seed".into(),
        message: "registry timed out".into(),
        failed: true,
    });
    assert!(
        message(&report(next(&f)))
            .1
            .ends_with(". Failed in step pull-seed: registry timed out"),
        "{:?}",
        next(&f)
    );
}

#[test]
fn the_warning_annotation_makes_completion_say_so() {
    let mut f = facts(Succeeded, Succeeded);
    f.validation_warning = true;
    let r = report(next(&f));
    assert_eq!(
        message(&r),
        ("completed", messages::PREP_STAGE_COMPLETED_WITH_WARNING)
    );
    assert_eq!(r.phases, [PhaseEvent::Complete("Precache")]);
}

#[test]
fn an_unreachable_registry_backs_off_then_fails_after_five_attempts() {
    let delays: Vec<u64> = (1..MAX_INSPECT_ATTEMPTS)
        .map(|n| {
            match blocked(Blocker::SeedUnreachable {
                error: "timed out",
                failed_attempts: n,
            })
            .outcome
            {
                StepOutcome::InProgress { requeue, .. } => requeue.as_secs(),
                other => panic!("attempt {n}: {other:?}"),
            }
        })
        .collect();
    assert_eq!(delays, [2, 4, 8, 16]);
    let r = blocked(Blocker::SeedUnreachable {
        error: "timed out",
        failed_attempts: 5,
    });
    assert_eq!(
        message(&r),
        (
            "failed",
            "failed to validate seed image info: timed out (after 5 attempts)"
        )
    );
    assert_eq!(
        message(&blocked(Blocker::InvalidSpec(
            "failed to validate extramanifest cms: x"
        )))
        .1,
        "failed to validate IBU spec: failed to validate extramanifest cms: x"
    );
}

fn task_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(NotStarted),
        Just(Running),
        Just(Succeeded),
        (-1i32..3).prop_map(|code| Failed { code }),
        Just(Interrupted),
        Just(Deleting),
    ]
}

fn any_facts() -> impl Strategy<Value = PrepFacts> {
    (
        task_state(),
        task_state(),
        0u32..6,
        0u32..6,
        any::<bool>(),
        proptest::option::of(Just("x".to_string())),
        proptest::option::of(Just("unhealthy".to_string())),
    )
        .prop_map(|(s, p, rs, rp, warn, other, unhealthy)| {
            let mut f = facts(s, p);
            f.stateroot.resumes = rs;
            f.precache.resumes = rp;
            f.validation_warning = warn;
            f.other_run = other;
            f.unhealthy = unhealthy;
            f
        })
}

proptest! {
    /// Precache never starts, and Prep never completes, before stateroot setup succeeded.
    #[test]
    fn nothing_follows_an_unfinished_stateroot_setup(f in any_facts()) {
        let a = next(&f);
        if f.stateroot.state != Succeeded {
            let precache = matches!(a, PrepAction::StartPrecache | PrepAction::Resume { task: TaskKind::Precache, .. });
            let completes = matches!(&a, PrepAction::Report(r) if matches!(r.outcome, StepOutcome::Completed { .. }));
            prop_assert!(!precache && !completes, "{:?}", a);
        }
    }

    /// An unhealthy cluster gets no node work at all, only the wait.
    #[test]
    fn an_unhealthy_cluster_only_waits(f in any_facts()) {
        if f.unhealthy.is_some() {
            let r = report(next(&f));
            let waits = matches!(r.outcome, StepOutcome::InProgress { requeue, .. } if requeue == HEALTH_RETRY);
            prop_assert!(waits);
        }
    }

    /// A task deleted or failed under Prep fails it; resumes stay within the budget.
    #[test]
    fn failures_are_terminal_and_resumes_bounded(f in any_facts()) {
        match next(&f) {
            PrepAction::Resume { task, attempt } => {
                prop_assert!(attempt <= MAX_RESUMES);
                let t = if task == TaskKind::Precache { &f.precache } else { &f.stateroot };
                prop_assert_eq!(&t.state, &Interrupted);
            }
            PrepAction::Report(r) if matches!(r.outcome, StepOutcome::Failed { .. }) => {
                let bad = |s: &TaskState| matches!(s, Deleting | Failed { .. } | Interrupted);
                prop_assert!(bad(&f.stateroot.state) || bad(&f.precache.state));
            }
            _ => {}
        }
    }

    /// An abort requested from any Prep state is accepted and starts the abort cleanup.
    #[test]
    fn an_abort_from_any_prep_state_leads_to_cleanup(f in any_facts(), after in 0usize..4) {
        use lca_api::{Stage, Time};
        use crate::transition::{IdleKind, Outcome, apply_transition};
        let now = Time(lca_api::jiff::Timestamp::UNIX_EPOCH);
        let mut c = Vec::new();
        crate::transition::reset_to_idle(&mut c, 1, &now);
        let prep = apply_transition(&mut c, Stage::Prep, false, 1, &now);
        prop_assert!(matches!(prep, Outcome::Accepted { .. }), "{:?}", prep);
        // Let the Prep run a few steps as the plan directs, then abort.
        let mut f = f;
        for _ in 0..after {
            let r = match next(&f) {
                PrepAction::Report(r) => r,
                PrepAction::StartStateroot => started(TaskKind::StaterootSetup, NS),
                PrepAction::StartPrecache => started(TaskKind::Precache, NS),
                PrepAction::Resume { task, .. } => resumed(task, NS),
                PrepAction::ForgetOtherRun { what } => { f.other_run = None; forgot(&what) }
            };
            crate::outcome::apply_step(&mut c, Stage::Prep, &r.outcome, 1, &now);
        }
        let outcome = apply_transition(&mut c, Stage::Idle, false, 2, &now);
        prop_assert!(matches!(outcome, Outcome::Accepted { idle: Some(IdleKind::Abort), .. }), "{:?}", outcome);
    }
}
