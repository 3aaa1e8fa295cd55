//! Running Terraform in one cluster's `terraform/` directory.
//!
//! Every command runs with `-input=false`, `-no-color`, `TF_IN_AUTOMATION=1`
//! and, where Terraform has it, `-json`, whose messages become progress
//! events. The child gets its own process group, so a Ctrl-C at the terminal
//! reaches Terraform only through the runner: the first [`Interrupt`] is sent
//! on as SIGINT and the runner waits for Terraform to stop and release the
//! state lock; a second one sends SIGKILL. Should terrace itself be killed,
//! Terraform is stopped the same way (see [`Runner::command`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde::Deserialize;
use serde_json::Value;
use tokio::process::Command;

use super::Terraform;
use super::error::RunError;
use super::interrupt::Interrupt;
use super::stream::{Changes, LockInfo, PHASE, PlannedChange, Transcript};
use crate::progress::{Event, Reporter};

/// Where the state lives: the regional bucket, one key per cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub bucket: String,
    pub key: String,
    pub region: String,
    /// Address S3 path-style: what the SDK does for the same endpoint
    /// (`aws::Aws::s3_path_style`), so both reach the bucket the same way.
    pub path_style: bool,
}

impl Backend {
    pub fn for_cluster(bucket: &str, cluster: &str, region: &str) -> Backend {
        Backend {
            bucket: bucket.to_string(),
            key: format!("clusters/{cluster}/terraform.tfstate"),
            region: region.to_string(),
            path_style: false,
        }
    }

    pub fn path_style(mut self, on: bool) -> Backend {
        self.path_style = on;
        self
    }
}

/// The result of `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Terraform's own verdict (`-detailed-exitcode` 2): something would
    /// change, resources or outputs.
    pub has_changes: bool,
    pub changes: Changes,
    /// Every resource instance the plan would touch, in Terraform's order.
    pub resources: Vec<PlannedChange>,
}

/// One value of `terraform output -json`. Debug output hides sensitive values.
#[derive(Clone, PartialEq, Deserialize)]
pub struct Output {
    #[serde(default)]
    pub sensitive: bool,
    pub value: Value,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = if self.sensitive {
            &"<sensitive>"
        } else {
            &self.value
        };
        f.debug_struct("Output")
            .field("sensitive", &self.sensitive)
            .field("value", value)
            .finish()
    }
}

/// Runs Terraform commands in one directory.
#[derive(Debug, Clone)]
pub struct Runner {
    terraform: Terraform,
    dir: PathBuf,
    env: Vec<(String, String)>,
    interrupt: Interrupt,
}

/// What a finished child left behind.
struct Finished {
    status: ExitStatus,
    transcript: Transcript,
    stdout: String,
    stderr: String,
}

impl Runner {
    /// A runner for `work_dir/terraform`, the directory `render` writes.
    pub fn new(terraform: Terraform, work_dir: &Path) -> Runner {
        Runner {
            terraform,
            dir: work_dir.join("terraform"),
            env: Vec::new(),
            interrupt: Interrupt::never(),
        }
    }

    /// Stops the running command when `interrupt` fires.
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Runner {
        self.interrupt = interrupt;
        self
    }

