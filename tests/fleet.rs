//! `terrace fleet` end to end: the real binary over every cluster of one
//! configuration. Flags, the matrix and render need no AWS; one member
//! failing is shown with the fake terraform; and one build with real
//! Terraform and provider against moto (behind the EKS shim) is shared by
//! the rest: a SIGTERM in the middle, a region that fails, a re-run that
//! resumes only what is not done, and `fleet down` leaving nothing.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::machine::{Machine, events, show};
use support::moto::Account;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// terrace in `dir` with no AWS settings at all: what it prints must not
/// depend on an account.
fn offline(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .expect("terrace runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn selection_flags_name_what_is_configured_and_the_matrix_feeds_github() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fixture("fleet.yaml");
    let with = |args: &[&str]| offline(dir.path(), &[&["--config", &fleet][..], args].concat());

    let matrix = with(&["fleet", "matrix", "--output", "github"]);
    assert_eq!(matrix.status.code(), Some(0), "{}", show(&matrix));
    assert_eq!(
        String::from_utf8_lossy(&matrix.stdout),
        "{\"include\":[{\"cluster\":\"acme-us-east-1\",\"region\":\"us-east-1\"},\
         {\"cluster\":\"acme-eu-west-1\",\"region\":\"eu-west-1\"},\
         {\"cluster\":\"acme-dr-sydney\",\"region\":\"ap-southeast-2\"}]}\n"
    );
    let narrowed = with(&[
        "--output",
        "json",
        "fleet",
        "matrix",
        "--regions",
        "eu-west-1,ap-southeast-2",
    ]);
    let narrowed: Value = serde_json::from_slice(&narrowed.stdout).unwrap();
    assert_eq!(narrowed["event"], "matrix");
    assert_eq!(narrowed["fleet"], "acme");
    assert_eq!(narrowed["include"].as_array().unwrap().len(), 2);

    // Every unknown name at once, each with the nearest configured one;
    // nothing runs.
    let unknown = with(&[
        "fleet",
        "up",
        "--yes",
        "--regions",
        "eu-west-2,us-east-1",
        "--clusters",
        "acme-us-east-2",
    ]);
    assert_eq!(unknown.status.code(), Some(2), "{}", show(&unknown));
    let text = stderr(&unknown);
    assert!(
        text.contains(
            "--regions: \"eu-west-2\" is not a region of the fleet (did you mean eu-west-1?)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "--clusters: \"acme-us-east-2\" is not a cluster of the fleet (did you mean acme-us-east-1?)"
        ),
        "{text}"
    );
    assert!(!dir.path().join(".terrace").exists(), "nothing ran");

    for (args, flag) in [
        (
            &["fleet", "down", "--parallel", "0", "--yes"][..],
            "--parallel",
        ),
        (&["fleet", "up"][..], "--yes"),
        (&["--output", "github", "fleet", "render"][..], "--output"),
    ] {
        let refused = with(args);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            show(&refused)
        );
        assert!(
            stderr(&refused).contains(flag),
            "{args:?}: {}",
            show(&refused)
        );
    }
    let no_file = offline(dir.path(), &["fleet", "matrix"]);
    assert_eq!(no_file.status.code(), Some(2), "{}", show(&no_file));
    assert!(stderr(&no_file).contains("--config"), "{}", show(&no_file));

    let render = with(&["fleet", "render"]);
    assert_eq!(render.status.code(), Some(0), "{}", show(&render));
    for name in ["acme-us-east-1", "acme-eu-west-1", "acme-dr-sydney"] {
        let main = dir
            .path()
            .join(".terrace")
            .join(name)
            .join("terraform/main.tf");
        assert!(main.is_file(), "{}", main.display());
    }
}

const MEMBERS: [(&str, &str); 3] = [
    ("fleet-us-east-1", "us-east-1"),
    ("fleet-us-west-2", "us-west-2"),
    ("fleet-eu-west-1", "eu-west-1"),
];

/// Every line is a JSON object; each event names a member by cluster and
/// region; the stream ends with the one `fleet` object.
fn fleet_stream(output: &Output) -> (Vec<Value>, Value) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let all = events(&stdout);
    assert_eq!(stdout.lines().count(), all.len(), "only JSON:\n{stdout}");
    let (last, before) = all.split_last().expect("some output");
    assert_eq!(last["event"], "fleet", "{}", show(output));
    let members: BTreeSet<(&str, &str)> = MEMBERS.into_iter().collect();
    for event in before {
        let member = (
            event["cluster"].as_str().unwrap_or_default(),
            event["region"].as_str().unwrap_or_default(),
        );
        assert!(members.contains(&member), "{event}");
        assert_ne!(event["event"], "fleet", "one fleet object: {event}");
    }
    (before.to_vec(), last.clone())
}

