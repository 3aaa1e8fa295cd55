//! `terrace cluster rebuild` end to end, as a nightly CI job runs it: the
//! real binary, real Terraform and provider against moto behind the EKS
//! shim, to the addon boundary (`--stop-after outputs`: the emulated
//! cluster has no API server). One cluster is built once and then kept,
//! rebuilt with an interruption in its `up` half, and resumed.

mod support;

use std::collections::BTreeSet;
use std::io::BufReader;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::machine::{CLUSTER, Machine, REGION, applied, parse, show};
use support::moto::Account;

/// The build's identity: ids AWS makes up anew for every build (the
/// cluster's own ARN and the IAM names are derived from its name).
async fn build_ids(account: &Account) -> BTreeSet<String> {
    use aws_sdk_ec2::types::Filter;
    let config = account.sdk_config(REGION).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let ours = || {
        Filter::builder()
            .name("tag:terrace.dev/cluster")
            .values(CLUSTER)
            .build()
    };
    let mut ids = BTreeSet::new();
    let vpcs = ec2.describe_vpcs().filters(ours()).send().await.unwrap();
    ids.extend(
        vpcs.vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(String::from)),
    );
    let subnets = ec2.describe_subnets().filters(ours()).send().await.unwrap();
    ids.extend(
        subnets
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(String::from)),
    );
    let kms = aws_sdk_kms::Client::new(&config);
    for key in kms.list_keys().send().await.unwrap().keys() {
        let id = key.key_id().unwrap();
        let described = kms.describe_key().key_id(id).send().await.unwrap();
        let enabled = described
            .key_metadata()
            .is_some_and(|m| m.key_state() == Some(&aws_sdk_kms::types::KeyState::Enabled));
        if enabled {
            ids.insert(id.to_string());
        }
    }
    let eks = aws_sdk_eks::Client::new(&config);
    for name in eks.list_clusters().send().await.unwrap().clusters() {
        let cluster = eks.describe_cluster().name(name).send().await.unwrap();
        let created = cluster.cluster().and_then(|c| c.created_at()).unwrap();
        ids.insert(format!("{name}@{}", created.secs()));
    }
    ids
}

async fn expires_at(account: &Account) -> Option<String> {
    let eks = aws_sdk_eks::Client::new(&account.sdk_config(REGION).await);
    let cluster = eks.describe_cluster().name(CLUSTER).send().await.unwrap();
    cluster
        .cluster()
        .and_then(|c| c.tags())
        .and_then(|t| t.get("terrace.dev/expires-at"))
        .cloned()
}

fn summary_of<'a>(summary: &'a Value, half: &str) -> &'a Value {
    &summary["summary"][half]
}

fn phase_names(half: &Value) -> Vec<String> {
    half["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no phases in {half}"))
        .iter()
        .map(|p| {
            assert!(p["seconds"].as_f64().is_some(), "{p}");
            p["phase"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_keeps_a_fresh_cluster_then_replaces_it_and_resumes_after_an_interrupt() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let build = machine.run(&[
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
        "--ttl",
        "24h",
    ]);
    assert_eq!(build.status.code(), Some(0), "{}", show(&build));
    let expires = expires_at(&machine.account).await;
    assert!(expires.is_some(), "--ttl tags the cluster with its expiry");
    let old = build_ids(&machine.account).await;
    assert_eq!(
        old.iter().filter(|id| id.starts_with(CLUSTER)).count(),
        1,
        "{old:?}"
    );

    let rebuild = [
        "--output",
        "json",
        "cluster",
        "rebuild",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ];

    // Young, healthy and unchanged (a re-plan with a later clock keeps the
    // expiry): kept, nothing torn down or applied.
    let kept = machine.run(&[&rebuild[..], &["--if-older-than", "24h"]].concat());
    assert_eq!(kept.status.code(), Some(0), "{}", show(&kept));
    let (events, summary) = parse(&kept);
    assert_eq!(summary["command"], "rebuild");
    let decision = &summary["summary"]["decision"];
    assert_eq!(decision["kept"], true, "{summary}");
    assert!(
        decision["reason"].as_str().unwrap().contains("kept"),
        "{decision}"
    );
    assert!(summary_of(&summary, "down").is_null());
    assert!(!applied(&events));
    assert_eq!(
        build_ids(&machine.account).await,
        old,
        "the cluster is kept"
    );
    assert_eq!(expires_at(&machine.account).await, expires);
    assert!(
        machine.journal().get("rebuild").is_none(),
        "a kept cluster leaves no rebuild in progress"
    );

    // A rebuild interrupted in its `up` half, once the old cluster is gone.
    let mut child = machine
        .command(&rebuild)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    support::machine::read_until_apply(&mut stdout, Duration::from_secs(600));
    assert_eq!(
        machine.journal()["rebuild"]["down_done"],
        true,
        "the old cluster is gone before the new one is applied"
    );
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let interrupted = support::machine::events(&rest)
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap_or_else(|| panic!("a summary even when interrupted: {rest}"));
    assert_eq!(interrupted["command"], "rebuild");
    assert_eq!(interrupted["ok"], false);
    let down = phase_names(summary_of(&interrupted, "down"));
    for phase in ["destroy", "sweep", "verify"] {
        assert!(down.contains(&phase.to_string()), "{down:?}");
    }
    let down_verify = &summary_of(&interrupted, "down")["leaks"]["leaks"];
    assert_eq!(
        down_verify.as_array().map(Vec::len),
        Some(0),
        "{interrupted}"
    );
    let up = phase_names(summary_of(&interrupted, "up"));
    assert!(up.contains(&"terraform".to_string()), "{up:?}");

    // Run again: it continues with the build and never tears down again.
    let resumed = machine.run(&rebuild);
    assert_eq!(resumed.status.code(), Some(0), "{}", show(&resumed));
    let (events, summary) = parse(&resumed);
    assert_eq!(summary["summary"]["resumed"], true, "{summary}");
    assert!(summary_of(&summary, "down").is_null(), "{summary}");
    assert!(applied(&events));
    assert_eq!(summary_of(&summary, "up")["stopped_after"], "outputs");
    assert!(machine.journal().get("rebuild").is_none());

    let new = build_ids(&machine.account).await;
    assert!(
        old.is_disjoint(&new),
        "nothing of the old build is left: {:?}",
        old.intersection(&new).collect::<Vec<_>>()
    );
    assert_eq!(
        new.iter().filter(|id| id.starts_with(CLUSTER)).count(),
        1,
        "exactly one cluster: {new:?}"
    );
    assert_eq!(
        new.iter().filter(|id| id.starts_with("vpc-")).count(),
        1,
        "exactly one VPC: {new:?}"
    );
}
