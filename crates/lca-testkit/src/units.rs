//! The boot of a simulated node, as far as systemd goes: the units enabled in the booted
//! deployment's `/etc` (`multi-user.target.wants` links) run as processes with the semantics
//! that matter to the upgrade — a `Type=oneshot` unit runs to its end before boot goes on,
//! `Restart=on-failure` runs it again after `RestartSec`, `ExecStopPost` runs after it with
//! `SERVICE_RESULT`, and a long-running unit is started and kept (its pid in
//! `lca-sim/units/<unit>.pid`, which the host-services peer's `systemctl stop` kills). `/usr/local/bin` is the
//! node's `var/usrlocal/bin` (as on RHCOS), so the units run the binaries the booted
//! stateroot carries; they get the node root in `LCA_HOST_ROOT`, `LCA_SIMULATED=true` and the
//! host-services peer first in PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::Guarded;
use crate::{Error, Result, io};

/// What the node's `[Service]` section of a unit says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub exec_start: Vec<String>,
    pub exec_stop_post: Vec<String>,
    pub oneshot: bool,
    pub restart_on_failure: bool,
    pub restart_sec: Duration,
}

/// Parse the unit file `text` (only what the harness acts on).
pub fn parse(name: &str, text: &str) -> Unit {
    let mut u = Unit {
        name: name.into(),
        restart_sec: Duration::from_millis(100),
        ..Default::default()
    };
    for line in text.lines().map(str::trim) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let words = || v.split_whitespace().map(str::to_string).collect();
        match k.trim() {
            "ExecStart" => u.exec_start = words(),
            "ExecStopPost" => u.exec_stop_post = words(),
            "Type" => u.oneshot = v.trim() == "oneshot",
            "Restart" => u.restart_on_failure = matches!(v.trim(), "on-failure" | "always"),
            "RestartSec" => {
                let secs = v.trim().trim_end_matches('s').parse::<f64>().unwrap_or(0.1);
                u.restart_sec = Duration::from_secs_f64(secs);
            }
            _ => {}
        }
    }
    u
}

/// The enabled units of the node at `root`, by name.
pub fn enabled(root: &Path) -> Result<Vec<Unit>> {
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    let mut names: Vec<String> = match std::fs::read_dir(&wants) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut units = Vec::new();
    for name in names {
        let file = root.join("etc/systemd/system").join(&name);
        if let Ok(text) = std::fs::read_to_string(&file) {
            units.push(parse(&name, &text));
        }
    }
    Ok(units)
}

/// How the units of one boot ended.
#[derive(Default)]
pub struct Boot {
    /// Oneshot units: (name, runs, succeeded in the end).
    pub oneshots: Vec<(String, u32, bool)>,
    /// Long-running units still running (stopped with the harness).
    pub running: Vec<(String, Guarded)>,
}

/// Run the enabled units of the node at `root`: oneshots first, each to its end (restarted on
/// failure up to `max_runs` times), then the long-running ones, started. `env` is added to
/// the units' environment; their output goes to `lca-sim/units/<name>.log`.
pub fn boot(root: &Path, env: &[(String, String)], max_runs: u32) -> Result<Boot> {
    let mut out = Boot::default();
    let logs = root.join("lca-sim/units");
    std::fs::create_dir_all(&logs).map_err(io("creating lca-sim/units"))?;
    let units = enabled(root)?;
    for u in units.iter().filter(|u| u.oneshot) {
        let mut runs = 0;
        let ok = loop {
            runs += 1;
            let ok = run_to_end(
                root,
                &u.exec_start,
                env,
                &logs.join(format!("{}.log", u.name)),
                None,
            )?;
            let result = if ok { "success" } else { "exit-code" };
            if !u.exec_stop_post.is_empty() {
                run_to_end(
                    root,
                    &u.exec_stop_post,
                    env,
                    &logs.join(format!("{}.log", u.name)),
                    Some(result),
                )?;
            }
            if ok || !u.restart_on_failure || runs >= max_runs {
                break ok;
            }
            std::thread::sleep(u.restart_sec);
        };
        out.oneshots.push((u.name.clone(), runs, ok));
    }
    for u in units.iter().filter(|u| !u.oneshot) {
        let argv = node_argv(root, &u.exec_start);
        let mut envs = base_env(root);
        envs.extend(env.iter().cloned());
        let log = logs.join(format!("{}.log", u.name));
        let p = Guarded::spawn(&u.name, &argv, &envs, &log, None)?;
        // For the host-services peer's `systemctl is-active|stop`.
        std::fs::write(logs.join(format!("{}.pid", u.name)), p.pid().to_string())
            .map_err(io("writing a unit's pid file"))?;
        out.running.push((u.name.clone(), p));
    }
    Ok(out)
}

/// `argv` of a unit, with `/usr/local/bin` as the node's `var/usrlocal/bin`.
fn node_argv(root: &Path, argv: &[String]) -> Vec<String> {
    let mut argv = argv.to_vec();
    if let Some(first) = argv.first_mut()
        && let Some(rest) = first.strip_prefix("/usr/local/bin/")
    {
        *first = root.join("var/usrlocal/bin").join(rest).display().to_string();
    }
    argv
}

fn base_env(root: &Path) -> Vec<(String, String)> {
    let bin: PathBuf = root.join("lca-sim/bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    vec![
        ("LCA_HOST_ROOT".into(), root.display().to_string()),
        ("LCA_SIMULATED".into(), "true".into()),
        ("PATH".into(), path),
    ]
}

fn run_to_end(
    root: &Path,
    argv: &[String],
    env: &[(String, String)],
    log: &Path,
    service_result: Option<&str>,
) -> Result<bool> {
    let argv = node_argv(root, argv);
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::Setup("a unit without ExecStart".into()))?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io("opening a unit log"))?;
    let err = out.try_clone().map_err(io("opening a unit log"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .envs(base_env(root))
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if let Some(r) = service_result {
        cmd.env("SERVICE_RESULT", r);
    }
    let status = cmd.status().map_err(io(format!("running {prog}")))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_a_seed_carries() {
        let u = parse(
            "installation-configuration.service",
            "[Service]\nType=oneshot\nExecStart=/usr/local/bin/lca-cli post-pivot\nRestart=on-failure\nRestartSec=5s\n",
        );
        assert_eq!(u.exec_start, ["/usr/local/bin/lca-cli", "post-pivot"]);
        assert!(u.oneshot && u.restart_on_failure);
        assert_eq!(u.restart_sec, Duration::from_secs(5));
        let m = parse(
            "m",
            "ExecStart=/usr/local/bin/lca-cli init-monitor --monitor\nExecStopPost=systemctl disable m\n",
        );
        assert!(!m.oneshot && !m.restart_on_failure);
        assert_eq!(m.exec_stop_post, ["systemctl", "disable", "m"]);
        assert_eq!(
            node_argv(Path::new("/n"), &m.exec_start)[0],
            "/n/var/usrlocal/bin/lca-cli"
        );
    }
}
