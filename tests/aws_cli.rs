//! The AWS commands end to end: the `terrace` binary against the moto
//! emulator, configured only through the environment (`Account::env`), as
//! a user or CI job would run it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde_json::Value;
use support::moto::{self, Account};
use support::seed;

/// Runs `terrace` as `account` in `region`, in an empty directory with its
/// own HOME and no other AWS or kubeconfig settings.
fn terrace(account: &Account, region: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(account.env(region))
        .output()
        .expect("terrace runs")
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn event<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {lines:?}"))
}

/// Query parameters of a URL, decoded enough for comparisons.
fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (
                k.to_string(),
                v.replace("%2F", "/")
                    .replace("%3B", ";")
                    .replace("%3A", ":"),
            )
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    &params
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {params:?}"))
        .1
}

#[tokio::test]
async fn list_shows_only_terraces_clusters_in_the_asked_or_enabled_regions() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    for (region, name) in [
        ("us-east-1", "terrace-us-east-1"),
        ("eu-west-1", "terrace-eu-west-1"),
        ("ap-southeast-2", "drill-sydney"),
    ] {
        seed::eks_cluster(&account, region, name, &seed::terrace_tags(name)).await;
    }
    seed::eks_cluster(&account, "us-east-1", "someone-elses", &[]).await;
    // Managed by Terrace, but the cluster tag names another cluster.
    seed::eks_cluster(
        &account,
        "eu-west-1",
        "renamed",
        &seed::terrace_tags("original"),
    )
    .await;

    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &[
            "cluster",
            "list",
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let lines = json_lines(&o);
    let clusters = event(&lines, "clusters")["clusters"].as_array().unwrap();
    let found: Vec<(&str, &str)> = clusters
        .iter()
        .map(|c| (c["region"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            ("eu-west-1", "terrace-eu-west-1"),
            ("us-east-1", "terrace-us-east-1")
        ]
    );
    for c in clusters {
        assert_eq!(c["status"], "ACTIVE");
        assert!(c["version"].is_string());
        assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(c["age_seconds"].as_u64().unwrap() < 3600);
    }

    // No --region: every region the account has enabled.
    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["cluster", "list", "--output", "json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let lines = json_lines(&o);
    let listing = event(&lines, "clusters");
    let names: Vec<&str> = listing["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["drill-sydney", "terrace-eu-west-1", "terrace-us-east-1"]
    );
    let regions = listing["regions"].as_array().unwrap();
    assert!(regions.len() > 10, "{regions:?}");
    assert!(!regions.iter().any(|r| r == "ap-east-1"), "not enabled");

    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["cluster", "list", "--region", "us-east-1"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("terrace-us-east-1  us-east-1"), "{out}");
    assert!(!out.contains("someone-elses"), "{out}");
}

#[tokio::test]
async fn status_reports_the_right_cluster_and_its_node_groups() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    for region in ["us-east-1", "eu-west-1"] {
        let name = format!("terrace-{region}");
        seed::eks_cluster(&account, region, &name, &seed::terrace_tags(&name)).await;
    }
    seed::node_group(
        &account,
        "eu-west-1",
        "terrace-eu-west-1",
        "terrace-eu-west-1-system",
    )
    .await;

    let o = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &[
            "cluster",
            "status",
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let lines = json_lines(&o);
    let status = &event(&lines, "status")["cluster"];
    assert_eq!(status["name"], "terrace-eu-west-1");
    assert_eq!(status["region"], "eu-west-1");
    assert_eq!(status["status"], "ACTIVE");
    assert_eq!(status["managed_by_terrace"], true);
    assert!(
        status["endpoint"]
            .as_str()
            .unwrap()
            .contains("eu-west-1.eks.amazonaws.com")
    );
    let groups = status["node_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "terrace-eu-west-1-system");
    assert_eq!(groups[0]["status"], "ACTIVE");
    assert_eq!(groups[0]["healthy"], true);
    assert_eq!(groups[0]["desired"], 2);

    let o = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &["cluster", "status", "--region", "eu-west-1"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("terrace-eu-west-1 (eu-west-1)"), "{out}");
    assert!(
        out.contains("node group terrace-eu-west-1-system: ACTIVE healthy, 2 nodes (2..4)"),
        "{out}"
    );

    let o = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &[
            "cluster",
            "status",
            "--region",
            "eu-west-1",
            "--name",
            "absent",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("error: no EKS cluster named absent in eu-west-1"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn token_is_a_presigned_sts_url_bound_to_the_cluster() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    let before = SystemTime::now();
    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["token", "--cluster", "demo", "--region", "eu-west-1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let credential: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        credential["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
    assert_eq!(credential["kind"], "ExecCredential");

    let expires = credential["status"]["expirationTimestamp"]
        .as_str()
        .unwrap();
    let expires = aws_smithy_types::DateTime::from_str(
        expires,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .unwrap();
    let expires = SystemTime::try_from(expires).unwrap();
    let lifetime = expires.duration_since(before).unwrap();
    assert!(
        lifetime > Duration::from_secs(13 * 60) && lifetime <= Duration::from_secs(14 * 60 + 5),
        "{lifetime:?}"
    );

    let token = credential["status"]["token"].as_str().unwrap();
    let encoded = token.strip_prefix("k8s-aws-v1.").expect("prefix");
    assert!(!encoded.contains(['=', '+', '/']), "base64url, no padding");
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    assert!(
        url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
        "{url}"
    );
    let params = query(&url);
    assert_eq!(param(&params, "Action"), "GetCallerIdentity");
    assert_eq!(param(&params, "Version"), "2011-06-15");
    assert_eq!(param(&params, "X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    assert_eq!(param(&params, "X-Amz-Expires"), "60");
    let signed: Vec<&str> = param(&params, "X-Amz-SignedHeaders").split(';').collect();
    assert_eq!(signed, ["host", "x-k8s-aws-id"]);
    let credential_scope = param(&params, "X-Amz-Credential");
    assert!(
        credential_scope.starts_with(&format!("{}/", account.access_key_id)),
        "{credential_scope}"
    );
    assert!(
        credential_scope.ends_with("/eu-west-1/sts/aws4_request"),
        "{credential_scope}"
    );
    assert_eq!(param(&params, "X-Amz-Signature").len(), 64);
    assert!(params.iter().any(|(k, _)| k == "X-Amz-Security-Token"));
    assert!(!url.contains(&account.secret_access_key));

    // --role-arn: signed with the assumed role's credentials instead.
    let role = format!("arn:aws:iam::{}:role/cluster-admin", account.id);
    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &[
            "token",
            "--cluster",
            "demo",
            "--region",
            "eu-west-1",
            "--role-arn",
            &role,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let credential: Value = serde_json::from_slice(&o.stdout).unwrap();
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(
                credential["status"]["token"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("k8s-aws-v1.")
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    let key = param(&query(&url), "X-Amz-Credential")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(key, account.access_key_id);
}

#[tokio::test]
async fn kubeconfig_merges_into_an_existing_file_idempotently() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    seed::eks_cluster(
        &account,
        "eu-west-1",
        "terrace-eu-west-1",
        &seed::terrace_tags("terrace-eu-west-1"),
    )
    .await;
    let file = home.path().join("kube/config");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let existing = "\
apiVersion: v1
kind: Config
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev, namespace: apps}
users:
- name: kind-dev
  user: {token: keep-me}
current-context: kind-dev
preferences: {colors: true}
";
    std::fs::write(&file, existing).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let args = [
        "cluster",
        "kubeconfig",
        "--region",
        "eu-west-1",
        "--kubeconfig",
        file.to_str().unwrap(),
    ];
    let o = terrace(&account, "eu-west-1", home.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Wrote context terrace-eu-west-1"), "{out}");
    // moto's CA is random bytes, not a certificate: written, with a warning.
    assert!(out.contains("warning: the certificate authority"), "{out}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let first = std::fs::read_to_string(&file).unwrap();
    let doc: Value = serde_norway::from_str(&first).unwrap();
    assert_eq!(doc["current-context"], "terrace-eu-west-1");
    assert_eq!(doc["preferences"]["colors"], true);
    let names = |list: &str| -> Vec<String> {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    for list in ["clusters", "contexts", "users"] {
        assert_eq!(names(list), ["kind-dev", "terrace-eu-west-1"], "{list}");
    }
    assert_eq!(doc["users"][0]["user"]["token"], "keep-me");
    assert_eq!(doc["contexts"][0]["context"]["namespace"], "apps");
    let cluster = &doc["clusters"][1]["cluster"];
    assert!(cluster["server"].as_str().unwrap().starts_with("https://"));
    assert!(cluster["certificate-authority-data"].is_string());
    let exec = &doc["users"][1]["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(exec["command"], env!("CARGO_BIN_EXE_terrace"));
    assert_eq!(
        exec["args"],
        serde_json::json!([
            "token",
            "--cluster",
            "terrace-eu-west-1",
            "--region",
            "eu-west-1"
        ])
    );
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(
        doc["contexts"][1]["context"],
        serde_json::json!({"cluster": "terrace-eu-west-1", "user": "terrace-eu-west-1"})
    );

    // The exec plugin, run as kubectl would, answers with a credential.
    let args_of_exec: Vec<&str> = exec["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let o = terrace(&account, "eu-west-1", home.path(), &args_of_exec);
    assert!(o.status.success(), "{}", text(&o));
    let credential: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(credential["kind"], "ExecCredential");

    let o = terrace(&account, "eu-west-1", home.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is up to date"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);

    // Without --kubeconfig: the first KUBECONFIG path, else ~/.kube/config.
    let o = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &["cluster", "kubeconfig", "--region", "eu-west-1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let default = home.path().join(".kube/config");
    assert_eq!(
        std::fs::metadata(&default).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let o = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &[
            "cluster",
            "kubeconfig",
            "--region",
            "eu-west-1",
            "--name",
            "absent",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no EKS cluster named absent in eu-west-1"));
}

#[tokio::test]
async fn preflight_passes_on_a_clean_account_and_refuses_a_foreign_cluster_with_exit_3() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["cluster", "preflight", "--region", "us-east-1"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("  ok ")).count(),
        9,
        "{out}"
    );

    seed::eks_cluster(&account, "us-east-1", "terrace-us-east-1", &[]).await;
    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["cluster", "preflight", "--region", "us-east-1"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    let fail = out
        .lines()
        .find(|l| l.trim_start().starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(fail.contains("cluster name"), "{fail}");
    assert!(fail.contains("Terrace does not own"), "{fail}");
    assert!(fail.contains("choose another name"), "{fail}");
    assert!(
        out.contains(
            "error: preflight refused terrace-us-east-1: 1 check(s) failed (cluster name)"
        ),
        "{out}"
    );

    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &[
            "cluster",
            "preflight",
            "--region",
            "us-east-1",
            "--output",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let lines = json_lines(&o);
    let report = &event(&lines, "preflight")["report"];
    assert_eq!(report["passed"], false);
    assert_eq!(report["checks"].as_array().unwrap().len(), 9);
    event(&lines, "error");
}

#[tokio::test]
async fn state_bootstrap_then_no_change() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    let args = ["state", "bootstrap", "--region", "us-east-1"];
    let o = terrace(&account, "us-east-1", home.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let bucket = format!("terrace-state-{}-us-east-1", account.id);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("State bucket {bucket} (us-east-1): created\n")
    );
    let o = terrace(&account, "us-east-1", home.path(), &args);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("State bucket {bucket} (us-east-1): no change\n")
    );

    let o = terrace(
        &account,
        "us-east-1",
        home.path(),
        &["state", "bootstrap", "--region", "us-east1"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("did you mean us-east-1?"), "{}", text(&o));
}

/// No command prints a credential: not the secret key, not the session
/// token, and not a bearer token, at the highest verbosity, in text or
/// JSON, on success or failure.
#[tokio::test]
async fn no_credential_appears_in_any_output() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let home = tempfile::tempdir().unwrap();
    let name = "terrace-eu-west-1";
    seed::eks_cluster(&account, "eu-west-1", name, &seed::terrace_tags(name)).await;
    seed::eks_cluster(&account, "us-east-1", "terrace-us-east-1", &[]).await;

    let token_run = terrace(
        &account,
        "eu-west-1",
        home.path(),
        &["token", "--cluster", name, "--region", "eu-west-1", "-vvv"],
    );
    assert!(token_run.status.success(), "{}", text(&token_run));
    let credential: Value = serde_json::from_slice(&token_run.stdout).unwrap();
    let token = credential["status"]["token"].as_str().unwrap().to_string();
    // The token's own output carries the token (that is its job), and the
    // session token only inside its base64; nothing else.
    let token_text = text(&token_run);
    assert!(!token_text.contains(&account.secret_access_key));
    assert!(!token_text.contains(&account.session_token));

    let kubeconfig = home.path().join("config");
    let commands: Vec<Vec<&str>> = vec![
        vec!["cluster", "preflight", "--region", "eu-west-1"],
        vec!["cluster", "preflight", "--region", "us-east-1"],
        vec!["state", "bootstrap", "--region", "eu-west-1"],
        vec![
            "cluster",
            "list",
            "--region",
            "eu-west-1",
            "--region",
            "us-east-1",
        ],
        vec!["cluster", "status", "--region", "eu-west-1"],
        vec![
            "cluster",
            "status",
            "--region",
            "eu-west-1",
            "--name",
            "absent",
        ],
        vec![
            "cluster",
            "kubeconfig",
            "--region",
            "eu-west-1",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        vec![
            "token",
            "--cluster",
            name,
            "--region",
            "eu-west-1",
            "--role-arn",
            "not-an-arn",
        ],
    ];
    let secrets = [
        account.secret_access_key.as_str(),
        account.session_token.as_str(),
        token.as_str(),
    ];
    for command in &commands {
        for format in ["text", "json"] {
            let mut args = command.clone();
            args.extend(["-vvv", "--output", format]);
            let o = terrace(&account, "eu-west-1", home.path(), &args);
            let out = text(&o);
            for secret in secrets {
                assert!(
                    !out.contains(secret),
                    "{args:?} printed a credential:\n{out}"
                );
            }
        }
    }
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    for secret in secrets {
        assert!(!written.contains(secret));
    }
}
