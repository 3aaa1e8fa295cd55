//! `terrace cluster up`: resolve → preflight → state → render → terraform →
//! outputs → connect → addons → verify, journaled so an interrupted run
//! resumes where it stopped, and idempotent so a finished cluster re-runs
//! to "no changes".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::guard::{self, Verdict};
use super::journal::{self, Section, Status};
use super::orphans::{self, Adoption, Decisions, Orphan, Planned};
use super::pipeline::{JournalMode, OnInterrupt, PhaseReport, Pipeline, Started, start};
use super::{Approval, ClusterError, connect, stale, verify};
use crate::addons::install::{self, InstallOptions};
use crate::aws::{Aws, addon_versions, kubeconfig, state, vpc};
use crate::config::{ClusterSpec, Request};
use crate::k8s::Kube;
use crate::progress::{Event, Reporter};
use crate::render::{self, Outputs, Tree};
use crate::teardown;
use crate::terraform::{
    Backend, BinaryError, Changes, Interrupt, Plan as TerraformPlan, RunError, Runner, Terraform,
};

pub struct UpOptions<'a> {
    pub request: Request,
    pub approval: Approval<'a>,
    /// `--allow-replace`: the plan may replace the cluster's foundations.
    pub allow_replace: bool,
    /// Stop after `terraform plan` and say what would change.
    pub dry_run: bool,
    /// Stop once this phase is done (`--stop-after`).
    pub stop_after: Option<&'static str>,
    pub install: InstallOptions,
    /// Where the cluster's kubeconfig entry goes.
    pub kubeconfig: kubeconfig::Target,
    /// The binary found for this run, or why none was (preflight says so).
    pub terraform: Result<Terraform, BinaryError>,
    pub interrupt: Interrupt,
    /// Ignore the journal: start over instead of resuming (`--restart`).
    pub restart: bool,
    /// How long `verify` waits for the whole cluster to be ready.
    pub verify_deadline: std::time::Duration,
    /// `--ttl`, over the configuration's `ttl:`.
    pub ttl: Option<std::time::Duration>,
}

/// How long `verify` waits unless told otherwise: the addons phase has
/// already waited for each addon, so this covers nodes joining and
/// controllers settling.
pub const VERIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// What `up` did, phase by phase; printed even when it failed.
#[derive(Debug, Default, Serialize)]
pub struct UpSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    pub dry_run: bool,
    /// Terraform found nothing to change.
    pub no_changes: bool,
    pub changes: Changes,
    /// Resources a dry run would change (`address: action`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
    pub resumed: bool,
    /// What a killed apply had left outside the state, and what this run
    /// did with it.
    pub orphans: OrphanReport,
    /// A dry run's plan of the phases: each one's name and whether it would
    /// run or may be skipped (resuming an unfinished run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would: Vec<(&'static str, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<&'static str>,
    /// The kubeconfig context `connect` wrote, for the next command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<kubeconfig::Written>,
    pub phases: Vec<PhaseReport>,
    pub seconds: f64,
}

/// Orphans of a killed apply: adopted into the state, removed, or left
/// for `down` because they stand in nobody's way.
#[derive(Debug, Default, Serialize)]
pub struct OrphanReport {
    pub adopted: Vec<Adoption>,
    pub removed: Vec<Orphan>,
    pub left: Vec<Orphan>,
}

/// Plans looked at for orphans: one adoption can make the address of
/// another known (the node role's ARN names the access entry).
const ORPHAN_ROUNDS: usize = 3;

const LAST_PHASE: &str = "verify";

/// Runs `up`; the summary is complete whether or not it succeeded.
pub async fn up(
    options: UpOptions<'_>,
    reporter: &dyn Reporter,
) -> (UpSummary, Result<(), ClusterError>) {
    up_with(&options, reporter).await
}

