//! `lca-bench-prep [--seed-mib N] [--images N] [--image-mib M] [--timeout-secs S]`: the Prep
//! benchmark, run through `hack/bench-prep` (which builds the release operator and `lca-cli`).
//!
//! One run, one set of data: a loopback control plane with a healthy simulated SNO, a
//! simulated target node, a loopback registry with `--images` images of `--image-mib` MiB each
//! and a seed whose `/var` holds `--seed-mib` MiB (packed by the release `lca-cli create`).
//! Then, in this order:
//! 1. Prep through the real operator (`--node=simulated`): wall time from the stage patch to
//!    `PrepCompleted=True`, the operator's RSS and the RSS of the `lca-cli` task processes
//!    (sampled every 100 ms from `/proc`), and where the time went (task start/exit times from
//!    the task dirs, stateroot-setup steps from its log).
//! 2. The raw tool steps on the same registry and data: `skopeo copy` of every image in
//!    parallel into a fresh private containers-storage, `skopeo copy` of the seed to `dir:`,
//!    `tar xzf` of its layer, of `ostree.tgz`, `var.tgz` and `etc.tgz`, and `ostree
//!    pull-local` + `admin os-init` + `admin deploy` into a second fresh target node.
//!
//! `LCA_BENCH_PREP_KEEP_LOGS=<dir>` keeps the operator's and the tasks' logs there.
//!
//! Output: `key: value` lines; `ratio_prep_over_raw_sum` is the issue's target (≤ 1.2), and
//! `operator_peak_rss_kib` its RSS target (< 40 MiB).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::api::{Api, Patch, PatchParams};
use lca_api::ImageBasedUpgrade;
use lca_testkit::seednode::TargetNode;
use lca_testkit::{ControlPlane, OperatorProcess, Registry, images, openshift, prepenv, simnode};

const VERSION: &str = "4.18.0";
const STATEROOT: &str = "rhcos_4.18.0";
const TASKS: [&str; 2] = [
    lca_api::consts::names::STATEROOT_SETUP_JOB,
    lca_api::consts::names::PRECACHE_JOB,
];
const SAMPLE: Duration = Duration::from_millis(100);

struct Args {
    seed_mib: usize,
    images: usize,
    image_mib: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seed_mib: 1024,
        images: 20,
        image_mib: 8,
        timeout: Duration::from_secs(3600),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<usize>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--seed-mib" => a.seed_mib = value,
            "--images" => a.images = value,
            "--image-mib" => a.image_mib = value,
            "--timeout-secs" => a.timeout = Duration::from_secs(value as u64),
            _ => {
                return Err(format!(
                    "unknown argument {flag} (--seed-mib N, --images N, --image-mib M, --timeout-secs S)"
                ));
            }
        }
    }
    if a.images == 0 {
        return Err("--images must be at least 1 (precache refuses an empty list)".into());
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lca-bench-prep: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lca-bench-prep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Print one result line (and flush: a long run shows progress as it goes).
fn out(key: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    println!("{key}: {value}");
    let _ = std::io::stdout().flush();
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// Progress notes go to stderr so that stdout is only results.
fn note(msg: &str) {
    eprintln!("lca-bench-prep: {msg}");
}

/// The release binaries: the operator from `LCA_OPERATOR_BIN` (read by `OperatorProcess`)
/// and `lca-cli` from `LCA_CLI_BIN` (read by `images::push_seed_sized`). The operator runs the
/// `lca-cli` next to its own binary, so the two must be siblings, or Prep would measure
/// another build than the one named.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("{name} must name a release build (hack/bench-prep sets it)"))
    };
    let (operator, cli) = (var("LCA_OPERATOR_BIN")?, var("LCA_CLI_BIN")?);
    for b in [&operator, &cli] {
        if !b.is_file() {
            return Err(format!("{} does not exist", b.display()));
        }
    }
    if operator.with_file_name("lca-cli") != cli {
        return Err(format!(
            "LCA_CLI_BIN ({}) must be the lca-cli next to LCA_OPERATOR_BIN ({}), the one the operator runs",
            cli.display(),
            operator.display()
        ));
    }
    Ok((operator, cli))
}

