//! The fault campaign over `lca-cli create` (issue #16, spec §8.5): the failpoint after each
//! marked step (`create/<step>`), once with SIGKILL and once with an injected error, on a
//! simulated seed node (host services from the host-services peer) pushing to a real
//! registry.
//!
//! - Killed: the imager is run again, as the operator would run it again, with the same
//!   environment (a point fires once per node). The re-run resumes: the killed step has no
//!   marker and runs again, the steps before it are not repeated (the certificates are
//!   expired once unless the kill hit `recert`), and it pushes a seed that Prep accepts.
//! - Injected error: the run fails with `failpoint create/<step>: injected`, the seed
//!   cluster is given back (units removed, work dirs gone, certificates restored if the
//!   expiry ran, kubelet enabled and started last) and the tag is not moved, with no blob
//!   pushed. After the operator backs the certificates up again, a clean re-run pushes a
//!   valid seed.
//!
//! After every run no `*.tmp` or `*.partial` file is left in `/var/tmp`, and after every
//! run that ended (failed or completed) the node differs from how it was before the case
//! exactly as a node differs after one clean create: what a fresh create finds. The
//! registry's tag moves only on a completed run.
//!
//! CI runs two cases (killed after `var-tgz`, an error after `ostree-tgz`);
//! `LCA_FAULT_CAMPAIGN=full` (hack/fault-campaign.sh) runs every step in both modes. The
//! table is printed and written to `target/fault-campaign-create.md`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::seed::{assert_cluster_given_back, pull_valid_seed};
use common::{lca_cli_bin, lca_cli_within, stderr};
use lca_seed::registry::Reference;
use lca_seed::{Credentials, SeedRegistry};
use lca_testkit::seednode::SeedNode;
use lca_testkit::{Registry, hostpeer};

/// The marked steps of `create`, in the order they run (`Ctx::once` in `create/mod.rs`).
const STEPS: [&str; 9] = [
    "containers-list",
    "manifest",
    "recert",
    "var-tgz",
    "etc-tgz",
    "ostree-tgz",
    "rpm-ostree",
    "mco-currentconfig",
    "origin",
];

/// The CI cases: a kill in the middle of the packing (after the expiry, so the re-run must
/// not expire again) and an error after the largest tarball.
const CI_CASES: [(&str, Mode); 2] = [("var-tgz", Mode::Kill), ("ostree-tgz", Mode::Error)];

/// The 2-core machine runs other end-to-end tests meanwhile: a create takes seconds, a hang
/// fails the case.
const RUN_LIMIT: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Kill,
    Error,
}

impl Mode {
    fn action(self) -> &'static str {
        match self {
            Mode::Kill => "return(kill)",
            Mode::Error => "return(injected)",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Kill => "SIGKILL",
            Mode::Error => "error",
        }
    }
}

/// One node entry, as far as a create may change it (no times).
#[derive(Clone, PartialEq, Debug)]
enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Link(PathBuf),
}

#[derive(Clone, PartialEq, Debug)]
enum Change {
    Added(Entry),
    Removed,
    Changed(Entry),
}

