//! The Terraform runner against the fake terraform: arguments and
//! environment it passes, progress and results it reads, failures, a held
//! lock, and Ctrl-C. Runs in a few seconds.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_terraform::{Fixture, wait_for_file};
use terrace::progress::{Collect, Discard, Level};
use terrace::terraform::{Backend, Changes, Interrupt, RunError};

fn argv(invocation: &Value) -> Vec<String> {
    invocation["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn backend() -> Backend {
    Backend::for_cluster("terrace-state-123456789012-us-east-1", "c1", "us-east-1")
}

#[tokio::test]
async fn a_full_cycle_passes_the_right_arguments_and_reads_the_results() {
    let fx = Fixture::new();
    let runner = fx.runner(&[]);
    let events = Collect::default();
    let plan_file = fx.file("plan.tfplan");

    runner.init(&backend(), &events).await.unwrap();
    let plan = runner.plan(&plan_file, &events).await.unwrap();
    assert!(plan.has_changes);
    assert_eq!(plan.changes.add, 3);
    assert_eq!(plan.resources.len(), 3);
    assert_eq!(plan.resources[2].address, "aws_eks_cluster.this");
    assert_eq!(plan.resources[2].action, "create");
    let applied = runner.apply(&plan_file, &events).await.unwrap();
    assert_eq!(
        applied,
        Changes {
            add: 3,
            ..Changes::default()
        }
    );
    let outputs = runner.output(&events).await.unwrap();
    assert_eq!(outputs["vpc_id"].value, "vpc-0fake");
    assert_eq!(outputs["private_subnet_ids"].value[1], "subnet-0b");
    assert!(outputs["token"].sensitive);
    let teardown = runner
        .plan_destroy(&fx.file("destroy.tfplan"), &events)
        .await
        .unwrap();
    assert_eq!(teardown.changes.destroy, 3);
    assert!(teardown.resources.iter().all(|r| r.action == "delete"));
    assert_eq!(runner.destroy(&events).await.unwrap().destroy, 3);

    let calls = fx.invocations();
    let commands: Vec<Vec<String>> = calls.iter().map(argv).collect();
    assert_eq!(
        commands[0],
        [
            "init",
            "-input=false",
            "-no-color",
            "-json",
            "-reconfigure",
            "-backend-config=bucket=terrace-state-123456789012-us-east-1",
            "-backend-config=key=clusters/c1/terraform.tfstate",
            "-backend-config=region=us-east-1",
            "-backend-config=use_lockfile=true",
            "-backend-config=encrypt=true",
        ]
    );
    assert_eq!(
        commands[1],
        [
            "plan",
            "-input=false",
            "-no-color",
            "-json",
            "-detailed-exitcode",
            &format!("-out={}", plan_file.display()),
        ]
    );
    assert_eq!(
        commands[2],
        [
            "apply",
            "-input=false",
            "-no-color",
            "-json",
            &plan_file.display().to_string()
        ]
    );
    assert_eq!(commands[3], ["output", "-no-color", "-json"]);
    assert_eq!(&commands[4][..3], ["plan", "-destroy", "-input=false"]);
    assert!(commands[4].contains(&"-detailed-exitcode".to_string()));
    assert_eq!(
        commands[5],
        [
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-json"
        ]
    );

    let cache = fx.file("cache").join("terrace/plugins");
    assert!(cache.is_dir(), "the plugin cache is created");
    for call in &calls {
        assert_eq!(call["cwd"], fx.work().join("terraform").to_str().unwrap());
        assert_eq!(call["env"]["TF_IN_AUTOMATION"], "1");
        assert_eq!(call["env"]["TF_PLUGIN_CACHE_DIR"], cache.to_str().unwrap());
    }

    let events = events.events();
    let creating = events
        .iter()
        .find(|e| e.fields.get("status") == Some(&"progress".into()))
        .map(|e| e.fields.clone());
    assert!(creating.is_none(), "no progress lines without a slow apply");
    let completed: Vec<_> = events
        .iter()
        .filter(|e| {
            e.fields.get("status") == Some(&"complete".into()) && e.fields["command"] == "apply"
        })
        .map(|e| e.fields["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        completed,
        ["aws_vpc.this", "aws_subnet.private", "aws_eks_cluster.this"]
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.starts_with("Apply complete!"))
    );
}

#[tokio::test]
async fn a_path_style_backend_says_so_and_user_cache_settings_win() {
    let fx = Fixture::new();
    let runner = fx
        .runner(&[])
        .with_env("TF_PLUGIN_CACHE_DIR", "/users/own/cache");
    runner
        .init(&backend().path_style(true), &Discard)
        .await
        .unwrap();
    runner.init(&backend(), &Discard).await.unwrap();
    let calls = fx.invocations();
    assert_eq!(
        argv(&calls[0]).last().unwrap(),
        "-backend-config=use_path_style=true"
    );
    assert!(
        !argv(&calls[1]).iter().any(|a| a.contains("use_path_style")),
        "{:?}",
        argv(&calls[1])
    );
    assert_eq!(calls[0]["env"]["TF_PLUGIN_CACHE_DIR"], "/users/own/cache");
}

#[tokio::test]
async fn a_plan_without_changes_says_so() {
    let fx = Fixture::new();
    let runner = fx.runner(&[("FAKE_TF_NO_CHANGES", "1")]);
    let plan = runner.plan(&fx.file("p"), &Discard).await.unwrap();
    assert!(!plan.has_changes);
    assert!(plan.changes.is_empty());
    assert!(plan.resources.is_empty());
}

#[tokio::test]
async fn a_failure_at_each_step_carries_terraforms_text() {
    let fx = Fixture::new();
    let plan_file = fx.file("p");
    std::fs::write(&plan_file, "plan").unwrap();
    for step in ["init", "plan", "apply", "output", "destroy"] {
        let runner = fx.runner(&[
            ("FAKE_TF_FAIL", step),
            (
                "FAKE_TF_FAIL_SUMMARY",
                "creating EKS Cluster (c1): AccessDenied",
            ),
            (
                "FAKE_TF_FAIL_DETAIL",
                "  User is not authorized\nto perform: eks:CreateCluster",
            ),
        ]);
        let err = match step {
            "init" => runner.init(&backend(), &Discard).await.unwrap_err(),
            "plan" => runner.plan(&plan_file, &Discard).await.unwrap_err(),
            "apply" => runner.apply(&plan_file, &Discard).await.unwrap_err(),
            "output" => runner.output(&Discard).await.unwrap_err(),
            _ => runner.destroy(&Discard).await.unwrap_err(),
        };
        let RunError::Failed {
            command,
            code,
            diagnostics,
            ..
        } = &err
        else {
            panic!("{step}: expected Failed, got {err:?}");
        };
        assert!(command.starts_with(step));
        assert_eq!(*code, Some(1));
        assert_eq!(
            diagnostics[0].summary,
            "creating EKS Cluster (c1): AccessDenied"
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "Error: creating EKS Cluster (c1): AccessDenied\n\n  User is not authorized\nto perform: eks:CreateCluster"
            ),
            "{step}: {text}"
        );
    }
}