    /// Sets an environment variable for Terraform on top of this process's
    /// own (credentials and endpoints in tests, say).
    pub fn with_env(mut self, key: &str, value: &str) -> Runner {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The same runner for another work directory.
    pub fn elsewhere(&self, work_dir: &Path) -> Runner {
        Runner {
            dir: work_dir.join("terraform"),
            ..self.clone()
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `terraform init` with the S3 backend and S3-native locking, path-style
    /// when the backend says so (an emulator behind an endpoint override).
    /// `-reconfigure`: the state already lives in the bucket, so a re-init
    /// with other settings must not offer to migrate a local copy.
    pub async fn init(&self, backend: &Backend, reporter: &dyn Reporter) -> Result<(), RunError> {
        let mut args = vec![
            "init".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            "-json".into(),
            "-reconfigure".into(),
            format!("-backend-config=bucket={}", backend.bucket),
            format!("-backend-config=key={}", backend.key),
            format!("-backend-config=region={}", backend.region),
            "-backend-config=use_lockfile=true".into(),
            "-backend-config=encrypt=true".into(),
        ];
        if backend.path_style {
            args.push("-backend-config=use_path_style=true".into());
        }
        let _turn = INIT.lock().await;
        self.run("init", args, reporter).await?;
        Ok(())
    }

    /// `terraform init` for a configuration whose backend needs no settings:
    /// a scratch copy with a local-backend override, planned against empty
    /// state (`up --dry-run` before the state bucket exists).
    pub async fn init_local(&self, reporter: &dyn Reporter) -> Result<(), RunError> {
        let args = ["init", "-input=false", "-no-color", "-json"]
            .map(String::from)
            .to_vec();
        let _turn = INIT.lock().await;
        self.run("init", args, reporter).await?;
        Ok(())
    }

    /// `terraform plan -out=plan_file`.
    pub async fn plan(&self, plan_file: &Path, reporter: &dyn Reporter) -> Result<Plan, RunError> {
        self.plan_with("plan", &[], plan_file, reporter).await
    }

    /// `terraform plan -destroy -out=plan_file`: what a destroy would remove.
    /// Applying `plan_file` performs it.
    pub async fn plan_destroy(
        &self,
        plan_file: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Plan, RunError> {
        self.plan_with("plan -destroy", &["-destroy"], plan_file, reporter)
            .await
    }

    async fn plan_with(
        &self,
        command: &'static str,
        extra: &[&str],
        plan_file: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Plan, RunError> {
        let mut args = vec!["plan".to_string()];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend([
            "-input=false".into(),
            "-no-color".into(),
            "-json".into(),
            "-detailed-exitcode".into(),
            format!("-out={}", plan_file.display()),
        ]);
        let finished = self.run(command, args, reporter).await?;
        Ok(Plan {
            has_changes: finished.status.code() == Some(2),
            changes: finished.transcript.changes.unwrap_or_default(),
            resources: finished.transcript.planned,
        })
    }

    /// `terraform apply plan_file`: exactly the saved plan, no new approval.
    pub async fn apply(
        &self,
        plan_file: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Changes, RunError> {
        let args = vec![
            "apply".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            "-json".into(),
            plan_file.display().to_string(),
        ];
        let finished = self.run("apply", args, reporter).await?;
        Ok(finished.transcript.changes.unwrap_or_default())
    }

    /// `terraform destroy -auto-approve`.
    pub async fn destroy(&self, reporter: &dyn Reporter) -> Result<Changes, RunError> {
        let args = [
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-json",
        ]
        .map(String::from)
        .to_vec();
        let finished = self.run("destroy", args, reporter).await?;
        Ok(finished.transcript.changes.unwrap_or_default())
    }

    /// `terraform force-unlock -force ID`: releases a state lock whose
    /// holder is gone. Terraform checks the ID against the lock it finds.
    pub async fn force_unlock(&self, id: &str, reporter: &dyn Reporter) -> Result<(), RunError> {
        let args = ["force-unlock", "-force", id].map(String::from).to_vec();
        self.run("force-unlock", args, reporter).await?;
        Ok(())
    }

    /// `terraform show -json plan_file`: the saved plan as JSON, for
    /// deciding about it before it is applied.
    pub async fn show_plan(
        &self,
        plan_file: &Path,
        reporter: &dyn Reporter,
    ) -> Result<String, RunError> {
        let args = vec![
            "show".to_string(),
            "-no-color".into(),
            "-json".into(),
            plan_file.display().to_string(),
        ];
        Ok(self.run("show", args, reporter).await?.stdout)
    }

    /// `terraform output -json`, by output name.
    pub async fn output(
        &self,
        reporter: &dyn Reporter,
    ) -> Result<BTreeMap<String, Output>, RunError> {
        let args = ["output", "-no-color", "-json"].map(String::from).to_vec();
        let finished = self.run("output", args, reporter).await?;
        serde_json::from_str(&finished.stdout).map_err(|e| RunError::Output {
            reason: e.to_string(),
        })
    }

    /// The ids and ARNs of every resource in the state (`terraform show
    /// -json`): what `terraform destroy` will remove, by cloud identity.
    pub async fn state_ids(
        &self,
        reporter: &dyn Reporter,
    ) -> Result<std::collections::BTreeSet<String>, RunError> {
        let args = ["show", "-no-color", "-json"].map(String::from).to_vec();
        let finished = self.run("show", args, reporter).await?;
        let state: Value =
            serde_json::from_str(&finished.stdout).map_err(|e| RunError::Output {
                reason: e.to_string(),
            })?;
        let mut ids = std::collections::BTreeSet::new();
        let mut modules = vec![&state["values"]["root_module"]];
        while let Some(module) = modules.pop() {
            for resource in module["resources"].as_array().into_iter().flatten() {
                for key in ["id", "arn"] {
                    if let Some(id) = resource["values"][key].as_str().filter(|id| !id.is_empty()) {
                        ids.insert(id.to_string());
                    }
                }
                if let Some(id) = record_id(&resource["values"])
                    && resource["type"] == "aws_route53_record"
                {
                    ids.insert(id);
                }
            }
            modules.extend(module["child_modules"].as_array().into_iter().flatten());
        }
        Ok(ids)
    }

    /// The value Terraform will see for `key`.
    fn var(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(key).ok())
    }

    /// Runs one Terraform command to its end: spawn, follow its output
    /// (passing stop requests on), collect what it left.
    async fn run(
        &self,
        command: &'static str,
        args: Vec<String>,
        reporter: &dyn Reporter,
    ) -> Result<Finished, RunError> {
        if self.interrupt.count() > 0 {
            return Err(RunError::Interrupted { command });
        }
        let output = Capture::new(&self.dir)?;
        let mut child = self.command(&args, &output)?;
        reporter.report(
            Event::debug(PHASE, format!("terraform {}", args.join(" ")))
                .with("command", command)
                .with("dir", self.dir.display().to_string()),
        );
        let mut child = child.spawn().map_err(|source| RunError::Spawn {
            path: self.terraform.path.clone(),
            source,
        })?;
        let group = Group::of(&child);
        let followed = self
            .follow(command, &mut child, &group, &output, reporter)
            .await;
        let (status, transcript, stdout, sent) = followed.map_err(|source| RunError::Spawn {
            path: self.terraform.path.clone(),
            source,
        })?;
        group.disarm();
        let finished = Finished {
            status,
            transcript,
            stdout,
            stderr: output.stderr(),
        };
        finish(command, finished, sent > 0)
    }

    /// The child process for `args`, not yet started.
    ///
    /// Terraform writes to files, not pipes: were terrace killed, a pipe
    /// would lose its reader and Terraform would die of SIGPIPE at its next
    /// line, mid-apply, holding the state lock. It gets its own process
    /// group, so the terminal's Ctrl-C (or a kill of terrace's group)
    /// reaches it only through the runner, which decides what to send; and
    /// on Linux it gets SIGINT when terrace dies, so it is never orphaned:
    /// it stops as after a Ctrl-C, writing its state and releasing the lock.
    fn command(&self, args: &[String], output: &Capture) -> Result<Command, RunError> {
        let capture_err = |source| RunError::Capture {
            path: output.dir.clone(),
            source,
        };
        let mut child = Command::new(&self.terraform.path);
        child
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(output.stdout.as_file().try_clone().map_err(capture_err)?)
            .stderr(output.stderr.as_file().try_clone().map_err(capture_err)?)
            .process_group(0);
        // The parent-death signal fires when the *thread* that forked exits.
        // Commands are spawned from the runtime's threads, which live as
        // long as the runtime, and the runtime outlives every command.
        let parent = std::process::id();
        // SAFETY: signal(2), prctl(2) and getppid(2) are async-signal-safe
        // and touch no memory of the parent; the error is built without
        // allocating.
        unsafe {
            child.pre_exec(move || {
                // A SIGINT ignored by whoever started terrace (`nohup`, a
                // `cmd &` in a script) would be inherited; reset it, or
                // Terraform might never see the stop request.
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                #[cfg(target_os = "linux")]
                {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // terrace died between fork and prctl: nobody would
                    // send the signal, so do not start at all.
                    if libc::getppid() as u32 != parent {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                Ok(())
            });
        }
        if let Some(cache) = plugin_cache_dir(|k| self.var(k)) {
            std::fs::create_dir_all(&cache).map_err(|source| RunError::PluginCache {
                path: cache.clone(),
                source,
            })?;
            child.env("TF_PLUGIN_CACHE_DIR", &cache);
        }
        for (key, value) in &self.env {
            child.env(key, value);
        }
        Ok(child)
    }

    /// Reads the child's `-json` lines as they are written, turning them
    /// into events, until it exits; the first stop request is passed on
    /// as SIGINT, later ones as SIGKILL. Returns its exit status, the
    /// transcript, its raw stdout and how many requests were passed on.
    async fn follow(
        &self,
        command: &'static str,
        child: &mut tokio::process::Child,
        group: &Group,
        output: &Capture,
        reporter: &dyn Reporter,
    ) -> std::io::Result<(ExitStatus, Transcript, String, u32)> {
        let mut lines = Lines::new(output.stdout.reopen()?);
        let mut transcript = Transcript::default();
        let mut raw = String::new();
        let mut read = |line: &str, transcript: &mut Transcript| {
            raw.push_str(line);
            raw.push('\n');
            if let Some(event) = transcript.read_line(command, line) {
                reporter.report(event);
            }
        };
        let mut interrupt = self.interrupt.clone();
        let mut sent = 0;
        let status = loop {
            lines.read(|line| read(line, &mut transcript))?;
            tokio::select! {
                status = child.wait() => break status?,
                count = interrupt.exceeds(sent) => {
                    sent = count;
                    group.signal(if count == 1 { libc::SIGINT } else { libc::SIGKILL });
                    reporter.report(
                        Event::warn(PHASE, if count == 1 {
                            "interrupted: waiting for Terraform to stop and release the state lock (interrupt again to kill it)"
                        } else {
                            "interrupted again: killing Terraform; the state lock may stay held"
                        })
                        .with("command", command),
                    );
                }
                () = tokio::time::sleep(POLL) => {}
            }
        };
        lines.read(|line| read(line, &mut transcript))?;
        lines.rest(|line| read(line, &mut transcript));
        Ok((status, transcript, raw, sent))
    }
}

/// How often a running command's output is looked at for new lines.
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// The files a command's stdout and stderr go to; removed when dropped.
struct Capture {
    dir: PathBuf,
    stdout: tempfile::NamedTempFile,
    stderr: tempfile::NamedTempFile,
}

impl Capture {
    /// In the cluster's work directory (`tfoutput/`), beside the plan
    /// file, which holds the same values. A killed terrace leaves its last
    /// pair there; the next command's files do not collide with it.
    fn new(terraform_dir: &Path) -> Result<Capture, RunError> {
        let dir = terraform_dir
            .parent()
            .unwrap_or(terraform_dir)
            .join("tfoutput");
        if let Err(source) = std::fs::create_dir_all(&dir) {
            return Err(RunError::Capture { path: dir, source });
        }
        let file = |suffix: &str| {
            tempfile::Builder::new()
                .prefix(".terraform-")
                .suffix(suffix)
                .tempfile_in(&dir)
        };
        match (file(".stdout"), file(".stderr")) {
            (Ok(stdout), Ok(stderr)) => Ok(Capture {
                dir,
                stdout,
                stderr,
            }),
            (Err(source), _) | (_, Err(source)) => Err(RunError::Capture { path: dir, source }),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read(self.stderr.path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

/// Complete lines of a file another process is still appending to.
struct Lines {
    file: std::fs::File,
    pending: Vec<u8>,
}

impl Lines {
    fn new(file: std::fs::File) -> Lines {
        Lines {
            file,
            pending: Vec::new(),
        }
    }

    /// Hands every complete line written so far to `each`.
    fn read(&mut self, mut each: impl FnMut(&str)) -> std::io::Result<()> {
        use std::io::Read;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let n = self.file.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            self.pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                each(String::from_utf8_lossy(&line[..end]).as_ref());
            }
        }
    }

    /// The last line, when the writer ended without a newline.
    fn rest(&mut self, mut each: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            each(String::from_utf8_lossy(&line).as_ref());
        }
    }
}

/// Turns a finished child into the command's result.
fn finish(command: &'static str, f: Finished, interrupted: bool) -> Result<Finished, RunError> {
    if interrupted {
        return Err(RunError::Interrupted { command });
    }
    let ok = f.status.success() || (command.starts_with("plan") && f.status.code() == Some(2));
    if ok {
        return Ok(f);
    }
    let diagnostics: Vec<_> = f.transcript.errors().cloned().collect();
    if let Some((lock, diagnostic)) = diagnostics
        .iter()
        .find_map(|d| LockInfo::from_diagnostic(d).map(|lock| (lock, d.clone())))
    {
        return Err(RunError::Locked {
            command,
            lock: Box::new(lock),
            diagnostic: Box::new(diagnostic),
        });
    }
    let mut stderr = f.stderr;
    if diagnostics.is_empty() && stderr.trim().is_empty() {
        // No JSON and nothing on stderr: whatever it printed is all we have.
        stderr = f.transcript.other.join("\n");
    }
    Err(RunError::Failed {
        command,
        code: f.status.code(),
        diagnostics,
        stderr,
    })
}

/// The process group of a running child. Should the runner's future be
/// dropped mid-command, Terraform still gets SIGINT, never an orphaned run
/// that holds the state lock forever.
struct Group {
    pgid: Option<libc::pid_t>,
}

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        Group {
            pgid: child.id().and_then(|id| libc::pid_t::try_from(id).ok()),
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads; no memory is involved.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }

    fn disarm(mut self) {
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGINT);
    }
}

/// Taken by every `terraform init` of this process. Terraform's provider
/// plugin cache is not safe for concurrent installs: two inits filling one
/// cache at once fail with "after installing registry.terraform.io/hashicorp/aws
/// it is still not detected … this is a bug in Terraform" (seen with three
/// clusters of `fleet up`). Every cluster shares the cache, so the inits of
/// a fleet take turns; with a warm cache each takes seconds.
static INIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The provider plugin cache shared by every cluster's directory, unless
/// the user configured one (`TF_PLUGIN_CACHE_DIR`, or `plugin_cache_dir` in
/// the CLI configuration file), which then wins.
fn plugin_cache_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty());
    if set("TF_PLUGIN_CACHE_DIR").is_some() {
        return None;
    }
    let config = set("TF_CLI_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".terraformrc")));
    if let Some(config) = config
        && std::fs::read_to_string(config).is_ok_and(|text| text.contains("plugin_cache_dir"))
    {
        return None;
    }
    let (xdg, home) = (var("XDG_CACHE_HOME"), var("HOME"));
    let cache = crate::dirs::cache_home(
        xdg.as_deref().map(std::ffi::OsStr::new),
        home.as_deref().map(std::ffi::OsStr::new),
    )?;
    Some(cache.join("plugins"))
}

/// A Route53 record as the sweep names it (`<zone id>/<name>/<type>`,
/// the name lowercase without its final dot), where Terraform's own id
/// joins the same parts with `_` and keeps the name as written.
fn record_id(values: &Value) -> Option<String> {
    let zone = values["zone_id"].as_str()?;
    let name = values["fqdn"]
        .as_str()
        .or_else(|| values["name"].as_str())?;
    let kind = values["type"].as_str()?;
    Some(format!(
        "{zone}/{}/{kind}",
        name.trim_end_matches('.').to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_in_the_state_is_named_as_the_sweep_names_it() {
        let values = serde_json::json!({
            "zone_id": "Z0123",
            "name": "_d930b28be6c5927595552b219965053e.Example.com.",
            "fqdn": "_d930b28be6c5927595552b219965053e.Example.com.",
            "type": "CNAME",
        });
        assert_eq!(
            record_id(&values).as_deref(),
            Some("Z0123/_d930b28be6c5927595552b219965053e.example.com/CNAME")
        );
        assert_eq!(record_id(&serde_json::json!({"id": "vpc-1"})), None);
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn plugin_cache_defaults_under_xdg_cache_home_and_respects_the_user() {
        assert_eq!(
            plugin_cache_dir(vars(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/h")])),
            Some(PathBuf::from("/c/terrace/plugins"))
        );
        assert_eq!(
            plugin_cache_dir(vars(&[("HOME", "/nonexistent-home")])),
            Some(PathBuf::from("/nonexistent-home/.cache/terrace/plugins"))
        );
        assert_eq!(
            plugin_cache_dir(vars(&[("TF_PLUGIN_CACHE_DIR", "/mine"), ("HOME", "/h")])),
            None
        );
        let tmp = tempfile::tempdir().unwrap();
        let rc = tmp.path().join("terraform.rc");
        std::fs::write(&rc, "plugin_cache_dir = \"/mine\"\n").unwrap();
        let rc = rc.to_str().unwrap();
        assert_eq!(
            plugin_cache_dir(vars(&[("TF_CLI_CONFIG_FILE", rc), ("HOME", "/h")])),
            None
        );
        std::fs::write(tmp.path().join("other.rc"), "disable_checkpoint = true\n").unwrap();
        let other = tmp.path().join("other.rc");
        assert_eq!(
            plugin_cache_dir(vars(&[
                ("TF_CLI_CONFIG_FILE", other.to_str().unwrap()),
                ("XDG_CACHE_HOME", "/c")
            ])),
            Some(PathBuf::from("/c/terrace/plugins"))
        );
    }

    #[test]
    fn backend_key_is_per_cluster() {
        let b = Backend::for_cluster(
            "terrace-state-1-us-east-1",
            "terrace-us-east-1",
            "us-east-1",
        );
        assert_eq!(b.key, "clusters/terrace-us-east-1/terraform.tfstate");
    }

    #[test]
    fn sensitive_outputs_stay_out_of_debug_output() {
        let secret = Output {
            sensitive: true,
            value: Value::String("hunter2".into()),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
        let plain = Output {
            sensitive: false,
            value: Value::String("vpc-1".into()),
        };
        assert!(format!("{plain:?}").contains("vpc-1"));
    }
}