/// As [`up`], for a caller that runs more than once with the same options
/// (rebuild: a dry run first, then the real one).
pub(super) async fn up_with(
    options: &UpOptions<'_>,
    reporter: &dyn Reporter,
) -> (UpSummary, Result<(), ClusterError>) {
    let started = Instant::now();
    let mut summary = UpSummary {
        dry_run: options.dry_run,
        ..UpSummary::default()
    };
    let result = run(options, reporter, &mut summary).await;
    summary.seconds = started.elapsed().as_secs_f64();
    (summary, result)
}

async fn run(
    options: &UpOptions<'_>,
    reporter: &dyn Reporter,
    summary: &mut UpSummary,
) -> Result<(), ClusterError> {
    let last = options.stop_after.unwrap_or(LAST_PHASE);
    let mode = if options.dry_run {
        JournalMode::ReadOnly
    } else if options.restart {
        JournalMode::Restart
    } else {
        JournalMode::Resume
    };
    let Started {
        mut spec,
        dir,
        lock: _lock,
        pipeline: mut p,
    } = start(
        &options.request,
        Section::Up,
        "up",
        last,
        mode,
        reporter,
        options.interrupt.clone(),
    )?;
    summary.cluster = spec.name.clone();
    summary.region = spec.region.clone();
    summary.dir = dir.clone();
    summary.resumed = p.resuming();
    expire(&mut spec, options.ttl, std::time::SystemTime::now());
    let aws = Aws::connect(&spec.region).await;
    let up = Up {
        options,
        spec: &spec,
        dir: &dir,
        aws,
        reporter,
    };
    let mut result = up.phases(&mut p, summary).await;
    if result.is_ok() && !options.dry_run {
        result = p.complete();
    }
    summary.phases = std::mem::take(&mut p.phases);
    result
}

/// Fixes the expiry a TTL gives, counted from `now`. Terraform keeps the
/// expiry of a cluster it already built, so only a new cluster takes it.
fn expire(spec: &mut ClusterSpec, flag: Option<std::time::Duration>, now: std::time::SystemTime) {
    if spec.lifetime.keep {
        return;
    }
    if let Some(ttl) = flag {
        spec.lifetime.ttl_seconds = Some(ttl.as_secs());
    }
    spec.lifetime.expires_at = spec
        .lifetime
        .ttl_seconds
        .map(|ttl| crate::aws::token::rfc3339(now + std::time::Duration::from_secs(ttl)));
}

/// What every phase of one `up` works with.
struct Up<'a> {
    options: &'a UpOptions<'a>,
    spec: &'a ClusterSpec,
    dir: &'a Path,
    aws: Aws,
    reporter: &'a dyn Reporter,
}

