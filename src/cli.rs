//! Command-line definitions (clap derive). Only definitions: what each
//! command does lives in `app.rs` and the domain modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Disposable Amazon EKS clusters: render, build, verify and remove a
/// complete cluster and its operator stack.
#[derive(Debug, Parser)]
#[command(name = "terrace", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./terrace.yaml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format (`github`: only for `fleet matrix`)
    #[arg(long, global = true, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,

    /// More detail (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// -1 quiet, 0 normal, 1+ verbose.
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            self.verbose.min(3) as i8
        }
    }
}

/// What `--output` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
    /// A GitHub Actions matrix (`fleet matrix` only)
    Github,
}

/// How the printer writes: `--output github` prints like `text` except
/// for the matrix it exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

impl OutputArg {
    pub fn format(self) -> OutputFormat {
        match self {
            OutputArg::Json => OutputFormat::Json,
            OutputArg::Text | OutputArg::Github => OutputFormat::Text,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with one cluster
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The operator stack Terrace installs
    #[command(subcommand)]
    Addons(AddonsCommand),
    /// The regional bucket that holds Terraform state
    #[command(subcommand)]
    State(StateCommand),
    /// Print an EKS bearer token as a kubectl ExecCredential (used by kubeconfig entries)
    Token(TokenArgs),
    /// Find Terrace clusters and orphaned resources older than a limit (and with --yes, remove them)
    Janitor(JanitorArgs),
    /// Every cluster of terrace.yaml at once, each independent of the others
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Disaster-recovery drill: baseline, destroy, rebuild, and measure until every Application is back
    Drill(DrillCommand),
}

/// `terrace drill` runs a drill; `terrace drill history` lists past ones.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DrillCommand {
    #[command(subcommand)]
    pub history: Option<DrillHistory>,

    #[command(flatten)]
    pub run: DrillArgs,
}

#[derive(Debug, Subcommand)]
pub enum DrillHistory {
    /// Past drills of the cluster, from its regional state bucket, with their RTO and trend
    History(ClusterArgs),
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// AWS region of the cluster, e.g. us-east-1 (required)
    // Optional for clap only: `drill history` has its own, and a required
    // flag here would be demanded of it too.
    #[arg(long)]
    pub region: Option<String>,

    /// Cluster name [default: <fleet>-<region>]
    #[arg(long)]
    pub name: Option<String>,

    /// Recover into this region (its cluster of terrace.yaml, own name and CIDR) and leave the source alone
    #[arg(long, value_name = "REGION")]
    pub to_region: Option<String>,

    #[command(flatten)]
    pub drill: DrillFlags,
}

/// The flags `drill` shares with `fleet drill`.
#[derive(Debug, Args)]
pub struct DrillFlags {
    /// Recovery time objective: from the cluster gone to every Application back (e.g. 45m)
    #[arg(long, value_name = "AGE", default_value = "45m", value_parser = crate::duration::parse)]
    pub rto: Duration,

    /// Destroy and rebuild without asking (required when not run from a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Where the report (drill-<cluster>-<time>.md) and its SVG timeline are written
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub report_dir: PathBuf,

    /// Stop the rebuild once this phase is done (e.g. `outputs`); the Applications are still awaited
    #[arg(long, value_enum, value_name = "PHASE")]
    pub stop_after: Option<StopAfter>,

    #[command(flatten)]
    pub teardown: TeardownArgs,

    /// Kubeconfig whose context for the cluster is replaced [default: first path of KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub argocd: ArgocdArgs,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Build or update every cluster, each on its own, several at once
    Up(FleetUpArgs),
    /// Remove every cluster, each on its own, several at once
    Down(FleetDownArgs),
    /// Down then up of every cluster, each as `cluster rebuild` does it, several at once
    Rebuild(FleetRebuildArgs),
    /// A disaster-recovery drill of every cluster in its own region, each as `drill` does it, several at once
    Drill(FleetDrillArgs),
    /// What `up` would change in each cluster (preflight, render, terraform plan); changes nothing
    Plan(FleetEach),
    /// Write each cluster's Terraform and manifests to .terrace/<name> (offline)
    Render(FleetSelect),
    /// Whether each cluster exists, its EKS status, version and age, TTL or keep, addon health, and drift
    Status(FleetEach),
    /// The clusters as a CI job matrix (`--output github` for GitHub Actions' fromJSON)
    Matrix(FleetSelect),
}

/// Which clusters of terrace.yaml a fleet command is about (all by default).
#[derive(Debug, Args, Default)]
pub struct FleetSelect {
    /// Only the clusters in these configured regions (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Vec<String>,