/// Every entry under the node's root but its `lca-sim` (the test's side of the node), keyed
/// by path with the node's deployment id written `<deployment>` so nodes compare.
fn snapshot(root: &Path, deployment: &str) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, deployment: &str, out: &mut BTreeMap<String, Entry>) {
        for e in fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(root).unwrap();
            if rel == Path::new("lca-sim") {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            let entry = if meta.file_type().is_symlink() {
                Entry::Link(fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                walk(root, &path, deployment, out);
                Entry::Dir { mode }
            } else {
                Entry::File {
                    mode,
                    data: fs::read(&path).unwrap(),
                }
            };
            let key = rel.display().to_string().replace(deployment, "<deployment>");
            out.insert(key, entry);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, deployment, &mut out);
    out
}

fn delta(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> BTreeMap<String, Change> {
    let mut d = BTreeMap::new();
    for (k, v) in after {
        match before.get(k) {
            None => {
                d.insert(k.clone(), Change::Added(v.clone()));
            }
            Some(old) if old != v => {
                d.insert(k.clone(), Change::Changed(v.clone()));
            }
            Some(_) => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        d.insert(k.clone(), Change::Removed);
    }
    d
}

/// Paths only (a file's bytes would flood the message).
fn describe(d: &BTreeMap<String, Change>) -> Vec<String> {
    d.iter()
        .map(|(k, c)| match c {
            Change::Added(_) => format!("+ {k}"),
            Change::Removed => format!("- {k}"),
            Change::Changed(_) => format!("~ {k}"),
        })
        .collect()
}

/// No half-written file anywhere under the node's `/var/tmp`.
fn assert_no_partial_files(root: &Path, when: &str) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".tmp") || name.ends_with(".partial") {
                found.push(path.clone());
            }
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(&root.join("var/tmp"), &mut found);
    assert_eq!(found, Vec::<PathBuf>::new(), "left in /var/tmp {when}");
}

/// The blobs the registry stores (a failed create must not have uploaded any).
fn blobs(registry: &Registry) -> BTreeSet<String> {
    let dir = registry.dir().join("data/docker/registry/v2/blobs/sha256");
    let mut out = BTreeSet::new();
    for prefix in fs::read_dir(&dir).unwrap() {
        for blob in fs::read_dir(prefix.unwrap().path()).unwrap() {
            out.insert(blob.unwrap().file_name().into_string().unwrap());
        }
    }
    out
}

/// A seed node as RHCOS has it: `/etc/systemd/system` and its `multi-user.target.wants`
/// always exist there, so whether create or the host-services peer would make them (with
/// different modes) is not part of what a create leaves behind.
fn seed_node() -> SeedNode {
    let node = SeedNode::build(64).unwrap();
    fs::create_dir_all(node.root().join("etc/systemd/system/multi-user.target.wants")).unwrap();
    node
}

struct Campaign {
    registry: Registry,
    image: String,
    reference: Reference,
    authfile: PathBuf,
    /// How one clean create changes a fresh node.
    expected: BTreeMap<String, Change>,
    rt: tokio::runtime::Runtime,
    _work: tempfile::TempDir,
}

/// What the operator leaves for the imager and the imager consumes: the certificate backup
/// (§8.5 step 5), made again before each generation.
struct CertBackup(Vec<(PathBuf, Vec<u8>)>);

impl CertBackup {
    fn take(root: &Path) -> Self {
        let dir = root.join(lca_api::consts::paths::BACKUP_CERTS_DIR);
        let files = fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let data = fs::read(&p).unwrap();
                (p, data)
            })
            .collect();
        CertBackup(files)
    }

    fn restore(&self, root: &Path) {
        let dir = root.join(lca_api::consts::paths::BACKUP_CERTS_DIR);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        for (p, data) in &self.0 {
            fs::write(p, data).unwrap();
        }
    }
}

impl Campaign {
    /// The registry, and the reference: one clean create on a fresh node, whose changes to
    /// the node every case must end with, and whose push puts the tag in place so a case
    /// can tell that a failed run did not move it.
    fn start() -> Self {
        lca_cli_bin();
        let registry = Registry::start().unwrap();
        let work = tempfile::tempdir().unwrap();
        let authfile = work.path().join("auth.json");
        fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
        let image = format!("{}/seed/sno:4.17.0", registry.addr());
        let reference = lca_seed::parse_reference(&image).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut c = Campaign {
            registry,
            image,
            reference,
            authfile,
            expected: BTreeMap::new(),
            rt,
            _work: work,
        };
        let node = seed_node();
        let before = snapshot(node.root(), &node.deployment);
        let out = c.create(&node, None);
        assert!(out.status.success(), "reference create: {}", stderr(&out));
        c.expected = delta(&before, &snapshot(node.root(), &node.deployment));
        // The baseline itself leaves nothing in /var/tmp and consumes the operator's
        // certificate backup.
        let in_tmp: Vec<_> = c
            .expected
            .iter()
            .filter(|(k, _)| k.contains("/var/tmp/"))
            .collect();
        assert!(
            !in_tmp.is_empty()
                && in_tmp
                    .iter()
                    .all(|(k, ch)| k.contains("/var/tmp/backupCertsDir") && **ch == Change::Removed),
            "{:#?}",
            describe(&c.expected)
        );
        c
    }

