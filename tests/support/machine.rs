//! A clean machine for one end-to-end test of the `terrace` binary: its own
//! HOME (kubeconfig), caches and working directory (work dirs under
//! `.terrace/`), talking to one emulated account; and readers for what a
//! run printed with `--output json`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::moto::Account;

pub const REGION: &str = "us-east-1";
pub const CLUSTER: &str = "terrace-us-east-1";

pub struct Machine {
    pub dir: tempfile::TempDir,
    pub account: Account,
    extra: Vec<(String, String)>,
}

impl Machine {
    pub fn new(account: Account) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let rc = super::terraform::cli_config(dir.path());
        let extra = vec![
            ("HOME".to_string(), dir.path().display().to_string()),
            ("TF_CLI_CONFIG_FILE".to_string(), rc.display().to_string()),
            ("KUBECONFIG".to_string(), String::new()),
        ];
        Machine {
            dir,
            account,
            extra,
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Machine {
        self.extra.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs Terraform operations with the fake terraform of tests/.
    pub fn with_fake_terraform(self) -> Machine {
        let fake = super::fake_terraform::path();
        self.with("TERRACE_TERRAFORM", fake.to_str().unwrap())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_terrace"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.account.env(REGION))
            .envs(self.extra.iter().cloned())
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("terrace runs")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join(".terrace").join(CLUSTER)
    }

    pub fn journal(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.work_dir().join("journal.json")).unwrap())
            .unwrap()
    }
}

/// `up --output json` of the cluster `name` to the end of Terraform's
/// outputs: the infrastructure without the operator stack.
pub fn up_to_outputs(name: &str) -> Vec<&str> {
    vec![
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--name",
        name,
        "--yes",
        "--stop-after",
        "outputs",
    ]
}

/// The JSON lines a run printed, and its closing summary object.
pub fn parse(output: &Output) -> (Vec<Value>, Value) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = events(&stdout);
    let summary = events
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no summary in:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    (events, summary)
}

/// Every JSON line of `stdout`.
pub fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn outcomes(summary: &Value) -> Vec<(String, String)> {
    summary["summary"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_string(),
                p["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn outcome(summary: &Value, phase: &str) -> String {
    outcomes(summary)
        .into_iter()
        .find(|(p, _)| p == phase)
        .map(|(_, o)| o)
        .unwrap_or_else(|| "absent".into())
}

/// The run applied a Terraform plan.
pub fn applied(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["phase"] == "terraform" && e["command"] == "apply")
}

/// The first error event's first problem.
pub fn error(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["event"] == "error")
        .and_then(|e| e["problems"][0].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether process `pid` still runs (a zombie nobody reaped has stopped).
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Waits, bounded, for `pid` to stop running: a signalled process takes a
/// moment to die, longer on a loaded machine.
pub fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Reads a running `--output json` command's lines until Terraform's apply
/// reports progress; what it read, for a failure message.
pub fn read_until_apply(stdout: &mut impl std::io::BufRead, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut printed = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the run ended before apply started: {printed:?}"
        );
        printed.push(line.clone());
        let event: Value = serde_json::from_str(&line).unwrap_or_default();
        if event["command"] == "apply" && event["status"] == "progress" {
            return printed;
        }
        assert!(
            Instant::now() < deadline,
            "apply never started: {printed:?}"
        );
    }
}
