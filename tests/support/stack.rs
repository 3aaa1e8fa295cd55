//! What Terraform builds for a cluster (VPC, subnet, internet and NAT
//! gateways, route table, flow log, IAM role and instance profile, KMS key,
//! log group, queue, EventBridge rule, EKS cluster with its node group,
//! add-on, access entry and pod identity association), made with the SDK:
//! a second Terrace cluster or untagged look-alikes beside a real one, and
//! the benchmark's clusters, without running Terraform each time.
//!
//! Needs an account behind the EKS shim (access entries, add-ons and pod
//! identity associations).

use std::collections::HashMap;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use super::moto::Account;

/// The ids of one seeded stack, by kind (the sweep's kind names).
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub ids: Vec<(&'static str, String)>,
}

impl Stack {
    fn add(&mut self, kind: &'static str, id: impl Into<String>) {
        self.ids.push((kind, id.into()));
    }

    pub fn all(&self, kind: &str) -> Vec<String> {
        self.ids
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| id.clone())
            .collect()
    }

    pub fn id(&self, kind: &str) -> &str {
        self.ids
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, id)| id.as_str())
            .unwrap_or_else(|| panic!("no {kind} in {:?}", self.ids))
    }
}

fn ec2_tags(rt: ResourceType, tags: &[(String, String)]) -> Option<Vec<TagSpecification>> {
    (!tags.is_empty()).then(|| {
        vec![
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        ]
    })
}

/// Terrace's two tags for `cluster`, or none for a look-alike.
pub fn tags_for(cluster: Option<&str>) -> Vec<(String, String)> {
    match cluster {
        Some(c) => vec![
            ("terrace.dev/managed-by".into(), "terrace".into()),
            ("terrace.dev/cluster".into(), c.into()),
        ],
        None => Vec::new(),
    }
}