async fn run(a: &Args) -> Result<(), String> {
    let (operator_bin, cli_bin) = binaries()?;
    out("operator_bin", operator_bin.display());
    out("lca_cli_bin", cli_bin.display());
    out(
        "args",
        format!(
            "seed_mib={} images={} image_mib={}",
            a.seed_mib, a.images, a.image_mib
        ),
    );
    out(
        "cores",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let setup = Instant::now();
    note("starting the control plane");
    let cp = ControlPlane::start().await.map_err(err("control plane"))?;
    let client = cp.client().await.map_err(err("admin client"))?;
    openshift::install(&cp).await.map_err(err("OpenShift CRDs"))?;
    openshift::healthy_sno(&client)
        .await
        .map_err(err("healthy SNO"))?;
    prepenv::crypto_fixtures(&client)
        .await
        .map_err(err("crypto fixtures"))?;
    let target = TargetNode::build().map_err(err("target node"))?;
    simnode::configure(target.root()).map_err(err("node storage"))?;
    prepenv::admin_kubeconfig(&cp, target.root()).map_err(err("node admin kubeconfig"))?;
    let registry = Registry::start().map_err(err("registry"))?;
    note(&format!("pushing {} images of {} MiB", a.images, a.image_mib));
    let imgs = (0..a.images)
        .map(|i| {
            images::push_sized_image(
                &registry,
                &format!("ocp/app{i}:v1"),
                &format!("app {i}"),
                a.image_mib * 1024,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("pushing the images"))?;
    note(&format!("building and pushing a {} MiB seed", a.seed_mib));
    let t = Instant::now();
    let seed = images::push_seed_sized(&registry, VERSION, &imgs, a.seed_mib * 1024).map_err(err("seed"))?;
    out("seed_create_secs", secs(t.elapsed()));
    let kubeconfig = lca_testkit::rbac::operator_kubeconfig(&cp).map_err(err("operator RBAC"))?;
    let op = OperatorProcess::start_with_args(
        &kubeconfig,
        target.root(),
        &cp.dir().join("operator.log"),
        &["--node=simulated"],
    )
    .map_err(err("operator"))?;
    let ibus: Api<ImageBasedUpgrade> = Api::all(client.clone());
    wait_idle(&ibus, &op).await?;
    out("setup_secs", secs(setup.elapsed()));
    out(
        "operator_rss_idle_kib",
        status_kib(op.pid(), "VmRSS").unwrap_or(0),
    );
    // Writeback of the seed and images must not land inside the measured Prep.
    sync();
    let warmed = warm_custom_kinds(&client).await?;
    out("custom_kinds_listed_before_prep", warmed);

    note("Prep");
    let prep = measure_prep(&ibus, &op, target.root(), &seed, a.timeout).await?;
    out("prep_wall_secs", secs(prep.wall));
    out("operator_peak_rss_kib", prep.operator_peak_kib);
    out("operator_vmhwm_kib", status_kib(op.pid(), "VmHWM").unwrap_or(0));
    for (task, peak) in &prep.task_peaks {
        out(&format!("task_{task}_lca_cli_peak_rss_kib"), peak.lca_cli_kib);
        out(&format!("task_{task}_lca_cli_vmhwm_kib"), peak.lca_cli_hwm_kib);
        out(&format!("task_{task}_tree_peak_rss_kib"), peak.tree_kib);
    }
    breakdown(target.root(), prep.patched, prep.completed_at);
    if let Some(keep) = std::env::var_os("LCA_BENCH_PREP_KEEP_LOGS") {
        keep_logs(Path::new(&keep), &op, target.root())?;
    }
    let precached = simnode::images(target.root()).len();
    out("prep_images_in_node_storage", precached);
    drop(op);
    // Prep's output stays on disk; flush it so the raw steps do not pay for its writeback.
    sync();

    note("raw tool steps");
    let raw = raw_steps(&imgs, &seed)?;
    let mut sum = Duration::ZERO;
    for (name, d) in &raw {
        out(&format!("raw_{name}_secs"), secs(*d));
        sum += *d;
    }
    out("raw_sum_secs", secs(sum));
    out(
        "ratio_prep_over_raw_sum",
        format!("{:.2}", prep.wall.as_secs_f64() / sum.as_secs_f64().max(1e-3)),
    );
    drop(registry);
    drop(target);
    drop(cp);
    Ok(())
}

/// Copy the operator's and the tasks' logs to `dir` (they go with the temp dirs otherwise),
/// for a closer look at where the time went.
fn keep_logs(dir: &Path, op: &OperatorProcess, root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(err("creating the log dir"))?;
    std::fs::copy(op.log_path(), dir.join("operator.log")).map_err(err("copying the operator log"))?;
    for task in TASKS {
        let log = tasks_dir(root).join(task).join("log");
        std::fs::copy(&log, dir.join(format!("{task}.log"))).map_err(err("copying a task log"))?;
    }
    out("logs_kept_in", dir.display());
    Ok(())
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn has(ibu: &ImageBasedUpgrade, type_: &str, status: &str) -> bool {
    ibu.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == status)
    })
}

fn condition_text(ibu: &ImageBasedUpgrade, type_: &str) -> String {
    ibu.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| format!("{} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_default()
}

async fn wait_idle(ibus: &Api<ImageBasedUpgrade>, op: &OperatorProcess) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(ibu)) = ibus.get_opt("upgrade").await
            && has(&ibu, "Idle", "True")
        {
            return Ok(());
        }
        tokio::time::sleep(SAMPLE).await;
    }
    Err(format!(
        "no Idle=True after 60 s; operator log:\n{}",
        tail(&op.log(), 30)
    ))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .ok()
    })
}

