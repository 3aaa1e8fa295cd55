//! `terrace cluster up` and `down` end to end, as a CI job runs them: the
//! real binary, real Terraform and provider against moto (with the EKS shim),
//! and the fake terraform for an interrupted apply.

mod support;

use std::io::BufReader;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::machine::{CLUSTER, Machine, REGION, applied, error, outcome, outcomes, parse, show};
use support::moto::Account;

/// The cluster VPC's `default` group has no rule left.
async fn assert_default_security_group_closed(account: &Account) {
    use aws_sdk_ec2::types::Filter;
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:terrace.dev/cluster")
                .values(CLUSTER)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap();
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let group = &groups.security_groups()[0];
    assert!(
        group.ip_permissions().is_empty() && group.ip_permissions_egress().is_empty(),
        "{group:?}"
    );
}

async fn state_object_exists(account: &Account) -> bool {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&account.sdk_config(REGION).await)
            .force_path_style(true)
            .build(),
    );
    s3.head_object()
        .bucket(format!("terrace-state-{}-{REGION}", account.id))
        .key(format!("clusters/{CLUSTER}/terraform.tfstate"))
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_to_the_addon_boundary_rerun_resume_then_down_leaves_nothing() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let up = [
        "--output", "json", "cluster", "up", "--region", REGION, "--yes",
    ];

    // First run: everything up to the Kubernetes boundary, for real.
    let started = Instant::now();
    let first = machine.run(&[&up[..], &["--stop-after", "connect"]].concat());
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let (events, summary) = parse(&first);
    assert_eq!(
        outcomes(&summary),
        [
            "resolve",
            "preflight",
            "state",
            "render",
            "terraform",
            "outputs",
            "connect"
        ]
        .map(|p| (p.to_string(), "ran".to_string()))
    );
    assert!(applied(&events), "the first run applies");
    assert!(summary["summary"]["changes"]["add"].as_u64().unwrap() > 50);
    assert!(
        summary["summary"]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["seconds"].as_f64().is_some())
    );
    assert!(
        state_object_exists(&machine.account).await,
        "state lives in the regional bucket"
    );
    let kubeconfig = std::fs::read_to_string(machine.dir.path().join(".kube/config")).unwrap();
    assert!(
        kubeconfig.contains(CLUSTER) && kubeconfig.contains("token"),
        "{kubeconfig}"
    );
    assert_default_security_group_closed(&machine.account).await;
    eprintln!("first up: {:.0}s", started.elapsed().as_secs_f64());

    // The same run again: plan finds nothing, nothing is applied.
    let again = machine.run(&[&up[..], &["--stop-after", "connect"]].concat());
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    let (events, summary) = parse(&again);
    assert_eq!(summary["summary"]["no_changes"], true, "{}", show(&again));
    assert_eq!(outcome(&summary, "terraform"), "ran");
    assert!(!applied(&events), "a re-run must not apply");

    // The whole way, after a finished run: a fresh journal section, and
    // Terraform plans again (the remote state decides, not the journal).
    // The emulated cluster has no API server, so the addons phase fails
    // with a clear message and the journal says so.
    let first_run = machine.journal()["up"]["run"].clone();
    let full = machine.run(&up);
    assert_eq!(full.status.code(), Some(1), "{}", show(&full));
    let (events, summary) = parse(&full);
    assert_eq!(
        summary["summary"]["resumed"], false,
        "the last run finished"
    );
    assert_ne!(machine.journal()["up"]["run"], first_run, "a fresh section");
    assert_eq!(outcome(&summary, "terraform"), "ran");
    assert!(!applied(&events), "nothing to apply");
    assert_eq!(outcome(&summary, "connect"), "ran");
    assert_eq!(outcome(&summary, "addons"), "failed");
    assert!(
        error(&events).contains("Kubernetes API did not answer"),
        "{}",
        show(&full)
    );
    assert_eq!(
        machine.journal()["up"]["phases"]["addons"]["status"],
        "failed"
    );

    // Resuming plans again (no changes, nothing applied) and retries addons.
    let resumed = machine.run(&up);
    assert_eq!(resumed.status.code(), Some(1), "{}", show(&resumed));
    let (events, summary) = parse(&resumed);
    assert_eq!(summary["summary"]["resumed"], true);
    assert_eq!(outcome(&summary, "terraform"), "ran");
    assert_eq!(summary["summary"]["no_changes"], true);
    assert!(!applied(&events));
    assert_eq!(outcome(&summary, "addons"), "failed");

    // Someone else runs `down` from another machine (another work
    // directory): the state object goes. Resuming here must rebuild, not
    // trust its journal and fail on missing outputs.
    let elsewhere = Machine::new(machine.account.clone());
    let theirs_down = elsewhere.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--yes",
    ]);
    assert_eq!(theirs_down.status.code(), Some(0), "{}", show(&theirs_down));
    // Destroy leaves an empty state object behind: the state says nothing
    // exists, while this machine's journal says the build finished.
    let rebuilt = machine.run(&up);
    assert_eq!(rebuilt.status.code(), Some(1), "{}", show(&rebuilt));
    let (events, summary) = parse(&rebuilt);
    assert_eq!(summary["summary"]["resumed"], true);
    assert!(applied(&events), "the cluster is built again");
    assert!(summary["summary"]["changes"]["add"].as_u64().unwrap() > 50);
    assert_eq!(outcome(&summary, "outputs"), "ran");
    assert_eq!(outcome(&summary, "addons"), "failed", "{}", show(&rebuilt));
    assert!(state_object_exists(&machine.account).await);

    // down --plan: what destroy and the sweep would remove, removing nothing.
    // Leftovers of the controllers inside the cluster's own subnets (which
    // would block terraform destroy), and a load balancer of this cluster
    // and of another one elsewhere.
    let (vpc, private) =
        support::leftovers::cluster_network(&machine.account, REGION, CLUSTER).await;
    let inside = support::leftovers::Seeder::within(
        &machine.account,
        REGION,
        &vpc,
        [&private[0], &private[1]],
    )
    .await
    .in_vpc_leftovers(CLUSTER)
    .await;
    let seeder = support::leftovers::Seeder::new(&machine.account, REGION).await;
    let ours = seeder
        .load_balancer("k8s-ours", &[("elbv2.k8s.aws/cluster", CLUSTER)])
        .await;
    let theirs = seeder
        .load_balancer("k8s-theirs", &[("elbv2.k8s.aws/cluster", "other")])
        .await;
    let down = ["--output", "json", "cluster", "down", "--region", REGION];
    let plan = machine.run(&[&down[..], &["--plan"]].concat());
    assert_eq!(plan.status.code(), Some(0), "{}", show(&plan));
    let (_, summary) = parse(&plan);
    assert_eq!(summary["summary"]["gate"]["proceed"], true, "{summary}");
    let planned = &summary["summary"]["plan"];
    assert!(
        planned["terraform"].as_array().unwrap().len() > 50,
        "{planned}"
    );
    let item_ids = |items: &Value| -> std::collections::BTreeSet<String> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut leftovers: std::collections::BTreeSet<String> = [
        &inside.instances,
        &inside.load_balancers,
        &inside.enis,
        &inside.security_groups,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    leftovers.insert(ours.clone());
    let sweep_ids = item_ids(&planned["sweep"]["items"]);
    assert_eq!(
        sweep_ids, leftovers,
        "the sweep would take exactly the controllers' leftovers"
    );
    assert_eq!(
        item_ids(&planned["pre_sweep"]["items"]),
        leftovers,
        "all of them are the pre-sweep's kinds"
    );
    assert!(
        state_object_exists(&machine.account).await,
        "--plan deletes nothing"
    );

    // down: the API does not answer, so the drain is skipped with a warning;
    // the pre-sweep clears the subnets (the emulator, like EC2, refuses to
    // delete a subnet still in use), then destroy, sweep and verify leave
    // nothing of the cluster.
    let gone = machine.run(&[&down[..], &["--yes"]].concat());
    assert_eq!(gone.status.code(), Some(0), "{}", show(&gone));
    let (_, summary) = parse(&gone);
    let s = &summary["summary"];
    assert!(
        s["warnings"].to_string().contains("skipping the drain"),
        "{s}"
    );
    assert!(s["destroyed"]["remove"].as_u64().unwrap() > 50, "{s}");
    let mut deleted = item_ids(&s["sweep"]["deleted"]);
    for pre in s["pre_sweeps"].as_array().unwrap() {
        deleted.extend(item_ids(&pre["deleted"]));
    }
    assert_eq!(deleted, sweep_ids, "down deletes what --plan listed");
    assert_eq!(
        item_ids(&s["pre_sweeps"][0]["deleted"]),
        leftovers,
        "before terraform destroy"
    );
    assert_eq!(s["leaks"]["leaks"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(
        support::tagged::for_cluster(&machine.account, REGION, CLUSTER).await,
        Vec::<String>::new()
    );
    let remaining = seeder.surviving_load_balancers().await;
    assert_eq!(
        remaining,
        [theirs],
        "another cluster's load balancer is untouched"
    );
    let kubeconfig = std::fs::read_to_string(machine.dir.path().join(".kube/config")).unwrap();
    assert!(
        !kubeconfig.contains(CLUSTER),
        "the context is removed: {kubeconfig}"
    );

    // Again, on nothing: still succeeds.
    let again = machine.run(&[&down[..], &["--yes"]].concat());
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
}

fn interrupt(child: &Child) {
    support::signals::signal(child.id(), libc::SIGINT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_apply_stops_terraform_cleanly_and_the_next_up_resumes() {
    terrace::tls::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let released = tmp.path().join("released");
    let log = tmp.path().join("fake.log");
    let machine = Machine::new(support::moto::account().await)
        .with(
            "TERRACE_TERRAFORM",
            support::fake_terraform::path().to_str().unwrap(),
        )
        .with("FAKE_TF_LOG", log.to_str().unwrap());
    let args = [
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ];

    let mut child = machine
        .command(&args)
        .env("FAKE_TF_APPLY_SECONDS", "30")
        .env("FAKE_TF_RELEASED", released.to_str().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    support::machine::read_until_apply(&mut stdout, Duration::from_secs(60));
    interrupt(&child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        released.exists(),
        "terraform got SIGINT and released its lock"
    );
    let journal = machine.journal();
    assert_eq!(
        journal["up"]["phases"]["terraform"]["status"],
        "interrupted"
    );
    assert!(
        journal["up"]["phases"]["terraform"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped by SIGINT"),
        "{journal}"
    );
    assert_eq!(journal["up"]["phases"]["render"]["status"], "done");
    assert!(
        rest.contains("\"event\":\"summary\""),
        "a summary even when interrupted: {rest}"
    );

    let resumed = machine.run(&args);
    assert_eq!(resumed.status.code(), Some(0), "{}", show(&resumed));
    let (events, summary) = parse(&resumed);
    assert_eq!(summary["summary"]["resumed"], true);
    assert_eq!(
        outcome(&summary, "terraform"),
        "ran",
        "an interrupted phase runs again"
    );
    assert!(applied(&events));
    assert_eq!(
        machine.journal()["up"]["phases"]["outputs"]["status"],
        "done"
    );
}

/// The cluster's VPCs in the account, by CIDR.
async fn cluster_vpc_cidrs(account: &Account) -> Vec<String> {
    use aws_sdk_ec2::types::Filter;
    let ec2 = aws_sdk_ec2::Client::new(&account.sdk_config(REGION).await);
    let vpcs = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:terrace.dev/cluster")
                .values(CLUSTER)
                .build(),
        )
        .send()
        .await
        .unwrap();
    vpcs.vpcs()
        .iter()
        .filter_map(|v| v.cidr_block().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_replaces_the_cluster_is_refused_under_yes_and_version_jumps_before_terraform()
{
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let config = machine.dir.path().join("terrace.yaml");
    let up = [
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "terraform",
    ];
    std::fs::write(&config, "defaults:\n  kubernetes_version: \"1.32\"\n").unwrap();
    let first = machine.run(&up);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    assert_eq!(cluster_vpc_cidrs(&machine.account).await, ["10.0.0.0/16"]);

    // A new CIDR replaces the VPC, its subnets and so the cluster.
    std::fs::write(
        &config,
        "defaults:\n  kubernetes_version: \"1.32\"\n  network: { cidr: 10.1.0.0/16 }\n",
    )
    .unwrap();
    let refused = machine.run(&up);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    let (events, _) = parse(&refused);
    assert!(!applied(&events), "nothing is applied: {}", show(&refused));
    let error = events
        .iter()
        .find(|e| e["event"] == "error")
        .expect("an error event");
    let problem = error["problems"][0].as_str().unwrap();
    for needle in [
        "--allow-replace",
        "replace module.network.aws_vpc.this (VPC)",
        "nothing was changed",
    ] {
        assert!(problem.contains(needle), "{needle:?} in {problem}");
    }
    assert_eq!(
        cluster_vpc_cidrs(&machine.account).await,
        ["10.0.0.0/16"],
        "the live VPC is untouched"
    );

    // Two minor versions at once: refused by preflight, before Terraform.
    std::fs::write(&config, "defaults:\n  kubernetes_version: \"1.34\"\n").unwrap();
    let jump = machine.run(&up);
    assert_eq!(jump.status.code(), Some(3), "{}", show(&jump));
    let (events, summary) = parse(&jump);
    assert_eq!(outcome(&summary, "terraform"), "absent", "{}", show(&jump));
    let check = events
        .iter()
        .find(|e| e["check"]["name"] == "Kubernetes version")
        .unwrap_or_else(|| panic!("no version check: {}", show(&jump)));
    let detail = check["check"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("set kubernetes_version to 1.33") && detail.contains("1.32 → 1.33 → 1.34"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_terraform_failure_exits_1_in_its_own_words_and_the_journal_says_where() {
    terrace::tls::install_crypto_provider();
    for step in ["init", "plan", "apply"] {
        let machine = Machine::new(support::moto::account().await)
            .with_fake_terraform()
            .with("FAKE_TF_FAIL", step)
            .with(
                "FAKE_TF_FAIL_DETAIL",
                "Error: the provider says no, verbatim.",
            );
        let output = machine.run(&[
            "--output", "json", "cluster", "up", "--region", REGION, "--yes",
        ]);
        assert_eq!(output.status.code(), Some(1), "{step}: {}", show(&output));
        let (events, summary) = parse(&output);
        // The stream's shape: events, one summary, then the one error.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout.lines().count(), events.len(), "only JSON:\n{stdout}");
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
        assert_eq!(kinds[kinds.len() - 2..], ["summary", "error"], "{kinds:?}");
        assert!(
            kinds[..kinds.len() - 2]
                .iter()
                .all(|k| ["progress", "warning"].contains(k)),
            "{kinds:?}"
        );
        let error = events
            .iter()
            .find(|e| e["event"] == "error")
            .expect("an error event");
        let text = error["problems"][0].as_str().unwrap();
        assert!(
            text.contains(&format!("terraform {step} failed")),
            "{step}: {text}"
        );
        assert!(
            text.contains("the provider says no, verbatim."),
            "{step}: {text}"
        );
        assert_eq!(outcome(&summary, "terraform"), "failed");
        let journal = &machine.journal()["up"]["phases"];
        assert_eq!(journal["render"]["status"], "done", "{step}");
        assert_eq!(journal["terraform"]["status"], "failed", "{step}");
        assert!(journal["terraform"]["finished_ms"].is_u64(), "{step}");
        assert!(
            journal.get("outputs").is_none(),
            "{step}: nothing ran after the failure"
        );
    }
}

#[tokio::test]
async fn dry_run_plans_and_changes_nothing() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await).with_fake_terraform();
    let output = machine.run(&[
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--dry-run",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let (events, summary) = parse(&output);
    assert_eq!(summary["summary"]["dry_run"], true);
    assert!(
        !summary["summary"]["planned"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert!(!applied(&events));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&machine.account.sdk_config(REGION).await)
            .force_path_style(true)
            .build(),
    );
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        buckets.buckets().is_empty(),
        "a dry run creates no state bucket"
    );
}

#[tokio::test]
async fn down_succeeds_on_a_cluster_that_was_never_created() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await);
    let output = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--yes",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let (_, summary) = parse(&output);
    let warnings = summary["summary"]["warnings"].to_string();
    assert!(warnings.contains("skipping the drain"), "{warnings}");
    assert!(warnings.contains("no Terraform state"), "{warnings}");
    assert_eq!(
        summary["summary"]["leaks"]["leaks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn without_a_terminal_up_needs_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["cluster", "up", "--region", REGION])
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--yes: required when not run from a terminal"),
        "{stderr}"
    );
    assert!(
        !Path::new(&tmp.path().join(".terrace")).exists(),
        "nothing was started"
    );
}

async fn delete_state_object(account: &Account) {
    support::account::s3(&account.sdk_config(REGION).await)
        .delete_object()
        .bucket(support::account::bucket(account, REGION))
        .key(support::account::state_key(CLUSTER))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_state_gone_down_removes_everything_tagged_and_nothing_else() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    // With a public zone for ExternalDNS, `up` issues its certificate.
    let zone = support::golden::public_zone(&machine.account, "example.com").await;
    std::fs::write(
        machine.dir.path().join("terrace.yaml"),
        "defaults:\n  addons:\n    external-dns: { zones: [example.com] }\n",
    )
    .unwrap();
    let up = machine.run(&[
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ]);
    assert_eq!(up.status.code(), Some(0), "{}", show(&up));
    let issued = support::golden::certificates(&machine.account, REGION).await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    let certificate = &issued[0];
    assert_eq!(certificate.domain, "example.com");
    assert_eq!(certificate.names, ["*.example.com", "example.com"]);
    assert_eq!(
        certificate.status, "ISSUED",
        "Terraform waited for issuance"
    );
    assert_eq!(
        certificate
            .tags
            .get("terrace.dev/cluster")
            .map(String::as_str),
        Some(CLUSTER)
    );
    assert_eq!(
        certificate
            .tags
            .get("terrace.dev/managed-by")
            .map(String::as_str),
        Some("terrace")
    );
    let validation = support::golden::cname_records(&machine.account, &zone).await;
    assert_eq!(
        validation, certificate.validation,
        "the validation record (one for the zone and its wildcard) is in the zone"
    );
    // The apps' IngressClassParams, rendered from Terraform's outputs,
    // name the issued certificate.
    let params = std::fs::read_to_string(
        machine
            .work_dir()
            .join("manifests/aws-load-balancer-controller/ingress-class.yaml"),
    )
    .unwrap();
    assert!(
        params.contains(&certificate.arn) && !params.contains("<terraform-output:"),
        "{params}"
    );
    // Not ours: an untagged certificate and a record of someone else.
    let foreign =
        support::golden::foreign_certificate_and_record(&machine.account, REGION, &zone).await;
    let (vpc, private) =
        support::leftovers::cluster_network(&machine.account, REGION, CLUSTER).await;
    support::leftovers::Seeder::within(&machine.account, REGION, &vpc, [&private[0], &private[1]])
        .await
        .in_vpc_leftovers(CLUSTER)
        .await;
    // Another Terrace cluster in the region, and untagged look-alikes
    // whose names carry this cluster's.
    let other = support::stack::seed(
        &machine.account,
        REGION,
        "acme-us-east-1",
        &support::stack::tags_for(Some("acme-us-east-1")),
        true,
        1,
    )
    .await;
    let decoy = support::stack::seed(
        &machine.account,
        REGION,
        &format!("{CLUSTER}-look-alike"),
        &support::stack::tags_for(None),
        false,
        2,
    )
    .await;
    delete_state_object(&machine.account).await;
    assert!(!state_object_exists(&machine.account).await);

    let gone = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--yes",
    ]);
    assert_eq!(gone.status.code(), Some(0), "{}", show(&gone));
    let (_, summary) = parse(&gone);
    let s = &summary["summary"];
    assert!(
        s["warnings"].to_string().contains("no Terraform state"),
        "{s}"
    );
    assert!(
        s.get("destroyed").is_none(),
        "no terraform destroy without state: {s}"
    );
    assert!(
        s["gate"]["reason"]
            .as_str()
            .unwrap()
            .contains("carries terrace.dev/managed-by=terrace"),
        "{s}"
    );
    assert_eq!(s["leaks"]["leaks"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(
        support::tagged::for_cluster(&machine.account, REGION, CLUSTER).await,
        Vec::<String>::new()
    );
    assert!(
        aws_sdk_eks::Client::new(&machine.account.sdk_config(REGION).await)
            .describe_cluster()
            .name(CLUSTER)
            .send()
            .await
            .is_err(),
        "the EKS cluster is gone"
    );
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &other).await,
        other.ids,
        "the other Terrace cluster was touched"
    );
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &decoy).await,
        decoy.ids,
        "an untagged look-alike was touched"
    );
    // The sweep found the certificate by its tags and its validation
    // record through it; someone else's certificate and record stay.
    let swept: Vec<&str> = s["sweep"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        swept.contains(&"certificate") && swept.contains(&"validation-record"),
        "{swept:?}"
    );
    let left = support::golden::certificates(&machine.account, REGION).await;
    assert_eq!(
        left.iter().map(|c| c.arn.as_str()).collect::<Vec<_>>(),
        [foreign.certificate.as_str()]
    );
    assert_eq!(
        support::golden::cname_records(&machine.account, &zone).await,
        std::slice::from_ref(&foreign.record),
        "only the foreign record is left in the zone"
    );
}

#[tokio::test]
async fn down_refuses_a_same_named_cluster_that_is_not_terraces() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    // Someone else's cluster that happens to have Terrace's default name,
    // with a load balancer of its LB controller.
    let theirs = support::stack::seed(&machine.account, REGION, CLUSTER, &[], true, 0).await;
    let subnets = theirs.all("subnet");
    let inside = support::leftovers::Seeder::within(
        &machine.account,
        REGION,
        theirs.id("vpc"),
        [&subnets[0], &subnets[1]],
    )
    .await
    .in_vpc_leftovers(CLUSTER)
    .await;
    let seeder = support::leftovers::Seeder::within(
        &machine.account,
        REGION,
        theirs.id("vpc"),
        [&subnets[0], &subnets[1]],
    )
    .await;

    for extra in [&["--yes"][..], &["--plan"][..]] {
        let output = machine.run(
            &[
                &["--output", "json", "cluster", "down", "--region", REGION][..],
                extra,
            ]
            .concat(),
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            show(&output)
        );
        let (events, summary) = parse(&output);
        assert_eq!(summary["summary"]["gate"]["proceed"], false, "{summary}");
        let error = events
            .iter()
            .find(|e| e["event"] == "error")
            .expect("an error event");
        let text = error["problems"][0].as_str().unwrap();
        assert!(
            text.contains("is not Terrace's") && text.contains("terrace.dev/managed-by=terrace"),
            "{text}"
        );
        assert!(
            summary["summary"].get("drain").is_none() && summary["summary"].get("sweep").is_none()
        );
    }
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &theirs).await,
        theirs.ids,
        "nothing of the other cluster changed"
    );
    assert_eq!(seeder.surviving(&inside).await.len(), inside.len());
}

#[tokio::test]
async fn down_refuses_leftovers_that_only_a_controller_tagged() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let seeder = support::leftovers::Seeder::new(&machine.account, REGION).await;
    let lb = seeder
        .load_balancer("k8s-foreign", &[("elbv2.k8s.aws/cluster", CLUSTER)])
        .await;
    let output = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--yes",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let (_, summary) = parse(&output);
    let reason = summary["summary"]["gate"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("nothing says it was Terrace's") && reason.contains(&lb),
        "{reason}"
    );
    assert_eq!(seeder.surviving_load_balancers().await, [lb]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_api_that_refuses_us_is_a_warning_and_the_pre_sweep_clears_the_vpc() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let ours = support::stack::seed(
        &machine.account,
        REGION,
        CLUSTER,
        &support::stack::tags_for(Some(CLUSTER)),
        true,
        0,
    )
    .await;
    let subnets = ours.all("subnet");
    let inside = support::leftovers::Seeder::within(
        &machine.account,
        REGION,
        ours.id("vpc"),
        [&subnets[0], &subnets[1]],
    )
    .await
    .in_vpc_leftovers(CLUSTER)
    .await;
    let api = support::kube::refusing_api();
    machine.account.set_cluster_endpoint(CLUSTER, &api).await;

    let output = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--yes",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let (_, summary) = parse(&output);
    let s = &summary["summary"];
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("drain skipped: arn:aws:sts::")
            && warnings.contains(
                "has no access to the cluster; controller-created resources are swept instead"
            ),
        "{warnings}"
    );
    let pre_swept: std::collections::BTreeSet<String> = s["pre_sweeps"][0]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        &inside.instances,
        &inside.load_balancers,
        &inside.enis,
        &inside.security_groups,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    assert_eq!(pre_swept, expected, "{s}");
    assert_eq!(s["leaks"]["leaks"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &ours).await,
        []
    );
}

