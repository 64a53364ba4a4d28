//! Cluster health evaluation (spec §6.6) over plain data: the operator's `cluster_health`
//! observer reads the objects and fills [`Facts`]; this module decides which checks fail and
//! renders the reference's error texts. Two tiers: *mandatory* (ClusterOperators,
//! MachineConfigPools, then SR-IOV and OADP once the operators are ready) and *deferred*
//! (the single node, CSVs, CSRs); *all* is both, used by Prep, pre-pivot, finalize and seedgen.
//!
//! Each fact group is a `Result`: a failed read is itself a failure, reported with the
//! observer's message in the same list as the others.

use lca_api::consts::messages as m;

/// A read of the observer that failed; its message (the reference's text, e.g. `failed to
/// get mcp list: ...`) is reported in the list of failures like any failed check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadFailure(pub String);

impl ReadFailure {
    /// The failure of a read, as its error displays.
    pub fn of<E: std::fmt::Display>(e: E) -> Self {
        Self(e.to_string())
    }
}

impl From<String> for ReadFailure {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for ReadFailure {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// What the observer read: the facts, or why they could not be read.
pub type Observed<T> = Result<T, ReadFailure>;

/// Failed health checks, rendered as the reference's single error (see [`render`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unhealthy(pub String);

impl PartialEq<&str> for Unhealthy {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A condition as (type, status).
pub type Cond = (String, String);

/// One object with a name and its status conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub conditions: Vec<Cond>,
}

/// A MachineConfigPool's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub machine_count: i64,
    pub ready_machine_count: i64,
}

/// A node: conditions and the names of its labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub conditions: Vec<Cond>,
    pub labels: Vec<String>,
}

/// OADP objects in `openshift-adp` (present only when the DPA CRD exists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oadp {
    pub dpas: Vec<Named>,
    /// BackupStorageLocations as (name, phase); read only when a DPA is reconciled.
    pub bsls: Observed<Vec<(String, String)>>,
}

/// Everything the checks look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub cluster_operators: Observed<Vec<Named>>,
    pub pools: Observed<Vec<Pool>>,
    /// `syncStatus` of each SriovNetworkNodeState; `Ok(None)` when the CRD is absent.
    pub sriov: Observed<Option<Vec<String>>>,
    /// `Ok(None)` when the DPA CRD is absent.
    pub oadp: Observed<Option<Oadp>>,
    /// Infrastructure `status.infrastructureTopology == SingleReplica`.
    pub single_replica: Observed<bool>,
    pub nodes: Observed<Vec<NodeFacts>>,
    /// (name, phase).
    pub csvs: Observed<Vec<(String, String)>>,
    /// (name, approved).
    pub csrs: Observed<Vec<(String, bool)>>,
}

impl Default for Facts {
    /// A healthy, empty cluster.
    fn default() -> Self {
        Self {
            cluster_operators: Ok(vec![]),
            pools: Ok(vec![]),
            sriov: Ok(None),
            oadp: Ok(None),
            single_replica: Ok(false),
            nodes: Ok(vec![]),
            csvs: Ok(vec![]),
            csrs: Ok(vec![]),
        }
    }
}

/// The node-role labels a single-node cluster's node must carry.
pub const NODE_ROLE_LABELS: [&str; 3] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
    "node-role.kubernetes.io/worker",
];

/// True when the condition of `type_` exists with status `True` (a missing one is not True).
pub fn is_true(conds: &[Cond], type_: &str) -> bool {
    conds
        .iter()
        .find(|(t, _)| t == type_)
        .is_some_and(|(_, s)| s == "True")
}

fn list_failure(prefix: &str, names: Vec<&str>) -> Option<String> {
    (!names.is_empty()).then(|| format!("{prefix}{}", names.join(", ")))
}

fn cluster_operators(cos: &[Named]) -> Option<String> {
    let bad = cos
        .iter()
        .filter(|c| {
            !is_true(&c.conditions, "Available")
                || is_true(&c.conditions, "Progressing")
                || is_true(&c.conditions, "Degraded")
        })
        .map(|c| c.name.as_str())
        .collect();
    list_failure(m::HEALTH_CO_NOT_READY, bad)
}

