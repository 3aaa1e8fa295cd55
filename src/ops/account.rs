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
pub async fn token(args: &TokenArgs) -> Result<Token> {
    check_region(&args.region)?;
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