/// The fake terraform's invocations of `command` so far.
fn fake_calls(log: &Path, command: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["argv"][0].as_str() == Some(command))
        .count()
}

#[tokio::test]
async fn a_finished_run_is_not_resumed_a_failed_one_is_and_restart_starts_over() {
    terrace::tls::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("fake.log");
    let machine = Machine::new(support::moto::account().await)
        .with_fake_terraform()
        .with("FAKE_TF_LOG", log.to_str().unwrap());
    let up = [
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ];
    let run = |extra: &[&str], fail: &str| {
        machine
            .command(&[&up[..], extra].concat())
            .env("FAKE_TF_FAIL", fail)
            .output()
            .unwrap()
    };

    let first = run(&[], "");
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let first_run = machine.journal()["up"]["run"].clone();

    // After a finished run: a fresh section, and Terraform plans again.
    let plans = fake_calls(&log, "plan");
    let again = run(&[], "");
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    let (_, summary) = parse(&again);
    assert_eq!(summary["summary"]["resumed"], false);
    assert_eq!(outcome(&summary, "terraform"), "ran");
    assert_eq!(fake_calls(&log, "plan"), plans + 1);
    let journal = machine.journal();
    assert_ne!(journal["up"]["run"], first_run);
    assert!(journal["up"].get("resumed_by").is_none(), "{journal}");

    // A failed run is resumed, by a run with its own id.
    let failed = run(&[], "output");
    assert_eq!(failed.status.code(), Some(1), "{}", show(&failed));
    let resumed = run(&[], "");
    assert_eq!(resumed.status.code(), Some(0), "{}", show(&resumed));
    let (_, summary) = parse(&resumed);
    assert_eq!(summary["summary"]["resumed"], true);
    assert_eq!(
        outcome(&summary, "terraform"),
        "ran",
        "plan is never skipped"
    );
    let journal = machine.journal();
    let resumer = journal["up"]["resumed_by"][0].as_str().unwrap();
    assert_eq!(journal["up"]["phases"]["outputs"]["run"], resumer);

    // --restart ignores an unfinished run's journal.
    let failed = run(&[], "output");
    assert_eq!(failed.status.code(), Some(1), "{}", show(&failed));
    let before = machine.journal()["up"]["run"].clone();
    let restarted = run(&["--restart"], "");
    assert_eq!(restarted.status.code(), Some(0), "{}", show(&restarted));
    let (_, summary) = parse(&restarted);
    assert_eq!(summary["summary"]["resumed"], false);
    let journal = machine.journal();
    assert_ne!(journal["up"]["run"], before);
    assert!(journal["up"].get("resumed_by").is_none(), "{journal}");
}

