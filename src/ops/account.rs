//! Commands about the account rather than one cluster: the regional state
//! bucket, and the EKS token kubectl's exec plugin asks for.

use anyhow::Result;

use super::{check_region, flag_error};
use crate::aws::Aws;
use crate::aws::state::{self, StateBucket};
use crate::aws::token::{self, Token};
use crate::cli::{RegionArgs, TokenArgs};

/// `state bootstrap`: the region's state bucket, created or corrected.
pub async fn bootstrap(args: &RegionArgs) -> Result<StateBucket> {
    check_region(&args.region)?;
    let aws = Aws::connect(&args.region).await;
    let account = aws.account().await?;
    Ok(state::ensure(&aws, &account, &args.region).await?)
}

/// `token`: a bearer token for the cluster, as `--role-arn` when given.
/// The token is signed locally, so a mistyped flag would give a token that
/// only fails later, in kubectl: every flag is checked first.
pub async fn token(args: &TokenArgs) -> Result<Token> {
    check_region(&args.region)?;
    if !is_eks_name(&args.cluster) {
        return Err(flag_error(
            "--cluster",
            format!(
                "{:?} is not an EKS cluster name (1 to 100 letters, digits, '-' and '_', starting with a letter or digit)",
                args.cluster
            ),
        )
        .into());
    }
    if let Some(arn) = &args.role_arn
        && !is_role_arn(arn)
    {
        return Err(flag_error(
            "--role-arn",
            format!("{arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
        )
        .into());
    }
    let aws = Aws::connect_as(&args.region, args.role_arn.as_deref()).await;
    Ok(token::token(&aws, &args.cluster).await?)
}

/// What EKS accepts as a cluster name.
fn is_eks_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `arn:<partition>:iam::<12-digit account>:role/<path and name>`.
fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|name| !name.is_empty())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_names() {
        assert!(is_eks_name("terrace-us-east-1"));
        assert!(is_eks_name("Legacy_Cluster2"));
        for bad in ["", "-c", "c c", "c.d", &"c".repeat(101)] {
            assert!(!is_eks_name(bad), "{bad}");
        }
    }

    #[test]
    fn role_arns() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/admin"));
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::123456789012:role/ci/deployer"
        ));
        for bad in [
            "admin",
            "arn:aws:iam::123456789012:user/admin",
            "arn:aws:iam::1234:role/admin",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3:::bucket",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }
}
