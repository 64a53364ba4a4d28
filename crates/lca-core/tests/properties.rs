//! Property tests of the stage machine: random sequences of user stage requests (filtered by
//! a model of the CRD's CEL gate, as the API server would), step outcomes, pivots and manual
//! cleanups, driven through the same `lca-core` functions the operator calls, with the
//! invariants of the contract checked after every step.

use lca_api::consts::condition_types as ct;
use lca_api::{Condition, Stage, Time};
use lca_core::conditions::{FALSE, TRUE, find, valid_reason};
use lca_core::outcome::{apply_idle, apply_step};
use lca_core::stage::{in_progress_stage, is_in_progress};
use lca_core::{
    IdleOutcome, Outcome, StepOutcome, apply_transition, is_transition_requested, valid_next_stages,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    /// `kubectl patch ibu upgrade -p {"spec":{"stage": ...}}`
    Request(Stage),
    /// The in-progress stage's work reports this on the next reconcile.
    Step(u8),
    /// The node reboots into the new stateroot (only meaningful during Upgrade).
    Pivot,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        prop::sample::select(Stage::ALL.to_vec()).prop_map(Action::Request),
        (0u8..4).prop_map(Action::Step),
        Just(Action::Pivot),
    ]
}

/// An independent oracle: the upgrade's phase, tracked from the actions alone (never from
/// conditions), with the validNextStages that spec §2.3 prescribes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Fresh,
    Idle,
    PrepRunning,
    PrepDone,
    PrepFailed,
    UpgradeRunning,
    UpgradeDone,
    UpgradeFailed,
    RollbackRunning,
    RollbackDone,
    RollbackFailed,
    Aborting,
    AbortFailed,
    Finalizing,
    FinalizeFailed,
}

impl Phase {
    fn expected_next(self, after_pivot: bool) -> Vec<Stage> {
        use Phase::*;
        match self {
            Fresh => vec![Stage::Idle],
            Idle => vec![Stage::Prep],
            PrepRunning | PrepFailed => vec![Stage::Idle],
            PrepDone => vec![Stage::Idle, Stage::Upgrade],
            UpgradeRunning | UpgradeFailed if after_pivot => vec![Stage::Rollback],
            UpgradeRunning | UpgradeFailed => vec![Stage::Idle],
            UpgradeDone => vec![Stage::Idle, Stage::Rollback],
            RollbackDone => vec![Stage::Idle],
            RollbackRunning | RollbackFailed | Aborting | AbortFailed | Finalizing | FinalizeFailed => vec![],
        }
    }

    fn on_request(self, stage: Stage) -> Phase {
        use Phase::*;
        match (self, stage) {
            (Fresh, Stage::Idle) => Idle,
            (Idle, Stage::Prep) => PrepRunning,
            (PrepDone, Stage::Upgrade) => UpgradeRunning,
            (UpgradeRunning | UpgradeFailed | UpgradeDone, Stage::Rollback) => RollbackRunning,
            (UpgradeDone | RollbackDone, Stage::Idle) => Finalizing,
            (PrepRunning | PrepFailed | PrepDone | UpgradeRunning | UpgradeFailed, Stage::Idle) => Aborting,
            (other, _) => other,
        }
    }

    fn on_step(self, step: u8) -> Phase {
        use Phase::*;
        let (fail, wait) = (step == 0, step == 1);
        match self {
            PrepRunning if fail => PrepFailed,
            PrepRunning if !wait => PrepDone,
            UpgradeRunning if fail => UpgradeFailed,
            UpgradeRunning if !wait => UpgradeDone,
            RollbackRunning if fail => RollbackFailed,
            RollbackRunning if !wait => RollbackDone,
            Aborting | AbortFailed if fail => AbortFailed,
            Aborting | AbortFailed => Idle,
            Finalizing | FinalizeFailed if fail => FinalizeFailed,
            Finalizing | FinalizeFailed if wait => Finalizing,
            Finalizing | FinalizeFailed => Idle,
            other => other,
        }
    }
}

struct Model {
    phase: Phase,
    spec: Stage,
    conds: Vec<Condition>,
    valid_next: Vec<Stage>,
    after_pivot: bool,
    generation: i64,
    clock: i64,
}

impl Model {
    fn now(&mut self) -> Time {
        self.clock += 1;
        Time(lca_api::jiff::Timestamp::from_second(self.clock).expect("valid"))
    }

    /// The CRD's stage gate (CEL rule 6), given that the object has a status.
    fn cel_allows(&self, stage: Stage) -> bool {
        stage == self.spec || self.valid_next.contains(&stage)
    }

