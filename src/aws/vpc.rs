//! Closing a VPC's default security group, and reading the routes and
//! subnet associations of route tables.
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
#[error("{what}: {action}: {message}")]
pub struct VpcError {
    what: String,
    action: &'static str,
    message: String,
}

/// What a route table holds that has no tag of its own: its routes' IPv4
/// destinations and the subnets associated with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub destinations: Vec<String>,
    pub subnets: Vec<String>,
}

/// The route tables among `ids` that exist (an unknown id is left out,
/// not an error).
pub async fn route_tables(aws: &Aws, ids: &[String]) -> Result<Vec<RouteTable>, VpcError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = aws
        .ec2()
        .describe_route_tables()
        .filters(
            Filter::builder()
                .name("route-table-id")
                .set_values(Some(ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| VpcError {
            what: format!("route tables {}", ids.join(", ")),
            action: "DescribeRouteTables",
            message: sdk_message(&e),
        })?;
    Ok(found
        .route_tables()
        .iter()
        .filter_map(|t| {
            Some(RouteTable {
                id: t.route_table_id()?.to_string(),
                destinations: t
                    .routes()
                    .iter()
                    .filter_map(|r| r.destination_cidr_block().map(str::to_string))
                    .collect(),
                subnets: t
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_string))
                    .collect(),
            })
        })
        .collect())
}

/// Revokes every rule of `vpc`'s default security group; returns how many
/// rule sets it revoked (0 when it was already closed).
pub async fn close_default_security_group(aws: &Aws, vpc: &str) -> Result<usize, VpcError> {
    let err = |action| {
        move |e: String| VpcError {
            what: format!("default security group of {vpc}"),
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
