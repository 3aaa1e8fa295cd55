//! Inventory, sweep and leak report against the moto emulator: one of
//! every leftover kind for cluster A, the same for cluster B (whose name
//! starts with A's) and untagged or look-alike decoys. Only A's go.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::leftovers::{Seeded, Seeder, spec};
use support::moto;
use support::stack;
use terrace::aws::Aws;
use terrace::progress::Collect;
use terrace::teardown::{self, Kind, Options};

const REGION: &str = "us-east-1";
const A: &str = "tc-a";
const B: &str = "tc-a-2";

fn ids(seeded: &Seeded, zone_id: &str) -> BTreeSet<(Kind, String)> {
    let mut out = BTreeSet::new();
    let mut add = |kind, list: &[String]| {
        for id in list {
            out.insert((kind, id.clone()));
        }
    };
    add(Kind::Instance, &seeded.instances);
    add(Kind::LoadBalancer, &seeded.load_balancers);
    add(Kind::TargetGroup, &seeded.target_groups);
    add(Kind::LaunchTemplate, &seeded.launch_templates);
    add(Kind::NetworkInterface, &seeded.enis);
    add(Kind::SecurityGroup, &seeded.security_groups);
    add(Kind::Volume, &seeded.volumes);
    for (name, kind) in &seeded.records {
        out.insert((Kind::DnsRecord, format!("{zone_id}/{name}/{kind}")));
    }
    out
}

fn options(keep_volumes: bool) -> Options {
    Options {
        keep_volumes,
        deadline: Duration::from_secs(20),
        ..Options::default()
    }
}

struct World {
    aws: Aws,
    seeder: Seeder,
    a: Seeded,
    b: Seeded,
    decoys: Seeded,
    spec: terrace::config::ClusterSpec,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let seeder = Seeder::new(&account, REGION).await;
    let a = seeder.cluster_leftovers(A, 0).await;
    let b = seeder.cluster_leftovers(B, 0).await;
    let decoys = seeder.decoys(A, &a.security_groups[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, A, &[A, B]);
    World {
        aws: Aws::from_config(account.sdk_config(REGION).await),
        seeder,
        a,
        b,
        decoys,
        spec,
        _dir: dir,
    }
}

#[tokio::test]
async fn sweep_deletes_exactly_the_inventory_and_nothing_else() {
    let w = world().await;
    let zone = w.seeder.zone_id.clone();

    let inventory = teardown::inventory(&w.aws, &w.spec, &options(false))
        .await
        .unwrap();
    let listed: BTreeSet<(Kind, String)> = inventory
        .items
        .iter()
        .map(|i| (i.kind, i.id.clone()))
        .collect();
    assert_eq!(
        listed,
        ids(&w.a, &zone),
        "inventory lists exactly A's leftovers"
    );
    let holder = w.decoys.security_groups[1].clone();
    assert!(
        inventory
            .references
            .iter()
            .any(|r| r.group_id == holder && r.referenced_group_id == w.a.security_groups[0]),
        "{:?}",
        inventory.references
    );

    let events = Collect::default();
    let report = teardown::sweep(&w.aws, &w.spec, &options(false), &events)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let deleted: BTreeSet<(Kind, String)> = report
        .deleted
        .iter()
        .map(|i| (i.kind, i.id.clone()))
        .collect();
    assert_eq!(
        deleted, listed,
        "the sweep deletes what the inventory listed"
    );
    assert!(report.total_calls > 0);
    assert_eq!(report.total_calls, report.calls.values().sum::<u64>());
    assert!(!events.events().is_empty());

    let left = w.seeder.surviving(&w.a).await;
    assert_eq!(left.len(), 0, "A's leftovers survived: {left:?}");
    let b_left = w.seeder.surviving(&w.b).await;
    assert_eq!(ids(&b_left, &zone), ids(&w.b, &zone), "B was touched");
    let decoys_left = w.seeder.surviving(&w.decoys).await;
    assert_eq!(
        ids(&decoys_left, &zone),
        ids(&w.decoys, &zone),
        "a decoy was touched"
    );
    // The decoy keeps existing; only its rule about A's group had to go.
    assert_eq!(
        w.seeder.rules_from(&holder, &w.a.security_groups[0]).await,
        0
    );
    assert_eq!(report.revoked.len(), 1);

    let leaks = teardown::verify(&w.aws, &w.spec, &options(false))
        .await
        .unwrap();
    assert!(leaks.is_clean(), "{:?}", leaks.leaks);
    assert!(leaks.kept.is_empty());

    // A second sweep finds nothing and changes nothing.
    let again = teardown::sweep(&w.aws, &w.spec, &options(false), &events)
        .await
        .unwrap();
    assert!(
        again.deleted.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}

#[tokio::test]
async fn kept_volumes_survive_and_are_not_leaks() {
    let w = world().await;
    let inventory = teardown::inventory(&w.aws, &w.spec, &options(true))
        .await
        .unwrap();
    assert_eq!(inventory.of(Kind::Volume).count(), 0);
    let kept: Vec<&str> = inventory.kept.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(kept, vec![w.a.volumes[0].as_str()]);
    assert_eq!(inventory.kept[0].name.as_deref(), Some("default/data"));

    let report = teardown::sweep(&w.aws, &w.spec, &options(true), &Collect::default())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(w.seeder.surviving(&w.a).await.volumes, w.a.volumes);

    let leaks = teardown::verify(&w.aws, &w.spec, &options(true))
        .await
        .unwrap();
    assert!(leaks.is_clean(), "{:?}", leaks.leaks);
    assert_eq!(leaks.kept.len(), 1);
    assert_eq!(leaks.kept[0].id, w.a.volumes[0]);

    // Without --keep-volumes the same volume is a leak.
    let strict = teardown::verify(&w.aws, &w.spec, &options(false))
        .await
        .unwrap();
    assert_eq!(
        strict
            .leaks
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>(),
        vec![w.a.volumes[0].as_str()]
    );
}

#[tokio::test]
async fn verify_names_tagged_survivors_the_sweep_does_not_handle() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let seeder = Seeder::new(&account, REGION).await;
    let ec2 = &seeder.ec2;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("terrace.dev/cluster")
                        .value(A)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, A, &[A]);
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let report = teardown::verify(&aws, &spec, &options(false))
        .await
        .unwrap();
    assert_eq!(report.leaks.len(), 1, "{:?}", report.leaks);
    assert_eq!(report.leaks[0].kind, "ec2:vpc");
    assert_eq!(report.leaks[0].id, vpc);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["leaks"][0]["id"], vpc.as_str());
}