    fn create(&self, node: &SeedNode, failpoint: Option<String>) -> Output {
        let env: Vec<(&str, &str)> = failpoint
            .as_deref()
            .map(|f| ("FAILPOINTS", f))
            .into_iter()
            .collect();
        lca_cli_within(
            node.root(),
            &[
                "create",
                "--simulated",
                "--image",
                &self.image,
                "--authfile",
                self.authfile.to_str().unwrap(),
            ],
            &env,
            RUN_LIMIT,
        )
    }

    fn registry(&self) -> SeedRegistry {
        SeedRegistry::new(&self.reference, &Credentials::Anonymous, true)
    }

    /// The manifest digest the tag points at.
    fn tag(&self) -> String {
        let reg = self.registry();
        self.rt
            .block_on(reg.inspect(&self.reference))
            .unwrap()
            .manifest_digest
    }

    /// The tag holds a seed of `node` that Prep accepts.
    fn assert_valid_seed(&self, node: &SeedNode) {
        let reg = self.registry();
        let work = tempfile::tempdir().unwrap();
        let (info, seed) = self.rt.block_on(pull_valid_seed(
            &reg,
            &self.reference,
            &node.deployment,
            work.path(),
        ));
        assert!(info.manifest_digest.starts_with("sha256:"));
        // This node's seed and not an earlier one's, from the expiry that counted: each
        // expiry gets a new disposable kubeadmin hash.
        let carried: serde_json::Value =
            serde_json::from_slice(&fs::read(seed.join("recert_config.json")).unwrap()).unwrap();
        assert_eq!(carried, last_expiry_config(node.root()));
    }

    /// The node differs from `before` as one clean create leaves a node (`partly`: by a
    /// part of that, for a run that stopped before installing everything).
    fn assert_as_after_one_create(
        &self,
        node: &SeedNode,
        before: &BTreeMap<String, Entry>,
        partly: bool,
        when: &str,
    ) {
        let got = delta(before, &snapshot(node.root(), &node.deployment));
        let fits = if partly {
            got.iter().all(|(k, c)| self.expected.get(k) == Some(c))
        } else {
            got == self.expected
        };
        if !fits {
            panic!(
                "{when}: the node differs from one after a clean create\n got: {:#?}\n want: {:#?}",
                describe(&got),
                describe(&self.expected)
            );
        }
    }

