//! Guarded child processes. A test process can end by panic, by `exit`, or by SIGKILL, and
//! statics are never dropped, so `Drop` alone cannot stop children. Each child is therefore
//! started under a tiny `sh` guardian that holds the read end of a pipe whose write end only
//! this process has: when this process goes away for any reason, the guardian reads EOF,
//! kills the child and removes the child's scratch directory. No polling is involved.
//!
//! The guardian script is a constant; the command and paths reach it only as positional
//! arguments, never as shell text.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use std::io::{BufRead, BufReader};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Error, Result, io};

const GUARDIAN: &str = r#"scratch="$1"; log="$2"; shift 2
"$@" </dev/null >>"$log" 2>&1 &
child=$!
echo "$child"
exec >/dev/null
read -r _
kill -KILL "$child" 2>/dev/null
wait "$child" 2>/dev/null
[ -n "$scratch" ] && rm -rf "$scratch"
exit 0"#;

/// A child process that is killed when this value is dropped or this process exits.
pub struct Guarded {
    name: String,
    guardian: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    pid: i32,
}

impl Guarded {
    /// Start `argv` with its output appended to `log`. `scratch` (if any) is removed after
    /// the child has stopped.
    pub fn spawn(
        name: &str,
        argv: &[String],
        envs: &[(String, String)],
        log: &Path,
        scratch: Option<&Path>,
    ) -> Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(GUARDIAN)
            .arg(format!("lca-guard-{name}"))
            .arg(scratch.map(|p| p.display().to_string()).unwrap_or_default())
            .arg(log)
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut guardian = cmd.spawn().map_err(io(format!("starting {name}")))?;
        let stdin = guardian.stdin.take();
        let mut pid_line = String::new();
        if let Some(out) = guardian.stdout.take() {
            BufReader::new(out)
                .read_line(&mut pid_line)
                .map_err(io(format!("reading the pid of {name}")))?;
        }
        let pid = pid_line
            .trim()
            .parse()
            .map_err(|_| Error::Setup(format!("{name} did not start")))?;
        Ok(Self {
            name: name.to_string(),
            guardian,
            stdin,
            log: log.to_path_buf(),
            pid,
        })
    }

    /// Name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file of the child.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the child's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the guardian (and so the child) is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.guardian.try_wait(), Ok(None))
    }

    /// Process id of the child itself (not of its guardian).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Send `signal` to the child, e.g. SIGTERM to test a graceful shutdown.
    pub fn signal(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.pid), signal);
    }

    /// True while the child itself is running.
    pub fn child_alive(&self) -> bool {
        kill(Pid::from_raw(self.pid), None).is_ok() && !is_zombie(self.pid)
    }

    /// Kill the child and wait until the guardian has cleaned up.
    pub fn stop(&mut self) {
        self.stdin.take();
        let _ = self.guardian.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
