//! Guarded child processes. A test process can end by panic, by `exit`, or by SIGKILL, and
//! statics are never dropped, so `Drop` alone cannot stop children. Each child is therefore
//! started under a tiny `sh` guardian that holds the read end of a pipe whose write end only
//! this process has: when this process goes away for any reason, the guardian reads EOF,
//! kills the child and removes the child's scratch directory. No polling is involved.
//!
//! The guardian also reaps the child as soon as it exits (no zombie is left behind) and
//! reports that on its stdout. [`Supervised`] waits on that report to restart the child
//! after a back-off, as the kubelet restarts a pod's container.
//!
//! The guardian script is a constant; the command and paths reach it only as positional
//! arguments, never as shell text.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Error, Result, io};

// The watcher subshell reads the pipe on fd 3, because an asynchronous list's stdin is
// /dev/null. It is killed as soon as the child has been reaped, since from then on the
// child's pid may belong to another process. SIGPIPE is ignored (after the child has been
// started, so the child keeps the default) so that a parent which stopped reading the
// guardian's stdout cannot kill the guardian by it.
const GUARDIAN: &str = r#"scratch="$1"; log="$2"; shift 2
"$@" </dev/null >>"$log" 2>&1 &
child=$!
trap '' PIPE
echo "$child"
exec 3<&0
( read -r _ <&3; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$child"
code=$?
kill -KILL "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
echo "exited $code" 2>/dev/null
exec >/dev/null
read -r _
[ -n "$scratch" ] && rm -rf "$scratch"
exit 0"#;

/// A guardian and its child, as started by [`launch`].
pub(crate) struct Launched {
    pub guardian: Child,
    /// Dropping it (EOF) makes the guardian kill the child, clean up and exit.
    pub stdin: Option<ChildStdin>,
    /// After the pid line: one `exited <code>` line when the child has ended and been reaped.
    pub stdout: Option<BufReader<ChildStdout>>,
    pub pid: i32,
}

/// Start `argv` under a guardian, output appended to `log`; `scratch` (if any) is removed
/// after the child has stopped and the guardian has been told to finish.
pub(crate) fn launch(
    name: &str,
    argv: &[String],
    envs: &[(String, String)],
    log: &Path,
    scratch: Option<&Path>,
) -> Result<Launched> {
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
    let mut stdout = guardian.stdout.take().map(BufReader::new);
    let mut pid_line = String::new();
    if let Some(out) = stdout.as_mut() {
        out.read_line(&mut pid_line)
            .map_err(io(format!("reading the pid of {name}")))?;
    }
    let Ok(pid) = pid_line.trim().parse() else {
        drop(stdin);
        let _ = guardian.wait();
        return Err(Error::Setup(format!("{name} did not start")));
    };
    Ok(Launched {
        guardian,
        stdin,
        stdout,
        pid,
    })
}

/// A child process that is killed when this value is dropped or this process exits.
pub struct Guarded {
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
        // The exit report on stdout is not needed here; the guardian ignores SIGPIPE.
        let launched = launch(name, argv, envs, log, scratch)?;
        Ok(Self {
            guardian: launched.guardian,
            stdin: launched.stdin,
            log: log.to_path_buf(),
            pid: launched.pid,
        })
    }

    /// The log file of the child.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the child's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Process id of the child itself (not of its guardian).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Send `signal` to the child, e.g. SIGTERM to test a graceful shutdown.
    pub fn signal(&self, signal: Signal) {
        if self.child_alive() {
            let _ = kill(Pid::from_raw(self.pid), signal);
        }
    }

    /// True while the child itself is running.
    pub fn child_alive(&self) -> bool {
        running(self.pid)
    }

    /// True until the child has been reaped. A multi-threaded child's leader shows as a
    /// zombie while its other threads still exit holding its sockets and file locks; only
    /// the reaping (the guardian's `wait`, which returns after the last thread) frees them.
    pub fn child_present(&self) -> bool {
        kill(Pid::from_raw(self.pid), None).is_ok()
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

/// True while `pid` names a process that has not exited (a zombie has).
pub(crate) fn running(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
}

pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The first restart delay; it doubles with each quick exit, up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A child that ran this long before exiting is restarted after [`BACKOFF_FIRST`] again.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// A guarded child that is restarted whenever it exits or is killed, after a back-off,
/// until [`Supervised::stop`]. The current child's pid is kept in a pid file (absent while
/// no child runs), so that a test or a user can `kill -9` it. Each child runs under its own
/// guardian, so all of it still dies with this process.
pub struct Supervised {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    pid_file: PathBuf,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    stopped: bool,
    /// The current guardian's pipe; dropping it stops the current child.
    stdin: Option<ChildStdin>,
    pid: Option<i32>,
    last_pid: i32,
}

struct Spec {
    name: String,
    argv: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    pid_file: PathBuf,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Supervised {
    /// Start `argv` (output appended to `log`) and keep it running. A failure to start the
    /// first time is returned; later ones are logged and retried after the back-off.
    pub fn spawn(
        name: &str,
        argv: &[String],
        envs: &[(String, String)],
        log: &Path,
        pid_file: &Path,
    ) -> Result<Self> {
        let spec = Spec {
            name: name.to_string(),
            argv: argv.to_vec(),
            envs: envs.to_vec(),
            log: log.to_path_buf(),
            pid_file: pid_file.to_path_buf(),
        };
        let shared = Arc::new(Shared::default());
        let mut first = launch(name, argv, envs, log, None)?;
        shared.lock().stdin = first.stdin.take();
        if let Err(e) = started(&mut shared.lock(), &spec, &first) {
            shared.lock().stdin = None;
            let _ = first.guardian.wait();
            return Err(e);
        }
        let thread = std::thread::Builder::new()
            .name(format!("supervise-{name}"))
            .spawn({
                let shared = shared.clone();
                move || supervise(&spec, &shared, first)
            })
            .map_err(io(format!("starting the supervisor of {name}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
            pid_file: pid_file.to_path_buf(),
        })
    }

    /// The pid of the child running now, if one is.
    pub fn pid(&self) -> Option<i32> {
        self.shared.lock().pid
    }

    /// The pid of the latest child, running or not.
    pub fn last_pid(&self) -> i32 {
        self.shared.lock().last_pid
    }

    /// Wait until a child other than `old` runs, at most `timeout`; returns its pid.
    pub fn wait_for_other(&self, old: Option<i32>, timeout: Duration) -> Option<i32> {
        let st = self.shared.lock();
        let (st, _) = self
            .shared
            .changed
            .wait_timeout_while(st, timeout, |s| s.pid.is_none() || s.pid == old)
            .unwrap_or_else(PoisonError::into_inner);
        st.pid.filter(|p| Some(*p) != old)
    }

    /// Send `signal` to the child running now (none: nothing is sent).
    pub fn signal(&self, signal: Signal) {
        // Under the lock: the pid is cleared only after the child has been reaped.
        let st = self.shared.lock();
        if let Some(pid) = st.pid.filter(|p| running(*p)) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// Stop the child for good and wait until its guardian and the supervisor are gone.
    pub fn stop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.stopped = true;
            st.stdin = None;
            self.shared.changed.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

fn started(st: &mut State, spec: &Spec, child: &Launched) -> Result<()> {
    st.pid = Some(child.pid);
    st.last_pid = child.pid;
    // Renamed into place so that a reader never sees a partial pid.
    let tmp = spec.pid_file.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", child.pid))
        .and_then(|()| std::fs::rename(&tmp, &spec.pid_file))
        .map_err(io(format!("writing {}", spec.pid_file.display())))
}

/// The supervisor thread: wait for the child's end, back off, start the next one.
fn supervise(spec: &Spec, shared: &Shared, first: Launched) {
    let mut current = Some(first);
    let mut delay = BACKOFF_FIRST;
    loop {
        let began = Instant::now();
        let mut report = String::from("failed to start");
        if let Some(mut child) = current.take() {
            // Blocks until the guardian reports the end (EOF: the guardian itself is gone).
            report.clear();
            if let Some(out) = child.stdout.as_mut() {
                let _ = out.read_line(&mut report);
            }
            {
                let mut st = shared.lock();
                st.pid = None;
                st.stdin = None;
                let _ = std::fs::remove_file(&spec.pid_file);
                shared.changed.notify_all();
            }
            drop(child.stdin.take());
            let _ = child.guardian.wait();
        }
        if began.elapsed() >= HEALTHY_RUN {
            delay = BACKOFF_FIRST;
        }
        let st = shared.lock();
        if st.stopped {
            return;
        }
        let name = &spec.name;
        note(
            spec,
            &format!("{name} {}; restarting in {delay:?}", report.trim()),
        );
        let (mut st, _) = shared
            .changed
            .wait_timeout_while(st, delay, |s| !s.stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if st.stopped {
            return;
        }
        delay = (delay * 2).min(BACKOFF_MAX);
        // Launched under the lock, so a concurrent stop() finds the new pipe to close.
        match launch(&spec.name, &spec.argv, &spec.envs, &spec.log, None) {
            Ok(mut child) => {
                st.stdin = child.stdin.take();
                if let Err(e) = started(&mut st, spec, &child) {
                    note(spec, &e.to_string());
                }
                shared.changed.notify_all();
                current = Some(child);
            }
            Err(e) => note(spec, &e.to_string()),
        }
    }
}

/// A line of the supervisor's own in the children's log.
fn note(spec: &Spec, line: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log);
    if let Ok(mut file) = file {
        let _ = writeln!(file, "lca-supervise: {line}");
    }
}