/// A stack whose names all carry `name` (as Terrace's do), tagged with
/// `tags`; with an EKS cluster named `name` when `eks` is set. `n`
/// separates the CIDRs of several stacks.
pub async fn seed(
    account: &Account,
    region: &str,
    name: &str,
    tags: &[(String, String)],
    eks: bool,
    n: u8,
) -> Stack {
    let config = account.sdk_config(region).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let mut stack = Stack::default();
    let map: HashMap<String, String> = tags.iter().cloned().collect();

    let vpc = ec2
        .create_vpc()
        .cidr_block(format!("10.{}.0.0/16", 100 + n))
        .set_tag_specifications(ec2_tags(ResourceType::Vpc, tags))
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b"].into_iter().enumerate() {
        subnets.push(
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.{}.{i}.0/24", 100 + n))
                .availability_zone(format!("{region}{az}"))
                .set_tag_specifications(ec2_tags(ResourceType::Subnet, tags))
                .send()
                .await
                .unwrap()
                .subnet
                .unwrap()
                .subnet_id
                .unwrap(),
        );
    }
    let subnet = subnets[0].clone();
    let igw = ec2
        .create_internet_gateway()
        .set_tag_specifications(ec2_tags(ResourceType::InternetGateway, tags))
        .send()
        .await
        .unwrap()
        .internet_gateway
        .unwrap()
        .internet_gateway_id
        .unwrap();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let table = ec2
        .create_route_table()
        .vpc_id(&vpc)
        .set_tag_specifications(ec2_tags(ResourceType::RouteTable, tags))
        .send()
        .await
        .unwrap()
        .route_table
        .unwrap()
        .route_table_id
        .unwrap();
    ec2.associate_route_table()
        .route_table_id(&table)
        .subnet_id(&subnet)
        .send()
        .await
        .unwrap();
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .set_tag_specifications(ec2_tags(ResourceType::ElasticIp, tags))
        .send()
        .await
        .unwrap()
        .allocation_id
        .unwrap();
    let nat = ec2
        .create_nat_gateway()
        .subnet_id(&subnet)
        .allocation_id(&eip)
        .set_tag_specifications(ec2_tags(ResourceType::Natgateway, tags))
        .send()
        .await
        .unwrap()
        .nat_gateway
        .unwrap()
        .nat_gateway_id
        .unwrap();

    let role = format!("{name}-seed-node");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let role_arn = format!("arn:aws:iam::{}:role/{role}", account.id);
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn("arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy")
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("inline")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let profile = format!("{name}_seed");
    iam.create_instance_profile()
        .instance_profile_name(&profile)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    aws_sdk_iam::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .unwrap();

    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = format!("/aws/eks/{name}/cluster");
    logs.create_log_group()
        .log_group_name(&group)
        .set_tags((!map.is_empty()).then(|| map.clone()))
        .send()
        .await
        .unwrap();
    let flow_log = ec2
        .create_flow_logs()
        .resource_ids(&vpc)
        .resource_type(aws_sdk_ec2::types::FlowLogsResourceType::Vpc)
        .traffic_type(aws_sdk_ec2::types::TrafficType::All)
        .log_group_name(&group)
        .deliver_logs_permission_arn(&role_arn)
        .set_tag_specifications(ec2_tags(ResourceType::VpcFlowLog, tags))
        .send()
        .await
        .unwrap()
        .flow_log_ids()[0]
        .clone();

    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms
        .create_key()
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key(k)
                        .tag_value(v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    kms.create_alias()
        .alias_name(format!("alias/{name}"))
        .target_key_id(&key)
        .send()
        .await
        .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}-karpenter-interruption"))
        .set_tags((!map.is_empty()).then(|| map.clone()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(&config);
    let rule = format!("{name}-spot-interruption");
    events
        .put_rule()
        .name(&rule)
        .event_pattern(
            r#"{"source":["aws.ec2"],"detail-type":["EC2 Spot Instance Interruption Warning"]}"#,
        )
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    aws_sdk_eventbridge::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("KarpenterInterruptionQueueTarget")
                .arn(format!(
                    "arn:aws:sqs:{region}:{}:{name}-karpenter-interruption",
                    account.id
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    if eks {
        let client = aws_sdk_eks::Client::new(&config);
        client
            .create_cluster()
            .name(name)
            .role_arn(&role_arn)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids(&subnet)
                    .build(),
            )
            .set_tags(Some(map.clone()))
            .send()
            .await
            .unwrap();
        let nodegroup = format!("{name}-system");
        client
            .create_nodegroup()
            .cluster_name(name)
            .nodegroup_name(&nodegroup)
            .node_role(&role_arn)
            .subnets(&subnet)
            .set_tags(Some(map.clone()))
            .send()
            .await
            .unwrap();
        client
            .create_addon()
            .cluster_name(name)
            .addon_name("coredns")
            .set_tags(Some(map.clone()))
            .send()
            .await
            .unwrap();
        let association = client
            .create_pod_identity_association()
            .cluster_name(name)
            .namespace("karpenter")
            .service_account("karpenter")
            .role_arn(&role_arn)
            .set_tags(Some(map.clone()))
            .send()
            .await
            .unwrap()
            .association
            .unwrap()
            .association_id
            .unwrap();
        client
            .create_access_entry()
            .cluster_name(name)
            .principal_arn(&role_arn)
            .r#type("EC2_LINUX")
            .set_tags(Some(map.clone()))
            .send()
            .await
            .unwrap();
        stack.add("node-group", format!("{name}/{nodegroup}"));
        stack.add("pod-identity-association", format!("{name}/{association}"));
        stack.add("access-entry", format!("{name}/{role_arn}"));
        stack.add("eks-addon", format!("{name}/coredns"));
        stack.add("eks-cluster", name);
    }
    stack.add("nat-gateway", nat);
    stack.add("elastic-ip", eip);
    stack.add("internet-gateway", igw);
    stack.add("route-table", table);
    for subnet in subnets {
        stack.add("subnet", subnet);
    }
    stack.add("flow-log", flow_log);
    stack.add("vpc", vpc);
    stack.add("instance-profile", profile);
    stack.add("iam-role", role);
    stack.add("kms-key", key);
    stack.add("log-group", group);
    stack.add("sqs-queue", queue);
    stack.add("event-rule", rule);
    stack
}

/// What of `stack` still exists, asked of each service directly (a NAT
/// gateway counts until it is deleted, a KMS key until it is scheduled
/// for deletion).
pub async fn surviving(
    account: &Account,
    region: &str,
    stack: &Stack,
) -> Vec<(&'static str, String)> {
    use aws_sdk_ec2::types::Filter;
    let config = account.sdk_config(region).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let eks = aws_sdk_eks::Client::new(&config);
    let f = |name: &str, id: &str| Filter::builder().name(name).values(id).build();
    let mut alive = Vec::new();
    for (kind, id) in &stack.ids {
        let part = || {
            id.split_once('/')
                .map(|(c, p)| (c.to_string(), p.to_string()))
                .unwrap()
        };
        let exists = match *kind {
            "vpc" => !ec2
                .describe_vpcs()
                .filters(f("vpc-id", id))
                .send()
                .await
                .unwrap()
                .vpcs()
                .is_empty(),
            "subnet" => !ec2
                .describe_subnets()
                .filters(f("subnet-id", id))
                .send()
                .await
                .unwrap()
                .subnets()
                .is_empty(),
            "internet-gateway" => !ec2
                .describe_internet_gateways()
                .filters(f("internet-gateway-id", id))
                .send()
                .await
                .unwrap()
                .internet_gateways()
                .is_empty(),
            "route-table" => !ec2
                .describe_route_tables()
                .filters(f("route-table-id", id))
                .send()
                .await
                .unwrap()
                .route_tables()
                .is_empty(),
            "nat-gateway" => ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .map(|o| {
                    o.nat_gateways().iter().any(|n| {
                        !matches!(n.state().map(|s| s.as_str()), Some("deleted" | "deleting"))
                    })
                })
                .unwrap_or(false),
            "elastic-ip" => !ec2
                .describe_addresses()
                .filters(f("allocation-id", id))
                .send()
                .await
                .unwrap()
                .addresses()
                .is_empty(),
            "flow-log" => !ec2
                .describe_flow_logs()
                .filter(f("flow-log-id", id))
                .send()
                .await
                .unwrap()
                .flow_logs()
                .is_empty(),
            "iam-role" => iam.get_role().role_name(id).send().await.is_ok(),
            "instance-profile" => iam
                .get_instance_profile()
                .instance_profile_name(id)
                .send()
                .await
                .is_ok(),
            "kms-key" => aws_sdk_kms::Client::new(&config)
                .describe_key()
                .key_id(id)
                .send()
                .await
                .is_ok_and(|o| {
                    o.key_metadata()
                        .and_then(|m| m.key_state())
                        .map(|s| s.as_str())
                        != Some("PendingDeletion")
                }),
            "log-group" => aws_sdk_cloudwatchlogs::Client::new(&config)
                .describe_log_groups()
                .log_group_name_prefix(id)
                .send()
                .await
                .unwrap()
                .log_groups()
                .iter()
                .any(|g| g.log_group_name() == Some(id)),
            "sqs-queue" => aws_sdk_sqs::Client::new(&config)
                .get_queue_attributes()
                .queue_url(id)
                .send()
                .await
                .is_ok(),
            "event-rule" => aws_sdk_eventbridge::Client::new(&config)
                .describe_rule()
                .name(id)
                .send()
                .await
                .is_ok(),
            "eks-cluster" => eks.describe_cluster().name(id).send().await.is_ok(),
            "node-group" => {
                let (c, p) = part();
                eks.describe_nodegroup()
                    .cluster_name(c)
                    .nodegroup_name(p)
                    .send()
                    .await
                    .is_ok()
            }
            "eks-addon" => {
                let (c, p) = part();
                eks.describe_addon()
                    .cluster_name(c)
                    .addon_name(p)
                    .send()
                    .await
                    .is_ok()
            }
            "pod-identity-association" => {
                let (c, p) = part();
                eks.describe_pod_identity_association()
                    .cluster_name(c)
                    .association_id(p)
                    .send()
                    .await
                    .is_ok()
            }
            "access-entry" => {
                let (c, p) = part();
                eks.describe_access_entry()
                    .cluster_name(c)
                    .principal_arn(p)
                    .send()
                    .await
                    .is_ok()
            }
            other => panic!("unknown kind {other}"),
        };
        if exists {
            alive.push((*kind, id.clone()));
        }
    }
    alive
}