/// `up` hands Terraform EKS's default version of each managed add-on for
/// the configured Kubernetes version (the shim lists one build per version,
/// each also compatible with the next), and a version bump moves them all;
/// an EKS that cannot say (plain moto) leaves them to EKS, with a warning.
#[tokio::test]
async fn up_resolves_the_managed_addon_versions_for_the_configured_kubernetes_version() {
    terrace::tls::install_crypto_provider();
    let up = [
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "render",
    ];
    let managed = [
        "aws-ebs-csi-driver",
        "coredns",
        "eks-pod-identity-agent",
        "kube-proxy",
        "metrics-server",
        "vpc-cni",
    ];
    let machine = Machine::new(support::moto::account_with_eks_shim().await).with_fake_terraform();
    let tfvars = machine
        .work_dir()
        .join("terraform/addon-versions.auto.tfvars.json");
    for (kubernetes, build) in [("1.33", "eksbuild.2"), ("1.34", "eksbuild.3")] {
        std::fs::write(
            machine.dir.path().join("terrace.yaml"),
            format!("defaults:\n  kubernetes_version: \"{kubernetes}\"\n"),
        )
        .unwrap();
        let output = machine.run(&up);
        assert_eq!(output.status.code(), Some(0), "{}", show(&output));
        let vars: Value = serde_json::from_slice(&std::fs::read(&tfvars).unwrap()).unwrap();
        let versions = vars["addon_versions"].as_object().unwrap();
        assert_eq!(
            versions.keys().map(String::as_str).collect::<Vec<_>>(),
            managed,
            "{vars}"
        );
        assert_eq!(
            versions["vpc-cni"],
            format!("v1.19.5-{build}"),
            "{kubernetes}: {vars}"
        );
        for (addon, version) in versions {
            assert!(
                version.as_str().unwrap().ends_with(build),
                "{kubernetes}: {addon} {version}"
            );
        }
    }

    let plain = Machine::new(support::moto::account().await).with_fake_terraform();
    let output = plain.run(&up);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let (events, _) = parse(&output);
    assert!(
        events.iter().any(|e| e["level"] == "warn"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("cannot resolve the managed add-on versions for Kubernetes")),
        "{}",
        show(&output)
    );
    assert!(
        !plain
            .work_dir()
            .join("terraform/addon-versions.auto.tfvars.json")
            .exists()
    );
}