/// `fleet up` of the clusters in `config` to the addon boundary, in JSON.
fn up_args(config: &str) -> [&str; 9] {
    [
        "--output",
        "json",
        "--config",
        config,
        "fleet",
        "up",
        "--yes",
        "--stop-after",
        "outputs",
    ]
}

fn results(fleet: &Value) -> Vec<(String, String, String)> {
    fleet["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["cluster"].as_str().unwrap().to_string(),
                m["result"].as_str().unwrap().to_string(),
                m["phase"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_failing_member_does_not_stop_the_others_and_every_event_names_its_member() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await)
        .with_fake_terraform()
        .with("FAKE_TF_FAIL", "apply")
        .with("FAKE_TF_FAIL_IN", "fleet-us-west-2")
        .with("FAKE_TF_SLEEP", "0.2");
    let config = fixture("fleet-emulator.yaml");
    let run = machine.run(&up_args(&config));
    assert_eq!(run.status.code(), Some(1), "{}", show(&run));
    let (events, fleet) = fleet_stream(&run);
    assert_eq!(
        results(&fleet),
        [
            ("fleet-us-east-1", "done", "outputs"),
            ("fleet-us-west-2", "failed", "terraform"),
            ("fleet-eu-west-1", "done", "outputs"),
        ]
        .map(|(c, r, p)| (c.to_string(), r.to_string(), p.to_string()))
    );
    assert_eq!(fleet["ok"], false);
    assert_eq!(fleet["parallel"], 3);
    let summaries: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "summary")
        .map(|e| e["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(summaries.len(), 3, "one summary per member: {summaries:?}");
    let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["cluster"], "fleet-us-west-2");
    assert!(
        errors[0]["problems"][0]
            .as_str()
            .unwrap()
            .contains("terraform apply failed"),
        "{}",
        errors[0]
    );
    assert!(
        stderr(&run).is_empty() || !stderr(&run).contains("error:"),
        "JSON mode prints its errors as JSON: {}",
        show(&run)
    );

    // Each member keeps its own log, journal and lock in its own directory.
    for (cluster, _) in MEMBERS {
        let dir = machine.dir.path().join(".terrace").join(cluster);
        let log = std::fs::read_to_string(dir.join("terrace.log")).unwrap();
        assert!(log.contains("terraform"), "{cluster}: {log}");
        assert!(dir.join("journal.json").is_file(), "{cluster}");
    }

    // plan: each member's dry run, through the same path, changing nothing.
    let plan = machine.run(&["--output", "json", "--config", &config, "fleet", "plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let (_, fleet) = fleet_stream(&plan);
    assert_eq!(fleet["command"], "plan");
    for member in fleet["clusters"].as_array().unwrap() {
        assert_eq!(member["result"], "done", "{member}");
        assert_eq!(member["changes"]["add"], 3, "the fake's plan: {member}");
    }

    // In text, exit 1 names the failed member and its phase.
    let text = machine.run(&[
        "--config",
        &config,
        "fleet",
        "up",
        "--yes",
        "--stop-after",
        "outputs",
    ]);
    assert_eq!(text.status.code(), Some(1), "{}", show(&text));
    assert!(
        stderr(&text).contains(
            "1 of 3 clusters did not finish `fleet up`: fleet-us-west-2 (us-west-2) in terraform"
        ),
        "{}",
        show(&text)
    );
}

/// A member's half of a rebuild summary: the names of its phases.
fn halves(summary: &Value) -> (Vec<String>, Vec<String>) {
    let names = |half: &str| -> Vec<String> {
        summary["summary"][half]["phases"]
            .as_array()
            .map(|phases| {
                phases
                    .iter()
                    .map(|p| p["phase"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("down"), names("up"))
}

#[tokio::test]
async fn fleet_rebuild_runs_each_member_through_both_halves_names_the_failed_one_and_resumes_it() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await)
        .with_fake_terraform()
        .with("FAKE_TF_FAIL_IN", "fleet-us-west-2");
    let config = fixture("fleet-emulator.yaml");
    let rebuild = [
        "--output",
        "json",
        "--config",
        &config,
        "fleet",
        "rebuild",
        "--yes",
        "--stop-after",
        "outputs",
    ];
    let run = machine
        .command(&rebuild)
        .env("FAKE_TF_FAIL", "apply")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", show(&run));
    let (events, fleet) = fleet_stream(&run);
    assert_eq!(fleet["command"], "rebuild");
    assert_eq!(
        results(&fleet),
        [
            ("fleet-us-east-1", "done", "up outputs"),
            ("fleet-us-west-2", "failed", "up terraform"),
            ("fleet-eu-west-1", "done", "up outputs"),
        ]
        .map(|(c, r, p)| (c.to_string(), r.to_string(), p.to_string()))
    );
    // One rebuild summary per member, each with both halves: the old
    // cluster removed and proved gone, then the new one built.
    let summaries: Vec<&Value> = events.iter().filter(|e| e["event"] == "summary").collect();
    assert_eq!(summaries.len(), 3, "{summaries:#?}");
    for summary in &summaries {
        assert_eq!(summary["command"], "rebuild", "{summary}");
        let (down, up) = halves(summary);
        assert!(down.contains(&"verify".to_string()), "{summary}");
        assert!(up.contains(&"terraform".to_string()), "{summary}");
        assert_eq!(
            summary["ok"],
            summary["cluster"] != "fleet-us-west-2",
            "{summary}"
        );
    }
    let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["cluster"], "fleet-us-west-2");

    // In text, exit 1 names the member and the half and phase it failed in
    // (a re-run of the failed one alone: the others' state buckets now
    // exist, and moto answers the down gate's HeadObject of a missing state
    // with 403 under the bucket's TLS-only policy, as plain HTTP is).
    let text = machine
        .command(&[&rebuild[2..], &["--clusters", "fleet-us-west-2"]].concat())
        .env("FAKE_TF_FAIL", "apply")
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1), "{}", show(&text));
    assert!(
        stderr(&text).contains(
            "1 of 1 clusters did not finish `fleet rebuild`: fleet-us-west-2 (us-west-2) in up terraform"
        ),
        "{}",
        show(&text)
    );

    // Again without the failure: the failed member continues its rebuild
    // with the build (its old cluster is gone), never tearing down again.
    let again = machine.run(&[&rebuild[..], &["--clusters", "fleet-us-west-2"]].concat());
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    let (events, fleet) = fleet_stream(&again);
    assert_eq!(
        results(&fleet),
        [(
            "fleet-us-west-2".to_string(),
            "done".to_string(),
            "up outputs".to_string()
        )]
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["summary"]["resumed"], true, "{summary}");
    let (down, up) = halves(summary);
    assert!(down.is_empty() && !up.is_empty(), "{summary}");

    // A young, healthy cluster whose re-plan changes nothing is kept.
    support::seed::eks_cluster(
        &machine.account,
        "us-east-1",
        "fleet-us-east-1",
        &support::seed::terrace_tags("fleet-us-east-1"),
    )
    .await;
    let keep = machine
        .command(
            &[
                &rebuild[..],
                &["--clusters", "fleet-us-east-1", "--if-older-than", "24h"],
            ]
            .concat(),
        )
        .env("FAKE_TF_NO_CHANGES", "1")
        .output()
        .unwrap();
    assert_eq!(keep.status.code(), Some(0), "{}", show(&keep));
    let (events, fleet) = fleet_stream(&keep);
    assert_eq!(
        results(&fleet),
        [(
            "fleet-us-east-1".to_string(),
            "done".to_string(),
            "kept".to_string()
        )]
    );
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!(summary["summary"]["decision"]["kept"], true, "{summary}");
    assert!(summary["summary"]["down"].is_null(), "{summary}");
}

/// `fleet status` reads keep and expiry from each live cluster's tags,
/// the janitor's source, and the configured TTL for one not built.
#[tokio::test]
async fn fleet_status_shows_keep_and_ttl_per_member() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await).with_fake_terraform();
    let config = machine.dir.path().join("terrace.yaml");
    std::fs::write(
        &config,
        "fleet: fleet\n\
         defaults:\n  ttl: 24h\n  network: { azs: 2, nat: single }\n\
         clusters:\n\
         \x20 - region: us-east-1\n    keep: true\n    network: { cidr: 10.0.0.0/16 }\n\
         \x20 - region: us-west-2\n    network: { cidr: 10.1.0.0/16 }\n\
         \x20 - region: eu-west-1\n    network: { cidr: 10.2.0.0/16 }\n",
    )
    .unwrap();
    let tags = |cluster: &str, extra: (&'static str, String)| {
        let mut tags = support::seed::terrace_tags(cluster);
        tags.push(extra);
        tags
    };
    support::seed::eks_cluster(
        &machine.account,
        "us-east-1",
        "fleet-us-east-1",
        &tags("fleet-us-east-1", ("terrace.dev/keep", "true".into())),
    )
    .await;
    let in_five_hours = std::time::SystemTime::now() + Duration::from_secs(5 * 3600 + 600);
    let expires = aws_smithy_types::DateTime::from(in_five_hours)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    support::seed::eks_cluster(
        &machine.account,
        "us-west-2",
        "fleet-us-west-2",
        &tags(
            "fleet-us-west-2",
            ("terrace.dev/expires-at", expires.clone()),
        ),
    )
    .await;

    let config = config.to_str().unwrap();
    let status = machine.run(&["--output", "json", "--config", config, "fleet", "status"]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));
    let dashboard = events(&String::from_utf8_lossy(&status.stdout))
        .pop()
        .unwrap();
    assert_eq!(dashboard["event"], "fleet_status", "{}", show(&status));
    let rows = dashboard["clusters"].as_array().unwrap();
    let row = |cluster: &str| {
        rows.iter()
            .find(|r| r["cluster"] == cluster)
            .unwrap_or_else(|| panic!("{cluster}: {dashboard}"))
    };
    let kept = row("fleet-us-east-1");
    assert_eq!(
        (&kept["exists"], &kept["keep"], &kept["expires_at"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Null),
        "{kept}"
    );
    assert!(
        kept.get("ttl_seconds").is_none(),
        "keep: true drops the TTL: {kept}"
    );
    let expiring = row("fleet-us-west-2");
    assert_eq!(expiring["keep"], false, "{expiring}");
    assert_eq!(expiring["ttl_seconds"], 86_400, "{expiring}");
    assert_eq!(expiring["expires_at"], expires.as_str(), "{expiring}");
    let left = expiring["expires_in_seconds"].as_i64().unwrap();
    assert!((5 * 3600..=5 * 3600 + 600).contains(&left), "{expiring}");
    assert_eq!(
        expiring["drift"], true,
        "the fake's plan adds three: {expiring}"
    );
    let absent = row("fleet-eu-west-1");
    assert_eq!(absent["exists"], false, "{absent}");
    assert_eq!(absent["ttl_seconds"], 86_400, "{absent}");
    assert!(absent.get("expires_at").is_none(), "{absent}");

    let text = machine.run(&["--config", config, "fleet", "status"]);
    assert_eq!(text.status.code(), Some(0), "{}", show(&text));
    let table = String::from_utf8_lossy(&text.stdout);
    let line = |cluster: &str| {
        table
            .lines()
            .find(|l| l.starts_with(cluster))
            .unwrap_or_else(|| panic!("{cluster}:\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert!(table.lines().next().unwrap().contains(" TTL "), "{table}");
    assert_eq!(line("fleet-us-east-1")[5], "keep", "{table}");
    assert_eq!(line("fleet-us-west-2")[5..7], ["5h", "left"], "{table}");
    assert_eq!(
        line("fleet-eu-west-1")[2..7],
        ["absent", "-", "-", "ttl", "24h00m"],
        "{table}"
    );
}

async fn lock_objects(account: &Account) -> Vec<String> {
    let mut left = Vec::new();
    for (cluster, region) in MEMBERS {
        let s3 = s3(account, region).await;
        let listed = s3
            .list_objects_v2()
            .bucket(format!("terrace-state-{}-{region}", account.id))
            .prefix(format!("clusters/{cluster}/"))
            .send()
            .await;
        left.extend(
            listed
                .iter()
                .flat_map(|l| l.contents())
                .filter_map(|o| o.key())
                .filter(|k| k.ends_with(".tflock"))
                .map(str::to_string),
        );
    }
    left
}

async fn s3(account: &Account, region: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&account.sdk_config(region).await)
            .force_path_style(true)
            .build(),
    )
}

async fn state_keys(account: &Account) -> Vec<String> {
    let mut keys = Vec::new();
    for (_, region) in MEMBERS {
        let listed = s3(account, region)
            .await
            .list_objects_v2()
            .bucket(format!("terrace-state-{}-{region}", account.id))
            .send()
            .await
            .unwrap();
        keys.extend(
            listed
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| format!("{region}/{k}")),
        );
    }
    keys.sort();
    keys
}

