//! Every IAM policy Terraform creates for a cluster, through `parliament`
//! (PyPI), as Terraform renders it: the fleet fixture's us-east-1 cluster
//! (every addon, two ExternalDNS zones) is applied against moto, its state
//! read with `terraform show -json`, and each role's inline policy linted.
//!
//! A finding passes only when the statement it points at carries, in the
//! Terraform source, a comment `# parliament:<ISSUE>: <why>` beside its
//! actions; every such comment must be used and give a reason. Trust
//! policies are not linted: parliament audits identity policies and reports
//! a trust policy's missing Resource as malformed.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use terrace::config::Request;
use terrace::progress::Discard;
use terrace::render::{self, Outputs, Tree};
use terrace::terraform::{Backend, Runner};

const REGION: &str = "us-east-1";

fn parliament() -> PathBuf {
    std::env::var_os("TERRACE_PARLIAMENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("parliament"))
}

/// One `statement { ... }` block of the rendered Terraform: the action
/// names in it and its `# parliament:<ISSUE>: <reason>` comments.
#[derive(Debug)]
struct Block {
    file: String,
    actions: BTreeSet<String>,
    justified: Vec<(String, String)>,
}

fn is_action(s: &str) -> bool {
    s.split_once(':').is_some_and(|(service, name)| {
        !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
    })
}

fn statement_blocks(tree: &Tree) -> Vec<Block> {
    let mut blocks = Vec::new();
    for (path, contents) in tree.iter().filter(|(p, _)| p.ends_with(".tf")) {
        let text = String::from_utf8_lossy(contents);
        let mut current: Option<(usize, Block)> = None;
        let mut depth = 0usize;
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_none() && trimmed == "statement {" {
                current = Some((
                    depth,
                    Block {
                        file: path.to_string(),
                        actions: BTreeSet::new(),
                        justified: Vec::new(),
                    },
                ));
            }
            depth += line.matches('{').count();
            depth -= line.matches('}').count().min(depth);
            if let Some((start, block)) = current.as_mut() {
                if let Some(rest) = trimmed.strip_prefix("# parliament:")
                    && let Some((issue, reason)) = rest.split_once(':')
                {
                    block
                        .justified
                        .push((issue.trim().to_string(), reason.trim().to_string()));
                }
                for quoted in line.split('"').skip(1).step_by(2) {
                    if is_action(quoted) {
                        block.actions.insert(quoted.to_string());
                    }
                }
                if depth <= *start {
                    blocks.push(current.take().unwrap().1);
                }
            }
        }
    }
    blocks
}

/// Every `aws_iam_role_policy` in `terraform show -json` state output.
fn role_policies(module: &Value, out: &mut Vec<(String, Value)>) {
    for resource in module["resources"].as_array().into_iter().flatten() {
        if resource["type"] == "aws_iam_role_policy" {
            let policy = resource["values"]["policy"].as_str().unwrap();
            out.push((
                resource["address"].as_str().unwrap().to_string(),
                serde_json::from_str(policy).unwrap(),
            ));
        }
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        role_policies(child, out);
    }
}

