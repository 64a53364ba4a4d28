//! `Cmd`, an argv-vector command description, and `spawn_and_wait`, the one subprocess wrapper
//! of the crate. Executors decide *how* a `Cmd` reaches the node (chroot, nsenter, locally) and
//! then all call `spawn_and_wait`, so timeouts, kill-on-drop and error shape are the same
//! everywhere.

use std::ffi::{OsStr, OsString};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Timeout of a command that does not set one: long enough for `ostree admin status`
/// on a busy node, short enough that a wedged tool does not stall a reconcile forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How many bytes of stderr go into an error.
const TAIL_BYTES: usize = 1024;

/// One command to run on the node: a program and its arguments, never a shell string.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: String,
    args: Vec<OsString>,
    timeout: Duration,
    mutating: bool,
    host_namespaces: bool,
    ok_codes: Vec<i32>,
}

impl Cmd {
    /// A mutating command (the safe default: dry-run refuses it) with the default timeout.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            mutating: true,
            host_namespaces: false,
            ok_codes: vec![0],
        }
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Mark the command as only reading node state (dry-run runs it).
    pub fn read_only(mut self) -> Self {
        self.mutating = false;
        self
    }

    /// Override the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Run in PID 1's namespaces when the executor is a chroot (a mount the host must see,
    /// e.g. `podman image mount`: CRI-O removes containers whose mounts the host can't see).
    pub fn in_host_namespaces(mut self) -> Self {
        self.host_namespaces = true;
        self
    }

    /// Exit codes besides 0 that are answers rather than failures (`podman image exists` → 1).
    pub fn allow_exit_codes(mut self, codes: &[i32]) -> Self {
        self.ok_codes.extend_from_slice(codes);
        self
    }

    /// The program name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments after the program.
    pub fn arguments(&self) -> &[OsString] {
        &self.args
    }

    /// Whether the command changes the node.
    pub fn is_mutating(&self) -> bool {
        self.mutating
    }

    /// Whether the command must run in the host's namespaces.
    pub fn wants_host_namespaces(&self) -> bool {
        self.host_namespaces
    }

    /// The timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// The argv joined for logs and errors (not for execution).
    pub fn display(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// What a finished command printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code (`None` when killed by a signal, which `spawn_and_wait` reports as an error).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Parse stdout as JSON; `command` names the command in the error.
    pub fn json<T: DeserializeOwned>(&self, command: &str) -> Result<T> {
        serde_json::from_str(&self.stdout).map_err(|e| Error::parse(command, e))
    }
}

/// Kills the child's whole process group if the wait is abandoned (timeout or a dropped
/// future): `kill_on_drop` alone reaches only the direct child, and nsenter/chroot wrappers
/// may leave the real tool running under it.
struct GroupKill(Option<Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (the group already exited) is the only failure and means it is gone.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Run `prefix + [cmd.program] + cmd.args` with extra environment, honouring the command's
/// timeout and allowed exit codes. The single place where this crate starts processes.
pub(crate) async fn spawn_and_wait(
    cmd: &Cmd,
    prefix: &[OsString],
    env: &[(String, OsString)],
) -> Result<Output> {
    let shown = cmd.display();
    let mut argv: Vec<OsString> = prefix.to_vec();
    argv.push(OsString::from(&cmd.program));
    argv.extend(cmd.args.iter().cloned());
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| Error::Invalid("empty command".into()))?;
    tracing::debug!(command = %shown, wrapper = ?prefix, "running node command");

    let mut child = tokio::process::Command::new(program);
    child
        .args(rest)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = child.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::ToolNotFound {
                tool: program.to_string_lossy().into_owned(),
            }
        } else {
            Error::Spawn {
                command: shown.clone(),
                source,
            }
        }
    })?;
    let mut guard = GroupKill(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );

    let waited = tokio::time::timeout(cmd.timeout, child.wait_with_output()).await;
    let out = match waited {
        Err(_) => {
            return Err(Error::Timeout {
                command: shown,
                secs: cmd.timeout.as_secs(),
            });
        }
        Ok(Err(source)) => {
            return Err(Error::Spawn {
                command: shown,
                source,
            });
        }
        Ok(Ok(out)) => out,
    };
    guard.0 = None;

    let output = Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    match output.code {
        Some(code) if cmd.ok_codes.contains(&code) => Ok(output),
        // env(1) and nsenter(1) exit 127 when they cannot find the program they should exec.
        Some(127) if !prefix.is_empty() => Err(Error::ToolNotFound {
            tool: cmd.program.clone(),
        }),
        _ => Err(Error::CommandFailed {
            command: shown,
            status: out.status.to_string(),
            stderr_tail: tail(&output),
        }),
    }
}

