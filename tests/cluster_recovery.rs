//! Recovering from a killed run: a state lock whose holder is gone is named
//! with its holder and the command that releases it, and `terrace cluster
//! unlock` releases it with the cluster's work directory, data directory and
//! backend; a holder alive on this host is refused. The real binary against
//! moto and the fake terraform; a real lock left by a real killed apply, and
//! its orphans, are tests/cluster_chaos.rs's.
//!
//! The clusters here have names of their own: the liveness check looks for
//! Terraform processes working on a cluster of that name on this host, and
//! other tests (or other checkouts) build `terrace-us-east-1`.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::machine::{Machine, REGION, error, events, parse, running, show};
use support::moto::Account;
use support::signals::signal;

fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    support::account::s3(config)
}

fn bucket(account: &Account) -> String {
    support::account::bucket(account, REGION)
}

fn lock_key(cluster: &str) -> String {
    support::account::lock_key(cluster)
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
