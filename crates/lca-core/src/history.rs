//! `status.history` (spec §3.5): one entry per stage run in the current cycle, with the
//! start and completion times of the stage and of its phases.

use lca_api::{History, Phase, Stage, Time};

/// Append an entry for `stage` unless one with a start time exists.
pub fn start_stage(history: &mut Vec<History>, stage: Stage, now: &Time) {
    if !history
        .iter()
        .any(|h| h.stage == Some(stage) && h.start_time.is_some())
    {
        history.push(History {
            stage: Some(stage),
            start_time: Some(now.clone()),
            ..Default::default()
        });
    }
}

/// Stamp the completion of `stage` (only on success).
pub fn complete_stage(history: &mut [History], stage: Stage, now: &Time) {
    if let Some(h) = history.iter_mut().find(|h| h.stage == Some(stage)) {
        h.completion_time.get_or_insert_with(|| now.clone());
    }
}

/// Start `phase` of `stage`; idempotent.
pub fn start_phase(history: &mut [History], stage: Stage, phase: &str, now: &Time) {
    if let Some(h) = history.iter_mut().find(|h| h.stage == Some(stage))
        && !h.phases.iter().any(|p| p.phase == phase)
    {
        h.phases.push(Phase {
            phase: phase.to_string(),
            start_time: Some(now.clone()),
            completion_time: None,
        });
    }
}

/// Complete `phase` of `stage`; idempotent.
pub fn complete_phase(history: &mut [History], stage: Stage, phase: &str, now: &Time) {
    if let Some(p) = history
        .iter_mut()
        .find(|h| h.stage == Some(stage))
        .and_then(|h| h.phases.iter_mut().find(|p| p.phase == phase))
    {
        p.completion_time.get_or_insert_with(|| now.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time(lca_api::jiff::Timestamp::from_second(s).expect("valid"))
    }

    #[test]
    fn stage_and_phase_times_are_set_once() {
        let mut h = Vec::new();
        start_stage(&mut h, Stage::Prep, &t(1));
        start_stage(&mut h, Stage::Prep, &t(2));
        start_phase(&mut h, Stage::Prep, "Stateroot", &t(3));
        start_phase(&mut h, Stage::Prep, "Stateroot", &t(4));
        complete_phase(&mut h, Stage::Prep, "Stateroot", &t(5));
        complete_stage(&mut h, Stage::Prep, &t(6));
        complete_stage(&mut h, Stage::Prep, &t(7));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].start_time, Some(t(1)));
        assert_eq!(h[0].completion_time, Some(t(6)));
        assert_eq!(h[0].phases[0].start_time, Some(t(3)));
        assert_eq!(h[0].phases[0].completion_time, Some(t(5)));
    }
}