/// What an A-tagged stack and A's in-VPC controller leftovers should be
/// listed as, by kind name.
fn expected(stack: &stack::Stack, inside: &Seeded) -> BTreeSet<(String, String)> {
    let mut out: BTreeSet<(String, String)> = stack
        .ids
        .iter()
        .map(|(k, id)| (k.to_string(), id.clone()))
        .collect();
    for (kind, list) in [
        ("instance", &inside.instances),
        ("load-balancer", &inside.load_balancers),
        ("network-interface", &inside.enis),
        ("security-group", &inside.security_groups),
    ] {
        for id in list {
            out.insert((kind.to_string(), id.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_sweep_alone_removes_every_kind_terrace_creates_in_dependency_order() {
    terrace::tls::install_crypto_provider();
    // Behind the EKS shim: EKS parts exist, and EC2 refuses to delete a
    // subnet, group or VPC still in use, so a wrong order fails here.
    let account = moto::account_with_eks_shim().await;
    let a = stack::seed(&account, REGION, A, &stack::tags_for(Some(A)), true, 0).await;
    let b = stack::seed(&account, REGION, B, &stack::tags_for(Some(B)), true, 1).await;
    let look_alike = format!("{A}-look-alike");
    let decoy = stack::seed(
        &account,
        REGION,
        &look_alike,
        &stack::tags_for(None),
        false,
        2,
    )
    .await;
    let subnets = a.all("subnet");
    let inside = Seeder::within(&account, REGION, a.id("vpc"), [&subnets[0], &subnets[1]])
        .await
        .in_vpc_leftovers(A)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, A, &[A, B]);
    let aws = Aws::from_config(account.sdk_config(REGION).await);

    // The emulator refuses what EC2 refuses: the subnet holds the load
    // balancer's interfaces and the instance.
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let refused = ec2
        .delete_subnet()
        .subnet_id(&subnets[0])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&refused),
        Some("DependencyViolation"),
        "{refused:?}"
    );

    let inventory = teardown::inventory(&aws, &spec, &options(false))
        .await
        .unwrap();
    let listed: BTreeSet<(String, String)> = inventory
        .items
        .iter()
        .filter(|i| {
            !(i.kind == Kind::SecurityGroup
                && i.name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("eks-cluster-sg-")))
        })
        .map(|i| (i.kind.as_str().to_string(), i.id.clone()))
        .collect();
    assert_eq!(
        listed,
        expected(&a, &inside),
        "the inventory is A's, every kind"
    );
    let order: Vec<Kind> = inventory.items.iter().map(|i| i.kind).collect();
    assert!(order.is_sorted(), "listed in deletion order: {order:?}");

    let report = teardown::sweep(&aws, &spec, &options(false), &Collect::default())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let left = stack::surviving(&account, REGION, &a).await;
    assert_eq!(left, [], "A survived the sweep");
    assert_eq!(
        stack::surviving(&account, REGION, &b).await,
        b.ids,
        "the other Terrace cluster was touched"
    );
    assert_eq!(
        stack::surviving(&account, REGION, &decoy).await,
        decoy.ids,
        "an untagged look-alike was touched"
    );
    let key = aws_sdk_kms::Client::new(&account.sdk_config(REGION).await)
        .describe_key()
        .key_id(a.id("kms-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        key.key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str()),
        Some("PendingDeletion"),
        "a KMS key is scheduled for deletion, not deleted"
    );
    let aliases = aws_sdk_kms::Client::new(&account.sdk_config(REGION).await)
        .list_aliases()
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = aliases
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .collect();
    assert!(!names.contains(&format!("alias/{A}").as_str()), "{names:?}");
    assert!(names.contains(&format!("alias/{B}").as_str()), "{names:?}");

    let leaks = teardown::verify(&aws, &spec, &options(false))
        .await
        .unwrap();
    assert!(leaks.is_clean(), "{:?}", leaks.leaks);
}
