//! Where pre-pivot puts the policy and extra manifests in the new stateroot, and the order in
//! which post-pivot applies them (spec §6.1 step 6, §6.5 step 4, §4.2). Objects of one
//! `lca.openshift.io/apply-wave` form one group; groups go in ascending wave order (a missing
//! wave is last), objects of a group by name. Pre-pivot writes object `j` of group `N` to
//! `group<N>/<j>_<Kind>_<name>_<namespace>.yaml`, both counted from 1. Upstream's post-pivot
//! may read these files, and ours may read upstream's, so the names are upstream's.
//!
//! Reading, group directories sort by their number (`group10` after `group2`, the fix of
//! upstream's ordering bug); files inside a group sort by their leading number as well, where
//! upstream sorts them by name (`10_…` before `2_…`). Within a group the objects share a
//! wave, so both orders honour the user's waves.

/// The wave of an object without the annotation: after every explicit wave.
pub const LAST_WAVE: i64 = i32::MAX as i64;

/// What the layout needs of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectId {
    pub kind: String,
    pub name: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    /// `None` when the object has no apply-wave annotation.
    pub wave: Option<i64>,
}

/// One object's place: `objects[index]` goes to `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub index: usize,
    pub group: usize,
    pub position: usize,
    /// `group<N>/<j>_<Kind>_<name>_<namespace>.yaml`, relative to the manifests directory.
    pub path: String,
}

/// The files of `objects`, in apply order.
pub fn layout(objects: &[ObjectId]) -> Vec<Placed> {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    let wave = |i: usize| objects[i].wave.unwrap_or(LAST_WAVE);
    order.sort_by(|&a, &b| {
        wave(a)
            .cmp(&wave(b))
            .then_with(|| objects[a].name.cmp(&objects[b].name))
    });
    let mut placed = Vec::with_capacity(order.len());
    let (mut group, mut position, mut current) = (0, 0, None);
    for index in order {
        if current != Some(wave(index)) {
            (group, position, current) = (group + 1, 0, Some(wave(index)));
        }
        position += 1;
        let path = file_path(group, position, &objects[index]);
        placed.push(Placed {
            index,
            group,
            position,
            path,
        });
    }
    placed
}

/// `group<N>/<j>_<Kind>_<name>_<namespace>.yaml`: object `position` of group `group`.
pub fn file_path(group: usize, position: usize, o: &ObjectId) -> String {
    format!(
        "group{group}/{position}_{}_{}_{}.yaml",
        o.kind, o.name, o.namespace
    )
}

/// The leading number of `name` after `prefix` (`group12` → 12, `3_ConfigMap_a_b.yaml` → 3).
fn number(name: &str, prefix: &str, until: &[char]) -> Option<u64> {
    let rest = name.strip_prefix(prefix)?;
    let digits = rest.split(until).next()?;
    digits.parse().ok()
}

/// The group directories among `names`, in apply order; names that are not `group<N>` are
/// not manifest groups and are left out.
pub fn group_order(names: &[String]) -> Vec<String> {
    let mut groups: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| number(n, "group", &[]).map(|g| (g, n)))
        .collect();
    groups.sort();
    groups.into_iter().map(|(_, n)| n.clone()).collect()
}

/// The files of one group, in apply order: by leading number, then by name (a file without
/// one, written by hand, goes after the numbered ones).
pub fn file_order(names: &[String]) -> Vec<String> {
    let mut files: Vec<(u64, &String)> = names
        .iter()
        .map(|n| (number(n, "", &['_']).unwrap_or(u64::MAX), n))
        .collect();
    files.sort();
    files.into_iter().map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
#[path = "manifest_layout_tests.rs"]
mod tests;