impl Up<'_> {
    /// The phases after `resolve`, in order.
    async fn phases(
        &self,
        p: &mut Pipeline<'_>,
        summary: &mut UpSummary,
    ) -> Result<(), ClusterError> {
        let account = self.preflight(p).await?;
        let terraform = self.options.terraform.clone()?;
        let bucket = state::bucket_name(&account, &self.spec.region);
        let bucket_exists = self.state(p, &account).await?;
        let tree = self.render(p).await?;
        if self.stop("render", summary) {
            return Ok(());
        }

        let runner = Runner::new(terraform, self.dir)
            .with_env(
                "TF_DATA_DIR",
                &self.dir.join("tfdata").display().to_string(),
            )
            .with_interrupt(self.options.interrupt.clone());
        let backend = Backend::for_cluster(&bucket, &self.spec.name, &self.spec.region)
            .path_style(self.aws.s3_path_style());
        let plan_file = self.dir.join("tfplan");
        if self.options.dry_run {
            let plan = Plan {
                runner: &runner,
                backend: &backend,
                bucket_exists,
                tree: &tree,
                plan_file: &plan_file,
            };
            return self.dry_run(plan, p, summary).await;
        }

        let (changes, found) = self
            .terraform(p, &runner, &backend, &account, &plan_file)
            .await?;
        summary.orphans = found;
        match changes {
            Some(changes) => summary.changes = changes,
            None => {
                summary.no_changes = true;
                p.note("terraform", "no changes");
            }
        }
        if self.stop("terraform", summary) {
            return Ok(());
        }

        let tree = self.outputs(p, &runner).await?;
        if self.stop("outputs", summary) {
            return Ok(());
        }

        let (kube, written) = p
            .run("connect", None, OnInterrupt::Stop, async {
                connect::connect(
                    &self.aws,
                    self.spec,
                    &self.options.kubeconfig,
                    self.reporter,
                )
                .await
            })
            .await?
            .ok_or(ClusterError::Internal("connect is never skipped"))?;
        summary.kubeconfig = Some(written);
        if self.stop("connect", summary) {
            return Ok(());
        }

        self.addons(p, &kube, &tree).await?;
        if self.stop("addons", summary) {
            return Ok(());
        }

        p.run("verify", None, OnInterrupt::Stop, async {
            let expected = verify::Expected::of(self.spec, &tree)?;
            let options = &self.options.install;
            verify::verify(
                &kube,
                &expected,
                self.options.verify_deadline,
                &options.backoff,
                self.reporter,
            )
            .await
        })
        .await?;
        Ok(())
    }

    /// Preflight's checks, each reported; the account they found.
    async fn preflight(&self, p: &mut Pipeline<'_>) -> Result<String, ClusterError> {
        let report = p
            .run("preflight", None, OnInterrupt::Stop, async {
                let check = super::terraform_check(&self.options.terraform);
                let report = super::preflight_report(self.spec, &self.aws, check).await;
                for check in &report.checks {
                    let event = if check.passed {
                        Event::info
                    } else {
                        Event::warn
                    };
                    self.reporter.report(
                        event("preflight", format!("{}: {}", check.name, check.detail))
                            .with("check", check),
                    );
                }
                match report.refusal() {
                    Some(refused) => Err(ClusterError::Preflight(refused)),
                    None => Ok(report),
                }
            })
            .await?
            .ok_or(ClusterError::Internal("preflight is never skipped"))?;
        report.account.ok_or(ClusterError::Internal(
            "preflight passed without an account",
        ))
    }

    /// Ensures the state bucket (a dry run only looks); whether it exists.
    async fn state(&self, p: &mut Pipeline<'_>, account: &str) -> Result<bool, ClusterError> {
        if self.options.dry_run {
            return Ok(state::exists(&self.aws, account, &self.spec.region).await?);
        }
        p.run("state", None, OnInterrupt::Stop, async {
            let ensured = state::ensure(&self.aws, account, &self.spec.region).await?;
            let what = if ensured.created {
                "created".to_string()
            } else if ensured.fixed.is_empty() {
                "no change".to_string()
            } else {
                let fixed: Vec<_> = ensured.fixed.iter().map(|s| s.describe()).collect();
                format!("fixed {}", fixed.join(", "))
            };
            self.reporter.report(Event::info(
                "state",
                format!("state bucket {}: {what}", ensured.name),
            ));
            Ok(())
        })
        .await?;
        Ok(true)
    }

    /// The stack, and beside it the managed add-on versions EKS names for
    /// the configured Kubernetes version.
    async fn render(&self, p: &mut Pipeline<'_>) -> Result<Tree, ClusterError> {
        p.run("render", None, OnInterrupt::Stop, async {
            let mut tree = render::render(self.spec, &Outputs::placeholders())?;
            if let Some(versions) = self.addon_versions().await {
                tree.insert(ADDON_VERSIONS.to_string(), addon_tfvars(&versions));
            }
            tree.write_atomic(self.dir)?;
            Ok(tree)
        })
        .await?
        .ok_or(ClusterError::Internal("render is never skipped"))
    }

    /// EKS's default version of each managed add-on for the configured
    /// Kubernetes version. When EKS cannot say (no permission for
    /// DescribeAddonVersions, an emulator without it), a warning: Terraform
    /// then leaves the versions to EKS, as before they were resolved.
    async fn addon_versions(&self) -> Option<BTreeMap<String, String>> {
        let kubernetes = &self.spec.kubernetes_version;
        match addon_versions::resolve(&self.aws, kubernetes).await {
            Ok(versions) => {
                let listed: Vec<String> =
                    versions.iter().map(|(a, v)| format!("{a} {v}")).collect();
                self.reporter.report(Event::info(
                    "render",
                    format!(
                        "managed add-ons for Kubernetes {kubernetes}: {}",
                        listed.join(", ")
                    ),
                ));
                Some(versions)
            }
            Err(e) => {
                self.reporter.report(Event::warn(
                    "render",
                    format!(
                        "cannot resolve the managed add-on versions for Kubernetes {kubernetes} ({e}): new add-ons get EKS's default and existing ones keep theirs"
                    ),
                ));
                None
            }
        }
    }

    /// `init` and `plan` always (the remote state, not the local journal,
    /// says what exists), then the orphans of a killed apply dealt with,
    /// `apply` after approval when the plan changes something; `None` when
    /// it changes nothing. The lock Terraform takes meanwhile is recorded
    /// in the journal; a lock found held is judged.
    async fn terraform(
        &self,
        p: &mut Pipeline<'_>,
        runner: &Runner,
        backend: &Backend,
        account: &str,
        plan_file: &Path,
    ) -> Result<(Option<Changes>, OrphanReport), ClusterError> {
        let journal = p.journal();
        let reporter = self.reporter;
        let work = async {
            runner.init(backend, reporter).await?;
            let plan = runner.plan(plan_file, reporter).await?;
            // Boxed: the inventory and sweep futures inside would otherwise
            // make every `up` future (a fleet runs several, rebuild nests one
            // in its own) large enough to overflow the main thread's stack.
            let (plan, found) = Box::pin(self.orphans(runner, plan_file, plan)).await?;
            if !plan.has_changes {
                reporter.report(Event::info(
                    "terraform",
                    "no changes: the infrastructure matches the configuration",
                ));
                return Ok((None, found));
            }
            self.approve(&plan.changes, runner, plan_file).await?;
            Ok((Some(runner.apply(plan_file, reporter).await?), found))
        };
        let recorded = journal.lock().lock.clone();
        let work = async {
            stale::recording(&self.aws, account, backend, journal, work)
                .await
                .map_err(|e| self.locked(e, recorded))
        };
        p.run("terraform", None, OnInterrupt::Delegate, work)
            .await?
            .ok_or(ClusterError::Internal("terraform is never skipped"))
    }

    /// When the plan creates something, looks for what a killed apply
    /// created without recording it (the cluster's tagged resources missing
    /// from the state): removes what cannot be adopted, writes import
    /// blocks for the rest and plans again, until nothing new turns up.
    async fn orphans(
        &self,
        runner: &Runner,
        plan_file: &Path,
        mut plan: TerraformPlan,
    ) -> Result<(TerraformPlan, OrphanReport), ClusterError> {
        let mut found = OrphanReport::default();
        for _ in 0..ORPHAN_ROUNDS {
            if !plan.resources.iter().any(|r| r.action == "create") {
                break;
            }
            let options = teardown::Options::default();
            let inventory = teardown::inventory(&self.aws, self.spec, &options).await?;
            // Reading the plan costs Terraform a provider start; a first
            // `up` in a clean account has nothing to compare it with.
            if !orphans::candidates(&inventory.items) {
                break;
            }
            let shown = runner.show_plan(plan_file, self.reporter).await?;
            let planned = Planned::from_show(&shown)?;
            let tables =
                vpc::route_tables(&self.aws, &orphans::route_tables_to_read(&planned)).await?;
            let decisions = orphans::decide(&inventory.items, &planned, &tables);
            self.report_orphans(&decisions);
            found.left = decisions.left.clone();
            if !decisions.remove.is_empty() {
                let doomed =
                    inventory.only_items(|i| decisions.remove.iter().any(|v| v.item == *i));
                let swept =
                    teardown::sweep::sweep_listed(&self.aws, &doomed, &options, self.reporter)
                        .await;
                if !swept.succeeded() {
                    return Err(ClusterError::Orphans(
                        swept
                            .failed
                            .iter()
                            .map(|f| format!("{} {}: {}", f.item.kind.as_str(), f.item.id, f.error))
                            .collect(),
                    ));
                }
            }
            found.removed.extend(decisions.remove);
            if decisions.adopt.is_empty() {
                break;
            }
            found.adopted.extend(decisions.adopt);
            let file = runner.dir().join(orphans::IMPORTS_FILE);
            std::fs::write(&file, orphans::imports(&found.adopted))
                .map_err(|e| ClusterError::Io("cannot write the import blocks", e))?;
            plan = runner.plan(plan_file, self.reporter).await?;
            if decisions.later.is_empty() {
                break;
            }
        }
        Ok((plan, found))
    }

    /// One event per orphan: what it is and what happens to it.
    fn report_orphans(&self, d: &Decisions) {
        let what = |item: &teardown::Item| match &item.name {
            Some(name) => format!("{} {} ({name})", item.kind.as_str(), item.id),
            None => format!("{} {}", item.kind.as_str(), item.id),
        };
        for a in &d.adopt {
            self.reporter.report(
                Event::info(
                    "terraform",
                    format!(
                        "adopting {} as {}: a killed apply created it but never recorded it",
                        what(&a.item),
                        a.address
                    ),
                )
                .with("orphan", "adopted")
                .with("adoption", a),
            );
        }
        for v in &d.remove {
            self.reporter.report(
                Event::warn(
                    "terraform",
                    format!("removing {}: {}", what(&v.item), v.reason),
                )
                .with("orphan", "removed")
                .with("item", &v.item),
            );
        }
        for v in &d.left {
            self.reporter.report(
                Event::info(
                    "terraform",
                    format!("leaving {} for down: {}", what(&v.item), v.reason),
                )
                .with("orphan", "left")
                .with("item", &v.item),
            );
        }
        for item in &d.later {
            self.reporter.report(
                Event::debug(
                    "terraform",
                    format!(
                        "{}: its address is known once this round's adoptions are planned",
                        what(item)
                    ),
                )
                .with("orphan", "later"),
            );
        }
    }

    /// Asks to apply `changes`, after refusing (under `--yes`) or naming (at
    /// a terminal) what the plan would replace among the resources a live
    /// cluster cannot lose; a stop request while the question waits ends the
    /// phase at once.
    async fn approve(
        &self,
        c: &Changes,
        runner: &Runner,
        plan_file: &Path,
    ) -> Result<(), ClusterError> {
        let mut question = format!(
            "Terraform will add {}, change {} and destroy {} resources of {} in {}. Apply?",
            c.add, c.change, c.destroy, self.spec.name, self.spec.region
        );
        let destructive =
            guard::destructive_changes(&runner.show_plan(plan_file, self.reporter).await?)?;
        let unattended = matches!(self.options.approval, Approval::Yes);
        if let Verdict::Warn(warning) = guard::review(
            &self.spec.name,
            &destructive,
            unattended,
            self.options.allow_replace,
        )? {
            question = format!("{warning} {question}");
        }
        let mut interrupt = self.options.interrupt.clone();
        let seen = interrupt.count();
        tokio::select! {
            approved = self.options.approval.approve(&question) => if approved {
                Ok(())
            } else {
                Err(ClusterError::Declined)
            },
            _ = interrupt.exceeds(seen) => Err(ClusterError::Interrupted { phase: "terraform" }),
        }
    }

    /// A lock conflict becomes a diagnosis of its holder and the command
    /// that releases it; other errors pass.
    fn locked(&self, err: ClusterError, recorded: Option<journal::LockRecord>) -> ClusterError {
        let ClusterError::Terraform(RunError::Locked { lock, .. }) = &err else {
            return err;
        };
        let lock = crate::aws::state::StateLock {
            id: lock.id.clone(),
            operation: lock.operation.clone(),
            who: lock.who.clone(),
            created: lock.created.clone(),
        };
        ClusterError::StateLocked {
            cluster: self.spec.name.clone(),
            diagnosis: Box::new(stale::diagnose(lock, &self.spec.name, recorded)),
            unlock: unlock_command(&self.options.request, self.spec),
        }
    }

    /// Reads Terraform's outputs and renders the manifests with them.
    async fn outputs(&self, p: &mut Pipeline<'_>, runner: &Runner) -> Result<Tree, ClusterError> {
        p.run("outputs", None, OnInterrupt::Delegate, async {
            let outputs = runner.output(self.reporter).await?;
            let value = |name: &str| {
                outputs
                    .get(name)
                    .and_then(|o| o.value.as_str())
                    .map(str::to_string)
                    .ok_or(ClusterError::MissingOutput(name.to_string()))
            };
            // A map of zone name to ARN; absent when nothing was issued.
            let certificate_arns = outputs
                .get("certificate_arns")
                .and_then(|o| o.value.as_object())
                .map(|by_zone| {
                    by_zone
                        .values()
                        .filter_map(|arn| arn.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let outputs = Outputs {
                vpc_id: value("vpc_id")?,
                certificate_arns,
                external_dns_zone_ids: outputs
                    .get("external_dns_zone_ids")
                    .and_then(|o| serde_json::from_value(o.value.clone()).ok())
                    .unwrap_or_default(),
            };
            let revoked = vpc::close_default_security_group(&self.aws, &outputs.vpc_id).await?;
            if revoked > 0 {
                self.reporter.report(Event::info(
                    "outputs",
                    format!("closed the default security group of {}", outputs.vpc_id),
                ));
            }
            let tree = render::render(self.spec, &outputs)?;
            tree.write_atomic(self.dir)?;
            Ok(tree)
        })
        .await?
        .ok_or(ClusterError::Internal("outputs is never skipped"))
    }

    /// The operator stack. A resumed run skips it when it finished with
    /// the same manifests, unless `verify` then failed: a failed verify
    /// means what it installed must be looked at again.
    async fn addons(
        &self,
        p: &mut Pipeline<'_>,
        kube: &Kube,
        tree: &Tree,
    ) -> Result<(), ClusterError> {
        let inputs = journal::hash(&[tree_hash(tree, "manifests/").as_bytes()]);
        let skippable = (p.status("verify") != Some(Status::Failed)).then_some(inputs.as_str());
        p.run("addons", skippable, OnInterrupt::Stop, async {
            connect::reachable(kube, &self.spec.name).await?;
            install::install(kube, tree, self.spec, &self.options.install, self.reporter).await?;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// `--stop-after`: true when `phase` is where this run ends.
    fn stop(&self, phase: &'static str, summary: &mut UpSummary) -> bool {
        if self.options.stop_after != Some(phase) {
            return false;
        }
        self.reporter.report(Event::info(
            phase,
            format!("stopping after {phase}, as asked (--stop-after)"),
        ));
        summary.stopped_after = Some(phase);
        true
    }

    /// `--dry-run`: plan, report, change nothing. Without a state bucket
    /// yet (a first `up`), the plan runs against empty local state in a
    /// scratch copy, which is exactly what the first real run will create.
    async fn dry_run(
        &self,
        plan: Plan<'_>,
        p: &mut Pipeline<'_>,
        summary: &mut UpSummary,
    ) -> Result<(), ClusterError> {
        let addons =
            if p.resuming() && p.finished("addons") && p.status("verify") != Some(Status::Failed) {
                "skip if the manifests are unchanged: finished in the run being resumed".to_string()
            } else {
                "run".to_string()
            };
        let run = || "run".to_string();
        summary.would = vec![
            ("preflight", run()),
            ("state", run()),
            ("render", run()),
            (
                "terraform",
                "run: plan, and apply only if it changes something".to_string(),
            ),
            ("outputs", run()),
            ("connect", run()),
            ("addons", addons),
            ("verify", run()),
        ];
        let planned = p
            .run(
                "terraform",
                None,
                OnInterrupt::Delegate,
                plan.run(self.reporter),
            )
            .await?
            .ok_or(ClusterError::Internal("dry-run plan is never skipped"))?;
        summary.no_changes = !planned.has_changes;
        summary.changes = planned.changes;
        summary.planned = planned
            .resources
            .iter()
            .map(|r| format!("{}: {}", r.address, r.action))
            .collect();
        Ok(())
    }
}

/// The plan of a dry run.
struct Plan<'a> {
    runner: &'a Runner,
    backend: &'a Backend,
    bucket_exists: bool,
    tree: &'a Tree,
    plan_file: &'a Path,
}

impl Plan<'_> {
    async fn run(self, reporter: &dyn Reporter) -> Result<crate::terraform::Plan, ClusterError> {
        if self.bucket_exists {
            self.runner.init(self.backend, reporter).await?;
            return Ok(self.runner.plan(self.plan_file, reporter).await?);
        }
        reporter.report(Event::info(
            "terraform",
            format!(
                "state bucket {} does not exist yet: planning against empty state",
                self.backend.bucket
            ),
        ));
        let scratch = tempfile::tempdir()
            .map_err(|e| ClusterError::Io("a scratch directory for the plan", e))?;
        let mut local_tree = Tree::default();
        for (path, contents) in self
            .tree
            .iter()
            .filter(|(p, _)| p.starts_with("terraform/"))
        {
            local_tree.insert(path.to_string(), contents);
        }
        local_tree.insert(
            "terraform/backend_override.tf".to_string(),
            "# Dry run before the state bucket exists: plan against empty local state.\nterraform {\n  backend \"local\" {}\n}\n",
        );
        let dir = scratch.path().join("work");
        local_tree.write_atomic(&dir)?;
        let local = self
            .runner
            .elsewhere(&dir)
            .with_env("TF_DATA_DIR", &dir.join("tfdata").display().to_string());
        local.init_local(reporter).await?;
        Ok(local.plan(&dir.join("tfplan"), reporter).await?)
    }
}

/// The command that releases the cluster's state lock, as the user would
/// type it to reach the same cluster.
pub(crate) fn unlock_command(request: &Request, spec: &ClusterSpec) -> String {
    let mut command = String::from("terrace");
    if let Some(config) = &request.config {
        command.push_str(&format!(" --config {}", config.display()));
    }
    command.push_str(&format!(
        " cluster unlock --region {} --name {}",
        spec.region, spec.name
    ));
    command
}

/// The Terraform variables file `up` writes beside the rendered stack:
/// Terraform reads `*.auto.tfvars.json` of its directory by itself.
pub const ADDON_VERSIONS: &str = "terraform/addon-versions.auto.tfvars.json";

fn addon_tfvars(versions: &BTreeMap<String, String>) -> String {
    let vars = serde_json::json!({ "addon_versions": versions });
    format!("{vars:#}\n")
}

/// A hash of the tree's files under `prefix`.
fn tree_hash(tree: &Tree, prefix: &str) -> String {
    let parts: Vec<&[u8]> = tree
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .flat_map(|(path, contents)| [path.as_bytes(), contents])
        .collect();
    journal::hash(&parts)
}
