//! Seeding what a cluster's controllers leave behind (load balancers,
//! Karpenter instances and launch templates, CNI interfaces, security
//! groups, PVC volumes, ExternalDNS records) and decoys that belong to no
//! cluster, for the teardown tests and the sweep benchmark.

use std::path::Path;

use aws_sdk_ec2::types::{
    Filter, IpPermission, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use super::moto::Account;

pub const ZONE: &str = "example.com";

/// Clients for one emulated account in one region.
pub struct Seeder {
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: elbv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub vpc: String,
    pub subnets: [String; 2],
    pub zone_id: String,
}

/// What was seeded for one owner, by kind.
#[derive(Debug, Default, Clone)]
pub struct Seeded {
    pub instances: Vec<String>,
    pub load_balancers: Vec<String>,
    pub target_groups: Vec<String>,
    pub launch_templates: Vec<String>,
    pub enis: Vec<String>,
    pub security_groups: Vec<String>,
    pub volumes: Vec<String>,
    /// (name without trailing dot, type)
    pub records: Vec<(String, String)>,
}

impl Seeded {
    pub fn len(&self) -> usize {
        self.instances.len()
            + self.load_balancers.len()
            + self.target_groups.len()
            + self.launch_templates.len()
            + self.enis.len()
            + self.security_groups.len()
            + self.volumes.len()
            + self.records.len()
    }

    pub fn extend(&mut self, other: Seeded) {
        self.instances.extend(other.instances);
        self.load_balancers.extend(other.load_balancers);
        self.target_groups.extend(other.target_groups);
        self.launch_templates.extend(other.launch_templates);
        self.enis.extend(other.enis);
        self.security_groups.extend(other.security_groups);
        self.volumes.extend(other.volumes);
        self.records.extend(other.records);
    }
}

/// EC2 refuses an empty tag specification: none for no tags.
fn tags(rt: ResourceType, tags: &[(&str, &str)]) -> Option<Vec<TagSpecification>> {
    (!tags.is_empty()).then(|| {
        vec![
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build(),
        ]
    })
}

fn elb_tags(tags: &[(&str, &str)]) -> Vec<elbv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| elbv2::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

impl Seeder {
    /// A VPC with two subnets and the `example.com` zone.
    pub async fn new(account: &Account, region: &str) -> Seeder {
        let config = account.sdk_config(region).await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc
            .unwrap()
            .vpc_id
            .unwrap();
        let mut subnets = Vec::new();
        for (i, az) in ["a", "b"].iter().enumerate() {
            subnets.push(
                ec2.create_subnet()
                    .vpc_id(&vpc)
                    .cidr_block(format!("10.0.{i}.0/24"))
                    .availability_zone(format!("{region}{az}"))
                    .send()
                    .await
                    .unwrap()
                    .subnet
                    .unwrap()
                    .subnet_id
                    .unwrap(),
            );
        }
        let route53 = aws_sdk_route53::Client::new(&config);
        let zone_id = route53
            .create_hosted_zone()
            .name(ZONE)
            .caller_reference(format!("seed-{}", account.id))
            .send()
            .await
            .unwrap()
            .hosted_zone
            .unwrap()
            .id
            .trim_start_matches("/hostedzone/")
            .to_string();
        Seeder {
            ec2,
            elbv2: elbv2::Client::new(&config),
            route53,
            vpc,
            subnets: [subnets[0].clone(), subnets[1].clone()],
            zone_id,
        }
    }

    /// Seeding into an existing VPC and two of its subnets (in two AZs),
    /// as the controllers create inside a cluster's network; no DNS zone.
    pub async fn within(account: &Account, region: &str, vpc: &str, subnets: [&str; 2]) -> Seeder {
        let config = account.sdk_config(region).await;
        Seeder {
            ec2: aws_sdk_ec2::Client::new(&config),
            elbv2: elbv2::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            vpc: vpc.to_string(),
            subnets: [subnets[0].to_string(), subnets[1].to_string()],
            zone_id: String::new(),
        }
    }

    /// What the LB controller and Karpenter leave in the cluster's subnets
    /// when nobody drains it: a load balancer in its own security group
    /// (with the interfaces a real one has, made by the EKS shim), a
    /// Karpenter instance in that group, and a detached CNI interface.
    pub async fn in_vpc_leftovers(&self, cluster: &str) -> Seeded {
        let sg = self
            .security_group(
                &format!("k8s-{cluster}-web"),
                &[("elbv2.k8s.aws/cluster", cluster)],
            )
            .await;
        let lb = self
            .elbv2
            .create_load_balancer()
            .name(
                format!("k8s-{cluster}-web")
                    .chars()
                    .take(32)
                    .collect::<String>(),
            )
            .subnets(&self.subnets[0])
            .subnets(&self.subnets[1])
            .security_groups(&sg)
            .set_tags(Some(elb_tags(&[("elbv2.k8s.aws/cluster", cluster)])))
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let instance = self
            .ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1)
            .subnet_id(&self.subnets[1])
            .security_group_ids(&sg)
            .set_tag_specifications(tags(
                ResourceType::Instance,
                &[
                    ("karpenter.sh/nodepool", "default"),
                    ("eks:eks-cluster-name", cluster),
                ],
            ))
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_string();
        let eni = self
            .ec2
            .create_network_interface()
            .subnet_id(&self.subnets[1])
            .set_tag_specifications(tags(
                ResourceType::NetworkInterface,
                &[("cluster.k8s.amazonaws.com/name", cluster)],
            ))
            .send()
            .await
            .unwrap()
            .network_interface
            .unwrap()
            .network_interface_id
            .unwrap();
        Seeded {
            instances: vec![instance],
            load_balancers: vec![lb],
            enis: vec![eni],
            security_groups: vec![sg],
            ..Seeded::default()
        }
    }

    pub async fn instance(&self, tag_list: &[(&str, &str)]) -> String {
        self.ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1)
            .subnet_id(&self.subnets[0])
            .set_tag_specifications(tags(ResourceType::Instance, tag_list))
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_string()
    }

    pub async fn load_balancer(&self, name: &str, tag_list: &[(&str, &str)]) -> String {
        self.elbv2
            .create_load_balancer()
            .name(name)
            .subnets(&self.subnets[0])
            .subnets(&self.subnets[1])
            .set_tags(Some(elb_tags(tag_list)))
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string()
    }

    /// A target group, forwarded to by a listener of `lb` when given.
    pub async fn target_group(
        &self,
        name: &str,
        lb: Option<&str>,
        tag_list: &[(&str, &str)],
    ) -> String {
        let arn = self
            .elbv2
            .create_target_group()
            .name(name)
            .protocol(elbv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&self.vpc)
            .set_tags(Some(elb_tags(tag_list)))
            .send()
            .await
            .unwrap()
            .target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        if let Some(lb) = lb {
            self.elbv2
                .create_listener()
                .load_balancer_arn(lb)
                .protocol(elbv2::types::ProtocolEnum::Http)
                .port(80)
                .default_actions(
                    elbv2::types::Action::builder()
                        .r#type(elbv2::types::ActionTypeEnum::Forward)
                        .target_group_arn(&arn)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        arn
    }

    pub async fn launch_template(&self, name: &str, tag_list: &[(&str, &str)]) -> String {
        self.ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().build())
            .set_tag_specifications(tags(ResourceType::LaunchTemplate, tag_list))
            .send()
            .await
            .unwrap()
            .launch_template
            .unwrap()
            .launch_template_id
            .unwrap()
    }

    pub async fn eni(&self, tag_list: &[(&str, &str)]) -> String {
        self.ec2
            .create_network_interface()
            .subnet_id(&self.subnets[0])
            .set_tag_specifications(tags(ResourceType::NetworkInterface, tag_list))
            .send()
            .await
            .unwrap()
            .network_interface
            .unwrap()
            .network_interface_id
            .unwrap()
    }

    pub async fn security_group(&self, name: &str, tag_list: &[(&str, &str)]) -> String {
        self.ec2
            .create_security_group()
            .group_name(name)
            .description("seeded")
            .vpc_id(&self.vpc)
            .set_tag_specifications(tags(ResourceType::SecurityGroup, tag_list))
            .send()
            .await
            .unwrap()
            .group_id
            .unwrap()
    }

    /// Lets `holder` accept port 80 from `source`.
    pub async fn allow_from(&self, holder: &str, source: &str) {
        self.ec2
            .authorize_security_group_ingress()
            .group_id(holder)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(80)
                    .to_port(80)
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    pub async fn volume(&self, tag_list: &[(&str, &str)]) -> String {
        self.ec2
            .create_volume()
            .availability_zone(format!("{}a", self.ec2.config().region().unwrap().as_ref()))
            .size(1)
            .set_tag_specifications(tags(ResourceType::Volume, tag_list))
            .send()
            .await
            .unwrap()
            .volume_id
            .unwrap()
    }

    /// An ExternalDNS-style pair: the registry TXT record (new format)
    /// with `owner`, and the A record it owns.
    pub async fn dns_pair(&self, host: &str, owner: &str) -> Vec<(String, String)> {
        let name = format!("{host}.{ZONE}");
        let txt = format!("a-{host}.{ZONE}");
        let value = format!(
            "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=service/default/{host}\""
        );
        self.records(&[
            (&txt, RrType::Txt, &value),
            (&name, RrType::A, "192.0.2.10"),
        ])
        .await;
        vec![(txt, "TXT".into()), (name, "A".into())]
    }

    pub async fn records(&self, sets: &[(&str, RrType, &str)]) {
        let changes = sets
            .iter()
            .map(|(name, kind, value)| {
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(
                        ResourceRecordSet::builder()
                            .name(*name)
                            .r#type(kind.clone())
                            .ttl(300)
                            .resource_records(
                                ResourceRecord::builder().value(*value).build().unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap()
            })
            .collect();
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(changes))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// One of every leftover kind for `cluster`, each tagged the way its
    /// controller tags it (so the sweep must know every controller's tag);
    /// `n` keeps names unique when seeding many.
    pub async fn cluster_leftovers(&self, cluster: &str, n: usize) -> Seeded {
        let owned = format!("kubernetes.io/cluster/{cluster}");
        let lb = self
            .load_balancer(
                &format!("{cluster}-lb-{n}"),
                &[("elbv2.k8s.aws/cluster", cluster)],
            )
            .await;
        let tg = self
            .target_group(
                &format!("{cluster}-tg-{n}"),
                Some(&lb),
                &[(&owned, "owned")],
            )
            .await;
        let instance = self
            .instance(&[
                ("karpenter.sh/nodepool", "default"),
                ("eks:eks-cluster-name", cluster),
            ])
            .await;
        let lt = self
            .launch_template(
                &format!("{cluster}-lt-{n}"),
                &[("karpenter.k8s.aws/cluster", cluster)],
            )
            .await;
        let eni = self
            .eni(&[("cluster.k8s.amazonaws.com/name", cluster)])
            .await;
        let sg = self
            .security_group(
                &format!("{cluster}-sg-{n}"),
                &[("elbv2.k8s.aws/cluster", cluster)],
            )
            .await;
        let pvc = self
            .volume(&[
                (&owned, "owned"),
                ("ebs.csi.aws.com/cluster", "true"),
                ("kubernetes.io/created-for/pvc/namespace", "default"),
                ("kubernetes.io/created-for/pvc/name", "data"),
            ])
            .await;
        let records = self.dns_pair(&format!("{cluster}-web-{n}"), cluster).await;
        Seeded {
            instances: vec![instance],
            load_balancers: vec![lb],
            target_groups: vec![tg],
            launch_templates: vec![lt],
            enis: vec![eni],
            security_groups: vec![sg],
            volumes: vec![pvc],
            records,
        }
    }

    /// Look-alikes that belong to no cluster named `near`: untagged, tagged
    /// `shared`, a Karpenter tag without a cluster, a record owned by
    /// `near-x`. Also a group whose rule refers to `referenced` (a group of
    /// the cluster being swept), returned last in `security_groups`.
    pub async fn decoys(&self, near: &str, referenced: &str) -> Seeded {
        let lb = self.load_balancer("decoy-lb", &[("team", "web")]).await;
        let tg = self.target_group("decoy-tg", None, &[]).await;
        let instance = self.instance(&[("karpenter.sh/nodepool", "default")]).await;
        let lt = self.launch_template("decoy-lt", &[("Name", near)]).await;
        let eni = self.eni(&[]).await;
        let plain = self.security_group("decoy-sg", &[]).await;
        let holder = self.security_group("decoy-holder", &[]).await;
        self.allow_from(&holder, referenced).await;
        let shared = self
            .volume(&[(&format!("kubernetes.io/cluster/{near}"), "shared")])
            .await;
        let untagged = self.volume(&[]).await;
        let mut records = self.dns_pair("lookalike", &format!("{near}-x")).await;
        let unregistered = format!("plain.{ZONE}");
        self.records(&[(&unregistered, RrType::A, "192.0.2.20")])
            .await;
        records.push((unregistered, "A".into()));
        Seeded {
            instances: vec![instance],
            load_balancers: vec![lb],
            target_groups: vec![tg],
            launch_templates: vec![lt],
            enis: vec![eni],
            security_groups: vec![plain, holder],
            volumes: vec![shared, untagged],
            records,
        }
    }

    /// Which of `seeded` still exist (instances: not terminated).
    /// The ARNs of every load balancer in the account's region.
    pub async fn surviving_load_balancers(&self) -> Vec<String> {
        self.elbv2
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .iter()
            .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
            .collect()
    }

    pub async fn surviving(&self, seeded: &Seeded) -> Seeded {
        let mut out = Seeded::default();
        for id in &seeded.instances {
            let r = self
                .ec2
                .describe_instances()
                .filters(Filter::builder().name("instance-id").values(id).build())
                .send()
                .await
                .unwrap();
            let alive = r
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .any(|i| {
                    i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated")
                });
            if alive {
                out.instances.push(id.clone());
            }
        }
        for arn in &seeded.load_balancers {
            if self
                .elbv2
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
                .is_ok()
            {
                out.load_balancers.push(arn.clone());
            }
        }
        for arn in &seeded.target_groups {
            if self
                .elbv2
                .describe_target_groups()
                .target_group_arns(arn)
                .send()
                .await
                .is_ok()
            {
                out.target_groups.push(arn.clone());
            }
        }
        for id in &seeded.launch_templates {
            let r = self
                .ec2
                .describe_launch_templates()
                .launch_template_ids(id)
                .send()
                .await;
            if r.is_ok_and(|r| !r.launch_templates().is_empty()) {
                out.launch_templates.push(id.clone());
            }
        }
        for id in &seeded.enis {
            let r = self
                .ec2
                .describe_network_interfaces()
                .filters(
                    Filter::builder()
                        .name("network-interface-id")
                        .values(id)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            if !r.network_interfaces().is_empty() {
                out.enis.push(id.clone());
            }
        }
        for id in &seeded.security_groups {
            let r = self
                .ec2
                .describe_security_groups()
                .filters(Filter::builder().name("group-id").values(id).build())
                .send()
                .await
                .unwrap();
            if !r.security_groups().is_empty() {
                out.security_groups.push(id.clone());
            }
        }
        for id in &seeded.volumes {
            let r = self
                .ec2
                .describe_volumes()
                .filters(Filter::builder().name("volume-id").values(id).build())
                .send()
                .await
                .unwrap();
            if !r.volumes().is_empty() {
                out.volumes.push(id.clone());
            }
        }
        if self.zone_id.is_empty() {
            return out;
        }
        let sets = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .send()
            .await
            .unwrap();
        for (name, kind) in &seeded.records {
            let present = sets
                .resource_record_sets()
                .iter()
                .any(|s| s.name().trim_end_matches('.') == name && s.r#type().as_str() == kind);
            if present {
                out.records.push((name.clone(), kind.clone()));
            }
        }
        out
    }

    /// The ingress rules of `group` that refer to `source`.
    pub async fn rules_from(&self, group: &str, source: &str) -> usize {
        let r = self
            .ec2
            .describe_security_groups()
            .group_ids(group)
            .send()
            .await
            .unwrap();
        r.security_groups()[0]
            .ip_permissions()
            .iter()
            .flat_map(|p| p.user_id_group_pairs())
            .filter(|p| p.group_id() == Some(source))
            .count()
    }
}

/// A built cluster's VPC and two of its private subnets (the ones
/// Karpenter launches into), in two AZs.
pub async fn cluster_network(
    account: &Account,
    region: &str,
    cluster: &str,
) -> (String, [String; 2]) {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(region).await);
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:terrace.dev/cluster")
                .values(cluster)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(
            Filter::builder()
                .name("tag-key")
                .values("kubernetes.io/role/internal-elb")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut private: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap().to_string(),
                s.subnet_id().unwrap().to_string(),
            )
        })
        .collect();
    private.sort();
    assert!(private.len() >= 2, "{private:?}");
    (vpc, [private[0].1.clone(), private[1].1.clone()])
}

/// A fleet file for two clusters in `region` whose ExternalDNS writes to
/// [`ZONE`], and the spec of `name` from it.
pub fn spec(dir: &Path, region: &str, name: &str, names: &[&str]) -> terrace::config::ClusterSpec {
    let mut yaml =
        format!("defaults:\n  addons:\n    external-dns: {{ zones: [{ZONE}] }}\nclusters:\n");
    for (i, n) in names.iter().enumerate() {
        yaml.push_str(&format!(
            "  - region: {region}\n    name: {n}\n    network: {{ cidr: 10.{i}.0.0/16 }}\n"
        ));
    }
    let path = dir.join("terrace.yaml");
    std::fs::write(&path, yaml).unwrap();
    terrace::config::load(
        &terrace::config::Request {
            config: Some(path),
            region: region.to_string(),
            name: Some(name.to_string()),
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap()
}