fn sriov(states: &[String]) -> Option<String> {
    if states.is_empty() {
        return Some(m::HEALTH_NO_SRIOV_STATES.into());
    }
    states
        .iter()
        .any(|s| s != "Succeeded")
        .then(|| m::HEALTH_SRIOV_NOT_READY.into())
}

fn oadp(o: &Oadp) -> Option<String> {
    if o.dpas.is_empty() {
        return None;
    }
    if !o.dpas.iter().any(|d| is_true(&d.conditions, "Reconciled")) {
        return Some(m::HEALTH_DPA_NOT_RECONCILED.into());
    }
    match &o.bsls {
        Err(e) => Some(e.0.clone()),
        Ok(bsls) if bsls.is_empty() => Some(m::HEALTH_NO_BSLS.into()),
        Ok(bsls) => bsls
            .iter()
            .find(|(_, phase)| phase != "Available")
            .map(|(name, _)| format!("backupStorageLocation {name} not available")),
    }
}

/// Failures of the mandatory tier, in the reference's order.
pub fn mandatory(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    let cos_ready = match &f.cluster_operators {
        Err(e) => {
            out.push(e.0.clone());
            false
        }
        Ok(cos) => cluster_operators(cos).map(|e| out.push(e)).is_none(),
    };
    match &f.pools {
        Err(e) => out.push(e.0.clone()),
        Ok(pools) => {
            let bad = pools
                .iter()
                .filter(|p| p.machine_count != p.ready_machine_count)
                .map(|p| p.name.as_str())
                .collect();
            out.extend(list_failure(m::HEALTH_MCP_NOT_READY, bad));
        }
    }
    // SR-IOV and OADP settle only after the operators do; checking earlier reports noise.
    if cos_ready {
        match &f.sriov {
            Err(e) => out.push(e.0.clone()),
            Ok(Some(states)) => out.extend(sriov(states)),
            Ok(None) => {}
        }
        match &f.oadp {
            Err(e) => out.push(e.0.clone()),
            Ok(Some(o)) => out.extend(oadp(o)),
            Ok(None) => {}
        }
    }
    out
}

fn node(n: &NodeFacts) -> Option<String> {
    if !is_true(&n.conditions, "Ready") {
        return Some(format!("node is not yet ready: {}", n.name));
    }
    if is_true(&n.conditions, "NetworkUnavailable") {
        return Some(format!("node network unavailable: {}", n.name));
    }
    NODE_ROLE_LABELS
        .iter()
        .find(|l| !n.labels.iter().any(|have| have == *l))
        .map(|l| format!("node missing {l} label: {}", n.name))
}

/// Failures of the deferred tier, in the reference's order.
pub fn deferred(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    match &f.single_replica {
        Err(e) => out.push(e.0.clone()),
        // Only a single-node topology promises one Ready node with all roles.
        Ok(true) => match &f.nodes {
            Err(e) => out.push(e.0.clone()),
            Ok(nodes) => out.extend(nodes.iter().find_map(node)),
        },
        Ok(false) => {}
    }
    match &f.csvs {
        Err(e) => out.push(e.0.clone()),
        Ok(csvs) => {
            let bad = csvs
                .iter()
                // The operator's own CSV may be mid-upgrade while it runs these checks.
                .filter(|(name, phase)| !name.contains("lifecycle-agent") && phase != "Succeeded")
                .map(|(name, _)| name.as_str())
                .collect();
            out.extend(list_failure(m::HEALTH_CSV_NOT_READY, bad));
        }
    }
    match &f.csrs {
        Err(e) => out.push(e.0.clone()),
        Ok(csrs) => out.extend(
            csrs.iter()
                .find(|(_, approved)| !approved)
                .map(|(name, _)| format!("certificateSigningRequest (csr) {name} not yet approved")),
        ),
    }
    out
}

/// Render failures as the reference's single error (`None` when healthy).
pub fn render(failures: &[String]) -> Option<String> {
    let (first, rest) = failures.split_first()?;
    let mut text = format!("{}: {first}", m::HEALTH_FAILED);
    for f in rest {
        text.push_str("\n  - ");
        text.push_str(f);
    }
    Some(text)
}

/// The "all" variant: mandatory then deferred.
pub fn all(f: &Facts) -> Result<(), Unhealthy> {
    let mut failures = mandatory(f);
    failures.extend(deferred(f));
    render(&failures).map_or(Ok(()), |text| Err(Unhealthy(text)))
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
