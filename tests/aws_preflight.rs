//! Preflight against the moto emulator: every check passing on a clean
//! account, and every check failing for its own reason.

mod support;

use std::path::Path;

use support::{moto, seed};
use terrace::aws::Aws;
use terrace::aws::preflight::{self, PreflightReport};
use terrace::cluster::terraform_check;
use terrace::config::{self, ClusterSpec, Nat, Request};
use terrace::ops::{Context, Env};
use terrace::terraform::{BinaryError, Terraform};

fn spec(region: &str) -> ClusterSpec {
    config::load(
        &Request {
            config: None,
            region: region.to_string(),
            name: None,
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap()
}

/// The Terraform binary the way a command finds it.
fn found_terraform() -> Result<Terraform, BinaryError> {
    Context::new(None, Env::from_process()).unwrap().terraform()
}

fn check<'a>(report: &'a PreflightReport, name: &str) -> &'a preflight::Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#?}"))
}

const ALL: [&str; 9] = [
    "caller identity",
    "region",
    "availability zones",
    "cluster name",
    "IAM roles",
    "elastic IPs",
    "VPCs",
    "terraform",
    "EC2 Spot service-linked role",
];

#[tokio::test]
async fn a_clean_account_passes_every_check() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let spec = spec("us-east-1");
    let aws = Aws::from_config(account.sdk_config("us-east-1").await);
    let report = preflight::run(&spec, &aws, terraform_check(&found_terraform())).await;
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.account.as_deref(), Some(account.id.as_str()));
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ALL);
    assert!(
        check(&report, "caller identity")
            .detail
            .contains(&account.id)
    );
    assert!(report.refusal().is_none());
}

#[tokio::test]
async fn resources_terrace_already_owns_do_not_block_a_rerun() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let spec = spec("eu-west-1");
    let tags = seed::terrace_tags(&spec.name);
    seed::eks_cluster(&account, "eu-west-1", &spec.name, &tags).await;
    seed::iam_role(&account, &spec.names.cluster_role, &tags).await;
    let aws = Aws::from_config(account.sdk_config("eu-west-1").await);
    let report = preflight::run(&spec, &aws, terraform_check(&found_terraform())).await;
    assert!(report.passed, "{report:#?}");
    assert!(
        check(&report, "cluster name")
            .detail
            .contains("is Terrace's")
    );
    assert!(
        check(&report, "IAM roles")
            .detail
            .contains("1 already Terrace's")
    );
    assert_eq!(
        check(&report, "Kubernetes version").detail,
        "1.34, unchanged"
    );
}

#[tokio::test]
async fn every_check_fails_for_its_own_reason() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    // ap-east-1 is an opt-in region moto reports as not enabled; it has 3 AZs.
    let region = "ap-east-1";
    let mut spec = spec(region);
    spec.network.azs = 4;
    spec.network.nat = Nat::PerAz;

    seed::eks_cluster(&account, region, &spec.name, &[]).await;
    // Terrace's tags for another cluster are not Terrace's tags for this one.
    seed::iam_role(
        &account,
        &spec.names.karpenter_node_role,
        &seed::terrace_tags("someone-else"),
    )
    .await;
    seed::elastic_ips(&account, region, 3).await;
    seed::vpcs(&account, region, 4).await;

    let aws = Aws::from_config(account.sdk_config(region).await);
    let missing = Terraform::at(Path::new("/nonexistent/terraform"));
    let report = preflight::run(&spec, &aws, terraform_check(&missing)).await;

    assert!(!report.passed);
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    // Every check but the caller identity and the Spot role (which the
    // account has).
    assert_eq!(failed, &ALL[1..8], "{report:#?}");
    for c in report.checks.iter().filter(|c| !c.passed) {
        assert!(c.remedy.as_deref().is_some_and(|r| !r.is_empty()), "{c:?}");
    }
    assert!(check(&report, "region").detail.contains("not enabled"));
    assert!(
        check(&report, "availability zones")
            .detail
            .starts_with("3 eligible")
    );
    assert!(
        check(&report, "cluster name")
            .detail
            .contains("Terrace does not own")
    );
    let roles = check(&report, "IAM roles");
    assert!(
        roles.detail.contains(&spec.names.karpenter_node_role),
        "{roles:?}"
    );
    assert!(
        !roles.detail.contains(&spec.names.cluster_role),
        "{roles:?}"
    );
    let eips = check(&report, "elastic IPs");
    assert!(
        eips.detail.contains("3 of 5 in use, 4 more needed"),
        "{eips:?}"
    );
    let vpcs = check(&report, "VPCs");
    assert!(
        vpcs.detail.starts_with("5 of 5 in use, 1 needed"),
        "{vpcs:?}"
    );
    assert!(
        check(&report, "terraform")
            .remedy
            .as_deref()
            .unwrap()
            .contains("TERRACE_TERRAFORM")
    );
    let refused = report.refusal().unwrap();
    assert_eq!(refused.count, 7);
}

