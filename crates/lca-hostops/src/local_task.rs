//! Long-running node work as detached local processes: the simulated-node backend of the
//! reference's Jobs (the operator's task runner picks it). A task outlives the operator (it
//! runs in its own session), records who it is and, when done, its exit code, so a restarted
//! operator finds it running, finished, or interrupted — never guesses.
//!
//! Layout: `<node>/var/lib/lca/workspace/tasks/<name>/{pid,exit,log}`. The exit code is
//! written by a constant `sh` wrapper; the command reaches it only as positional arguments.
//! A task runs for hours by design, so it is the one spawn without the wrapper's timeout
//! (`command::spawn_detached`; its subcommands bound their own steps).
//!
//! A pid alone does not name a process: after the task dies (or the node reboots) the
//! number is reused, and signalling `-pid` would kill an unrelated process group. The `pid`
//! file therefore holds `<pid> <start time> <boot id>` (start time: field 22 of
//! `/proc/<pid>/stat`), and a process counts as the task only if all three match. A `pid`
//! file of an older version (pid only) cannot be verified, so it is never signalled.

use std::path::{Path, PathBuf};

use lca_core::TaskState;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WRAPPER: &str = r#"exitfile="$1"; shift
"$@"
echo $? > "$exitfile.tmp" && mv "$exitfile.tmp" "$exitfile""#;

/// Who a process is: its pid, when it started (clock ticks after boot) and in which boot.
/// Two processes with the same identity are the same process.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    pid: i32,
    start_time: u64,
    boot_id: String,
}

impl Identity {
    /// The process holding `pid` now.
    fn of(pid: i32) -> Option<Self> {
        let (_, start_time) = proc_stat(pid)?;
        let boot_id = boot_id();
        Some(Self {
            pid,
            start_time,
            boot_id,
        })
    }

    /// The `pid` file's form; `None` for anything else, including a bare pid (older layout).
    fn parse(text: &str) -> Option<Self> {
        let [pid, start_time, boot_id] = text.split_whitespace().collect::<Vec<_>>()[..] else {
            return None;
        };
        let (pid, start_time, boot_id) = (pid.parse().ok()?, start_time.parse().ok()?, boot_id.into());
        Some(Self {
            pid,
            start_time,
            boot_id,
        })
    }

    /// The state letter of this very process while it exists; a zombie (`Z`) still counts,
    /// as its pid is not reused until it is reaped.
    fn state(&self) -> Option<char> {
        let (state, start_time) = proc_stat(self.pid)?;
        (start_time == self.start_time && self.boot_id == boot_id()).then_some(state)
    }
}

/// State letter and start time (fields 3 and 22) of `/proc/<pid>/stat`. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after the last ')'.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start_time))
}

/// Start times count from boot, so after a reboot they repeat; the boot id tells boots apart.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown".to_string())
}

