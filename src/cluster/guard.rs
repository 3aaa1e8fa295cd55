//! What a plan may not do to a live cluster without being asked twice:
//! replacing or destroying the EKS cluster, its VPC, its KMS key or its
//! node group (each one loses the workloads, the network or the encrypted
//! secrets the cluster stands on). Version jumps are refused earlier, by
//! preflight (`config::version_step`).
//!
//! Pure: it reads the JSON of `terraform show -json <saved plan>` and
//! decides. Running Terraform, asking the person at
//! the terminal and printing belong to the callers.

use serde::Deserialize;

use crate::config::{ConfigError, Location, Problem};

/// The flag that lets a plan replace what this module guards.
pub const ALLOW_REPLACE: &str = "--allow-replace";

/// Resource types whose replacement or deletion rebuilds the cluster.
const GUARDED: &[(&str, &str)] = &[
    ("aws_eks_cluster", "EKS cluster"),
    ("aws_vpc", "VPC"),
    ("aws_kms_key", "KMS key"),
    ("aws_eks_node_group", "node group"),
];

/// One guarded resource the plan would replace or destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destructive {
    pub address: String,
    pub what: &'static str,
    /// "replace" or "destroy".
    pub action: &'static str,
}

impl std::fmt::Display for Destructive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.action, self.address, self.what)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("terraform show -json: {0}")]
pub struct PlanJsonError(String);

impl From<serde_json::Error> for PlanJsonError {
    fn from(e: serde_json::Error) -> PlanJsonError {
        PlanJsonError(e.to_string())
    }
}

#[derive(Deserialize)]
struct PlanJson {
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
}

#[derive(Deserialize)]
struct ResourceChange {
    address: String,
    #[serde(default)]
    mode: String,
    #[serde(rename = "type")]
    kind: String,
    change: Change,
    /// Why Terraform replaces it; `replace_because_tainted` for what an
    /// interrupted apply began and never finished creating.
    #[serde(default)]
    action_reason: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    actions: Vec<String>,
}

/// The guarded resources `plan_json` (a saved plan, as `terraform show
/// -json` prints it) would replace or destroy, in plan order.
pub fn destructive_changes(plan_json: &str) -> Result<Vec<Destructive>, PlanJsonError> {
    let plan: PlanJson = serde_json::from_str(plan_json)?;
    Ok(plan
        .resource_changes
        .into_iter()
        .filter(|c| c.mode != "data")
        // Finishing a create that a stopped apply left tainted rebuilds
        // nothing a cluster stands on: it never stood.
        .filter(|c| c.action_reason.as_deref() != Some("replace_because_tainted"))
        .filter_map(|c| {
            let (_, what) = GUARDED.iter().find(|(kind, _)| *kind == c.kind)?;
            let deletes = c.change.actions.iter().any(|a| a == "delete");
            let creates = c.change.actions.iter().any(|a| a == "create");
            let action = match (deletes, creates) {
                (true, true) => "replace",
                (true, false) => "destroy",
                _ => return None,
            };
            Some(Destructive {
                address: c.address,
                what,
                action,
            })
        })
        .collect())
}

/// What to do with a plan that has `destructive` changes.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing guarded changes, or `--allow-replace` was given.
    Proceed,
    /// A person decides: show them this before the usual question.
    Warn(String),
}

/// Decides for `--yes` (`unattended`) and a terminal alike: without
/// `--allow-replace`, an unattended run is refused and a person is warned.
pub fn review(
    cluster: &str,
    destructive: &[Destructive],
    unattended: bool,
    allow_replace: bool,
) -> Result<Verdict, ConfigError> {
    if destructive.is_empty() || allow_replace {
        return Ok(Verdict::Proceed);
    }
    let list = destructive
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if unattended {
        return Err(ConfigError::Invalid(vec![Problem {
            location: Location::CommandLine,
            field: ALLOW_REPLACE.into(),
            message: format!(
                "not given, and the plan for {cluster} would {list}; nothing was changed. Check the change with `terrace cluster up --dry-run`, then run again with {ALLOW_REPLACE} if rebuilding them is intended"
            ),
        }]));
    }
    Ok(Verdict::Warn(format!(
        "This plan rebuilds what {cluster} stands on: it would {list}."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(address: &str, kind: &str, actions: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "address": address,
            "mode": "managed",
            "type": kind,
            "name": "this",
            "change": { "actions": actions },
        })
    }

    fn plan(changes: Vec<serde_json::Value>) -> String {
        serde_json::json!({ "format_version": "1.2", "resource_changes": changes }).to_string()
    }

    #[test]
    fn finds_replacements_and_deletions_of_guarded_types_only() {
        let json = plan(vec![
            change(
                "module.cluster.aws_eks_cluster.this",
                "aws_eks_cluster",
                &["delete", "create"],
            ),
            change(
                "module.network.aws_vpc.this",
                "aws_vpc",
                &["create", "delete"],
            ),
            change("module.kms.aws_kms_key.this", "aws_kms_key", &["delete"]),
            change(
                "module.cluster.aws_eks_node_group.system",
                "aws_eks_node_group",
                &["update"],
            ),
            change(
                "module.network.aws_subnet.private[0]",
                "aws_subnet",
                &["delete", "create"],
            ),
            change("module.network.aws_vpc.new", "aws_vpc", &["create"]),
            change(
                "module.cluster.aws_eks_cluster.this",
                "aws_eks_cluster",
                &["no-op"],
            ),
        ]);
        let found = destructive_changes(&json).unwrap();
        let got: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "replace module.cluster.aws_eks_cluster.this (EKS cluster)",
                "replace module.network.aws_vpc.this (VPC)",
                "destroy module.kms.aws_kms_key.this (KMS key)",
            ]
        );
    }

    #[test]
    fn replacing_what_an_interrupted_apply_left_tainted_is_not_destructive() {
        let mut tainted = change(
            "module.network.aws_vpc.this",
            "aws_vpc",
            &["delete", "create"],
        );
        tainted["action_reason"] = "replace_because_tainted".into();
        assert_eq!(destructive_changes(&plan(vec![tainted])).unwrap(), []);
        let mut forced = change(
            "module.network.aws_vpc.this",
            "aws_vpc",
            &["delete", "create"],
        );
        forced["action_reason"] = "replace_because_cannot_update".into();
        assert_eq!(destructive_changes(&plan(vec![forced])).unwrap().len(), 1);
    }

    #[test]
    fn data_sources_and_empty_plans_are_not_destructive() {
        let mut read = change("data.aws_vpc.x", "aws_vpc", &["delete", "create"]);
        read["mode"] = "data".into();
        assert_eq!(destructive_changes(&plan(vec![read])).unwrap(), []);
        assert_eq!(
            destructive_changes(r#"{"format_version":"1.2"}"#).unwrap(),
            []
        );
        assert!(destructive_changes("not json").is_err());
    }

    #[test]
    fn unattended_runs_are_refused_people_are_warned() {
        let d = vec![Destructive {
            address: "module.cluster.aws_eks_cluster.this".into(),
            what: "EKS cluster",
            action: "replace",
        }];
        let err = review("c1", &d, true, false).unwrap_err().to_string();
        assert!(err.starts_with("--allow-replace: "), "{err}");
        assert!(
            err.contains("replace module.cluster.aws_eks_cluster.this (EKS cluster)"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            matches!(review("c1", &d, false, false), Ok(Verdict::Warn(w)) if w.contains("EKS cluster"))
        );
        assert_eq!(review("c1", &d, true, true).unwrap(), Verdict::Proceed);
        assert_eq!(review("c1", &[], true, false).unwrap(), Verdict::Proceed);
    }
}
