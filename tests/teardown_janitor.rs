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
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing expired or older than 1d0h"));

    let out = run(&["janitor", "--older-than", "1.5h", "--region", REGION]);
    assert_eq!(out.status.code(), Some(2), "a bad age is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than"));
}

/// `janitor --yes` of what is older than 3 s in `regions`, as JSON.
fn janitor_yes(account: &Account, regions: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["--output", "json", "janitor", "--older-than", "3s", "--yes"];
    for region in regions {
        args.extend(["--region", region]);
    }
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(&args)
        .current_dir(home.path())
        .envs(account.env(REGION))
        .env("HOME", home.path())
        .output()
        .unwrap()
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
    let output = janitor_yes(&account, &[REGION]);
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

/// Makes `region` unreadable for `account` (as a service control policy
/// denying it would), or readable again.
async fn deny_region(account: &Account, region: &str, deny: bool) {
    let answer = reqwest::Client::new()
        .post(format!("{}/_shim/deny-region", account.endpoint))
        .body(
            serde_json::json!({
                "access_key": account.access_key_id,
                "region": region,
                "deny": deny,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
}

async fn clusters_left(account: &Account, region: &str) -> Vec<String> {
    let eks = aws_sdk_eks::Client::new(&account.sdk_config(region).await);
    let mut names = eks
        .list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .to_vec();
    names.sort();
    names
}

fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

#[tokio::test]
async fn with_yes_it_spares_kept_and_unexpired_clusters_removes_expired_ones_and_cleans_past_an_unreadable_region()
 {
    terrace::tls::install_crypto_provider();
    let account = moto::account_with_eks_shim().await;
    const OTHER: &str = "eu-west-1";
    let with = |name: &str, extra: &[(&'static str, String)]| {
        let mut tags = terrace_tags(name);
        tags.extend_from_slice(extra);
        tags
    };
    let tomorrow = rfc3339(SystemTime::now() + DAY);
    let yesterday = rfc3339(SystemTime::now() - DAY);
    // Old enough for --older-than 3s: only their tags can spare them.
    let kept = with("tc-kept", &[("terrace.dev/keep", "true".into())]);
    eks_cluster(&account, REGION, "tc-kept", &kept).await;
    let ttl = with("tc-ttl", &[("terrace.dev/expires-at", tomorrow)]);
    eks_cluster(&account, REGION, "tc-ttl", &ttl).await;
    eks_cluster(&account, REGION, "tc-old", &terrace_tags("tc-old")).await;
    eks_cluster(&account, OTHER, "tc-far", &terrace_tags("tc-far")).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Younger than the limit, but past its expiry.
    let expired = with("tc-expired", &[("terrace.dev/expires-at", yesterday)]);
    eks_cluster(&account, REGION, "tc-expired", &expired).await;
    deny_region(&account, OTHER, true).await;

    let output = janitor_yes(&account, &[REGION, OTHER]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let error = support::machine::events(&stdout)
        .into_iter()
        .find(|e| e["event"] == "error")
        .unwrap_or_else(|| panic!("an error at the end: {stdout}\n{stderr}"));
    assert!(
        error.to_string().contains(OTHER)
            && error.to_string().contains("nothing there was cleaned"),
        "the error at the end names the unreadable region: {error}"
    );
    let report: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["event"] == "janitor")
        .expect("the janitor's report")["report"]
        .clone();
    let why: Vec<(String, String)> = report["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["cluster"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        why.contains(&("tc-expired".into(), "expired".into())),
        "{why:?}"
    );
    assert!(why.contains(&("tc-old".into(), "older".into())), "{why:?}");
    assert_eq!(why.len(), 2, "{why:?}");
    assert_eq!(report["kept"][0]["cluster"], "tc-kept");

    assert_eq!(
        clusters_left(&account, REGION).await,
        vec!["tc-kept".to_string(), "tc-ttl".to_string()],
        "kept and unexpired clusters survive, the expired and the old one are gone"
    );
    deny_region(&account, OTHER, false).await;
    assert_eq!(
        clusters_left(&account, OTHER).await,
        vec!["tc-far".to_string()],
        "nothing in the unreadable region was touched"
    );
}
