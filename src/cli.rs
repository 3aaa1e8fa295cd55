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

    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
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
    /// Report Terrace clusters and orphaned Terrace resources older than a limit
    Janitor(JanitorArgs),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write the cluster's Terraform and Kubernetes manifests (offline: no AWS account needed)
    Render(RenderArgs),
    /// Check the account before building: credentials, region, quotas, names, terraform
    Preflight(ClusterArgs),
    /// Add (or update) the cluster's entry in a kubeconfig
    Kubeconfig(KubeconfigArgs),
    /// Terrace's clusters in the given regions, or in every enabled region
    List(ListArgs),
    /// State, version, endpoint and node groups of one cluster
    Status(ClusterArgs),
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
    #[arg(long, value_name = "AGE", value_parser = crate::teardown::parse_age)]
    pub older_than: Duration,

    /// Region to look in (repeat for more) [default: every region enabled for the account]
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AddonsCommand {
    /// List the addons, their pinned versions and what they depend on
    List,
}
