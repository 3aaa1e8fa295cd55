//! The janitor against moto: a stale cluster and stale orphans are
//! reported, a fresh cluster, fresh orphans and the resources of a living
//! cluster are not. moto stamps creation times with its own clock, so the
//! resources are seeded a few seconds apart and the janitor's clock is set
//! relative to them.

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use support::moto::{self, Account};
use support::seed::{eks_cluster, terrace_tags};
use terrace::aws::Aws;
use terrace::aws::discovery;
use terrace::teardown::janitor::{self, StaleKind};

const REGION: &str = "us-east-1";
const DAY: Duration = Duration::from_secs(86_400);

/// Terrace's two tags for `cluster`, on a resource being created.
fn terrace_tags_on(rt: ResourceType, cluster: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .tags(
            Tag::builder()
                .key("terrace.dev/managed-by")
                .value("terrace")
                .build(),
        )
        .tags(
            Tag::builder()
                .key("terrace.dev/cluster")
                .value(cluster)
                .build(),
        )
        .build()
}

async fn orphan(account: &Account, cluster: &str, with_volume: bool) {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let spec = |rt: ResourceType| terrace_tags_on(rt, cluster);
    ec2.create_vpc()
        .cidr_block("10.50.0.0/16")
        .tag_specifications(spec(ResourceType::Vpc))
        .send()
        .await
        .unwrap();
    if with_volume {
        ec2.create_volume()
            .availability_zone(format!("{REGION}a"))
            .size(1)
            .tag_specifications(spec(ResourceType::Volume))
            .send()
            .await
            .unwrap();
    }
}

/// The latest creation time among what exists so far (the cluster and the
/// volumes), as the janitor reads them.
async fn newest_creation(aws: &Aws, regions: &[String]) -> SystemTime {
    let listing = discovery::list(aws, regions).await;
    let mut times: Vec<SystemTime> = listing
        .clusters
        .iter()
        .filter_map(|c| c.created_at.as_deref())
        .map(|t| {
            aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime)
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let volumes = aws.ec2().describe_volumes().send().await.unwrap();
    times.extend(
        volumes
            .volumes()
            .iter()
            .map(|v| SystemTime::try_from(*v.create_time().unwrap()).unwrap()),
    );
    times.into_iter().max().unwrap()
}

#[tokio::test]
async fn reports_what_is_older_than_the_limit_and_nothing_younger() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    eks_cluster(&account, REGION, "tc-old", &terrace_tags("tc-old")).await;
    orphan(&account, "tc-gone", true).await;
    orphan(&account, "tc-undated", false).await;
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let regions = vec![REGION.to_string()];
    let old_wave = newest_creation(&aws, &regions).await;
    // EKS and EC2 record creation to the second: keep the two waves apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    eks_cluster(&account, REGION, "tc-fresh", &terrace_tags("tc-fresh")).await;
    orphan(&account, "tc-gone-fresh", true).await;
    // The living cluster's own resources are never orphans.
    orphan(&account, "tc-fresh", true).await;
    // Not Terrace's: no ownership tags.
    eks_cluster(&account, REGION, "someone-else", &[]).await;

    // Everything of the first wave is over a day old, the second is not.
    let now = old_wave + DAY + Duration::from_secs(1);
    let report = janitor::find_at(&aws, &regions, DAY, now).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);

    let stale: Vec<(StaleKind, &str)> = report
        .stale
        .iter()
        .map(|s| (s.kind, s.cluster.as_str()))
        .collect();
    assert_eq!(
        stale,
        vec![
            (StaleKind::Cluster, "tc-old"),
            (StaleKind::Orphan, "tc-gone")
        ],
        "{report:#?}"
    );
    let gone = &report.stale[1];
    assert_eq!(gone.resources.len(), 2, "{:?}", gone.resources);
    assert!(gone.resources.iter().any(|a| a.contains(":vpc/")));
    let undated: Vec<&str> = report.undated.iter().map(|s| s.cluster.as_str()).collect();
    assert_eq!(undated, vec!["tc-undated"]);

    // A week's limit finds nothing.
    let lenient = janitor::find_at(&aws, &regions, 7 * DAY, now).await;
    assert!(lenient.stale.is_empty(), "{:?}", lenient.stale);
}

#[tokio::test]
async fn the_command_reports_and_exits_zero() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    eks_cluster(&account, REGION, "tc-fresh", &terrace_tags("tc-fresh")).await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .envs(account.env(REGION))
            .output()
            .unwrap()
    };
    let out = run(&[
        "janitor",
        "--older-than",
        "24h",
        "--region",
        REGION,
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["event"], "janitor");
    assert_eq!(line["report"]["older_than_seconds"], 86_400);
    assert_eq!(line["report"]["stale"], serde_json::json!([]));

    let out = run(&["janitor", "--older-than", "24h", "--region", REGION]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing older than 1d0h"));

    let out = run(&["janitor", "--older-than", "1.5h", "--region", REGION]);
    assert_eq!(out.status.code(), Some(2), "a bad age is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than"));
}

async fn tagged_volume(account: &Account, cluster: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let tags = terrace_tags_on(ResourceType::Volume, cluster);
    ec2.create_volume()
        .availability_zone(format!("{REGION}a"))
        .size(1)
        .tag_specifications(tags)
        .send()
        .await
        .unwrap()
        .volume_id
        .unwrap()
}

#[tokio::test]
async fn with_yes_it_removes_what_is_stale_through_the_down_path_and_leaves_the_rest() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let stale = tagged_volume(&account, "nightly-old").await;
    // moto stamps creation with its clock: the fresh orphan must be younger
    // than the limit by a clear margin.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let fresh = tagged_volume(&account, "nightly-new").await;
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args([
            "--output",
            "json",
            "janitor",
            "--older-than",
            "3s",
            "--region",
            REGION,
            "--yes",
        ])
        .current_dir(home.path())
        .envs(account.env(REGION))
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("\"command\":\"down\""),
        "the stale orphan went through down: {stdout}"
    );
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let left: Vec<String> = ec2
        .describe_volumes()
        .send()
        .await
        .unwrap()
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_string))
        .collect();
    assert!(
        !left.contains(&stale),
        "the stale orphan's volume is gone: {left:?}"
    );
    assert!(
        left.contains(&fresh),
        "the fresh orphan's volume stays: {left:?}"
    );
}
