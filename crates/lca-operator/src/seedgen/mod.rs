//! The SeedGenerator controller (spec §8): turns this seed cluster into a seed image.
//! Only *Create* events trigger a reconcile (the reference ignores updates, deletes and
//! generic events); requeues come from the reconcile itself. Each reconcile gathers the facts
//! its phase needs into `SeedGenFacts`, asks `lca_core::seedgen_plan::next` for the one next
//! action and performs it:
//!
//! - `checks`: prerequisites (initial phase), exact rejection messages;
//! - `generate` (+ `cleanup`, `cluster_info`): the generating steps — workspace, secrets,
//!   cluster clean-up, saving the CR and Secret on the node, launching the imager (`imager`);
//! - `finalize`: after the imager, judge its exit status and complete;
//! - `restore`: re-create the Secret and CR from the node (`initSeedGen`), at start-up on a
//!   real node and when the local imager process exits on a simulated one.
//!
//! Reconciles hold `ctx.lock`, shared with the IBU controller; the watch and error policy are
//! the shared `crate::controller` wiring.

pub mod checks;
pub mod cleanup;
pub mod cluster_info;
pub mod finalize;
pub mod generate;
pub mod imager;
pub mod restore;
pub mod state;

use std::collections::HashSet;
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher::Event;
use lca_api::SeedGenerator;
use lca_api::consts::names;
use lca_core::seedgen_plan::{self, Phase, SeedGenAction, SeedGenFacts};
use tracing::{info, warn};

use crate::cluster_health;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi;

/// The facts `phase` needs: the prerequisites before generating, the cluster's health while
/// generating, the imager's container when finalizing.
async fn gather(ctx: &Context, phase: Phase) -> SeedGenFacts {
    let mut facts = SeedGenFacts::new(phase);
    match phase {
        Phase::Initial => facts.rejection = checks::validate(ctx).await,
        Phase::Generating => {
            facts.unhealthy = cluster_health::check_all(&ctx.client)
                .await
                .err()
                .map(|e| e.to_string())
        }
        Phase::Finalizing => {
            let state = imager::observe(ctx).await;
            if matches!(&state, lca_core::seedgen_plan::ImagerState::Container { exit_code, .. } if *exit_code != 0)
            {
                facts.imager_error = imager::last_error(ctx).await;
            }
            facts.imager = Some(state);
        }
        Phase::Completed | Phase::Failed => {}
    }
    facts
}

/// One reconcile: uncached GET, facts, the plan's next action, one status write.
pub async fn reconcile(obj: Arc<SeedGenerator>, ctx: Arc<Context>) -> Result<Action> {
    let _serial = ctx.lock.lock().await;
    if obj.name_any() != names::SEEDGEN {
        let facts = SeedGenFacts {
            singleton: false,
            ..SeedGenFacts::new(Phase::Initial)
        };
        if let SeedGenAction::Ignore { note } = seedgen_plan::next(&facts) {
            warn!(name = %obj.name_any(), "ignoring a SeedGenerator: {note}");
        }
        return Ok(Action::await_change());
    }
    let api: Api<SeedGenerator> = Api::all(ctx.client.clone());
    let Some(cr) = kubeapi::get_optional(&api, names::SEEDGEN)
        .await
        .map_err(Error::kube("reading the SeedGenerator"))?
    else {
        return Ok(Action::await_change());
    };
    let mut w = state::Writer::new(api, cr);
    let phase = seedgen_plan::phase(w.conditions());
    info!(?phase, seed_image = %w.cr.spec.seed_image, "reconciling the SeedGenerator");
    let facts = gather(&ctx, phase).await;
    match seedgen_plan::next(&facts) {
        SeedGenAction::Ignore { note } => {
            info!("{note}");
            Ok(Action::await_change())
        }
        SeedGenAction::Wait { message, requeue } => {
            w.in_progress(&message);
            w.save().await?;
            Ok(Action::requeue(requeue))
        }
        SeedGenAction::Generate => generate::run(&ctx, &mut w).await,
        SeedGenAction::Complete => finalize::complete(&ctx, &mut w).await,
        SeedGenAction::Fail { message } => {
            info!(%message, "seed generation failed");
            w.failed(&message);
            w.save().await?;
            Ok(Action::await_change())
        }
    }
}

/// Run the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<SeedGenerator> = Api::all(ctx.client.clone());
    // A Create is an object whose uid we have not seen; the initial list counts, as in
    // controller-runtime. Re-created (restored) CRs get a new uid and so trigger again.
    let mut seen: HashSet<String> = HashSet::new();
    let (triggers, reader) = crate::controller::watch(api, move |event| match event {
        Event::Apply(obj) | Event::InitApply(obj) => {
            seen.insert(obj.uid().unwrap_or_default()).then_some(obj)
        }
        Event::Delete(_) | Event::Init | Event::InitDone => None,
    });
    let controller = Controller::for_stream(triggers, reader).graceful_shutdown_on(shutdown);
    crate::controller::run("SeedGenerator", controller, ctx, reconcile).await;
}