/// Run `cmd` through `exec` from synchronous code (the step closures of `lca-cli create`):
/// inside a multi-threaded runtime the worker is handed over with `block_in_place`;
/// elsewhere a small runtime is started for the one command. Same wrapper, same timeout.
pub fn run_blocking(exec: &dyn crate::Executor, cmd: &Cmd) -> Result<Output> {
    block_on(&cmd.display(), exec.run(cmd))
}

/// Drive `fut` (named `what` in errors) to completion from synchronous code, as
/// [`run_blocking`] does for one command.
pub fn block_on<T: Send>(what: &str, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
    use tokio::runtime::{Builder, Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        // A runtime cannot be blocked on (or dropped) inside another one: the future's own
        // small runtime lives and dies on a thread of its own.
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                let rt = Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| Error::Spawn {
                        command: what.to_string(),
                        source,
                    })?;
                rt.block_on(fut)
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid(format!("`{what}` panicked"))))
        }),
    }
}

/// Start `program args` detached from this process: its own process group (not killed with
/// the caller, like a Job's pod), stdin closed, stdout and stderr appended to `log`. The
/// second way this crate starts processes, used only by `local_task`, whose tasks run for
/// hours by design and bound their own steps; the caller reaps the child.
pub(crate) fn spawn_detached(
    program: &str,
    args: &[OsString],
    envs: &[(String, String)],
    log: std::fs::File,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
}

fn tail(out: &Output) -> String {
    let src = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let src = src.trim();
    let mut start = src.len().saturating_sub(TAIL_BYTES);
    while !src.is_char_boundary(start) {
        start += 1;
    }
    src[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failure_carries_command_status_and_stderr_tail() {
        let cmd = Cmd::new("sh").args(["-c", "echo out; echo boom >&2; exit 3"]);
        let err = spawn_and_wait(&cmd, &[], &[]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "command `sh -c echo out; echo boom >&2; exit 3` failed with exit status: 3: boom"
        );
    }

    #[tokio::test]
    async fn allowed_exit_code_is_an_answer() {
        let out = spawn_and_wait(&Cmd::new("false").allow_exit_codes(&[1]), &[], &[])
            .await
            .unwrap();
        assert_eq!(out.code, Some(1));
    }

    #[tokio::test]
    async fn missing_program_is_tool_not_found() {
        let err = spawn_and_wait(&Cmd::new("lca-no-such-tool"), &[], &[])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "lca-no-such-tool not found on the node");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let cmd = Cmd::new("sh")
            .args(["-c", &script])
            .timeout(Duration::from_millis(300));
        let err = spawn_and_wait(&cmd, &[], &[]).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "a grandchild outlived the timeout");
    }

    #[test]
    fn run_blocking_works_without_and_inside_a_runtime() {
        let exec = crate::LocalExecutor::new("/");
        let out = run_blocking(&exec, &Cmd::new("echo").arg("hi")).unwrap();
        assert_eq!(out.stdout, "hi\n");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            run_blocking(
                &exec,
                &Cmd::new("sleep").arg("5").timeout(Duration::from_millis(200)),
            )
        });
        assert!(matches!(err, Err(Error::Timeout { .. })), "{err:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt
            .block_on(async { run_blocking(&exec, &Cmd::new("true")) })
            .unwrap();
        assert!(out.success());
    }

    #[test]
    fn tail_keeps_the_end() {
        let out = Output {
            code: Some(1),
            stdout: String::new(),
            stderr: "é".repeat(2000),
        };
        assert!(tail(&out).len() <= TAIL_BYTES);
    }
}
