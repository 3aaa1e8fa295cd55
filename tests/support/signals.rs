//! Signals for the tests that stop or kill a run: sending them to a process
//! or its group, finding the Terraform a terrace started, waiting, bounded,
//! for a pid to appear in a file, and killing a run at a chosen point.

use std::path::Path;
use std::time::{Duration, Instant};

use super::machine::wait_gone;

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process the test started; no memory is involved.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process group the test started.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// The pids of `pid`'s children.
pub fn children(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        found.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    found
}

/// The pid a fake terraform wrote to `path`, waited for.
pub fn wait_for_pid(path: &Path, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "the apply never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a run is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// SIGKILL to terrace alone: Terraform, in its own group, gets the
    /// parent-death signal.
    Terrace,
    /// SIGKILL to terrace's process group and Terraform's, as a preempted
    /// machine or a killed CI job does: nothing gets to clean up.
    Group,
    /// SIGTERM to terrace, as a cancelled CI job sends.
    Term,
}

impl Kill {
    pub fn name(self) -> &'static str {
        match self {
            Kill::Terrace => "sigkill-terrace",
            Kill::Group => "sigkill-group",
            Kill::Term => "sigterm",
        }
    }
}

/// What became of a run stopped by [`kill_after`].
#[derive(Debug)]
pub struct Killed {
    /// The run got to the kill point (else it ended before).
    pub reached: bool,
    pub exit: Option<i32>,
    pub stdout: String,
}

/// When to stop a run: after a number of resources applied, or after a
/// share of what its plan adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    After(usize),
    /// Per mille of the resources the last plan before the apply adds (at
    /// least one): a later `up` of a half-built cluster adds fewer.
    Share(u64),
}

/// Runs `command` (an `up --output json`) in its own process group and
/// stops it with `kill` once Terraform has applied what `stop` says; waits
/// until terrace and its Terraform are gone.
pub fn kill_after(mut command: std::process::Command, stop: Stop, kill: Kill) -> Killed {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    let mut adds = 0;
    let mut text = String::new();
    let mut reached = false;
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        text.push_str(&line);
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["command"] == "plan"
            && let Some(add) = event["changes"]["add"].as_u64()
        {
            adds = add;
        }
        if event["command"] == "apply" && event["status"] == "complete" {
            seen += 1;
        }
        let due = match stop {
            Stop::After(n) => n,
            Stop::Share(permille) => (adds * permille / 1000).max(1) as usize,
        };
        if seen >= due {
            reached = true;
            break;
        }
    }
    if reached {
        let terraform = children(child.id());
        match kill {
            Kill::Terrace => signal(child.id(), libc::SIGKILL),
            Kill::Group => {
                for pid in &terraform {
                    signal_group(*pid as u32, libc::SIGKILL);
                }
                signal_group(child.id(), libc::SIGKILL);
            }
            Kill::Term => signal(child.id(), libc::SIGTERM),
        }
        for pid in terraform {
            assert!(
                wait_gone(pid, Duration::from_secs(300)),
                "{}: Terraform {pid} still runs",
                kill.name()
            );
        }
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    text.push_str(&rest);
    let exit = child.wait().unwrap().code();
    Killed {
        reached,
        exit,
        stdout: text,
    }
}
