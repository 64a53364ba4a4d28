//! Prometheus metrics, served as text on the probe listener's `/metrics`: reconcile counts
//! and failures per controller, accepted stage transitions, and precache progress. Plain
//! atomics in one static: nothing to wire through the controllers, nothing to lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub ibu_reconciles: AtomicU64,
    pub ibu_reconcile_errors: AtomicU64,
    pub seedgen_reconciles: AtomicU64,
    pub stage_transitions: AtomicU64,
    pub precache_total: AtomicU64,
    pub precache_pulled: AtomicU64,
    pub precache_failed: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    ibu_reconciles: AtomicU64::new(0),
    ibu_reconcile_errors: AtomicU64::new(0),
    seedgen_reconciles: AtomicU64::new(0),
    stage_transitions: AtomicU64::new(0),
    precache_total: AtomicU64::new(0),
    precache_pulled: AtomicU64::new(0),
    precache_failed: AtomicU64::new(0),
};

impl Metrics {
    /// Record the precache progress last read from the node.
    pub fn set_precache(&self, total: u64, pulled: u64, failed: u64) {
        self.precache_total.store(total, Relaxed);
        self.precache_pulled.store(pulled, Relaxed);
        self.precache_failed.store(failed, Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            &mut out,
            "lca_reconcile_total",
            "Reconciles run, per controller.",
            &[
                (
                    r#"{controller="imagebasedupgrade"}"#,
                    self.ibu_reconciles.load(Relaxed),
                ),
                (
                    r#"{controller="seedgenerator"}"#,
                    self.seedgen_reconciles.load(Relaxed),
                ),
            ],
        );
        counter(
            &mut out,
            "lca_reconcile_errors_total",
            "Reconciles that returned an error.",
            &[(
                r#"{controller="imagebasedupgrade"}"#,
                self.ibu_reconcile_errors.load(Relaxed),
            )],
        );
        counter(
            &mut out,
            "lca_stage_transitions_total",
            "Accepted stage transitions.",
            &[("", self.stage_transitions.load(Relaxed))],
        );
        let _ = writeln!(
            out,
            "# HELP lca_precache_images Images of the current precache, by state.\n# TYPE lca_precache_images gauge"
        );
        for (state, v) in [
            ("total", &self.precache_total),
            ("pulled", &self.precache_pulled),
            ("failed", &self.precache_failed),
        ] {
            let _ = writeln!(
                out,
                "lca_precache_images{{state=\"{state}\"}} {}",
                v.load(Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.ibu_reconciles.fetch_add(3, Relaxed);
        m.set_precache(20, 7, 1);
        let text = m.render();
        assert!(text.contains("# TYPE lca_reconcile_total counter"));
        assert!(text.contains(r#"lca_reconcile_total{controller="imagebasedupgrade"} 3"#));
        assert!(text.contains(r#"lca_precache_images{state="pulled"} 7"#));
        assert!(text.contains(r#"lca_precache_images{state="failed"} 1"#));
    }
}
