//! Operations: one function per command, which tests can call without the
//! binary. `app` parses, builds a [`Context`] once and calls one operation;
//! the operation checks every flag before its first AWS call, does the
//! work through the domain modules and returns data for `ui` to print.
//!
//! The [`Context`] is everything resolved from the global flags and the
//! environment, read once: the configuration file, the addon catalog, the
//! Terraform binary, the cache directory, the kubeconfig location and the
//! exec plugin's environment, and whether a person can answer a question.
//! Nothing below this layer reads an environment variable Terrace defines.

pub mod account;
pub mod addons;
pub mod cluster;
pub mod drill;
pub mod fleet;
pub mod janitor;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::addons::{Catalog, CatalogError};
use crate::aws::kubeconfig::{self, Exec, KubeconfigError, Target};
use crate::aws::{Aws, discovery};
use crate::cluster::{Approval, DownSummary, Prompt};
use crate::config::{self, ClusterSpec, ConfigError, Location, Problem, Request};
use crate::progress::Reporter;
use crate::terraform::{BinaryError, Terraform};

/// What an operation shows as it goes, besides progress events: a
/// question, a finished teardown's summary, a warning. `ui::Printer` is one.
pub trait Show: Reporter + Prompt {
    fn down_summary(&self, summary: &DownSummary, ok: bool);
    fn warning(&self, message: &str);
}

/// The parts of the process environment Terrace reads.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub home: Option<OsString>,
    pub kubeconfig: Option<OsString>,
    pub xdg_cache_home: Option<OsString>,
    pub aws_profile: Option<String>,
    /// `TERRACE_TERRAFORM`: the binary to use instead of one on `PATH`.
    pub terraform: Option<OsString>,
    pub path: Option<OsString>,
    /// This binary, for the kubeconfig's exec plugin.
    pub exe: Option<PathBuf>,
    /// stdin and stderr are terminals: someone can answer a question.
    pub interactive: bool,
}