fn actions_of(statement: &Value) -> BTreeSet<String> {
    match &statement["Action"] {
        Value::String(a) => BTreeSet::from([a.clone()]),
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

async fn applied_state(work: &Path, tree: &Tree) -> Value {
    let terraform = terrace::ops::Context::new(None, terrace::ops::Env::from_process())
        .unwrap()
        .terraform()
        .expect("terraform on PATH (or TERRACE_TERRAFORM)");
    let account = support::moto::account_with_eks_shim().await;
    let sdk = account.sdk_config(REGION).await;
    let route53 = aws_sdk_route53::Client::new(&sdk);
    for zone in ["example.com", "acme.example.org"] {
        route53
            .create_hosted_zone()
            .name(zone)
            .caller_reference(zone)
            .send()
            .await
            .unwrap();
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("terrace-state-{}-{REGION}", account.id);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    tree.write_atomic(work).unwrap();
    let rc = support::terraform::cli_config(work.parent().unwrap());
    let mut env: Vec<(String, String)> = account.env(REGION);
    env.push(("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()));
    env.push((
        "TF_DATA_DIR".into(),
        work.join("tfdata").display().to_string(),
    ));
    let mut runner = Runner::new(terraform.clone(), work);
    for (key, value) in &env {
        runner = runner.with_env(key, value);
    }
    let name = work.file_name().unwrap().to_str().unwrap();
    runner
        .init(&Backend::for_cluster(&bucket, name, REGION), &Discard)
        .await
        .unwrap();
    let plan = work.join("tfplan");
    runner.plan(&plan, &Discard).await.unwrap();
    runner.apply(&plan, &Discard).await.unwrap();
    let shown = Command::new(&terraform.path)
        .args(["show", "-json", "-no-color"])
        .current_dir(work.join("terraform"))
        .envs(env)
        .output()
        .expect("terraform show runs");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    serde_json::from_slice(&shown.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iam_policy_passes_parliament_or_is_justified_beside_its_statement() {
    terrace::tls::install_crypto_provider();
    let spec = terrace::cluster::spec(&Request {
        config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.yaml")),
        region: REGION.into(),
        name: None,
    })
    .unwrap();
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join(&spec.name);
    let state = applied_state(&work, &tree).await;

    let mut policies = Vec::new();
    role_policies(&state["values"]["root_module"], &mut policies);
    // Four addons, the control plane's KMS grant, the flow logs role.
    assert_eq!(policies.len(), 6, "{policies:#?}");

    // One statement per line, so a finding's line names its statement.
    let dir = tmp.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    let mut statements: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, (address, policy)) in policies.iter().enumerate() {
        let list = match &policy["Statement"] {
            Value::Array(s) => s.clone(),
            one => vec![one.clone()],
        };
        let mut text = format!("{{\"Version\": {},\n\"Statement\": [\n", policy["Version"]);
        let lines: Vec<String> = list.iter().map(Value::to_string).collect();
        text.push_str(&lines.join(",\n"));
        text.push_str("\n]}\n");
        std::fs::write(dir.join(format!("{i}.json")), text).unwrap();
        statements.push((address.clone(), list));
    }
    let output = Command::new(parliament())
        .args([
            "--directory",
            dir.to_str().unwrap(),
            "--include_policy_extension",
            "json",
            "--json",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run parliament ({e}); run scripts/test, which installs it")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() || !stdout.trim().is_empty(),
        "parliament failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let blocks = statement_blocks(&tree);
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut unjustified = Vec::new();
    for finding in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let finding: Value = serde_json::from_str(finding).unwrap();
        let issue = finding["issue"].as_str().unwrap().to_string();
        let file = finding["location"]["filepath"].as_str().unwrap();
        let index: usize = Path::new(file)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (address, list) = &statements[index];
        let line = finding["location"]["line"].as_u64().unwrap_or(0) as usize;
        let statement = line.checked_sub(3).and_then(|i| list.get(i));
        let actions = statement.map(actions_of).unwrap_or_default();
        let justified = blocks.iter().find(|b| {
            !actions.is_empty()
                && actions.is_subset(&b.actions)
                && b.justified.iter().any(|(i, _)| *i == issue)
        });
        match justified {
            Some(block) => {
                used.insert((block.file.clone(), issue));
            }
            None => unjustified.push(format!(
                "{address}: {issue} {} on {}",
                finding["detail"],
                statement.map(Value::to_string).unwrap_or_default()
            )),
        }
    }
    assert!(
        unjustified.is_empty(),
        "parliament findings without a `# parliament:<ISSUE>: <why>` comment beside the statement:\n{}",
        unjustified.join("\n")
    );
    for block in &blocks {
        for (issue, reason) in &block.justified {
            assert!(reason.len() >= 20, "{}: {issue}: give a reason", block.file);
            assert!(
                used.contains(&(block.file.clone(), issue.clone())),
                "{}: `# parliament:{issue}` justifies nothing parliament reports any more; remove it",
                block.file
            );
        }
    }
}
