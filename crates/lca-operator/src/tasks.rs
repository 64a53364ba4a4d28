//! Long-running node work (stateroot setup, precache) as detached local processes: the
//! simulated-node backend of the reference's Jobs. A task outlives the operator (it runs in
//! its own session), records its pid and, when done, its exit code, so a restarted operator
//! finds it running, finished, or interrupted — never guesses.
//!
//! Layout: `<node>/var/lib/lca/workspace/tasks/<name>/{pid,exit,log}`. The exit code is
//! written by a constant `sh` wrapper; the command reaches it only as positional arguments.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WRAPPER: &str = r#"exitfile="$1"; shift
"$@"
echo $? > "$exitfile.tmp" && mv "$exitfile.tmp" "$exitfile""#;

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    NotStarted,
    Running,
    Succeeded,
    Failed {
        code: i32,
    },
    /// Started but gone without an exit code (killed, or the node rebooted).
    Interrupted,
    /// The Job is being deleted by someone else (the Job backend only).
    Deleting,
}

/// A task on either backend: a local process (simulated nodes) or a Job (in a cluster).
pub enum Task {
    Local(LocalTask),
    Job(Box<crate::jobs::JobTask>),
}

impl Task {
    pub async fn state(&self) -> Result<TaskState, String> {
        match self {
            Task::Local(t) => Ok(t.state()),
            Task::Job(t) => t.state().await,
        }
    }

    pub async fn start(
        &self,
        argv: &[String],
        envs: &[(String, String)],
        owner: &lca_api::ImageBasedUpgrade,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<(), String> {
        match self {
            Task::Local(t) => t.start(argv, envs, on_exit).map_err(|e| e.to_string()),
            Task::Job(t) => t.start(argv, envs, owner).await,
        }
    }

    pub async fn remove(&self) -> Result<(), String> {
        match self {
            Task::Local(t) => {
                t.remove();
                Ok(())
            }
            Task::Job(t) => t.remove().await,
        }
    }

    /// The end of the task's output, where this backend keeps it.
    pub fn log_tail(&self, n: usize) -> String {
        match self {
            Task::Local(t) => t.log_tail(n),
            Task::Job(_) => String::from("(see the job's pod logs)"),
        }
    }
}

/// One named task on the node.
pub struct LocalTask {
    dir: PathBuf,
}

impl LocalTask {
    pub fn new(workspace: &Path, name: &str) -> Self {
        Self {
            dir: workspace.join("tasks").join(name),
        }
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn alive(pid: i32) -> bool {
        if kill(Pid::from_raw(pid), None).is_err() {
            return false;
        }
        // A zombie (exited, not yet reaped by us) is not running.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    pub fn state(&self) -> TaskState {
        if let Ok(code) = std::fs::read_to_string(self.dir.join("exit")) {
            return match code.trim().parse::<i32>() {
                Ok(0) => TaskState::Succeeded,
                Ok(code) => TaskState::Failed { code },
                Err(_) => TaskState::Failed { code: -1 },
            };
        }
        match self.pid() {
            None => TaskState::NotStarted,
            Some(pid) if Self::alive(pid) => TaskState::Running,
            Some(_) => TaskState::Interrupted,
        }
    }

    /// Start `argv` detached; any earlier run's files are replaced. `on_exit` runs when the
    /// task ends (while this operator process lives), so the controller reacts at once
    /// instead of waiting for its next poll.
    pub fn start(
        &self,
        argv: &[String],
        envs: &[(String, String)],
        on_exit: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for f in ["exit", "pid"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("lca-task")
            .arg(self.dir.join("exit"))
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: not killed with the operator, like a Job's pod.
            .process_group(0);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn()?;
        std::fs::write(self.dir.join("pid"), child.id().to_string())?;
        // Reap it in the background so it never lingers as a zombie of ours.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
            on_exit();
        });
        Ok(())
    }

    /// Stop the task (its whole process group) and forget it.
    pub fn remove(&self) {
        if let Some(pid) = self.pid()
            && Self::alive(pid)
        {
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The last `n` lines of the task's output.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