impl Env {
    pub fn from_process() -> Env {
        let var = std::env::var_os;
        Env {
            home: var("HOME"),
            kubeconfig: var("KUBECONFIG"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            aws_profile: std::env::var("AWS_PROFILE").ok(),
            terraform: var("TERRACE_TERRAFORM"),
            path: var("PATH"),
            exe: std::env::current_exe().ok(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

/// Everything a command needs from the global flags and the environment.
pub struct Context {
    /// `--config`; when absent, `./terrace.yaml` is used if it exists.
    pub config: Option<PathBuf>,
    pub catalog: &'static Catalog,
    /// `<cache>/terrace`, where verified release manifests and Terraform's
    /// providers are kept between runs; `None` without a home directory.
    pub cache: Option<PathBuf>,
    env: Env,
    terraform: OnceLock<Result<Terraform, BinaryError>>,
}

impl Context {
    pub fn new(config: Option<PathBuf>, env: Env) -> Result<Context, &'static CatalogError> {
        Ok(Context {
            config,
            catalog: Catalog::embedded()?,
            cache: crate::dirs::cache_home(env.xdg_cache_home.as_deref(), env.home.as_deref()),
            env,
            terraform: OnceLock::new(),
        })
    }

    pub fn request(&self, region: &str, name: Option<&str>) -> Request {
        Request {
            config: self.config.clone(),
            region: region.to_string(),
            name: name.map(str::to_string),
        }
    }

    /// The file a fleet command reads its clusters from: `--config`, else
    /// `./terrace.yaml`; without either there is no fleet (a usage error).
    pub fn fleet_file(&self) -> Result<PathBuf, ConfigError> {
        match &self.config {
            Some(path) => Ok(path.clone()),
            None if Path::new(config::DEFAULT_CONFIG).is_file() => {
                Ok(PathBuf::from(config::DEFAULT_CONFIG))
            }
            None => Err(flag_error(
                "--config",
                format!(
                    "a fleet command needs the configuration file listing its clusters: none given and no ./{} here",
                    config::DEFAULT_CONFIG
                ),
            )),
        }
    }

    /// The cluster `--region` and `--name` select, resolved and validated.
    pub fn spec(&self, region: &str, name: Option<&str>) -> Result<ClusterSpec, ConfigError> {
        config::load(&self.request(region, name), self.catalog.schema())
    }

    /// The Terraform binary, found on first use and then remembered; an
    /// error says why there is none (preflight reports it as a check).
    pub fn terraform(&self) -> Result<Terraform, BinaryError> {
        self.terraform
            .get_or_init(|| Terraform::find_in(self.env.terraform.clone(), self.env.path.clone()))
            .clone()
    }

    /// Where a cluster's kubeconfig entry goes (`--kubeconfig`, else the
    /// first `KUBECONFIG` path, else `~/.kube/config`) and the exec plugin
    /// it names.
    pub fn kubeconfig(&self, flag: Option<&Path>) -> Result<Target, KubeconfigError> {
        let home = self.env.home.as_deref().map(Path::new);
        let path = kubeconfig::resolve_path(flag, self.env.kubeconfig.as_deref(), home)?;
        let exe = self.env.exe.clone().ok_or(KubeconfigError::NoExecutable)?;
        Ok(Target {
            path,
            exec: Exec::new(exe, self.env.aws_profile.as_deref()),
        })
    }

    /// Who approves changes: `--yes` (or a dry run, which changes nothing),
    /// else a person at a terminal. Without either there is nobody to ask,
    /// which is a usage error.
    pub fn approval<'a>(
        &self,
        yes: bool,
        dry_run: bool,
        prompt: &'a dyn Prompt,
    ) -> Result<Approval<'a>, ConfigError> {
        if yes || dry_run {
            Ok(Approval::Yes)
        } else if self.env.interactive {
            Ok(Approval::Ask(prompt))
        } else {
            Err(flag_error(
                "--yes",
                "required when not run from a terminal: nobody can approve the changes".into(),
            ))
        }
    }
}

/// A problem with one command-line flag.
pub fn flag_error(flag: &str, message: String) -> ConfigError {
    ConfigError::Invalid(vec![Problem {
        location: Location::CommandLine,
        field: flag.into(),
        message,
    }])
}

/// A `--region` flag given without a cluster spec is checked like one.
pub fn check_region(region: &str) -> Result<(), ConfigError> {
    match config::regions::find(region) {
        Some(_) => Ok(()),
        None => Err(flag_error("--region", config::regions::unknown(region))),
    }
}

/// The `--region` flags, checked, else every region enabled for the account.
pub async fn regions(
    aws: &Aws,
    flags: &[String],
) -> Result<Vec<String>, discovery::DiscoveryError> {
    if flags.is_empty() {
        discovery::enabled_regions(aws).await
    } else {
        Ok(flags.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;

    impl Prompt for Nobody {
        fn ask(&self, _question: &str) -> tokio::sync::oneshot::Receiver<bool> {
            let (answer, asked) = tokio::sync::oneshot::channel();
            let _ = answer.send(false);
            asked
        }
    }

    fn context(env: Env) -> Context {
        Context::new(None, env).unwrap()
    }

    #[test]
    fn without_a_terminal_changes_need_yes() {
        let ctx = context(Env::default());
        let err = ctx.approval(false, false, &Nobody).err().unwrap();
        assert!(err.to_string().starts_with("--yes: required"), "{err}");
        assert!(matches!(
            ctx.approval(true, false, &Nobody),
            Ok(Approval::Yes)
        ));
        assert!(matches!(
            ctx.approval(false, true, &Nobody),
            Ok(Approval::Yes)
        ));
        let tty = context(Env {
            interactive: true,
            ..Env::default()
        });
        assert!(matches!(
            tty.approval(false, false, &Nobody),
            Ok(Approval::Ask(_))
        ));
    }

    #[test]
    fn kubeconfig_target_comes_from_flag_env_and_home_with_the_profile() {
        let ctx = context(Env {
            home: Some("/home/u".into()),
            kubeconfig: Some("/k/one:/k/two".into()),
            aws_profile: Some("dev".into()),
            exe: Some("/bin/terrace".into()),
            ..Env::default()
        });
        let target = ctx.kubeconfig(None).unwrap();
        assert_eq!(target.path, PathBuf::from("/k/one"));
        assert_eq!(target.exec.command, PathBuf::from("/bin/terrace"));
        assert_eq!(target.exec.env, [("AWS_PROFILE".into(), "dev".into())]);
        let flagged = ctx.kubeconfig(Some(Path::new("/x"))).unwrap();
        assert_eq!(flagged.path, PathBuf::from("/x"));
        assert!(context(Env::default()).kubeconfig(None).is_err());
    }

    #[test]
    fn cache_and_terraform_come_from_the_environment() {
        let ctx = context(Env {
            home: Some("/home/u".into()),
            terraform: Some("/nonexistent/terraform".into()),
            ..Env::default()
        });
        assert_eq!(ctx.cache, Some(PathBuf::from("/home/u/.cache/terrace")));
        let err = ctx.terraform().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/terraform"), "{err}");
    }

    #[test]
    fn unknown_regions_are_usage_errors() {
        assert!(check_region("us-east-1").is_ok());
        let err = check_region("us-nowhere-1").unwrap_err();
        assert!(err.to_string().starts_with("--region: "), "{err}");
    }
}
