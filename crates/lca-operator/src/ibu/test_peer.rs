//! **Test peer** stage work (`--stage-work=test-peer`): a stand-in for the real Prep, Upgrade
//! and Rollback work, scripted by the test through files on the simulated node, so the whole
//! stage machine runs end to end on a real API server before (and independently of) the node
//! work. Compiled only with the `test-hooks` feature, so a production binary cannot run it.
//!
//! Script files live in `<host-root>/lca-sim/stage-work/`:
//! - `prep`, `upgrade`, `rollback`: `succeed`, `succeed <message>`, `fail <message>` or
//!   `stall` (also when the file is absent): the outcome of every call until changed.
//! - `abort`, `finalize`: `succeed` (default), `fail <error>[; <error>...]`, `wait <error>`.
//! - `calls.log`: one line per call, appended by the peer, so tests can see what ran.
//!
//! "After pivot" comes from the simulated node's booted stateroot (`lca-hostops` `sim`), as
//! for the real work.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use lca_api::ImageBasedUpgrade;
use lca_core::{IdleOutcome, StepOutcome, StepReport};
use lca_hostops::HostPaths;

use super::work::StageWork;

pub struct TestPeerStageWork {
    paths: HostPaths,
}

impl TestPeerStageWork {
    pub fn new(paths: HostPaths) -> Self {
        Self { paths }
    }

    fn dir(&self) -> PathBuf {
        self.paths.host("lca-sim/stage-work")
    }

    fn script(&self, name: &str) -> String {
        let dir = self.dir();
        // A test peer (test-hooks builds only): the tests read calls.log, so a failed write
        // shows up as a failed assertion there, not here.
        let _ = std::fs::create_dir_all(&dir);
        let line = format!("{name}\n");
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("calls.log"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn step(&self, name: &str) -> StepOutcome {
        let script = self.script(name);
        let (verb, rest) = script.split_once(' ').unwrap_or((script.as_str(), ""));
        match verb {
            "succeed" => StepOutcome::Completed {
                message: (!rest.is_empty()).then(|| rest.to_string()),
            },
            "fail" => StepOutcome::Failed {
                message: rest.to_string(),
            },
            _ => StepOutcome::InProgress {
                message: None,
                requeue: Duration::from_secs(1),
            },
        }
    }

    fn idle_step(&self, name: &str) -> IdleOutcome {
        let script = self.script(name);
        let (verb, rest) = script.split_once(' ').unwrap_or((script.as_str(), ""));
        match verb {
            "fail" => IdleOutcome::Failed {
                errors: rest.split("; ").map(str::to_string).collect(),
            },
            "wait" => IdleOutcome::Waiting {
                error: rest.to_string(),
            },
            _ => IdleOutcome::Done,
        }
    }
}

impl StageWork for TestPeerStageWork {
    fn prep<'a>(&'a self, _: &'a ImageBasedUpgrade) -> BoxFuture<'a, StepReport> {
        Box::pin(async { self.step("prep").into() })
    }
    fn upgrade<'a>(&'a self, _: &'a ImageBasedUpgrade, _: bool) -> BoxFuture<'a, StepReport> {
        Box::pin(async { self.step("upgrade").into() })
    }
    fn rollback<'a>(&'a self, _: &'a ImageBasedUpgrade, after_pivot: bool) -> BoxFuture<'a, StepReport> {
        // As the real work: back on the original stateroot the rollback is complete, and the
        // same reconcile's view of the boot decides both (a script read after a boot that
        // this reconcile did not see would pair "completed" with a stale stateroot).
        Box::pin(async move {
            if after_pivot {
                self.step("rollback").into()
            } else {
                StepOutcome::Completed { message: None }.into()
            }
        })
    }
    fn idle<'a>(&'a self, _: &'a ImageBasedUpgrade, finalize: bool) -> BoxFuture<'a, IdleOutcome> {
        Box::pin(async move { self.idle_step(if finalize { "finalize" } else { "abort" }) })
    }
    fn after_pivot<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, bool> {
        Box::pin(async move { super::work::booted_into_target(&self.paths, ibu) })
    }
}