#[tokio::test]
async fn output_is_a_failure_when_terraform_prints_no_json() {
    let fx = Fixture::new();
    let err = fx
        .runner(&[("FAKE_TF_STDERR_FAIL", "output")])
        .output(&Discard)
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Failed { .. }), "{err:?}");
}

#[tokio::test]
async fn without_json_the_raw_stderr_is_the_message() {
    let fx = Fixture::new();
    let err = fx
        .runner(&[("FAKE_TF_STDERR_FAIL", "init")])
        .init(&backend(), &Discard)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Error: Failed to read the backend configuration for init\nfake terraform: raw failure, no JSON"),
        "{text}"
    );
}

#[tokio::test]
async fn a_held_lock_names_its_holder() {
    let fx = Fixture::new();
    let runner = fx.runner(&[
        ("FAKE_TF_LOCKED", "plan"),
        ("FAKE_TF_LOCK_WHO", "alice@laptop"),
        ("FAKE_TF_LOCK_ID", "0e1d2c3b-aaaa-bbbb-cccc-000000000001"),
    ]);
    let err = runner.plan(&fx.file("p"), &Discard).await.unwrap_err();
    let RunError::Locked {
        lock, diagnostic, ..
    } = &err
    else {
        panic!("expected Locked, got {err:?}");
    };
    assert_eq!(lock.who, "alice@laptop");
    assert_eq!(lock.id, "0e1d2c3b-aaaa-bbbb-cccc-000000000001");
    assert_eq!(lock.created, "2026-11-26 16:00:00.123456789 +0000 UTC");
    assert!(diagnostic.detail.contains("Lock Info:"));
    let text = err.to_string();
    assert!(text.contains("locked by alice@laptop"), "{text}");
    assert!(text.contains("force-unlock 0e1d2c3b-aaaa-bbbb-cccc-000000000001"));
}