    fn run_case(&self, step: &str, mode: Mode) -> Row {
        let node = seed_node();
        let root = node.root();
        let certs = CertBackup::take(root);
        let before = snapshot(root, &node.deployment);
        let (tag_before, blobs_before) = (self.tag(), blobs(&self.registry));
        let point = format!("create/{step}");
        let env = format!("{point}={}", mode.action());

        let started = Instant::now();
        let out = self.create(&node, Some(env.clone()));
        let faulted = started.elapsed();
        let err = stderr(&out);
        let fired = fs::read_to_string(root.join("lca-sim/failpoints.fired")).unwrap_or_default();
        assert_eq!(fired, format!("{point}\n"), "{err}");
        assert_no_partial_files(root, &format!("after {point} fired"));
        assert_eq!(self.tag(), tag_before, "{point}: the tag moved");
        assert_eq!(blobs(&self.registry), blobs_before, "{point}: a blob was pushed");

        let at = STEPS.iter().position(|s| *s == step).unwrap();
        let checks = root.join("var/tmp/checks");
        let outcome;
        let rerun_started;
        let out = match mode {
            Mode::Kill => {
                assert_eq!(out.status.signal(), Some(9), "{point}: {err}");
                // Killed between the step's work and its marker: the re-run must redo it
                // and only it.
                for (i, s) in STEPS.iter().enumerate() {
                    assert_eq!(
                        checks.join(format!("{s}.done")).exists(),
                        i < at,
                        "{point}: marker of {s}"
                    );
                }
                rerun_started = Instant::now();
                let out = self.create(&node, Some(env));
                let expiries = if step == "recert" { 2 } else { 1 };
                let configs = hostpeer::recert_configs(root);
                assert_eq!(
                    configs,
                    [
                        vec!["/var/tmp/backup/recert_config.json"; expiries],
                        vec!["/var/tmp/backupCertsDir/recert_restore_config.json"]
                    ]
                    .concat(),
                    "{point}: expired again only when killed in the expiry"
                );
                outcome = "killed; the re-run resumed at the step and pushed a valid seed";
                out
            }
            Mode::Error => {
                assert_eq!(out.status.code(), Some(1), "{point}: {err}");
                let message = format!("failpoint {point}: injected");
                assert!(err.contains(&message), "{point}: {err}");
                assert_cluster_given_back(root);
                // The expiry ran before an error from `recert` on: the certificates were
                // restored with it.
                let configs = hostpeer::recert_configs(root);
                let want: &[&str] = if at < 2 {
                    &[]
                } else {
                    &[
                        "/var/tmp/backup/recert_config.json",
                        "/var/tmp/backupCertsDir/recert_restore_config.json",
                    ]
                };
                assert_eq!(configs, want, "{point}");
                assert!(!checks.exists(), "{point}: markers left");
                self.assert_as_after_one_create(&node, &before, true, &format!("after {point} failed"));
                // The operator runs the generation again: it backs the certificates up first.
                certs.restore(root);
                rerun_started = Instant::now();
                let out = self.create(&node, None);
                outcome = "failed with `failpoint create/<step>: injected`; cluster given back, tag not moved; \
                           the clean re-run pushed a valid seed";
                out
            }
        };
        let rerun = rerun_started.elapsed();
        assert!(out.status.success(), "{point}: re-run: {}", stderr(&out));
        assert_cluster_given_back(root);
        assert_no_partial_files(root, &format!("after the re-run ({point})"));
        self.assert_as_after_one_create(&node, &before, false, &format!("after the re-run ({point})"));
        assert_ne!(self.tag(), tag_before, "{point}: the re-run did not push");
        self.assert_valid_seed(&node);
        Row {
            step: step.to_string(),
            mode,
            outcome: outcome.replace("<step>", step),
            faulted,
            rerun,
        }
    }
}

/// The config of the node's last force-expiry (the one the seed must carry).
fn last_expiry_config(root: &Path) -> serde_json::Value {
    let configs = hostpeer::recert_configs(root);
    let n = configs
        .iter()
        .rposition(|c| c == "/var/tmp/backup/recert_config.json")
        .unwrap();
    serde_json::from_slice(&fs::read(root.join(format!("lca-sim/recert/{}.json", n + 1))).unwrap()).unwrap()
}

struct Row {
    step: String,
    mode: Mode,
    outcome: String,
    faulted: Duration,
    rerun: Duration,
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| failpoint | mode | outcome | seconds (faulted run) | seconds (re-run) |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| `create/{}` | {} | {} | {:.1} | {:.1} |\n",
            r.step,
            r.mode.name(),
            r.outcome,
            r.faulted.as_secs_f64(),
            r.rerun.as_secs_f64()
        ));
    }
    out
}

#[test]
fn create_fault_campaign() {
    let full = std::env::var("LCA_FAULT_CAMPAIGN").is_ok_and(|v| v == "full");
    let cases: Vec<(&str, Mode)> = if full {
        STEPS
            .iter()
            .flat_map(|s| [(*s, Mode::Kill), (*s, Mode::Error)])
            .collect()
    } else {
        CI_CASES.to_vec()
    };
    let started = Instant::now();
    let campaign = Campaign::start();
    let mut rows = Vec::new();
    for (step, mode) in cases {
        eprintln!("create campaign: create/{step} {}", mode.name());
        let row = campaign.run_case(step, mode);
        // Each row as it is measured: a full run takes long enough to be read midway.
        eprint!("{}", table(std::slice::from_ref(&row)));
        rows.push(row);
    }
    let table = table(&rows);
    println!(
        "{table}\n{} cases in {:.0} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    fs::create_dir_all(&target).unwrap();
    fs::write(target.join("fault-campaign-create.md"), &table).unwrap();
}