/// What a task's `pid` file says.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    Nothing,
    /// A pid without a start time (older layout) or an unreadable file: something was
    /// started, but nothing can prove a live process is it.
    Unverifiable,
    Process(Identity),
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

    fn recorded(&self) -> Recorded {
        match std::fs::read_to_string(self.dir.join("pid")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recorded::Nothing,
            Err(_) => Recorded::Unverifiable,
            Ok(text) => Identity::parse(&text).map_or(Recorded::Unverifiable, Recorded::Process),
        }
    }

    pub fn state(&self) -> TaskState {
        if let Ok(code) = std::fs::read_to_string(self.dir.join("exit")) {
            return match code.trim().parse::<i32>() {
                Ok(0) => TaskState::Succeeded,
                Ok(code) => TaskState::Failed { code },
                Err(_) => TaskState::Failed { code: -1 },
            };
        }
        match self.recorded() {
            Recorded::Nothing => TaskState::NotStarted,
            Recorded::Process(id) if id.state().is_some_and(|s| s != 'Z') => TaskState::Running,
            Recorded::Process(_) | Recorded::Unverifiable => TaskState::Interrupted,
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
            // Absent is the usual case; a file that cannot be removed is replaced below.
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))?;
        let mut args: Vec<std::ffi::OsString> = vec![
            "-c".into(),
            WRAPPER.into(),
            "lca-task".into(),
            self.dir.join("exit").into(),
        ];
        args.extend(argv.iter().map(Into::into));
        let mut child = crate::command::spawn_detached("sh", &args, envs, log)?;
        let pid = child.id() as i32;
        // Read before anything reaps the child, so the pid cannot have been reused yet.
        let recorded = Identity::of(pid)
            .ok_or_else(|| std::io::Error::other(format!("task {pid} has no /proc entry")))
            .and_then(|id| {
                // Renamed into place so a reader never sees a pid without its start time.
                let tmp = self.dir.join("pid.tmp");
                std::fs::write(&tmp, format!("{} {} {}\n", id.pid, id.start_time, id.boot_id))?;
                std::fs::rename(&tmp, self.dir.join("pid"))
            });
        if let Err(e) = recorded {
            // Unrecorded, it could never be found again: stop it now (still our child).
            // The recording error is the one to report; kill/wait fail only if it is gone.
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
            let _ = child.wait();
            return Err(e);
        }
        // Reap it in the background so it never lingers as a zombie of ours.
        std::thread::spawn(move || {
            // Only reaping: the exit code is recorded by the wrapper in `exit`.
            let _ = child.wait();
            on_exit();
        });
        Ok(())
    }

    /// Call `on_exit` in a thread of its own once the task no longer runs: at once when it
    /// is not running now, else when its process exits. For a task another process started
    /// (this operator restarted while it runs) the exit is not ours to reap, so a pidfd
    /// tells it: no polling, and the pid cannot have been reused while the fd is open.
    pub fn on_exit(&self, on_exit: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        use rustix::event::{PollFd, PollFlags, poll};
        let pidfd = match self.recorded() {
            Recorded::Process(id) => {
                let pid = rustix::process::Pid::from_raw(id.pid);
                let fd = pid
                    .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
                // Checked after opening: the fd then names this very process, or none.
                fd.filter(|_| id.state().is_some_and(|s| s != 'Z'))
            }
            Recorded::Nothing | Recorded::Unverifiable => None,
        };
        std::thread::Builder::new()
            .name("lca-task-exit".into())
            .spawn(move || {
                if let Some(fd) = pidfd {
                    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                    // Readable once the process has exited; EINTR only restarts the wait.
                    while let Err(rustix::io::Errno::INTR) = poll(&mut fds, None) {}
                }
                on_exit();
            })?;
        Ok(())
    }

    /// Stop the task (its whole process group) and forget it. Only a process proven to be
    /// the task is signalled; an unverifiable or stale record is just forgotten.
    pub fn remove(&self) {
        // The group id is the leader's pid, and a pid is not reused while its process (even
        // a zombie) exists, so a verified leader makes `-pid` our group.
        if let Recorded::Process(id) = self.recorded()
            && id.state().is_some()
        {
            // ESRCH only: the verified group exited between the check and the kill.
            let _ = kill(Pid::from_raw(-id.pid), Signal::SIGKILL);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove the task's files");
        }
    }

    /// The last `n` lines of the task's output.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A scratch workspace removed on drop (this crate has no tempfile dependency).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("lca-tasks-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn alive(pid: i32) -> bool {
        proc_stat(pid).is_some_and(|(state, _)| state != 'Z')
    }

    /// Starts `script` as a task with a fresh fifo as `$1`; the receiver fires on exit.
    fn start(ws: &Path, script: &str) -> (LocalTask, PathBuf, mpsc::Receiver<()>) {
        let fifo = ws.join("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let task = LocalTask::new(ws, "t");
        let (tx, rx) = mpsc::channel();
        let argv: Vec<String> = ["sh", "-c", script, "task", &fifo.display().to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        task.start(&argv, &[], move || {
            let _ = tx.send(());
        })
        .expect("start");
        (task, fifo, rx)
    }

    #[test]
    fn a_stale_pid_file_naming_an_unrelated_process_is_interrupted_and_never_signalled() {
        // An unrelated daemon leading its own process group got the stale task's pid: a
        // `kill(-pid)` would take it down.
        let mut cmd = Command::new("sleep");
        let mut other = cmd.arg("30").process_group(0).spawn().expect("sleep");
        let pid = other.id() as i32;
        let real = Identity::of(pid).expect("identity of a live process");
        let (start, later, boot) = (real.start_time, real.start_time + 1, real.boot_id);
        let zero_boot = "00000000-0000-0000-0000-000000000000";
        for (what, record) in [
            ("pid only (older layout)", format!("{pid}\n")),
            ("another start time", format!("{pid} {later} {boot}\n")),
            ("another boot", format!("{pid} {start} {zero_boot}\n")),
        ] {
            let ws = Scratch::new("stale");
            std::fs::create_dir_all(ws.0.join("tasks/t")).expect("task dir");
            std::fs::write(ws.0.join("tasks/t/pid"), record).expect("pid file");
            let task = LocalTask::new(&ws.0, "t");
            let state = task.state();
            task.remove();
            let survived = matches!(other.try_wait(), Ok(None));
            assert!(survived, "{what}: remove() killed an unrelated process");
            assert_eq!(state, TaskState::Interrupted, "{what}");
            assert!(!ws.0.join("tasks/t").exists(), "{what}: not forgotten");
        }
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn a_started_task_is_running_then_reports_its_exit_code_or_interruption() {
        let cases = [
            (Some(0), TaskState::Succeeded),
            (Some(3), TaskState::Failed { code: 3 }),
        ];
        for (code, expected) in cases.into_iter().chain([(None, TaskState::Interrupted)]) {
            let ws = Scratch::new("exit");
            let (task, fifo, exited) = start(&ws.0, r#"read -r code < "$1"; exit "$code""#);
            assert_eq!(task.state(), TaskState::Running);
            let Recorded::Process(id) = task.recorded() else {
                panic!("no identity recorded: {:?}", task.recorded());
            };
            match code {
                Some(code) => std::fs::write(&fifo, format!("{code}\n")).expect("write fifo"),
                // Killed before it could write an exit code, as by a reboot.
                None => kill(Pid::from_raw(-id.pid), Signal::SIGKILL).expect("kill the task"),
            }
            exited.recv_timeout(Duration::from_secs(10)).expect("task exited");
            assert_eq!(task.state(), expected, "exit code {code:?}");
        }
    }

    #[test]
    fn on_exit_fires_when_a_task_started_elsewhere_ends_and_at_once_when_none_runs() {
        let ws = Scratch::new("watch");
        let (_task, fifo, _reaped) = start(&ws.0, r#"read -r code < "$1"; exit "$code""#);
        // Another LocalTask value, as a restarted operator has: it did not start the task.
        let watcher = LocalTask::new(&ws.0, "t");
        let (tx, ended) = mpsc::channel();
        watcher
            .on_exit(move || tx.send(()).expect("send"))
            .expect("watch");
        assert!(
            ended.recv_timeout(Duration::from_millis(300)).is_err(),
            "fired while the task runs"
        );
        std::fs::write(&fifo, "0\n").expect("write fifo");
        ended
            .recv_timeout(Duration::from_secs(10))
            .expect("fired on exit");
        assert_eq!(watcher.state(), TaskState::Succeeded);

        let none = LocalTask::new(&ws.0, "never-started");
        let (tx, ended) = mpsc::channel();
        none.on_exit(move || tx.send(()).expect("send")).expect("watch");
        ended
            .recv_timeout(Duration::from_secs(10))
            .expect("fired at once");
    }

    #[test]
    fn remove_kills_the_whole_process_group_of_a_running_task() {
        let ws = Scratch::new("group");
        // The grandchild stands for lca-cli's own children (podman, ostree).
        let (task, fifo, exited) = start(&ws.0, r#"sleep 30 & echo "$!" > "$1"; wait"#);
        let line = std::fs::read_to_string(&fifo).expect("read the grandchild's pid");
        let grandchild: i32 = line.trim().parse().expect("grandchild pid");
        assert!(alive(grandchild));
        task.remove();
        exited.recv_timeout(Duration::from_secs(10)).expect("task exited");
        // The orphaned grandchild is reaped by init, not us, so its end is observed here.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(grandchild), "the task's grandchild survived remove()");
        assert_eq!(task.state(), TaskState::NotStarted);
    }
}
