//! `lca-bench-upgrade --oadp`: the whole upgrade with OADP content of 50 objects (three
//! namespaces of ConfigMaps and Secrets) backed up and restored in 3 waves by the Velero test
//! peer. The peer records when it first saw each Backup/Restore and when it finished it, so
//! the operator's part of each wave is the gap between the end of the previous wave (or the
//! start of the phase) and the peer's first sight of the next wave's objects; that gap also
//! holds up to one peer poll (200 ms), so it is an upper bound. The peer's own work is printed
//! apart (`peer_*`). Target of the issue: < 1 s of operator time per wave.

use std::time::{Duration, Instant};

use lca_testkit::oadpenv;
use lca_testkit::velero::{PeerEvent, VeleroPeer};

use super::{
    Setup, boot_units, err, out, reboot_harness, secs, setup, start_operator, wait_for, wait_request,
};

const WAVES: usize = 3;
const OBJECTS: usize = 50;

/// The namespaces, objects and the ConfigMap: wave `w` backs up and restores `bench-<w>`.
fn content() -> (String, String) {
    let mut objects = String::new();
    for w in 1..=WAVES {
        objects.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: bench-{w}}}\n---\n"
        ));
    }
    for i in 0..OBJECTS - WAVES {
        let w = i % WAVES + 1;
        let kind = if i % 2 == 0 { "ConfigMap" } else { "Secret" };
        let field = if kind == "ConfigMap" { "data" } else { "stringData" };
        objects.push_str(&format!(
            "apiVersion: v1\nkind: {kind}\nmetadata: {{name: obj-{i}, namespace: bench-{w}}}\n{field}: {{k: v{i}}}\n---\n"
        ));
    }
    let mut oadp = String::new();
    for w in 1..=WAVES {
        oadp.push_str(&format!(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: bench-{w}, namespace: openshift-adp, annotations: {{lca.openshift.io/apply-wave: \"{w}\"}}}}\nspec: {{includedNamespaces: [bench-{w}], includedNamespaceScopedResources: [configmaps, secrets]}}\n---\n\
             apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: bench-{w}, namespace: openshift-adp, annotations: {{lca.openshift.io/apply-wave: \"{w}\"}}}}\nspec: {{backupName: bench-{w}}}\n---\n"
        ));
    }
    (objects, oadp)
}

/// Per wave: the operator's gap before it (upper bound) and the peer's work in it. A wave can
/// start once the previous one is done and, for a Restore, its Backup was synced.
fn waves(events: &[PeerEvent], kind: &str, start: Instant) -> Vec<(Duration, Duration)> {
    let mut prev_end = start;
    let mut out = Vec::new();
    for w in 1..=WAVES {
        let name = format!("bench-{w}");
        let Some(ev) = events.iter().find(|e| e.kind == kind && e.name == name) else {
            break;
        };
        // A Restore can start only once Velero synced its Backup into the new cluster.
        let synced = events
            .iter()
            .filter(|e| kind == "Restore" && e.kind == "Sync" && e.name == name)
            .filter_map(|e| e.done_at)
            .max();
        let ready = synced.map_or(prev_end, |s| s.max(prev_end));
        let done = ev.done_at.unwrap_or(ev.seen_at);
        out.push((ev.seen_at.saturating_duration_since(ready), done - ev.seen_at));
        prev_end = done;
    }
    out
}

/// The DPA, the objects and the ConfigMap in the original cluster, and the peer serving
/// `store`.
pub async fn install(client: kube::Client, store: std::path::PathBuf) -> Result<VeleroPeer, String> {
    let (objects, oadp) = content();
    oadpenv::apply(&client, oadpenv::DPA_YAML)
        .await
        .map_err(err("DPA"))?;
    oadpenv::apply(&client, &objects).await.map_err(err("objects"))?;
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench-oadp", "namespace": "openshift-adp"}, "data": {"oadp.yaml": oadp}});
    oadpenv::apply(&client, &cm.to_string())
        .await
        .map_err(err("configmap"))?;
    Ok(VeleroPeer::start(client, store))
}

pub async fn run(timeout: Duration) -> Result<(), String> {
    let spec = serde_json::json!({"oadpContent": [{"name": "bench-oadp", "namespace": "openshift-adp"}]});
    let store = tempfile::tempdir().map_err(err("object store"))?;
    let Setup {
        target,
        root,
        mut cp,
        registry,
        api,
        op,
        peer,
    } = setup(timeout, spec, false, Some(store.path())).await?;
    let peer = peer.ok_or("the Velero peer did not start")?;
    let t = super::patch(&api, serde_json::json!({"stage": "Upgrade"})).await?;
    let request = wait_request(&root, t, timeout).await?;
    out("oadp_prepivot_secs", secs(request - t));
    let events = peer.events();
    for (i, (gap, work)) in waves(&events, "Backup", t).iter().enumerate() {
        out(
            &format!("oadp_backup_wave{}_operator_secs_max", i + 1),
            secs(*gap),
        );
        out(&format!("peer_backup_wave{}_secs", i + 1), secs(*work));
    }
    let last_backup = events
        .iter()
        .filter(|e| e.kind == "Backup")
        .filter_map(|e| e.done_at)
        .max();
    if let Some(end) = last_backup {
        out("oadp_last_backup_to_reboot_request_secs", secs(request - end));
    }
    op.kill();
    reboot_harness(&root, &mut cp).await?;
    let units = boot_units(&root).await?;
    let t = Instant::now();
    let op = start_operator(&cp, &root)?;
    let done = wait_for(&api, "UpgradeCompleted", timeout).await?;
    out("oadp_operator_postpivot_secs", secs(done - t));
    let first_restore = peer
        .events()
        .iter()
        .find(|e| e.kind == "Restore")
        .map(|e| e.seen_at);
    if let Some(first) = first_restore {
        // Operator start-up, the health gate (the DPA reconciled again by OADP, the API
        // server's first lists after its restart) and the Backups' sync.
        out("oadp_operator_start_to_first_restore_secs", secs(first - t));
    }
    let events = peer.events();
    for (i, (gap, work)) in waves(&events, "Restore", t).iter().enumerate() {
        out(
            &format!("oadp_restore_wave{}_operator_secs_max", i + 1),
            secs(*gap),
        );
        out(&format!("peer_restore_wave{}_secs", i + 1), secs(*work));
    }
    out("peer_busy_secs", secs(peer.busy()));
    out("operator_postpivot_run_vmhwm_kib", super::usage_of(op.pid()).1);
    drop((op, units, registry, target));
    Ok(())
}
