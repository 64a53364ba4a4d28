//! Table tests of the health evaluation: one row per broken piece, with the exact text.
#![allow(clippy::unwrap_used)]

use super::*;

fn conds(pairs: &[(&str, &str)]) -> Vec<Cond> {
    pairs
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect()
}

fn co(name: &str, pairs: &[(&str, &str)]) -> Named {
    Named {
        name: name.into(),
        conditions: conds(pairs),
    }
}

const CO_OK: &[(&str, &str)] = &[
    ("Available", "True"),
    ("Progressing", "False"),
    ("Degraded", "False"),
];

fn sno_node() -> NodeFacts {
    NodeFacts {
        name: "sno".into(),
        conditions: conds(&[("Ready", "True"), ("NetworkUnavailable", "False")]),
        labels: NODE_ROLE_LABELS.iter().map(|s| s.to_string()).collect(),
    }
}

fn healthy() -> Facts {
    Facts {
        cluster_operators: Ok(vec![co("etcd", CO_OK), co("kube-apiserver", CO_OK)]),
        pools: Ok(vec![Pool {
            name: "master".into(),
            machine_count: 1,
            ready_machine_count: 1,
        }]),
        single_replica: Ok(true),
        nodes: Ok(vec![sno_node()]),
        csvs: Ok(vec![("oadp-operator.v1.4.0".into(), "Succeeded".into())]),
        csrs: Ok(vec![("csr-1".into(), true)]),
        ..Facts::default()
    }
}

fn dpa(reconciled: &str) -> Named {
    co("dpa", &[("Reconciled", reconciled)])
}

#[test]
fn healthy_cluster_passes_every_tier() {
    assert_eq!(all(&healthy()), Ok(()));
    assert_eq!(all(&Facts::default()), Ok(()));
}

#[test]
fn each_broken_piece_reports_the_reference_text() {
    type Break = fn(&mut Facts);
    let rows: Vec<(&str, Break, &str)> = vec![
        (
            "co unavailable",
            |f| f.cluster_operators.as_mut().unwrap()[0].conditions = conds(&[("Available", "False")]),
            "one or more ClusterOperators not yet ready: etcd",
        ),
        (
            "co without conditions",
            |f| f.cluster_operators.as_mut().unwrap()[1].conditions.clear(),
            "one or more ClusterOperators not yet ready: kube-apiserver",
        ),
        (
            "co progressing",
            |f| {
                f.cluster_operators.as_mut().unwrap()[0].conditions =
                    conds(&[("Available", "True"), ("Progressing", "True")])
            },
            "one or more ClusterOperators not yet ready: etcd",
        ),
        (
            "co degraded",
            |f| {
                f.cluster_operators.as_mut().unwrap()[1].conditions =
                    conds(&[("Available", "True"), ("Degraded", "True")])
            },
            "one or more ClusterOperators not yet ready: kube-apiserver",
        ),
        (
            "mcp updating",
            |f| f.pools.as_mut().unwrap()[0].ready_machine_count = 0,
            "one or more MachineConfigPools not yet ready: master",
        ),
        (
            "no sriov states",
            |f| f.sriov = Ok(Some(vec![])),
            "no SriovNetworkNodeStates present",
        ),
        (
            "sriov in progress",
            |f| f.sriov = Ok(Some(vec!["Succeeded".into(), "InProgress".into()])),
            "sriovNetworkNodeState not ready",
        ),
        (
            "dpa not reconciled",
            |f| {
                f.oadp = Ok(Some(Oadp {
                    dpas: vec![dpa("False")],
                    bsls: Ok(vec![]),
                }))
            },
            "dataProtectionApplication not reconciled",
        ),
        (
            "no bsl",
            |f| {
                f.oadp = Ok(Some(Oadp {
                    dpas: vec![dpa("True")],
                    bsls: Ok(vec![]),
                }))
            },
            "backupsStorageLocations not yet created",
        ),
        (
            "bsl unavailable",
            |f| {
                f.oadp = Ok(Some(Oadp {
                    dpas: vec![dpa("True")],
                    bsls: Ok(vec![("default".into(), "Unavailable".into())]),
                }))
            },
            "backupStorageLocation default not available",
        ),
        (
            "node not ready",
            |f| f.nodes.as_mut().unwrap()[0].conditions = conds(&[("Ready", "False")]),
            "node is not yet ready: sno",
        ),
        (
            "node network unavailable",
            |f| {
                f.nodes.as_mut().unwrap()[0].conditions =
                    conds(&[("Ready", "True"), ("NetworkUnavailable", "True")])
            },
            "node network unavailable: sno",
        ),
        (
            "node missing worker role",
            |f| {
                f.nodes.as_mut().unwrap()[0].labels.pop();
            },
            "node missing node-role.kubernetes.io/worker label: sno",
        ),
        (
            "csv installing",
            |f| {
                f.csvs
                    .as_mut()
                    .unwrap()
                    .push(("sriov-operator.v4.17".into(), "Installing".into()))
            },
            "one or more ClusterServiceVersions not yet ready: sriov-operator.v4.17",
        ),
        (
            "csr pending",
            |f| f.csrs.as_mut().unwrap().push(("csr-2".into(), false)),
            "certificateSigningRequest (csr) csr-2 not yet approved",
        ),
        (
            "read failure",
            |f| f.pools = Err("failed to get mcp list: boom".into()),
            "failed to get mcp list: boom",
        ),
    ];
    for (what, brk, text) in rows {
        let mut f = healthy();
        brk(&mut f);
        assert_eq!(
            all(&f),
            Err(Unhealthy(format!("one or more health checks failed: {text}"))),
            "{what}"
        );
    }
}

#[test]
fn ignored_pieces() {
    let mut f = healthy();
    // The operator's own CSV, a node outside a single-node topology, DPAs absent.
    f.csvs
        .as_mut()
        .unwrap()
        .push(("lifecycle-agent.v5.0.0".into(), "Replacing".into()));
    f.single_replica = Ok(false);
    f.nodes.as_mut().unwrap()[0].conditions.clear();
    f.oadp = Ok(Some(Oadp {
        dpas: vec![],
        bsls: Err("never read".into()),
    }));
    assert_eq!(all(&f), Ok(()));
}

#[test]
fn sriov_and_oadp_wait_for_the_operators() {
    let mut f = healthy();
    f.cluster_operators.as_mut().unwrap()[0].conditions.clear();
    f.sriov = Ok(Some(vec![]));
    f.oadp = Ok(Some(Oadp {
        dpas: vec![dpa("False")],
        bsls: Ok(vec![]),
    }));
    assert_eq!(
        mandatory(&f),
        vec!["one or more ClusterOperators not yet ready: etcd"]
    );
}

#[test]
fn several_failures_are_listed_mandatory_first() {
    let mut f = healthy();
    f.csrs.as_mut().unwrap().push(("csr-9".into(), false));
    f.pools.as_mut().unwrap()[0].ready_machine_count = 0;
    f.cluster_operators.as_mut().unwrap()[0].conditions.clear();
    f.cluster_operators.as_mut().unwrap()[1].conditions.clear();
    assert_eq!(
        all(&f).unwrap_err(),
        "one or more health checks failed: one or more ClusterOperators not yet ready: etcd, kube-apiserver\n  \
         - one or more MachineConfigPools not yet ready: master\n  \
         - certificateSigningRequest (csr) csr-9 not yet approved"
    );
    assert_eq!(deferred(&f).len(), 1);
    assert_eq!(render(&[]), None);
}
