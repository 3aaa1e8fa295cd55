//! Closing a VPC's default security group.
//!
//! Every VPC comes with a `default` group that allows all traffic between
//! its members and all egress. Nothing Terrace creates uses it, and a
//! resource someone attaches to it later should not inherit open rules, so
//! `up` empties it once Terraform has created the VPC. (Terraform's
//! `aws_default_security_group` would do the same, but it is outside the
//! provider schema the rendered stack is checked against.)

use aws_sdk_ec2::types::Filter;

use super::{Aws, sdk_message};

#[derive(Debug, thiserror::Error)]
#[error("default security group of {vpc}: {action}: {message}")]
pub struct VpcError {
    vpc: String,
    action: &'static str,
    message: String,
}

/// Revokes every rule of `vpc`'s default security group; returns how many
/// rule sets it revoked (0 when it was already closed).
pub async fn close_default_security_group(aws: &Aws, vpc: &str) -> Result<usize, VpcError> {
    let err = |action| {
        move |e: String| VpcError {
            vpc: vpc.to_string(),
            action,
            message: e,
        }
    };
    let ec2 = aws.ec2();
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("DescribeSecurityGroups")(sdk_message(&e)))?;
    let mut revoked = 0;
    for group in groups.security_groups() {
        let Some(id) = group.group_id() else { continue };
        if !group.ip_permissions().is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(group.ip_permissions().to_vec()))
                .send()
                .await
                .map_err(|e| err("RevokeSecurityGroupIngress")(sdk_message(&e)))?;
            revoked += 1;
        }
        if !group.ip_permissions_egress().is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                .send()
                .await
                .map_err(|e| err("RevokeSecurityGroupEgress")(sdk_message(&e)))?;
            revoked += 1;
        }
    }
    Ok(revoked)
}