#[tokio::test]
async fn ctrl_c_sends_sigint_and_waits_for_terraform_to_release_the_lock() {
    let fx = Fixture::new();
    let plan_file = fx.file("p");
    std::fs::write(&plan_file, "plan").unwrap();
    let started = fx.file("started");
    let released = fx.file("released");
    let (handle, interrupt) = Interrupt::channel();
    let runner = fx
        .runner(&[
            ("FAKE_TF_APPLY_SECONDS", "60"),
            ("FAKE_TF_STARTED", started.to_str().unwrap()),
            ("FAKE_TF_RELEASED", released.to_str().unwrap()),
        ])
        .with_interrupt(interrupt);
    let events = Collect::default();
    let begun = Instant::now();
    let (result, ()) = tokio::join!(runner.apply(&plan_file, &events), async {
        wait_for_file(&started, Duration::from_secs(10)).await;
        handle.interrupt();
    });
    assert!(
        matches!(result, Err(RunError::Interrupted { command: "apply" })),
        "{result:?}"
    );
    assert!(begun.elapsed() < Duration::from_secs(10));
    assert!(
        released.exists(),
        "the runner returned only after Terraform cleaned up"
    );
    let events = events.events();
    assert!(
        events
            .iter()
            .any(|e| e.level == Level::Warn && e.message.contains("interrupted"))
    );

    // A stopped run stays stopped: nothing else starts.
    let before = fx.invocations().len();
    let again = runner.output(&Discard).await.unwrap_err();
    assert!(matches!(again, RunError::Interrupted { command: "output" }));
    assert_eq!(fx.invocations().len(), before);
}

#[tokio::test]
async fn a_second_ctrl_c_kills_a_terraform_that_does_not_stop() {
    let fx = Fixture::new();
    let plan_file = fx.file("p");
    std::fs::write(&plan_file, "plan").unwrap();
    let started = fx.file("started");
    let (handle, interrupt) = Interrupt::channel();
    let runner = fx
        .runner(&[
            ("FAKE_TF_APPLY_SECONDS", "60"),
            ("FAKE_TF_IGNORE_SIGINT", "1"),
            ("FAKE_TF_STARTED", started.to_str().unwrap()),
        ])
        .with_interrupt(interrupt);
    let begun = Instant::now();
    let (result, pid) = tokio::join!(runner.apply(&plan_file, &Discard), async {
        wait_for_file(&started, Duration::from_secs(10)).await;
        let pid: i32 = std::fs::read_to_string(&started)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        handle.interrupt();
        // Terraform ignores the first; the runner must still be waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            support::machine::running(pid),
            "Terraform still runs after the first Ctrl-C"
        );
        handle.interrupt();
        pid
    });
    assert!(
        matches!(result, Err(RunError::Interrupted { .. })),
        "{result:?}"
    );
    assert!(
        !support::machine::running(pid),
        "Terraform is gone after the second"
    );
    assert!(begun.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn output_goes_to_files_that_are_removed_afterwards() {
    let fx = Fixture::new();
    let runner = fx.runner(&[]);
    let outputs = runner.output(&Discard).await.unwrap();
    assert_eq!(outputs["vpc_id"].value, "vpc-0fake");
    let left: Vec<_> = std::fs::read_dir(fx.work().join("tfoutput"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
