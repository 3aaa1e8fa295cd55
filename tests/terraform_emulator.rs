//! Real Terraform and the real hashicorp/aws provider apply the rendered
//! default cluster against moto (with the EKS shim in front), through the
//! runner: init with the S3 backend and S3-native locking, plan, apply,
//! outputs, a re-plan that finds nothing to change, a lock held elsewhere,
//! and destroy. Takes a minute or two; `scripts/test` provides everything.

mod support;

use std::path::Path;
use std::time::Instant;

use terrace::config::{self, Request};
use terrace::progress::{Collect, Discard};
use terrace::render::{self, Outputs};
use terrace::terraform::{Backend, RunError, Runner};

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_terraform_applies_and_destroys_the_default_cluster_against_the_emulator() {
    terrace::tls::install_crypto_provider();
    let terraform = terrace::ops::Context::new(None, terrace::ops::Env::from_process())
        .unwrap()
        .terraform()
        .expect("terraform on PATH (or TERRACE_TERRAFORM)");
    let account = support::moto::account_with_eks_shim().await;
    let sdk = account.sdk_config(REGION).await;

    let spec = config::load(
        &Request {
            region: REGION.into(),
            ..Request::default()
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join(&spec.name);
    render::render(&spec, &Outputs::placeholders())
        .unwrap()
        .write_atomic(&work)
        .unwrap();
    let rc = support::terraform::cli_config(tmp.path());

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("terrace-state-{}-{REGION}", account.id);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let backend = Backend::for_cluster(&bucket, &spec.name, REGION).path_style(true);

    let mut runner = Runner::new(terraform, &work)
        .with_env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap())
        .with_env(
            "XDG_CACHE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("xdg-cache")
                .to_str()
                .unwrap(),
        );
    for (key, value) in account.env(REGION) {
        runner = runner.with_env(&key, &value);
    }
    let plan_file = work.join("terraform/terrace.tfplan");
    let events = Collect::default();

    let begun = Instant::now();
    runner.init(&backend, &events).await.unwrap();
    let init_took = begun.elapsed();

    let begun = Instant::now();
    let plan = runner.plan(&plan_file, &events).await.unwrap();
    let plan_took = begun.elapsed();
    assert!(plan.has_changes);
    assert!(plan.changes.add > 50, "{:?}", plan.changes);
    let creates = plan.resources.iter().filter(|r| r.action == "create");
    assert_eq!(creates.count() as u64, plan.changes.add);

    let begun = Instant::now();
    let applied = runner.apply(&plan_file, &events).await.unwrap();
    let apply_took = begun.elapsed();
    assert_eq!(applied.add, plan.changes.add);

    let outputs = runner.output(&Discard).await.unwrap();
    let vpc_id = outputs["vpc_id"].value.as_str().unwrap().to_string();
    assert!(vpc_id.starts_with("vpc-"), "{vpc_id}");
    let endpoint = outputs["cluster_endpoint"].value.as_str().unwrap();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    assert_eq!(outputs["cluster_name"].value, spec.name.as_str());

    // State in the bucket, and the lock released after apply.
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [backend.key.as_str()]);

    // Every gap the shim fills shows up here as drift if it is not filled.
    let replan = runner.plan(&plan_file, &Discard).await.unwrap();
    assert!(
        !replan.has_changes,
        "a re-plan right after apply must find nothing to change (detailed exit code 0): {:?}",
        replan.resources
    );

    // A lock held by another machine is reported with its holder.
    let lock_key = format!("{}.tflock", backend.key);
    let lock = serde_json::json!({
        "ID": "5d0b3a4e-1111-2222-3333-444455556666",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "ci@elsewhere",
        "Version": "1.11.4",
        "Created": "2026-11-26T16:00:00.000000Z",
        "Path": format!("{bucket}/{}", backend.key),
    });
    s3.put_object()
        .bucket(&bucket)
        .key(&lock_key)
        .body(lock.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let err = runner.plan(&plan_file, &Discard).await.unwrap_err();
    let RunError::Locked { lock, .. } = &err else {
        panic!("expected a lock conflict, got {err}");
    };
    assert_eq!(lock.who, "ci@elsewhere");
    assert_eq!(lock.id, "5d0b3a4e-1111-2222-3333-444455556666");
    s3.delete_object()
        .bucket(&bucket)
        .key(&lock_key)
        .send()
        .await
        .unwrap();

    let teardown = runner
        .plan_destroy(&work.join("terraform/destroy.tfplan"), &Discard)
        .await
        .unwrap();
    assert_eq!(teardown.changes.destroy, applied.add);
    let deletes = teardown.resources.iter().filter(|r| r.action == "delete");
    assert_eq!(deletes.count() as u64, applied.add);

    let begun = Instant::now();
    let destroyed = runner.destroy(&events).await.unwrap();
    let destroy_took = begun.elapsed();
    assert_eq!(destroyed.destroy, applied.add);

    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpcs = ec2.describe_vpcs().send().await.unwrap();
    assert!(
        vpcs.vpcs()
            .iter()
            .all(|v| v.vpc_id() != Some(vpc_id.as_str()))
    );
    let eks = aws_sdk_eks::Client::new(&sdk);
    assert!(
        eks.list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .is_empty()
    );
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [backend.key.as_str()], "state stays, lock released");

    let progress = events
        .events()
        .iter()
        .filter(|e| e.fields.get("status").is_some())
        .count();
    assert!(
        progress as u64 >= 2 * applied.add,
        "start and end of each resource"
    );
    eprintln!(
        "real terraform against moto: init {init_took:.1?}, plan {plan_took:.1?}, \
         apply {apply_took:.1?} ({} resources), destroy {destroy_took:.1?}",
        applied.add
    );
}