    /// Only these configured clusters, by name (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub clusters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FleetUpArgs {
    #[command(flatten)]
    pub each: FleetEach,

    #[command(flatten)]
    pub up: UpFlags,
}

#[derive(Debug, Args)]
pub struct FleetDownArgs {
    #[command(flatten)]
    pub each: FleetEach,

    #[command(flatten)]
    pub down: DownFlags,
}

#[derive(Debug, Args)]
pub struct FleetRebuildArgs {
    #[command(flatten)]
    pub each: FleetEach,

    #[command(flatten)]
    pub rebuild: RebuildFlags,
}

#[derive(Debug, Args)]
pub struct FleetDrillArgs {
    #[command(flatten)]
    pub each: FleetEach,

    #[command(flatten)]
    pub drill: DrillFlags,
}

/// The clusters a fleet command runs for, and how many at once.
#[derive(Debug, Args)]
pub struct FleetEach {
    #[command(flatten)]
    pub select: FleetSelect,

    /// How many clusters run at once [default: all, at most 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write the cluster's Terraform and Kubernetes manifests (offline: no AWS account needed)
    Render(RenderArgs),
    /// Build the cluster (or bring it back to its configuration) and prove it healthy
    Up(UpArgs),
    /// Remove the cluster and everything its controllers created, and prove nothing is left
    Down(DownArgs),
    /// Down then up as one run: nothing of the old cluster left, the new one healthy
    Rebuild(RebuildArgs),
    /// Check the account before building: credentials, region, quotas, names, terraform
    Preflight(ClusterArgs),
    /// Add (or update) the cluster's entry in a kubeconfig
    Kubeconfig(KubeconfigArgs),
    /// Terrace's clusters in the given regions, or in every enabled region
    List(ListArgs),
    /// State, version, endpoint and node groups of one cluster
    Status(ClusterArgs),
    /// Show who holds the cluster's Terraform state lock and release it if its holder is gone
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Release without asking (required when not run from a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// AWS region of the cluster, e.g. us-east-1
    #[arg(long)]
    pub region: String,

    /// Cluster name [default: <fleet>-<region>]
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Output directory [default: .terrace/<name>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Run preflight, render and terraform plan, and say what would change; change nothing
    #[arg(long, conflicts_with = "stop_after")]
    pub dry_run: bool,

    /// Let the plan replace or destroy the EKS cluster, its VPC, KMS key or node group (refused under --yes without it)
    #[arg(long)]
    pub allow_replace: bool,

    #[command(flatten)]
    pub up: UpFlags,
}

/// The flags of a build that `cluster up` and `fleet up` share.
#[derive(Debug, Args)]
pub struct UpFlags {
    /// Apply without asking (required when not run from a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Stop once this phase is done (e.g. `outputs`: the infrastructure without the operator stack)
    #[arg(long, value_enum, value_name = "PHASE")]
    pub stop_after: Option<StopAfter>,

    /// Ignore the journal of an unfinished previous run: run every phase
    #[arg(long)]
    pub restart: bool,

    /// The janitor removes the cluster this long after it is built (30m, 24h, 7d); overrides `ttl:`
    #[arg(long, value_name = "AGE", value_parser = crate::duration::parse)]
    pub ttl: Option<Duration>,

    /// Kubeconfig to add the context to [default: first path of KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub argocd: ArgocdArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// List what destroy and the sweep would remove; remove nothing
    #[arg(long)]
    pub plan: bool,

    #[command(flatten)]
    pub down: DownFlags,
}

/// The flags of a teardown that `cluster down` and `fleet down` share.
#[derive(Debug, Args)]
pub struct DownFlags {
    /// Destroy without asking (required when not run from a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub teardown: TeardownArgs,

    /// Kubeconfig to remove the context from [default: first path of KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub rebuild: RebuildFlags,
}

/// The flags of a rebuild that `cluster rebuild` and `fleet rebuild` share.
#[derive(Debug, Args)]
pub struct RebuildFlags {
    /// Tear down and build without asking (required when not run from a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Keep a cluster younger than this that is healthy and matches its configuration (e.g. 24h)
    #[arg(long, value_name = "AGE", value_parser = crate::duration::parse)]
    pub if_older_than: Option<Duration>,

    /// Stop the new build once this phase is done (e.g. `outputs`)
    #[arg(long, value_enum, value_name = "PHASE")]
    pub stop_after: Option<StopAfter>,

    /// Forget an unfinished rebuild and start again with the teardown
    #[arg(long)]
    pub restart: bool,

    /// The janitor removes the new cluster this long after it is built (30m, 24h, 7d); overrides `ttl:`
    #[arg(long, value_name = "AGE", value_parser = crate::duration::parse)]
    pub ttl: Option<Duration>,

    #[command(flatten)]
    pub teardown: TeardownArgs,

    /// Kubeconfig whose context is replaced [default: first path of KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub argocd: ArgocdArgs,
}

/// How a teardown treats what the cluster's controllers created.
#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// Keep the EBS volumes of the cluster's persistent volume claims
    #[arg(long)]
    pub keep_volumes: bool,

    /// Upper bound for each wait of the drain and of the sweep (e.g. 10m)
    #[arg(long, value_name = "AGE", default_value = "10m", value_parser = crate::duration::parse)]
    pub wait: Duration,
}

/// The phases of `up` it can stop after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StopAfter {
    Render,
    Terraform,
    Outputs,
    Connect,
    Addons,
}

impl StopAfter {
    pub fn phase(self) -> &'static str {
        match self {
            StopAfter::Render => "render",
            StopAfter::Terraform => "terraform",
            StopAfter::Outputs => "outputs",
            StopAfter::Connect => "connect",
            StopAfter::Addons => "addons",
        }
    }
}

