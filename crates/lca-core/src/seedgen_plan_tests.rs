//! Table tests of the SeedGenerator plan, one row per rule of spec §8.1–§8.4, and a property
//! over every combination of facts.

use lca_api::Time;
use proptest::prelude::*;

use super::*;

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: None,
        last_transition_time: Time(lca_api::jiff::Timestamp::UNIX_EPOCH),
    }
}

#[test]
fn phases_follow_the_reference() {
    let ip = |s: &str, r: &str, m: &str| cond(ct::SEEDGEN_IN_PROGRESS, s, r, m);
    let done = |s: &str, r: &str| cond(ct::SEEDGEN_COMPLETED, s, r, "");
    let rows: Vec<(Vec<Condition>, Phase)> = vec![
        (vec![], Phase::Initial),
        (vec![ip("True", "InProgress", "")], Phase::Initial),
        (
            vec![ip("True", "InProgress", "Waiting for system to stabilize")],
            Phase::Generating,
        ),
        (
            vec![ip("True", "InProgress", "Launching imager container")],
            Phase::Finalizing,
        ),
        (
            vec![ip("True", "InProgress", "Finalizing seed generation")],
            Phase::Generating,
        ),
        (
            vec![done("False", "Failed"), ip("False", "Failed", "x")],
            Phase::Failed,
        ),
        (
            vec![ip("False", "Completed", "x"), done("True", "Completed")],
            Phase::Completed,
        ),
    ];
    for (conds, want) in rows {
        assert_eq!(phase(&conds), want, "{conds:?}");
    }
}

fn exited(code: i64) -> Option<ImagerState> {
    Some(ImagerState::Container {
        status: "exited".into(),
        exit_code: code,
    })
}

fn fail(message: &str) -> SeedGenAction {
    SeedGenAction::Fail {
        message: message.into(),
    }
}

#[test]
fn one_action_per_spec_row() {
    let with = |phase, f: &dyn Fn(&mut SeedGenFacts)| {
        let mut facts = SeedGenFacts::new(phase);
        f(&mut facts);
        next(&facts)
    };
    let check_failed = "Seed generation failed: imager container status check failed: ";
    let rows: Vec<(&str, SeedGenAction, SeedGenAction)> = vec![
        (
            "§8.1 a CR not named seedimage is ignored",
            with(Phase::Initial, &|f| f.singleton = false),
            SeedGenAction::Ignore {
                note: "not the singleton seedimage",
            },
        ),
        (
            "§8.2 the first failed check is the rejection",
            with(Phase::Initial, &|f| {
                f.rejection = Some(m::SEEDGEN_REJECT_PVS.into())
            }),
            fail("Rejected: Cluster must not have any Persistent Volumes configured"),
        ),
        (
            "§8.2 pass: waiting for system to stabilize, requeue 2 s",
            with(Phase::Initial, &|_| {}),
            SeedGenAction::Wait {
                message: "Waiting for system to stabilize".into(),
                requeue: Duration::from_secs(2),
            },
        ),
        (
            "§8.3 unhealthy: the health error after the waiting message, requeue 20 s",
            with(Phase::Generating, &|f| {
                f.unhealthy = Some("ClusterVersion not available".into())
            }),
            SeedGenAction::Wait {
                message: "Waiting for system to stabilize: ClusterVersion not available".into(),
                requeue: Duration::from_secs(20),
            },
        ),
        (
            "§8.3 healthy: the generating steps",
            with(Phase::Generating, &|_| {}),
            SeedGenAction::Generate,
        ),
        (
            "§8.4 the imager exited 0: completed",
            with(Phase::Finalizing, &|f| f.imager = exited(0)),
            SeedGenAction::Complete,
        ),
        (
            "§8.4 a non-zero exit code",
            with(Phase::Finalizing, &|f| f.imager = exited(1)),
            fail(&format!("{check_failed}expected container status 0, found: 1")),
        ),
        (
            "§8.4 a non-zero exit code, with what the imager said",
            with(Phase::Finalizing, &|f| {
                f.imager = exited(1);
                f.imager_error = Some("lca-cli: push refused (401)".into());
            }),
            fail(&format!(
                "{check_failed}expected container status 0, found: 1; lca-cli: push refused (401)"
            )),
        ),
        (
            "§8.4 a container still running",
            with(Phase::Finalizing, &|f| {
                f.imager = Some(ImagerState::Container {
                    status: "running".into(),
                    exit_code: 0,
                })
            }),
            fail(&format!(
                "{check_failed}expected container status exited, found: running"
            )),
        ),
        (
            "§8.4 no single container",
            with(Phase::Finalizing, &|f| {
                f.imager = Some(ImagerState::Unknown {
                    reason: "expected 1 item in podman inspect output, got 0".into(),
                })
            }),
            fail(&format!(
                "{check_failed}expected 1 item in podman inspect output, got 0"
            )),
        ),
        (
            "§8.1 failed is a no-op",
            with(Phase::Failed, &|_| {}),
            SeedGenAction::Ignore {
                note: "seed generation has failed; delete and re-create the SeedGenerator to try again",
            },
        ),
        (
            "§8.1 completed is a no-op",
            with(Phase::Completed, &|_| {}),
            SeedGenAction::Ignore {
                note: "seed generation has completed",
            },
        ),
    ];
    for (row, got, want) in rows {
        assert_eq!(got, want, "{row}");
    }
}