#[tokio::test]
async fn unreachable_aws_fails_every_aws_check_and_still_runs_them_all() {
    terrace::tls::install_crypto_provider();
    let mut account = moto::account().await;
    account.endpoint = "http://127.0.0.1:1".into();
    let config = account.sdk_config("us-east-1").await;
    // No retries: the point is the failure, not the backoff.
    let config = config
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let report = preflight::run(
        &spec("us-east-1"),
        &Aws::from_config(config),
        terraform_check(&found_terraform()),
    )
    .await;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    let aws_checks: Vec<&str> = ALL.iter().copied().filter(|c| *c != "terraform").collect();
    assert_eq!(failed, aws_checks, "{report:#?}");
    assert_eq!(report.account, None);
    let identity = check(&report, "caller identity");
    assert!(identity.remedy.as_deref().unwrap().contains("AWS_PROFILE"));
}

/// The configured ExternalDNS zones must be public hosted zones of the
/// account: a missing zone and a private-only zone each fail, named.
#[tokio::test]
async fn dns_zones_must_exist_and_be_public() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config("us-east-1").await);
    support::golden::public_zone(&account, "example.com").await;
    // moto keeps a private zone without a VPC (real Route53 needs one);
    // only its privacy matters here.
    aws.route53()
        .create_hosted_zone()
        .name("internal.example")
        .caller_reference("private-zone")
        .hosted_zone_config(
            aws_sdk_route53::types::HostedZoneConfig::builder()
                // moto 5.1 fails (500) on a zone config without a comment.
                .comment("private")
                .private_zone(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let with_zones = |zones: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("terrace.yaml");
        std::fs::write(
            &file,
            format!("defaults:\n  addons:\n    external-dns: {{ zones: {zones} }}\n"),
        )
        .unwrap();
        config::load(
            &Request {
                config: Some(file),
                region: "us-east-1".into(),
                name: None,
            },
            terrace::addons::Catalog::embedded().unwrap().schema(),
        )
        .unwrap()
    };
    let terraform = || terraform_check(&found_terraform());

    let bad = with_zones("[example.com, internal.example, missing.example]");
    let report = terrace::cluster::preflight_report(&bad, &aws, terraform()).await;
    assert!(!report.passed);
    let dns = check(&report, "DNS zones");
    assert!(!dns.passed);
    assert_eq!(
        dns.detail,
        "no Route53 hosted zone named missing.example; only a private hosted zone named internal.example"
    );
    assert!(report.refusal().unwrap().failed.contains("DNS zones"));

    let good = with_zones("[example.com]");
    let report = terrace::cluster::preflight_report(&good, &aws, terraform()).await;
    assert!(check(&report, "DNS zones").passed, "{report:#?}");

    // No zones configured: nothing to check.
    let report = terrace::cluster::preflight_report(&spec("us-east-1"), &aws, terraform()).await;
    assert!(report.checks.iter().all(|c| c.name != "DNS zones"));
}

#[tokio::test]
async fn a_missing_spot_role_refuses_only_with_karpenter() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let config = account.sdk_config("us-east-1").await;
    aws_sdk_iam::Client::new(&config)
        .delete_role()
        .role_name(preflight::SPOT_ROLE)
        .send()
        .await
        .unwrap();
    let aws = Aws::from_config(config);
    let report = preflight::run(
        &spec("us-east-1"),
        &aws,
        terraform_check(&found_terraform()),
    )
    .await;
    let spot = check(&report, "EC2 Spot service-linked role");
    assert!(!spot.passed, "{spot:?}");
    assert!(spot.detail.contains("AWSServiceRoleForEC2Spot"), "{spot:?}");
    assert!(
        spot.remedy
            .as_deref()
            .unwrap()
            .contains("--aws-service-name spot.amazonaws.com"),
        "{spot:?}"
    );
    assert!(report.refusal().unwrap().failed.contains("EC2 Spot"));

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("terrace.yaml"),
        "defaults:\n  addons: { karpenter: { enabled: false } }\n",
    )
    .unwrap();
    let without = terrace::cluster::spec(&Request {
        config: Some(tmp.path().join("terrace.yaml")),
        region: "us-east-1".into(),
        name: None,
    })
    .unwrap();
    let report = preflight::run(&without, &aws, terraform_check(&found_terraform())).await;
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.name != "EC2 Spot service-linked role"),
        "{report:#?}"
    );
}