/// Where Argo CD's release manifest comes from.
#[derive(Debug, Args, Default)]
pub struct ArgocdArgs {
    /// Argo CD install manifest from a mirror or an air-gapped copy (file or URL); still checked against the pinned SHA-256
    #[arg(long, value_name = "FILE|URL")]
    pub argocd_manifest: Option<String>,

    /// The SHA-256 to check that manifest against, when it is not the pinned release
    #[arg(long, value_name = "HEX", requires = "argocd_manifest")]
    pub argocd_sha256: Option<String>,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Kubeconfig to update [default: first path of KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Region to look in (repeat for more) [default: every region enabled for the account]
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Create the region's state bucket if missing and correct its settings
    Bootstrap(RegionArgs),
}

#[derive(Debug, Args)]
pub struct RegionArgs {
    /// AWS region, e.g. us-east-1
    #[arg(long)]
    pub region: String,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// EKS cluster name
    #[arg(long)]
    pub cluster: String,

    /// AWS region of the cluster
    #[arg(long)]
    pub region: String,

    /// IAM role to assume before signing
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Args)]
pub struct JanitorArgs {
    /// Report what is older than this: a whole number and s, m, h, d or w (30m, 24h, 7d)
    #[arg(long, value_name = "AGE", value_parser = crate::duration::parse)]
    pub older_than: Duration,

    /// Region to look in (repeat for more) [default: every region enabled for the account]
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Remove what was found, each cluster through the same path as `cluster down`
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub teardown: TeardownArgs,
}

#[derive(Debug, Subcommand)]
pub enum AddonsCommand {
    /// List the addons, their pinned versions and what they depend on
    List,
    /// Each installed addon's version, sync and health; exits 1 if any is unhealthy
    Status(AddonsStatusArgs),
}

/// Which cluster API to talk to, for clusters reached through a kubeconfig.
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: its current context]
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddonsStatusArgs {
    /// AWS region of a Terrace cluster, reached through EKS (instead of a kubeconfig)
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub region: Option<String>,

    /// Cluster name, with --region [default: <fleet>-<region>]
    #[arg(long, requires = "region")]
    pub name: Option<String>,

    #[command(flatten)]
    pub kube: KubeArgs,
}