    /// One reconcile, with `step` choosing the work's outcome.
    fn reconcile(&mut self, step: u8) {
        let now = self.now();
        if is_transition_requested(&self.conds, self.spec) {
            let outcome = apply_transition(
                &mut self.conds,
                self.spec,
                self.after_pivot,
                self.generation,
                &now,
            );
            if let Outcome::Rejected { stage, .. } = outcome {
                assert!(
                    !self.valid_next.contains(&stage),
                    "a stage allowed by validNextStages was rejected"
                );
            }
        }
        match in_progress_stage(&self.conds) {
            Some(Stage::Idle) => {
                let finalize = find(&self.conds, ct::IDLE).is_some_and(|c| c.reason.starts_with("Finaliz"));
                let outcome = match step {
                    0 => IdleOutcome::Failed {
                        errors: vec!["cleanup failed".into()],
                    },
                    1 if finalize => IdleOutcome::Waiting {
                        error: "not ready".into(),
                    },
                    _ => IdleOutcome::Done,
                };
                apply_idle(&mut self.conds, finalize, &outcome, self.generation, &now);
                if outcome == IdleOutcome::Done {
                    self.after_pivot = false;
                }
            }
            Some(stage) => {
                let outcome = match step {
                    0 => StepOutcome::Failed {
                        message: "step failed".into(),
                    },
                    1 => StepOutcome::InProgress {
                        message: Some("working".into()),
                        requeue: Default::default(),
                    },
                    _ => StepOutcome::Completed { message: None },
                };
                apply_step(&mut self.conds, stage, &outcome, self.generation, &now);
                if stage == Stage::Rollback && matches!(outcome, StepOutcome::Completed { .. }) {
                    self.after_pivot = false;
                }
            }
            None => {}
        }
        self.valid_next = valid_next_stages(&self.conds, Some(self.spec), self.after_pivot);
    }

    fn check_invariants(&self) {
        assert_eq!(
            self.valid_next,
            self.phase.expected_next(self.after_pivot),
            "validNextStages differ from spec §2.3 in phase {:?} (after pivot: {}): {:?}",
            self.phase,
            self.after_pivot,
            self.conds
        );
        let mut types: Vec<&str> = self.conds.iter().map(|c| c.type_.as_str()).collect();
        types.sort_unstable();
        let n = types.len();
        types.dedup();
        assert_eq!(types.len(), n, "at most one condition per type: {:?}", self.conds);

        for c in &self.conds {
            assert!(
                valid_reason(&c.reason),
                "reason {:?} violates the metav1 pattern",
                c.reason
            );
        }

        if find(&self.conds, ct::IDLE).is_some_and(|c| c.status == TRUE) {
            assert_eq!(
                self.conds.len(),
                1,
                "a new cycle starts with Idle alone: {:?}",
                self.conds
            );
        }

        if let Some(stage) = in_progress_stage(&self.conds).filter(|s| *s != Stage::Idle) {
            assert!(
                find(&self.conds, ct::IDLE).is_some_and(|c| c.status == FALSE),
                "Idle must be False while {stage} is in progress: {:?}",
                self.conds
            );
        }
        if is_in_progress(&self.conds, Stage::Idle) {
            assert!(
                self.valid_next.is_empty(),
                "no transition while abort/finalize runs"
            );
        }

        // validNextStages is exactly what the operator will accept next.
        for stage in Stage::ALL {
            if stage == self.spec {
                continue;
            }
            let mut probe = self.conds.clone();
            let accepted = matches!(
                apply_transition(
                    &mut probe,
                    stage,
                    self.after_pivot,
                    self.generation,
                    &Time(lca_api::jiff::Timestamp::UNIX_EPOCH)
                ),
                Outcome::Accepted { .. }
            );
            assert_eq!(
                accepted,
                self.valid_next.contains(&stage),
                "{stage}: gate and operator disagree on {:?}",
                self.conds
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn stage_machine_invariants_hold(actions in prop::collection::vec(action(), 1..60)) {
        let mut m = Model { phase: Phase::Fresh, spec: Stage::Idle, conds: vec![], valid_next: vec![], after_pivot: false, generation: 1, clock: 0 };
        m.reconcile(2);
        m.phase = Phase::Idle;
        m.check_invariants();
        for a in actions {
            match a {
                Action::Request(stage) => {
                    if m.cel_allows(stage) && stage != m.spec {
                        m.spec = stage;
                        m.generation += 1;
                        m.phase = m.phase.on_request(stage);
                        m.reconcile(1);
                        m.phase = m.phase.on_step(1);
                    }
                }
                Action::Step(step) => {
                    m.reconcile(step);
                    m.phase = m.phase.on_step(step);
                }
                Action::Pivot => {
                    if is_in_progress(&m.conds, Stage::Upgrade) {
                        m.after_pivot = true;
                        m.reconcile(1);
                        m.phase = m.phase.on_step(1);
                    }
                }
            }
            m.check_invariants();
        }
    }
}
