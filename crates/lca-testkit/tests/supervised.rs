//! `process::Supervised` with small real commands: a killed child is restarted after a
//! doubling back-off that resets once a child has run a while, nothing (not even a zombie)
//! is left after `stop()`, and everything dies with the parent process when that is killed.
//! Also: a plain `Guarded` child that dies is reaped at once instead of staying a zombie.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lca_testkit::process::{BACKOFF_FIRST, Guarded, HEALTHY_RUN, Supervised};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The tests look at all descendants of this process, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

const HELPER_DIR: &str = "LCA_SUPERVISED_HELPER_DIR";

/// Fields after the command name of `/proc/<pid>/stat`: (state, ppid).
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// All processes descending from `root`, zombies included.
fn descendants(root: i32) -> Vec<(i32, char)> {
    let all: Vec<(i32, char, i32)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|pid| stat(pid).map(|(state, ppid)| (pid, state, ppid)))
        .collect();
    let mut found = vec![];
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for &(pid, state, ppid) in &all {
            if ppid == parent {
                found.push((pid, state));
                parents.push(pid);
            }
        }
    }
    found
}

fn running(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

fn read_pid(file: &Path) -> i32 {
    let text = std::fs::read_to_string(file).expect("pid file");
    text.trim().parse().expect("a pid")
}

fn sleeper(dir: &Path) -> (Supervised, PathBuf, PathBuf) {
    let (log, pid_file) = (dir.join("sleeper.log"), dir.join("sleeper.pid"));
    let argv = ["sleep".to_string(), "300".to_string()];
    let s = Supervised::spawn("sleeper", &argv, &[], &log, &pid_file).expect("supervised sleep starts");
    (s, log, pid_file)
}

/// Kill the child running now with SIGKILL; returns the next child's pid and how long the
/// restart took.
fn crash(s: &Supervised, pid_file: &Path) -> (i32, Duration) {
    let old = s.pid().expect("a child runs");
    assert_eq!(read_pid(pid_file), old, "the pid file names the running child");
    let killed = Instant::now();
    kill(Pid::from_raw(old), Signal::SIGKILL).expect("kill -9");
    let new = s
        .wait_for_other(Some(old), Duration::from_secs(15))
        .expect("restarted");
    let took = killed.elapsed();
    assert!(
        !Path::new(&format!("/proc/{old}")).exists(),
        "the killed child {old} was reaped"
    );
    (new, took)
}

#[test]
fn a_killed_child_is_restarted_with_a_doubling_back_off_and_stop_leaves_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, log, pid_file) = sleeper(dir.path());
    let (second, first_delay) = crash(&s, &pid_file);
    assert!(first_delay >= BACKOFF_FIRST, "restarted after {first_delay:?}");
    assert_eq!(read_pid(&pid_file), second);
    assert!(running(second));
    let (third, second_delay) = crash(&s, &pid_file);
    assert!(
        second_delay >= 2 * BACKOFF_FIRST,
        "a quick second crash waits longer: {second_delay:?}"
    );
    assert!(
        second_delay < 2 * BACKOFF_FIRST + Duration::from_secs(3),
        "took {second_delay:?}"
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("lca-supervise: sleeper exited 137; restarting in 500ms"),
        "{text}"
    );
    assert!(text.contains("restarting in 1s"), "{text}");

    let ours = descendants(std::process::id() as i32);
    assert!(ours.iter().any(|&(pid, _)| pid == third), "{ours:?}");
    s.stop();
    assert!(!pid_file.exists(), "the pid file goes with the child");
    for (pid, _) in ours {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} is left after stop()"
        );
    }
    let left = descendants(std::process::id() as i32);
    assert!(
        left.is_empty(),
        "processes (or zombies) left after stop(): {left:?}"
    );
}

#[test]
fn the_back_off_starts_again_after_a_child_ran_a_while() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut s, _log, pid_file) = sleeper(dir.path());
    crash(&s, &pid_file);
    crash(&s, &pid_file);
    // The next delay would be 2 s, but this child runs for longer than HEALTHY_RUN first.
    std::thread::sleep(HEALTHY_RUN + Duration::from_millis(200));
    let (_, delay) = crash(&s, &pid_file);
    assert!(
        delay >= BACKOFF_FIRST && delay < 4 * BACKOFF_FIRST,
        "restarted after {delay:?}"
    );
    s.stop();
}

#[test]
fn stop_interrupts_the_back_off_and_no_child_is_started_after_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, pid_file) = (dir.path().join("quick.log"), dir.path().join("quick.pid"));
    // Exits at once, so the supervisor is almost always backing off.
    let argv = ["true".to_string()];
    let mut s = Supervised::spawn("quick", &argv, &[], &log, &pid_file).expect("starts");
    let first = s.last_pid();
    s.wait_for_other(Some(first), Duration::from_secs(15))
        .expect("restarted after exiting");
    // `true` is gone within this, and the next start is 2 * BACKOFF_FIRST away.
    std::thread::sleep(BACKOFF_FIRST / 2);
    assert_eq!(s.pid(), None, "backing off");
    let stopping = Instant::now();
    s.stop();
    assert!(
        stopping.elapsed() < BACKOFF_FIRST,
        "stop() waited for the back-off"
    );
    let left = descendants(std::process::id() as i32);
    assert!(
        left.is_empty(),
        "processes (or zombies) left after stop(): {left:?}"
    );
}

/// Run as a separate process by the test below: supervise a sleeper and wait to be killed.
#[test]
#[ignore = "helper process of everything_dies_with_the_parent_process"]
fn helper_supervising_until_killed() {
    let Some(dir) = std::env::var_os(HELPER_DIR) else {
        return;
    };
    let (_s, _log, _pid_file) = sleeper(Path::new(&dir));
    loop {
        std::thread::park();
    }
}

#[test]
fn everything_dies_with_the_parent_process() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "helper_supervising_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_DIR, dir.path())
        .spawn()
        .expect("helper starts");
    let pid_file = dir.path().join("sleeper.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let child = read_pid(&pid_file);
    let family: Vec<i32> = descendants(helper.id() as i32)
        .iter()
        .map(|&(pid, _)| pid)
        .collect();
    assert!(family.contains(&child), "{family:?}");
    helper.kill().expect("kill -9 the parent");
    helper.wait().expect("reap the parent");
    // The orphans are reaped by init, not by us, so their end is observed here.
    let deadline = Instant::now() + Duration::from_secs(10);
    while family.iter().any(|&pid| running(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive: Vec<i32> = family.into_iter().filter(|&pid| running(pid)).collect();
    assert!(alive.is_empty(), "outlived their killed parent: {alive:?}");
}

#[test]
fn a_guarded_child_that_dies_is_reaped_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let argv = ["sleep".to_string(), "300".to_string()];
    let mut g = Guarded::spawn("sleeper", &argv, &[], &dir.path().join("log"), None).expect("starts");
    let pid = g.pid();
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} stays a zombie"
    );
    assert!(!g.child_alive());
    g.stop();
    let left = descendants(std::process::id() as i32);
    assert!(
        left.is_empty(),
        "processes (or zombies) left after stop(): {left:?}"
    );
}
