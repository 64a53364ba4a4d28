//! The operator's Prometheus metrics (one `prometheus-client` registry in a static) and what
//! records them: the controllers' run loop (reconciles, errors, durations), the IBU status
//! writer (stage and phase durations from `status.history`), Prep (precache progress) and the
//! SeedGenerator controller (its phase). `server` serves the registry over HTTPS to scrapers
//! the API server authenticates and authorizes (`auth`).

pub mod auth;
pub mod server;

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use lca_api::ibu::History;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    stage: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type Seconds = Gauge<f64, AtomicU64>;
type Durations = Family<ControllerLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_seconds: Durations,
    stage_transitions: Counter,
    stage_seconds: Family<StageLabel, Seconds>,
    phase_seconds: Family<PhaseLabel, Seconds>,
    precache_images: Family<StateLabel, Gauge>,
    seedgen_phase: Family<StateLabel, Gauge>,
}

/// The SeedGenerator phases `seedgen_phase` reports, one series each.
const SEEDGEN_PHASES: [&str; 5] = ["Initial", "Generating", "Finalizing", "Completed", "Failed"];

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        // 1 ms to about 33 s: a reconcile is a few API calls, sometimes a node command.
        let reconcile_seconds: Durations =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        let m = Metrics {
            registry: Registry::with_prefix("lca"),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_seconds,
            stage_transitions: Counter::default(),
            stage_seconds: Family::default(),
            phase_seconds: Family::default(),
            precache_images: Family::default(),
            seedgen_phase: Family::default(),
        };
        let mut registry = m.registry;
        registry.register(
            "reconcile",
            "Reconciles run, per controller",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that returned an error, per controller",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, per controller",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "stage_transitions",
            "Accepted ImageBasedUpgrade stage transitions",
            m.stage_transitions.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "Duration of the last completed run of each ImageBasedUpgrade stage (status.history)",
            m.stage_seconds.clone(),
        );
        registry.register(
            "stage_phase_duration_seconds",
            "Duration of the last completed run of each phase of a stage (status.history)",
            m.phase_seconds.clone(),
        );
        registry.register(
            "precache_images",
            "Images of the current or last precache, by state",
            m.precache_images.clone(),
        );
        registry.register(
            "seedgen_phase",
            "1 for the phase the SeedGenerator is in, 0 for the others",
            m.seedgen_phase.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Record one reconcile of the `kind` controller that took `seconds`.
    pub fn reconciled(&self, kind: &str, seconds: f64, failed: bool) {
        // controller-runtime's label: the kind in lower case.
        let label = ControllerLabel {
            controller: kind.to_ascii_lowercase(),
        };
        self.reconciles.get_or_create(&label).inc();
        self.reconcile_seconds.get_or_create(&label).observe(seconds);
        if failed {
            self.reconcile_errors.get_or_create(&label).inc();
        }
    }

    pub fn stage_transition(&self) {
        self.stage_transitions.inc();
    }

    /// The precache progress last read from the node.
    pub fn set_precache(&self, total: u64, pulled: u64, failed: u64) {
        for (state, v) in [("total", total), ("pulled", pulled), ("failed", failed)] {
            self.precache_images
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }

    /// The SeedGenerator is in `phase` (a `seedgen_plan::Phase` name).
    pub fn set_seedgen_phase(&self, phase: &str) {
        for state in SEEDGEN_PHASES {
            self.seedgen_phase
                .get_or_create(&StateLabel { state })
                .set(i64::from(state == phase));
        }
    }

    /// The durations of every completed stage and phase of the status being written. A new
    /// cycle empties the history; the gauges keep the last values until a run completes again.
    pub fn observe_history(&self, history: &[History]) {
        let seconds = |start: &Option<lca_api::Time>, end: &Option<lca_api::Time>| {
            let (Some(start), Some(end)) = (start, end) else {
                return None;
            };
            Some(
                (end.0 - start.0)
                    .total(lca_api::jiff::Unit::Second)
                    .unwrap_or(0.0),
            )
        };
        for h in history {
            let Some(stage) = h.stage.map(|s| s.to_string()) else {
                continue;
            };
            if let Some(s) = seconds(&h.start_time, &h.completion_time) {
                self.stage_seconds
                    .get_or_create(&StageLabel { stage: stage.clone() })
                    .set(s);
            }
            for p in &h.phases {
                if let Some(s) = seconds(&p.start_time, &p.completion_time) {
                    let label = PhaseLabel {
                        stage: stage.clone(),
                        phase: p.phase.clone(),
                    };
                    self.phase_seconds.get_or_create(&label).set(s);
                }
            }
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lca_api::ibu::{Phase, Stage};

    fn at(s: &str) -> Option<lca_api::Time> {
        Some(lca_api::Time(s.parse().expect("timestamp")))
    }

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::new();
        m.reconciled("ImageBasedUpgrade", 0.003, false);
        m.reconciled("ImageBasedUpgrade", 0.5, true);
        m.set_precache(20, 7, 1);
        m.set_seedgen_phase("Generating");
        m.observe_history(&[History {
            stage: Some(Stage::Prep),
            start_time: at("2026-12-03T10:00:00Z"),
            completion_time: at("2026-12-03T10:01:30Z"),
            phases: vec![
                Phase {
                    phase: "Precache".into(),
                    start_time: at("2026-12-03T10:00:10Z"),
                    completion_time: at("2026-12-03T10:01:20Z"),
                },
                Phase {
                    phase: "Stateroot".into(),
                    start_time: at("2026-12-03T10:00:00Z"),
                    completion_time: None,
                },
            ],
        }]);
        let text = m.render();
        for line in [
            "# TYPE lca_reconcile counter",
            r#"lca_reconcile_total{controller="imagebasedupgrade"} 2"#,
            r#"lca_reconcile_errors_total{controller="imagebasedupgrade"} 1"#,
            r#"lca_reconcile_duration_seconds_count{controller="imagebasedupgrade"} 2"#,
            r#"lca_reconcile_duration_seconds_bucket{le="0.004",controller="imagebasedupgrade"} 1"#,
            r#"lca_precache_images{state="pulled"} 7"#,
            r#"lca_precache_images{state="failed"} 1"#,
            r#"lca_seedgen_phase{state="Generating"} 1"#,
            r#"lca_seedgen_phase{state="Completed"} 0"#,
            r#"lca_stage_duration_seconds{stage="Prep"} 90.0"#,
            r#"lca_stage_phase_duration_seconds{stage="Prep",phase="Precache"} 70.0"#,
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert!(
            !text.contains(r#"phase="Stateroot""#),
            "a phase still running has no duration:\n{text}"
        );
    }
}
