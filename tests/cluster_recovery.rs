//! Recovering from a killed run: a state lock whose holder is gone is named
//! with its holder and the command that releases it, and `terrace cluster
//! unlock` releases it with the cluster's work directory, data directory and
//! backend; a holder alive on this host is refused. The real binary against
//! moto, with real Terraform where a real lock must be left behind.
//!
//! The clusters here have names of their own: the liveness check looks for
//! Terraform processes working on a cluster of that name on this host, and
//! other tests (or other checkouts) build `terrace-us-east-1`.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::account::tagged_for_cluster;
use support::machine::{Machine, REGION, error, events, parse, running, show, up_to_outputs};
use support::moto::Account;
use support::signals::{Kill, children, kill_after, signal, signal_group, wait_gone};

fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    support::account::s3(config)
}

fn bucket(account: &Account) -> String {
    support::account::bucket(account, REGION)
}

fn lock_key(cluster: &str) -> String {
    support::account::lock_key(cluster)
}

async fn lock_object(account: &Account, cluster: &str) -> Option<Value> {
    support::account::object(account, REGION, &lock_key(cluster)).await
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_refuses_while_a_run_on_this_host_holds_the_cluster() {
    terrace::tls::install_crypto_provider();
    let name = "busy-us-east-1";
    let machine = Machine::new(support::moto::account().await).with_fake_terraform();
    let started = machine.dir.path().join("started");
    let mut up = machine
        .command(&["cluster", "up", "--region", REGION, "--name", name, "--yes"])
        .env("FAKE_TF_APPLY_SECONDS", "60")
        .env("FAKE_TF_STARTED", started.to_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the apply never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let terraform: i32 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let unlock = machine.run(&[
        "--output", "json", "cluster", "unlock", "--region", REGION, "--name", name, "--yes",
    ]);
    assert_eq!(unlock.status.code(), Some(1), "{}", show(&unlock));
    let problem = error(&events(&String::from_utf8_lossy(&unlock.stdout)));
    assert!(
        problem.contains(&format!("cluster {name} is busy")),
        "{problem}"
    );
    assert!(problem.contains("terrace cluster up"), "{problem}");
    assert!(running(terraform), "the running apply is left alone");

    signal(up.id(), libc::SIGTERM);
    assert_eq!(up.wait().unwrap().code(), Some(143));
}

#[tokio::test]
async fn unlock_releases_a_dead_holders_lock_in_the_clusters_work_directory() {
    terrace::tls::install_crypto_provider();
    let name = "stale-us-east-1";
    let account = support::moto::account().await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let machine = Machine::new(account.clone())
        .with_fake_terraform()
        .with("FAKE_TF_LOG", log.path().to_str().unwrap());
    // A plain bucket: the TLS-only policy `state bootstrap` sets would
    // refuse this test's plain-HTTP write of the lock.
    let s3 = s3(&account.sdk_config(REGION).await);
    s3.create_bucket()
        .bucket(bucket(&account))
        .send()
        .await
        .unwrap();
    let lock = serde_json::json!({
        "ID": "6f1c2e3d-0000-4c6d-8e7f-9a0b1c2d3e4f",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": format!("ci@{}", hostname()),
        "Version": "1.11.4",
        "Created": "2026-12-03T07:00:00.123456789Z",
        "Path": format!("{}/clusters/{name}/terraform.tfstate", bucket(&account)),
    });
    s3.put_object()
        .bucket(bucket(&account))
        .key(lock_key(name))
        .body(serde_json::to_vec(&lock).unwrap().into())
        .send()
        .await
        .unwrap();

    let unlock = machine.run(&[
        "--output", "json", "cluster", "unlock", "--region", REGION, "--name", name, "--yes",
    ]);
    assert_eq!(unlock.status.code(), Some(0), "{}", show(&unlock));
    let (_, summary) = parse(&unlock);
    let s = &summary["summary"];
    assert_eq!(s["released"], true, "{s}");
    assert_eq!(s["lock"]["lock"]["ID"], lock["ID"]);
    assert_eq!(s["lock"]["holder"]["holder"], "dead", "{s}");

    let calls: Vec<Value> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let work = machine.dir.path().join(".terrace").join(name);
    let last = calls.last().unwrap();
    assert_eq!(
        last["argv"],
        serde_json::json!(["force-unlock", "-force", lock["ID"]])
    );
    let init = &calls[calls.len() - 2];
    assert_eq!(init["argv"][0], "init");
    assert!(
        init["argv"]
            .as_array()
            .unwrap()
            .contains(&Value::from(format!(
                "-backend-config=key=clusters/{name}/terraform.tfstate"
            ))),
        "{init}"
    );
    for call in [init, last] {
        assert_eq!(call["cwd"], work.join("terraform").to_str().unwrap());
        assert_eq!(
            call["env"]["TF_DATA_DIR"],
            work.join("tfdata").to_str().unwrap()
        );
    }

    // Without --yes and without a terminal, nothing is released.
    let ask = machine.run(&["cluster", "unlock", "--region", REGION, "--name", name]);
    assert_eq!(ask.status.code(), Some(2), "{}", show(&ask));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_killed_process_group_is_named_and_released_by_unlock() {
    terrace::tls::install_crypto_provider();
    let name = "killed-us-east-1";
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let up = up_to_outputs(name);

    // The first up, killed with everything it started (terrace's process
    // group and Terraform's) once Terraform has begun to create resources.
    let mut first = machine
        .command(&up)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(first.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "up ended early");
        let event: Value = serde_json::from_str(&line).unwrap_or_default();
        if event["command"] == "apply" && event["status"] == "complete" {
            break;
        }
        assert!(Instant::now() < deadline, "apply never started");
    }
    // Terraform's lock is recorded in the journal while it runs.
    let journal_path = machine
        .dir
        .path()
        .join(".terrace")
        .join(name)
        .join("journal.json");
    let recorded = |lock: &Value| {
        let journal: Value =
            serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
        journal["lock"]["id"] == lock["ID"]
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lock) = lock_object(&machine.account, name).await
            && recorded(&lock)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let terraform = children(first.id());
    assert_eq!(terraform.len(), 1, "one Terraform: {terraform:?}");
    signal_group(terraform[0] as u32, libc::SIGKILL);
    signal_group(first.id(), libc::SIGKILL);
    first.wait().unwrap();
    // A SIGKILL is delivered asynchronously; on a loaded machine the
    // process may still be scheduled for a moment.
    assert!(wait_gone(terraform[0], Duration::from_secs(30)));
    let lock = lock_object(&machine.account, name)
        .await
        .expect("the killed apply left its lock");

    // The next up names the holder, says it is gone, and prints the command.
    let blocked = machine.run(&up);
    assert_eq!(blocked.status.code(), Some(1), "{}", show(&blocked));
    let problem = error(&events(&String::from_utf8_lossy(&blocked.stdout)));
    let id = lock["ID"].as_str().unwrap();
    assert!(problem.contains(&format!("lock ID {id}")), "{problem}");
    assert!(problem.contains(lock["Who"].as_str().unwrap()), "{problem}");
    assert!(problem.contains("no longer running"), "{problem}");
    assert!(problem.contains("taken by terrace run"), "{problem}");
    let command = format!("terrace cluster unlock --region {REGION} --name {name} --yes");
    assert!(problem.contains(&command), "{problem}");

    // That command releases it.
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let unlock = machine.run(&[&["--output", "json"][..], &args].concat());
    assert_eq!(unlock.status.code(), Some(0), "{}", show(&unlock));
    assert!(lock_object(&machine.account, name).await.is_none());
    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert!(journal.get("lock").is_none(), "{journal}");
}

/// VPCs tagged for `cluster` that still exist.
async fn vpcs(account: &Account, cluster: &str) -> usize {
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    ec2.describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:terrace.dev/cluster")
                .values(cluster)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_first_apply_created_is_adopted_or_removed_and_up_converges() {
    terrace::tls::install_crypto_provider();
    let name = "orphans-us-east-1";
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let up = up_to_outputs(name);

    // Killed with everything it started once Terraform has created a good
    // part of the cluster, long before it writes any state.
    let killed = kill_after(machine.command(&up), 25, Kill::Group);
    assert!(killed.reached, "the apply ended early:\n{}", killed.stdout);
    assert_eq!(
        support::account::state_resources(&machine.account, REGION, name).await,
        0,
        "the killed apply recorded nothing"
    );
    let created = tagged_for_cluster(&machine.account, REGION, name).await;
    assert!(created.len() > 10, "{created:?}");

    let unlock = machine.run(&[
        "--output", "json", "cluster", "unlock", "--region", REGION, "--name", name, "--yes",
    ]);
    assert_eq!(unlock.status.code(), Some(0), "{}", show(&unlock));

    // The next up converges: every orphan adopted or removed, each said.
    let second = machine.run(&up);
    assert_eq!(second.status.code(), Some(0), "{}", show(&second));
    let (events, summary) = parse(&second);
    let orphans = &summary["summary"]["orphans"];
    let adopted = orphans["adopted"].as_array().unwrap();
    let removed = orphans["removed"].as_array().unwrap();
    let addresses: Vec<&str> = adopted
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert!(
        addresses
            .iter()
            .any(|a| *a == "module.cluster.aws_iam_role.cluster"),
        "{orphans}"
    );
    assert!(
        removed.iter().any(|r| r["item"]["kind"] == "vpc"),
        "the old VPC cannot be adopted: {orphans}"
    );
    let said = events.iter().filter(|e| e["orphan"].is_string()).count();
    assert!(
        said >= adopted.len() + removed.len(),
        "one event per orphan: {said} for {orphans}"
    );
    // Nothing built twice: one VPC, and the account holds what the state does.
    assert_eq!(vpcs(&machine.account, name).await, 1);

    // A re-plan changes nothing.
    let third = machine.run(&up);
    assert_eq!(third.status.code(), Some(0), "{}", show(&third));
    let (_, summary) = parse(&third);
    assert_eq!(summary["summary"]["no_changes"], true, "{}", show(&third));

    let down = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--name", name, "--yes",
    ]);
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    let left = tagged_for_cluster(&machine.account, REGION, name).await;
    assert!(left.is_empty(), "{left:?}");
}