#[test]
fn steps_are_announced_in_the_reference_order() {
    let messages: Vec<&str> = GenStep::ORDER.iter().map(|s| s.message()).collect();
    assert_eq!(
        messages,
        [
            "Starting seed generation",
            "Pulling recert image",
            "Preparing for seed generation",
            "Cleaning cluster resources",
            "Launching imager container",
        ]
    );
}

fn any_phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Initial),
        Just(Phase::Generating),
        Just(Phase::Finalizing),
        Just(Phase::Completed),
        Just(Phase::Failed),
    ]
}

fn any_imager() -> impl Strategy<Value = Option<ImagerState>> {
    prop_oneof![
        Just(None),
        ("[a-z]{0,8}", -2i64..3)
            .prop_map(|(status, exit_code)| Some(ImagerState::Container { status, exit_code })),
        Just(Some(ImagerState::Container {
            status: "exited".into(),
            exit_code: 0
        })),
        "[a-z ]{1,12}".prop_map(|reason| Some(ImagerState::Unknown { reason })),
    ]
}

fn any_facts() -> impl Strategy<Value = SeedGenFacts> {
    (
        any::<bool>(),
        any_phase(),
        proptest::option::of("[A-Za-z ]{1,20}"),
        proptest::option::of("[A-Za-z ]{1,20}"),
        any_imager(),
        proptest::option::of("lca-cli: [a-z ]{1,20}"),
    )
        .prop_map(
            |(singleton, phase, rejection, unhealthy, imager, imager_error)| SeedGenFacts {
                singleton,
                phase,
                rejection,
                unhealthy,
                imager,
                imager_error,
            },
        )
}

proptest! {
    /// Seed generation completes only after the imager was launched and exited 0; it starts
    /// only on a healthy cluster after the checks; terminal phases never act; and every
    /// failure has a message.
    #[test]
    fn completion_needs_an_imager_that_exited_zero(f in any_facts()) {
        let a = next(&f);
        let zero = Some(ImagerState::Container { status: "exited".into(), exit_code: 0 });
        if a == SeedGenAction::Complete {
            prop_assert!(f.singleton && f.phase == Phase::Finalizing && f.imager == zero);
        }
        if a == SeedGenAction::Generate {
            prop_assert!(f.phase == Phase::Generating && f.unhealthy.is_none());
        }
        if !f.singleton || matches!(f.phase, Phase::Completed | Phase::Failed) {
            prop_assert!(matches!(a, SeedGenAction::Ignore { .. }), "{a:?}");
        }
        if let SeedGenAction::Fail { message } = &a {
            prop_assert!(!message.is_empty());
        }
    }
}

#[test]
fn the_imager_error_is_its_last_lca_cli_line_cut_to_512_bytes() {
    use super::imager_error_line;
    let log = "2026-12-03T09:00:00Z INFO lca-cli: running\nlca-cli: first\nnoise\nlca-cli: second\n";
    assert_eq!(imager_error_line(log).as_deref(), Some("lca-cli: second"));
    assert_eq!(imager_error_line("INFO create\n"), None);
    let long = format!("lca-cli: {}", "é".repeat(600));
    let cut = imager_error_line(&long).unwrap();
    assert!(cut.len() <= 512 && cut.len() > 500, "{}", cut.len());
}