/// `fleet drill` judges each member on its own: a member whose API cannot
/// be read for the baseline is not drilled — nothing of it is destroyed —
/// and fails in `baseline`, named; a bad `--rto` stops before any member.
#[tokio::test]
async fn fleet_drill_never_destroys_a_member_whose_baseline_cannot_be_read() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await).with_fake_terraform();
    let config = fixture("fleet-emulator.yaml");
    for (cluster, region) in MEMBERS {
        log_group(&machine.account, region, cluster, true).await;
    }
    let reports = machine.dir.path().join("reports");
    let drill = |rto: &str| {
        let args = [
            "--output",
            "json",
            "--config",
            &config,
            "fleet",
            "drill",
            "--yes",
            "--rto",
            rto,
            "--report-dir",
            reports.to_str().unwrap(),
        ];
        machine.run(&args)
    };

    let refused = drill("0s");
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("--rto: must be longer than 0s"),
        "{}",
        show(&refused)
    );

    let run = drill("10m");
    assert_eq!(run.status.code(), Some(1), "{}", show(&run));
    let (events, fleet) = fleet_stream(&run);
    assert_eq!(fleet["command"], "drill");
    assert_eq!(
        results(&fleet),
        MEMBERS.map(|(c, _)| (c.to_string(), "failed".to_string(), "baseline".to_string()))
    );
    let summaries: Vec<&Value> = events.iter().filter(|e| e["event"] == "summary").collect();
    assert_eq!(summaries.len(), 3, "{summaries:#?}");
    for summary in summaries {
        assert_eq!(summary["command"], "drill", "{summary}");
        let report = &summary["summary"]["summary"]["report"];
        assert_eq!(report["passed"], false, "{summary}");
        assert!(summary["summary"]["summary"]["down"].is_null(), "{summary}");
    }
    for (cluster, region) in MEMBERS {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&machine.account.sdk_config(region).await);
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/eks/{cluster}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(found.log_groups().len(), 1, "{cluster}: nothing destroyed");
        let error = fleet["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["cluster"] == cluster)
            .and_then(|m| m["error"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(!error.is_empty(), "{cluster}: its error is named");
    }
}

/// A log group of the name Terraform gives the cluster's: its create fails.
async fn log_group(account: &Account, region: &str, cluster: &str, exists: bool) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.sdk_config(region).await);
    let name = format!("/aws/eks/{cluster}/cluster");
    if exists {
        logs.create_log_group()
            .log_group_name(&name)
            .send()
            .await
            .unwrap();
    } else {
        logs.delete_log_group()
            .log_group_name(&name)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_regions_in_parallel_survive_sigterm_and_a_failing_region_then_down_leaves_nothing() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let account = machine.account.clone();
    let config = fixture("fleet-emulator.yaml");
    let up = up_args(&config);
    // eu-west-1's cluster log group already exists: its apply fails there.
    let (broken, broken_region) = MEMBERS[2];
    log_group(&account, broken_region, broken, true).await;

    // SIGTERM once both healthy members are applying: every running
    // member stops its Terraform cleanly, and no state lock is left.
    let started = Instant::now();
    let mut child = machine.command(&up).stdout(Stdio::piped()).spawn().unwrap();
    // Read to the end after the signal too: terrace still prints.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut applying = BTreeSet::new();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let event: Value = serde_json::from_str(&line).unwrap_or_default();
        if event["phase"] == "terraform" && event["command"] == "apply" {
            applying.insert(event["cluster"].as_str().unwrap_or_default().to_string());
        }
        seen.push(line);
        if MEMBERS[..2].iter().all(|(c, _)| applying.contains(*c)) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{seen:#?}");
    }
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    seen.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{seen:#?}");
    let last: Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    assert_eq!(last["event"], "fleet", "{seen:#?}");
    assert!(
        results(&last)
            .iter()
            .take(2)
            .all(|(_, result, phase)| result == "interrupted" && phase == "terraform"),
        "{last}"
    );
    assert_eq!(lock_objects(&account).await, Vec::<String>::new());
    for (cluster, _) in &MEMBERS[..2] {
        let journal: Value = serde_json::from_slice(
            &std::fs::read(
                machine
                    .dir
                    .path()
                    .join(".terrace")
                    .join(cluster)
                    .join("journal.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            journal["up"]["phases"]["terraform"]["status"], "interrupted",
            "{cluster}: {journal}"
        );
    }
    eprintln!("interrupted fleet: {:.0}s", started.elapsed().as_secs_f64());

    // Again: the healthy members finish, the broken one fails alone, and
    // the exit code and the fleet object say which and where.
    let again = machine.run(&up);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    let (_, fleet) = fleet_stream(&again);
    assert_eq!(
        results(&fleet),
        [
            (MEMBERS[0].0, "done", "outputs"),
            (MEMBERS[1].0, "done", "outputs"),
            (broken, "failed", "terraform"),
        ]
        .map(|(c, r, p)| (c.to_string(), r.to_string(), p.to_string()))
    );
    eprintln!(
        "fleet with a failing region: {:.0}s",
        started.elapsed().as_secs_f64()
    );

    // With the obstacle gone, a re-run applies only the broken member; the
    // others re-plan to no changes.
    log_group(&account, broken_region, broken, false).await;
    let resumed = machine.run(&up);
    assert_eq!(resumed.status.code(), Some(0), "{}", show(&resumed));
    let (events, fleet) = fleet_stream(&resumed);
    assert!(fleet["ok"].as_bool().unwrap(), "{fleet}");
    for (cluster, _) in MEMBERS {
        let applied = events
            .iter()
            .any(|e| e["cluster"] == cluster && e["command"] == "apply");
        assert_eq!(applied, cluster == broken, "{cluster} applied: {applied}");
    }
    let keys = state_keys(&account).await;
    assert_eq!(
        keys,
        MEMBERS
            .map(|(c, r)| format!("{r}/clusters/{c}/terraform.tfstate"))
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "one state key per member, each in its region's bucket"
    );
    eprintln!("fleet resumed: {:.0}s", started.elapsed().as_secs_f64());

    // The dashboard: each built, at its version, its age, and no drift (a
    // re-plan changes nothing); moto's clusters have no API to ask about
    // addons, which is said, not hidden.
    let status = machine.run(&["--output", "json", "--config", &config, "fleet", "status"]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));
    let dashboard = support::machine::events(&String::from_utf8_lossy(&status.stdout))
        .pop()
        .unwrap();
    assert_eq!(dashboard["event"], "fleet_status", "{}", show(&status));
    let rows = dashboard["clusters"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{dashboard}");
    for (row, (cluster, region)) in rows.iter().zip(MEMBERS) {
        assert_eq!(
            (row["cluster"].as_str(), row["region"].as_str()),
            (Some(cluster), Some(region))
        );
        assert_eq!(row["exists"], true, "{row}");
        assert_eq!(row["status"], "ACTIVE", "{row}");
        assert!(row["version"].is_string(), "{row}");
        assert!(row["age_seconds"].as_u64().unwrap() < 3600, "{row}");
        assert_eq!(row["drift"], false, "{row}");
        assert!(row["problems"].to_string().contains("addons: "), "{row}");
    }
    eprintln!("fleet status: {:.0}s", started.elapsed().as_secs_f64());

    let down = machine.run(&[
        "--output", "json", "--config", &config, "fleet", "down", "--yes",
    ]);
    assert_eq!(down.status.code(), Some(0), "{}", show(&down));
    let (_, fleet) = fleet_stream(&down);
    assert!(fleet["ok"].as_bool().unwrap(), "{fleet}");
    for (cluster, region) in MEMBERS {
        let left = support::tagged::for_cluster(&account, region, cluster).await;
        assert!(left.is_empty(), "{cluster}: {left:#?}");
    }
    let status = machine.run(&["--output", "json", "--config", &config, "fleet", "status"]);
    let dashboard = support::machine::events(&String::from_utf8_lossy(&status.stdout))
        .pop()
        .unwrap();
    assert!(
        dashboard["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["exists"] == false),
        "{dashboard}"
    );
    eprintln!("fleet down: {:.0}s", started.elapsed().as_secs_f64());
}
