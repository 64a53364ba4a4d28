use super::*;
use proptest::prelude::*;

fn obj(kind: &str, name: &str, ns: &str, wave: Option<i64>) -> ObjectId {
    ObjectId {
        kind: kind.into(),
        name: name.into(),
        namespace: ns.into(),
        wave,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn waves_make_groups_and_names_order_a_group() {
    let objects = [
        obj("ConfigMap", "late", "apps", None),
        obj("Namespace", "apps", "", Some(1)),
        obj("ConfigMap", "b", "apps", Some(2)),
        obj("Secret", "a", "apps", Some(2)),
        obj(
            "SriovNetwork",
            "net",
            "openshift-sriov-network-operator",
            Some(10),
        ),
    ];
    let paths: Vec<(usize, String)> = layout(&objects).into_iter().map(|p| (p.index, p.path)).collect();
    assert_eq!(
        paths,
        [
            (1, "group1/1_Namespace_apps_.yaml".to_string()),
            (3, "group2/1_Secret_a_apps.yaml".to_string()),
            (2, "group2/2_ConfigMap_b_apps.yaml".to_string()),
            (
                4,
                "group3/1_SriovNetwork_net_openshift-sriov-network-operator.yaml".to_string()
            ),
            (0, "group4/1_ConfigMap_late_apps.yaml".to_string()),
        ]
    );
}

#[test]
fn an_explicit_last_wave_shares_the_group_of_objects_without_one() {
    let objects = [obj("A", "x", "", None), obj("B", "y", "", Some(LAST_WAVE))];
    let groups: Vec<usize> = layout(&objects).iter().map(|p| p.group).collect();
    assert_eq!(groups, [1, 1]);
}

#[test]
fn groups_sort_by_number_and_other_entries_are_not_groups() {
    let names = strings(&["group10", "group2", "group1", "README", "groupx", "group"]);
    assert_eq!(group_order(&names), strings(&["group1", "group2", "group10"]));
}

#[test]
fn files_sort_by_their_leading_number() {
    let names = strings(&[
        "10_ConfigMap_j_a.yaml",
        "2_ConfigMap_b_a.yaml",
        "1_Namespace_a_.yaml",
        "extra.yaml",
    ]);
    assert_eq!(
        file_order(&names),
        strings(&[
            "1_Namespace_a_.yaml",
            "2_ConfigMap_b_a.yaml",
            "10_ConfigMap_j_a.yaml",
            "extra.yaml"
        ])
    );
}

fn objects() -> impl Strategy<Value = Vec<ObjectId>> {
    let one = ("[a-z]{1,6}", prop::option::of(-3i64..15))
        .prop_map(|(name, wave)| obj("ConfigMap", &name, "ns", wave));
    prop::collection::vec(one, 0..40)
}

proptest! {
    /// Reading the written tree back (directories and files listed in any order) applies
    /// every object once, never an object of a higher wave before one of a lower wave.
    #[test]
    fn the_reader_applies_in_wave_order(objects in objects(), seed in any::<u64>()) {
        let placed = layout(&objects);
        prop_assert_eq!(placed.len(), objects.len());
        let mut dirs: Vec<String> = placed.iter().map(|p| format!("group{}", p.group)).collect();
        dirs.dedup();
        // A listing order unrelated to the names, as a directory read gives.
        let shuffle = |v: &mut Vec<String>| v.sort_by_key(|s| s.bytes().fold(seed, |h, b| h.rotate_left(5) ^ u64::from(b)));
        shuffle(&mut dirs);
        let mut applied = Vec::new();
        for dir in group_order(&dirs) {
            let mut files: Vec<String> = placed
                .iter()
                .filter(|p| p.path.starts_with(&format!("{dir}/")))
                .map(|p| p.path[dir.len() + 1..].to_string())
                .collect();
            shuffle(&mut files);
            for f in file_order(&files) {
                let p = placed.iter().find(|p| p.path == format!("{dir}/{f}")).unwrap();
                applied.push(p.index);
            }
        }
        let mut seen = applied.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..objects.len()).collect::<Vec<_>>());
        let waves: Vec<i64> = applied.iter().map(|&i| objects[i].wave.unwrap_or(LAST_WAVE)).collect();
        prop_assert!(waves.windows(2).all(|w| w[0] <= w[1]), "{:?}", waves);
    }
}
