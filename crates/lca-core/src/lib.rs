//! Pure decisions of lca-rs: given plain data (the CR's spec and status, facts observed on the
//! node), decide what to do next. No I/O and no clock reads (time comes in as an argument),
//! so every rule of the stage machine is unit- and property-tested here.

pub mod autorollback;
pub mod category;
pub mod conditions;
pub mod health;
pub mod history;
pub mod image_cleanup;
pub mod manifest_decode;
pub mod manifest_layout;
pub mod network_check;
pub mod oadp;
pub mod outcome;
pub mod precache_plan;
pub mod prep_plan;
pub mod seed_images;
pub mod seedgen_plan;
pub mod stage;
pub mod task;
pub mod transition;
pub mod upgrade_plan;
pub mod version;

pub use category::Category;
pub use outcome::{IdleOutcome, PhaseEvent, StepOutcome, StepReport};
pub use stage::{in_progress_stage, is_transition_requested, valid_next_stages};
pub use task::{TaskDetail, TaskFacts, TaskKind, TaskState};
pub use transition::{IdleKind, Outcome, apply_transition};
