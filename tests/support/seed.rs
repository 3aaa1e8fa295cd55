//! Seeding the emulator with the Rust SDK: clusters, roles and addresses
//! that Terrace did or did not create.

use std::collections::HashMap;

use super::moto::Account;

/// The tags Terrace puts on everything it creates for `cluster`.
pub fn terrace_tags(cluster: &str) -> Vec<(&'static str, String)> {
    vec![
        ("terrace.dev/managed-by", "terrace".to_string()),
        ("terrace.dev/cluster", cluster.to_string()),
    ]
}

/// An EKS cluster (ACTIVE at once in moto) with `tags`, at the default
/// Kubernetes version (moto's own default is years old).
pub async fn eks_cluster(account: &Account, region: &str, name: &str, tags: &[(&str, String)]) {
    let eks = aws_sdk_eks::Client::new(&account.sdk_config(region).await);
    let tags: HashMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    eks.create_cluster()
        .name(name)
        .version("1.34")
        .role_arn(format!("arn:aws:iam::{}:role/seed-cluster", account.id))
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
        .set_tags(Some(tags))
        .send()
        .await
        .expect("moto CreateCluster");
}

/// A managed node group of `cluster`.
pub async fn node_group(account: &Account, region: &str, cluster: &str, name: &str) {
    let eks = aws_sdk_eks::Client::new(&account.sdk_config(region).await);
    eks.create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .node_role(format!("arn:aws:iam::{}:role/seed-node", account.id))
        .subnets("subnet-12345678")
        .instance_types("m7i.large")
        .scaling_config(
            aws_sdk_eks::types::NodegroupScalingConfig::builder()
                .min_size(2)
                .desired_size(2)
                .max_size(4)
                .build(),
        )
        .send()
        .await
        .expect("moto CreateNodegroup");
}

/// An IAM role named `name` with `tags`.
pub async fn iam_role(account: &Account, name: &str, tags: &[(&str, String)]) {
    let iam = aws_sdk_iam::Client::new(&account.sdk_config("us-east-1").await);
    let tags = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(v)
                .build()
                .unwrap()
        })
        .collect();
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .set_tags(Some(tags))
        .send()
        .await
        .expect("moto CreateRole");
}

/// `count` Elastic IPs in `region`.
pub async fn elastic_ips(account: &Account, region: &str, count: usize) {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(region).await);
    for _ in 0..count {
        ec2.allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc)
            .send()
            .await
            .expect("moto AllocateAddress");
    }
}

/// `count` more VPCs in `region`.
pub async fn vpcs(account: &Account, region: &str, count: usize) {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(region).await);
    for i in 0..count {
        ec2.create_vpc()
            .cidr_block(format!("10.{}.0.0/16", 100 + i))
            .send()
            .await
            .expect("moto CreateVpc");
    }
}
