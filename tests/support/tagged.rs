//! What an emulated account still holds of a cluster, for tests that
//! assert a teardown left nothing.

use super::moto::Account;

/// What the account still holds tagged `terrace.dev/cluster=<cluster>`,
/// asked of the Tagging API and of IAM (which it does not cover); a KMS
/// key scheduled for deletion and a deleted NAT gateway, which AWS keeps
/// visible for a while, do not count.
pub async fn for_cluster(account: &Account, region: &str, cluster: &str) -> Vec<String> {
    let config = account.sdk_config(region).await;
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&config);
    let kms = aws_sdk_kms::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let found = tagging
        .get_resources()
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key("terrace.dev/cluster")
                .values(cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut left = Vec::new();
    for arn in found
        .resource_tag_mapping_list()
        .iter()
        .filter_map(|m| m.resource_arn())
    {
        let id = arn.rsplit('/').next().unwrap();
        let gone = if arn.contains(":kms:") {
            kms.describe_key().key_id(id).send().await.is_ok_and(|k| {
                k.key_metadata()
                    .and_then(|m| m.key_state())
                    .map(|s| s.as_str())
                    == Some("PendingDeletion")
            })
        } else if arn.contains(":natgateway/") {
            ec2.describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .is_ok_and(|o| {
                    o.nat_gateways()
                        .iter()
                        .all(|n| n.state().map(|s| s.as_str()) == Some("deleted"))
                })
        } else {
            false
        };
        if !gone {
            left.push(arn.to_string());
        }
    }
    let iam = aws_sdk_iam::Client::new(&config);
    for role in iam.list_roles().send().await.unwrap().roles() {
        let tags = iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await
            .unwrap();
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "terrace.dev/cluster" && t.value() == cluster)
        {
            left.push(role.arn().to_string());
        }
    }
    left
}