#[derive(Default, Clone, Copy)]
struct TaskPeak {
    /// Highest sampled VmRSS of the task's `lca-cli` process.
    lca_cli_kib: u64,
    /// Highest VmHWM seen for it (its own peak, up to the last sample before it exited).
    lca_cli_hwm_kib: u64,
    /// Highest sampled sum of VmRSS over the task's whole process tree (sh wrapper, lca-cli,
    /// and what it runs: ostree, podman).
    tree_kib: u64,
}

struct PrepResult {
    wall: Duration,
    patched: SystemTime,
    completed_at: SystemTime,
    operator_peak_kib: u64,
    task_peaks: BTreeMap<&'static str, TaskPeak>,
}

/// pid → (ppid, comm) of every process.
fn process_table() -> HashMap<i32, (i32, String)> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        table.insert(pid, (ppid, comm));
    }
    table
}

fn descendants(table: &HashMap<i32, (i32, String)>, root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            table
                .iter()
                .filter(|(_, (ppid, _))| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    out.retain(|p| table.contains_key(p));
    out
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn tasks_dir(root: &Path) -> PathBuf {
    root.join("var/lib/lca/workspace/tasks")
}

/// List every custom kind once. The API server builds a custom kind's storage and watch cache
/// on its first request and answers that request "429, retry after 1 s" until the cache is
/// ready; on a real cluster the kinds the checks read (DPAs, CSVs, MachineConfigPools…) were
/// served long before, so a Prep measured on fresh fixtures would count that second as ours.
async fn warm_custom_kinds(client: &kube::Client) -> Result<usize, String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = crds
        .list(&ListParams::default())
        .await
        .map_err(err("listing the CRDs"))?;
    let mut listed = 0;
    for crd in crds.items {
        let spec = &crd.spec;
        let Some(version) = spec.versions.iter().find(|v| v.served) else {
            continue;
        };
        let gvk = GroupVersionKind::gvk(&spec.group, &version.name, &spec.names.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &spec.names.plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        api.list(&ListParams::default().limit(1))
            .await
            .map_err(err("listing a custom kind"))?;
        listed += 1;
    }
    Ok(listed)
}

async fn measure_prep(
    ibus: &Api<ImageBasedUpgrade>,
    op: &OperatorProcess,
    root: &Path,
    seed: &str,
    timeout: Duration,
) -> Result<PrepResult, String> {
    let patch =
        serde_json::json!({"spec": {"stage": "Prep", "seedImageRef": {"image": seed, "version": VERSION}}});
    // A watch sees the first status write with PrepInProgress, however short the sample
    // interval of the loop below.
    let (tx, in_progress) = tokio::sync::oneshot::channel::<Instant>();
    let watch = tokio::spawn({
        use futures::StreamExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let stream = watcher(
            ibus.clone(),
            watcher::Config::default().fields("metadata.name=upgrade"),
        );
        async move {
            let mut stream = std::pin::pin!(stream.applied_objects());
            while let Some(Ok(ibu)) = stream.next().await {
                if has(&ibu, "PrepInProgress", "True") {
                    let _ = tx.send(Instant::now());
                    return;
                }
            }
        }
    });
    // The watch's initial list must be in before the patch, or its first event is the patch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let patched = SystemTime::now();
    let start = Instant::now();
    let mut in_progress = Some(in_progress);
    ibus.patch("upgrade", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(err("patching the IBU to Prep"))?;
    let mut operator_peak_kib = 0;
    let mut task_peaks: BTreeMap<&'static str, TaskPeak> = BTreeMap::new();
    loop {
        operator_peak_kib = operator_peak_kib.max(status_kib(op.pid(), "VmRSS").unwrap_or(0));
        let table = process_table();
        for task in TASKS {
            let Some(pid) = read_pid(&tasks_dir(root).join(task).join("pid")) else {
                continue;
            };
            if !table.contains_key(&pid) {
                continue;
            }
            let peak = task_peaks.entry(task).or_default();
            let mut tree = 0;
            for p in descendants(&table, pid) {
                let rss = status_kib(p, "VmRSS").unwrap_or(0);
                tree += rss;
                if table.get(&p).is_some_and(|(_, comm)| comm == "lca-cli") {
                    peak.lca_cli_kib = peak.lca_cli_kib.max(rss);
                    peak.lca_cli_hwm_kib = peak.lca_cli_hwm_kib.max(status_kib(p, "VmHWM").unwrap_or(0));
                }
            }
            peak.tree_kib = peak.tree_kib.max(tree);
        }
        if let Ok(Some(ibu)) = ibus.get_opt("upgrade").await {
            if let Some(rx) = in_progress.as_mut()
                && let Ok(at) = rx.try_recv()
            {
                out(
                    "prep_patch_to_in_progress_ms",
                    format!("{:.1}", (at - start).as_secs_f64() * 1000.0),
                );
                in_progress = None;
            }
            if has(&ibu, "PrepCompleted", "True") {
                watch.abort();
                return Ok(PrepResult {
                    wall: start.elapsed(),
                    patched,
                    completed_at: SystemTime::now(),
                    operator_peak_kib,
                    task_peaks,
                });
            }
            if has(&ibu, "PrepInProgress", "Failed") || has(&ibu, "PrepCompleted", "False") {
                return Err(format!(
                    "Prep failed: {} / {}\noperator log:\n{}\ntask logs:\n{}",
                    condition_text(&ibu, "PrepInProgress"),
                    condition_text(&ibu, "PrepCompleted"),
                    tail(&op.log(), 20),
                    task_logs(root, 20)
                ));
            }
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "no PrepCompleted after {} s\noperator log:\n{}\ntask logs:\n{}",
                timeout.as_secs(),
                tail(&op.log(), 20),
                task_logs(root, 20)
            ));
        }
        if !op.alive() {
            return Err(format!(
                "the operator exited during Prep:\n{}",
                tail(&op.log(), 30)
            ));
        }
        tokio::time::sleep(SAMPLE).await;
    }
}

fn task_logs(root: &Path, n: usize) -> String {
    TASKS
        .iter()
        .map(|t| {
            let log = std::fs::read_to_string(tasks_dir(root).join(t).join("log")).unwrap_or_default();
            format!("== {t}\n{}", tail(&log, n))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

fn since(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).map_or(0.0, |d| d.as_secs_f64())
}

/// UTC seconds since midnight of a tracing JSON timestamp (`2026-11-25T23:45:01.123456Z`).
fn time_of_day(ts: &str) -> Option<f64> {
    let t = ts.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

fn system_time_of_day(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() % 86400.0)
}

/// Where Prep's wall time went: the operator's share (before, between and after the tasks:
/// validation and launch, the 2 s task poll, the crypto backup, the status update) against
/// the tasks' own run times, and the stateroot-setup steps from its JSON log.
fn breakdown(root: &Path, patched: SystemTime, completed: SystemTime) {
    let dir = tasks_dir(root);
    let times = |task: &str| {
        (
            mtime(&dir.join(task).join("pid")),
            mtime(&dir.join(task).join("exit")),
        )
    };
    let [stateroot, precache] = TASKS;
    let (Some(s0), Some(s1)) = times(stateroot) else {
        out("breakdown", "no stateroot-setup task times found");
        return;
    };
    let (Some(p0), Some(p1)) = times(precache) else {
        out("breakdown", "no precache task times found");
        return;
    };
    out(
        "prep_patch_to_stateroot_launch_secs",
        format!("{:.2}", since(patched, s0)),
    );
    out("prep_stateroot_task_secs", format!("{:.2}", since(s0, s1)));
    out(
        "prep_stateroot_exit_to_precache_launch_secs",
        format!("{:.2}", since(s1, p0)),
    );
    out("prep_precache_task_secs", format!("{:.2}", since(p0, p1)));
    out(
        "prep_precache_exit_to_completed_secs",
        format!("{:.2}", since(p1, completed)),
    );
    out(
        "prep_operator_share_secs",
        format!("{:.2}", since(patched, s0) + since(s1, p0) + since(p1, completed)),
    );
    // Stateroot-setup steps: each "running" line starts a step, the next one (or the exit)
    // ends it.
    let log = std::fs::read_to_string(dir.join(stateroot).join("log")).unwrap_or_default();
    let mut starts: Vec<(String, f64)> = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &v["fields"];
        if fields["message"] == "running"
            && let (Some(step), Some(ts)) = (fields["step"].as_str(), v["timestamp"].as_str())
            && let Some(t) = time_of_day(ts)
        {
            starts.push((step.to_string(), t));
        }
    }
    let end = system_time_of_day(s1);
    for (i, (step, t)) in starts.iter().enumerate() {
        let next = starts.get(i + 1).map_or(end, |(_, n)| *n);
        let mut d = next - t;
        if d < 0.0 {
            d += 86400.0; // across midnight UTC
        }
        out(&format!("stateroot_step_{step}_secs"), format!("{d:.2}"));
    }
    if let Some((_, first)) = starts.first() {
        let mut d = first - system_time_of_day(s0);
        if d < 0.0 {
            d += 86400.0;
        }
        out("stateroot_before_first_step_secs", format!("{d:.2}"));
    }
}

fn run_cmd(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(err(&format!("running {}", argv[0])))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn timed(
    steps: &mut Vec<(&'static str, Duration)>,
    name: &'static str,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let t = Instant::now();
    f()?;
    steps.push((name, t.elapsed()));
    Ok(())
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The same work as Prep done by the raw tools, on the same registry; returns each step's time.
fn raw_steps(imgs: &[String], seed: &str) -> Result<Vec<(&'static str, Duration)>, String> {
    let work = tempfile::Builder::new()
        .prefix("lca-bench-prep-raw-")
        .tempdir()
        .map_err(err("creating the raw work dir"))?;
    let w = work.path();
    let mut steps = Vec::new();

    // Precache: every image at once, like a pull fan-out with no limit.
    let storage = format!(
        "containers-storage:[vfs@{}+{}]",
        path_str(&w.join("cs/root")),
        path_str(&w.join("cs/run"))
    );
    timed(&mut steps, "skopeo_copy_images_parallel", || {
        let children = imgs
            .iter()
            .map(|img| {
                Command::new("skopeo")
                    .args(["copy", "-q", "--src-tls-verify=false"])
                    .arg(format!("docker://{img}"))
                    .arg(format!("{storage}{img}"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(err("running skopeo"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (img, child) in imgs.iter().zip(children) {
            let o = child.wait_with_output().map_err(err("waiting for skopeo"))?;
            if !o.status.success() {
                return Err(format!(
                    "skopeo copy {img}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
        Ok(())
    })?;

    let seed_dir = w.join("seed-dir");
    timed(&mut steps, "skopeo_copy_seed", || {
        run_cmd(&[
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{seed}"),
            &format!("dir:{}", path_str(&seed_dir)),
        ])
    })?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(seed_dir.join("manifest.json")).map_err(err("reading the seed manifest"))?,
    )
    .map_err(err("parsing the seed manifest"))?;
    let layer = &manifest["layers"][0];
    let digest = layer["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .ok_or("the seed manifest has no sha256 layer")?;
    out("seed_layer_bytes", layer["size"].as_u64().unwrap_or(0));
    let blob = seed_dir.join(digest);
    let gzip = layer["mediaType"].as_str().is_some_and(|m| m.ends_with("gzip"));
    let files = w.join("seed");
    std::fs::create_dir_all(&files).map_err(err("creating the seed dir"))?;
    timed(&mut steps, "tar_x_seed_layer", || {
        run_cmd(&[
            "tar",
            if gzip { "xzf" } else { "xf" },
            &path_str(&blob),
            "-C",
            &path_str(&files),
        ])
    })?;
    for f in ["var.tgz", "etc.tgz", "ostree.tgz"] {
        let size = std::fs::metadata(files.join(f)).map_or(0, |m| m.len());
        out(&format!("seed_{}_bytes", f.replace('.', "_")), size);
    }
    let repo = w.join("ostree");
    std::fs::create_dir_all(&repo).map_err(err("creating the repo dir"))?;
    timed(&mut steps, "tar_xzf_ostree", || {
        run_cmd(&[
            "tar",
            "xzf",
            &path_str(&files.join("ostree.tgz")),
            "-C",
            &path_str(&repo),
        ])
    })?;
    let commit = seed_commit(&files.join("rpm-ostree.json"))?;

    let node = TargetNode::build().map_err(err("second target node"))?;
    let sys = node.root().join("sysroot");
    let sysroot = format!("--sysroot={}", path_str(&sys));
    timed(&mut steps, "ostree_pull_local", || {
        run_cmd(&[
            "ostree",
            &format!("--repo={}", path_str(&sys.join("ostree/repo"))),
            "pull-local",
            &path_str(&repo),
            &commit,
        ])
    })?;
    timed(&mut steps, "ostree_os_init", || {
        run_cmd(&["ostree", "admin", "os-init", &sysroot, STATEROOT])
    })?;
    timed(&mut steps, "ostree_deploy", || {
        run_cmd(&[
            "ostree",
            "admin",
            "deploy",
            &sysroot,
            &format!("--os={STATEROOT}"),
            "--no-prune",
            &format!("--karg=ibu={VERSION}"),
            &commit,
        ])
    })?;
    let stateroot_dir = sys.join("ostree/deploy").join(STATEROOT);
    timed(&mut steps, "tar_xzf_var", || {
        run_cmd(&[
            "tar",
            "xzf",
            &path_str(&files.join("var.tgz")),
            "-C",
            &path_str(&stateroot_dir),
        ])
    })?;
    let deployment = std::fs::read_dir(stateroot_dir.join("deploy"))
        .map_err(err("listing the new deployments"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or("no deployment in the new stateroot")?;
    timed(&mut steps, "tar_xzf_etc", || {
        // The deployment root is immutable (chattr +i); only its contents may change, so
        // tar must not try to restore the metadata of `.`.
        run_cmd(&[
            "tar",
            "xzf",
            &path_str(&files.join("etc.tgz")),
            "-C",
            &path_str(&deployment),
            "--no-overwrite-dir",
        ])
    })?;
    drop(node);
    // skopeo's vfs layers are plain dirs; the temp dir goes with `work`.
    Ok(steps)
}

/// The commit of the seed's deployment 0, as `lca-cli stateroot-setup` reads it.
fn seed_commit(rpm_ostree: &Path) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rpm_ostree).map_err(err("reading rpm-ostree.json"))?)
            .map_err(err("parsing rpm-ostree.json"))?;
    let deployments = v["deployments"]
        .as_array()
        .ok_or("rpm-ostree.json has no deployments")?;
    let chosen = deployments
        .iter()
        .find(|d| d["booted"] == true)
        .or_else(|| deployments.first())
        .ok_or("rpm-ostree.json has no deployments")?;
    let id = chosen["id"].as_str().ok_or("deployment without id")?;
    let deployment = id.rsplit('-').next().unwrap_or_default();
    let commit = deployment.split('.').next().unwrap_or_default();
    if commit.is_empty() {
        return Err(format!("bad deployment id {id:?}"));
    }
    Ok(commit.to_string())
}
