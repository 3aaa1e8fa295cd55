//! The `terrace` binary end to end: exit codes, error lines, files written.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn terrace(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(args)
        .current_dir(cwd)
        // render must need no AWS account: make any attempt to use one fail.
        .env("AWS_ACCESS_KEY_ID", "AKIAINVALIDINVALID00")
        .env("AWS_SECRET_ACCESS_KEY", "invalid")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .output()
        .expect("terrace runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn render_with_no_configuration_writes_the_work_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(tmp.path(), &["cluster", "render", "--region", "us-east-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tmp.path().join(".terrace/terrace-us-east-1");
    let mut top: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["manifests", "terraform"]);
    assert!(dir.join("terraform/main.tf").is_file());
    assert!(dir.join("terraform/modules/network/main.tf").is_file());
    for addon in [
        "external-secrets",
        "reloader",
        "aws-load-balancer-controller",
        "external-dns",
        "karpenter",
    ] {
        assert!(
            dir.join(format!("manifests/{addon}/application.yaml"))
                .is_file(),
            "{addon}"
        );
    }
    assert!(dir.join("manifests/karpenter/nodepool.yaml").is_file());
    assert!(dir.join("manifests/karpenter/ec2nodeclass.yaml").is_file());
    assert!(
        dir.join("manifests/external-secrets/cluster-secret-store.yaml")
            .is_file()
    );
    assert!(stdout(&o).contains("terrace-us-east-1"));
}

#[test]
fn rendering_twice_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    for out in ["a", "b"] {
        let o = terrace(
            tmp.path(),
            &["cluster", "render", "--region", "eu-west-1", "--out", out],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(files(&tmp.path().join("a")), files(&tmp.path().join("b")));
    // Rendering over an earlier render replaces it in place.
    let o = terrace(
        tmp.path(),
        &["cluster", "render", "--region", "eu-west-1", "--out", "a"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files(&tmp.path().join("a")), files(&tmp.path().join("b")));
}

#[test]
fn picks_up_terrace_yaml_in_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("terrace.yaml"), "fleet: acme\n").unwrap();
    let o = terrace(tmp.path(), &["cluster", "render", "--region", "us-west-2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        tmp.path()
            .join(".terrace/acme-us-west-2/terraform/main.tf")
            .is_file()
    );
}

/// Bad input: exit 2, one `error:` line naming the field, nothing written.
fn rejects(config: Option<&str>, args: &[&str], expected: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut full = vec!["cluster", "render", "--out", "out"];
    if let Some(yaml) = config {
        fs::write(tmp.path().join("terrace.yaml"), yaml).unwrap();
    }
    full.extend_from_slice(args);
    let o = terrace(tmp.path(), &full);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for needle in expected {
        assert!(lines[0].contains(needle), "{needle:?} in {err}");
    }
    assert!(!tmp.path().join("out").exists(), "nothing written");
    assert!(!err.contains("panicked"));
}

#[test]
fn unknown_region() {
    rejects(
        None,
        &["--region", "mars-1"],
        &["--region", "mars-1", "not an AWS commercial region"],
    );
    rejects(
        None,
        &["--region", "eu-west1"],
        &["did you mean eu-west-1?"],
    );
}

#[test]
fn unknown_key() {
    rejects(
        Some("defaults:\n  network:\n    cidr: 10.0.0.0/16\n    natt: single\n"),
        &["--region", "us-east-1"],
        &[
            "terrace.yaml",
            "defaults.network.natt",
            "unknown field",
            "line 4",
        ],
    );
}

/// `addons.argocd.plugins`: each mistake is one line naming the field.
#[test]
fn argocd_plugins_are_checked_field_by_field() {
    let plugins =
        |list: &str| format!("defaults:\n  addons:\n    argocd:\n      plugins: {list}\n");
    let region = ["--region", "us-east-1"];
    rejects(
        Some(&plugins("[{preset: cdk8s}]")),
        &region,
        &[
            "defaults.addons.argocd.plugins[0].image",
            "is required",
            "sha256",
        ],
    );
    rejects(
        Some(&plugins(
            "[{name: My_Plugin, image: 'node:22', generate: [make]}]",
        )),
        &region,
        &[
            "defaults.addons.argocd.plugins[0].name",
            "\"My_Plugin\"",
            "lowercase",
        ],
    );
    rejects(
        Some(&plugins(
            "[{preset: cdk8s, image: 'node:22'}, {preset: cdk8s, image: 'node:24'}]",
        )),
        &region,
        &[
            "defaults.addons.argocd.plugins[1].name",
            "already defined by plugins[0]",
        ],
    );
    rejects(
        Some(&plugins("[{preset: helmfile, image: 'node:22'}]")),
        &region,
        &[
            "defaults.addons.argocd.plugins[0].preset",
            "unknown preset \"helmfile\"",
            "cdk8s",
        ],
    );
    rejects(
        Some(&plugins("[{preset: cdk8s, image: ghcr.io/acme/cdk8s}]")),
        &region,
        &[
            "defaults.addons.argocd.plugins[0].image",
            "no tag or digest",
        ],
    );
}

#[test]
fn overlapping_cidrs() {
    let yaml = "clusters:\n  - region: us-east-1\n    network: { cidr: 10.0.0.0/16 }\n  - region: us-west-2\n    network: { cidr: 10.0.128.0/20 }\n";
    rejects(
        Some(yaml),
        &["--region", "us-east-1"],
        &["clusters[1].network.cidr", "overlaps", "clusters[0]"],
    );
}

#[test]
fn name_too_long_for_derived_iam_names() {
    rejects(
        None,
        &[
            "--region",
            "us-east-1",
            "--name",
            "a-cluster-name-that-is-long-but-a-valid-dns-label",
        ],
        &["--name", "too long", "IAM role name", "64"],
    );
}

#[test]
fn min_greater_than_max() {
    rejects(
        Some("defaults:\n  system_nodes: { min: 5, max: 3 }\n"),
        &["--region", "us-east-1"],
        &["defaults.system_nodes.min", "greater than system_nodes.max"],
    );
}

#[test]
fn one_system_node_with_karpenter() {
    rejects(
        Some("defaults:\n  system_nodes: { min: 1, desired: 1 }\n"),
        &["--region", "us-east-1"],
        &[
            "defaults.system_nodes.desired",
            "cannot run Karpenter",
            "at least 2",
            "addons.karpenter.enabled: false",
        ],
    );
    rejects(
        Some("defaults:\n  system_nodes: { min: 1 }\n"),
        &["--region", "us-east-1"],
        &["defaults.system_nodes.min", "cannot run Karpenter"],
    );
}

#[test]
fn one_system_node_without_karpenter_renders() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("terrace.yaml"),
        "defaults:\n  system_nodes: { min: 1, desired: 1 }\n  addons: { karpenter: { enabled: false } }\n",
    )
    .unwrap();
    let o = terrace(
        tmp.path(),
        &["cluster", "render", "--region", "us-east-1", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let main = fs::read_to_string(tmp.path().join("out/terraform/main.tf")).unwrap();
    assert!(main.contains("desired_size          = 1"), "{main}");
}

#[test]
fn invalid_namespace_label() {
    rejects(
        Some("defaults:\n  addons: { external-secrets: { namespace_label: secrets } }\n"),
        &["--region", "us-east-1"],
        &[
            "defaults.addons.external-secrets.namespace_label",
            "key=value",
        ],
    );
}

#[test]
fn invalid_cidr_names_the_cluster_entry() {
    rejects(
        Some(
            "clusters:\n  - region: us-east-1\n  - region: eu-west-1\n    network: { cidr: 10.1.0.0/33 }\n",
        ),
        &["--region", "us-east-1"],
        &[
            "clusters[1].network.cidr",
            "\"10.1.0.0/33\" is not a valid IPv4 CIDR",
        ],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("bad.yaml"),
        "defaults:\n  network: { azs: 9 }\n  kubernetes_version: \"1.20\"\n  addons: { external-dns: { zones: [nodot] } }\n",
    )
    .unwrap();
    let o = terrace(
        tmp.path(),
        &[
            "--config",
            "bad.yaml",
            "cluster",
            "render",
            "--region",
            "us-east-1",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(
        err.contains("defaults.network.azs: 9 is not allowed: use 2 to 6"),
        "{err}"
    );
    assert!(
        err.contains("defaults.kubernetes_version: \"1.20\" is not supported"),
        "{err}"
    );
    assert!(err.contains("defaults.addons.external-dns.zones"), "{err}");
}

#[test]
fn errors_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(
        tmp.path(),
        &[
            "--output", "json", "cluster", "render", "--region", "mars-1",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["event"], "error");
    assert!(v["problems"][0].as_str().unwrap().contains("--region"));
}

#[test]
fn a_failed_render_leaves_the_previous_tree_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(
        tmp.path(),
        &["cluster", "render", "--region", "us-east-1", "--out", "out"],
    );
    assert!(o.status.success());
    let before = files(&tmp.path().join("out"));
    fs::write(
        tmp.path().join("terrace.yaml"),
        "defaults:\n  network: { cidr: nope }\n",
    )
    .unwrap();
    let o = terrace(
        tmp.path(),
        &["cluster", "render", "--region", "us-east-1", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(files(&tmp.path().join("out")), before);
}

#[test]
fn refuses_to_overwrite_a_directory_it_did_not_render() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("mine")).unwrap();
    fs::write(tmp.path().join("mine/notes.txt"), "keep").unwrap();
    let o = terrace(
        tmp.path(),
        &[
            "cluster",
            "render",
            "--region",
            "us-east-1",
            "--out",
            "mine",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(tmp.path().join("mine/notes.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn json_render_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(
        tmp.path(),
        &[
            "--output",
            "json",
            "cluster",
            "render",
            "--region",
            "ap-southeast-2",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["event"], "rendered");
    assert_eq!(v["summary"]["cluster"], "terrace-ap-southeast-2");
    assert!(v["summary"]["manifests"].as_array().unwrap().len() >= 8);
}

#[test]
fn addons_list() {
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(tmp.path(), &["addons", "list"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("NAME"), "{out}");
    for addon in [
        "argocd",
        "external-secrets",
        "reloader",
        "aws-load-balancer-controller",
        "external-dns",
        "karpenter",
    ] {
        assert!(out.contains(addon), "{addon}");
    }
    let o = terrace(tmp.path(), &["--output", "json", "addons", "list"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let argocd = v["addons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "argocd")
        .unwrap();
    assert_eq!(
        argocd["manifest"]["sha256"],
        "795a3a972224da6a7f9d32c3e946445f062b60fb46028476715affeb688236e3"
    );
}

#[test]
fn usage_errors_exit_2_and_version_works() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        terrace(tmp.path(), &["cluster", "render"]).status.code(),
        Some(2)
    );
    assert_eq!(
        terrace(tmp.path(), &["cluster", "explode"]).status.code(),
        Some(2)
    );
    let o = terrace(tmp.path(), &["--version"]);
    assert!(stdout(&o).starts_with("terrace "));
}

/// `up` checks every flag before its first AWS call (the endpoint here
/// refuses every connection, so a call would end in another error), and
/// neither writes a work directory nor takes a lock.
#[test]
fn up_checks_every_flag_before_calling_aws() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--yes",
                "--argocd-manifest",
                "https://mirror.example/install.yaml",
                "--argocd-sha256",
                "xyz",
            ],
            "--argocd-sha256: \"xyz\" is not a SHA-256: expected 64 hexadecimal digits",
        ),
        (
            &["--yes", "--argocd-manifest", "missing.yaml"],
            "--argocd-manifest: missing.yaml: no such file",
        ),
        (&[], "--yes: required when not run from a terminal"),
        (
            &["--yes", "--name", "Bad_Name"],
            "--name: \"Bad_Name\" must be a lowercase DNS label",
        ),
    ];
    for (flags, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = vec!["cluster", "up", "--region", "us-east-1"];
        args.extend_from_slice(flags);
        let o = terrace(tmp.path(), &args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!tmp.path().join(".terrace").exists(), "{flags:?}");
    }
}

#[test]
fn up_and_rebuild_check_ttl_and_their_flags_before_calling_aws() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["cluster", "up", "--yes", "--ttl", "30s"],
            "--ttl: 30s is shorter than a minute",
        ),
        (
            &["cluster", "rebuild", "--yes", "--ttl", "0m"],
            "--ttl: 0s is shorter than a minute",
        ),
        (
            &["cluster", "rebuild"],
            "--yes: required when not run from a terminal",
        ),
        (
            &["cluster", "rebuild", "--yes", "--name", "Bad_Name"],
            "--name: \"Bad_Name\" must be a lowercase DNS label",
        ),
        (
            &["cluster", "rebuild", "--yes", "--if-older-than", "1.5h"],
            "--if-older-than",
        ),
        (&["cluster", "up", "--yes", "--ttl", "soon"], "--ttl"),
    ];
    for (flags, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = flags.to_vec();
        args.extend_from_slice(&["--region", "us-east-1"]);
        let o = terrace(tmp.path(), &args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!tmp.path().join(".terrace").exists(), "{flags:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("terrace.yaml"),
        "defaults:\n  ttl: 2 days\n",
    )
    .unwrap();
    let o = terrace(tmp.path(), &["cluster", "render", "--region", "us-east-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("terrace.yaml: defaults.ttl:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn token_checks_the_role_arn_before_calling_aws() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "token",
        "--cluster",
        "c",
        "--region",
        "us-east-1",
        "--role-arn",
        "admin",
    ];
    let o = terrace(tmp.path(), &args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--role-arn: \"admin\" is not an IAM role ARN"),
        "{err}"
    );
}

#[test]
fn drill_checks_every_flag_before_calling_aws() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["drill", "--yes", "--rto", "0s"],
            "--rto: must be longer than 0s",
        ),
        (&["drill", "--yes", "--rto", "soon"], "--rto"),
        (
            &["drill", "--yes", "--to-region", "us-east-1"],
            "--to-region: us-east-1 is the drilled cluster's own region",
        ),
        (
            &["drill", "--yes", "--to-region", "mars-east-1"],
            "--to-region: ",
        ),
        (&["drill"], "--yes: required when not run from a terminal"),
        (
            &["drill", "--yes", "--name", "Bad_Name"],
            "--name: \"Bad_Name\" must be a lowercase DNS label",
        ),
        (
            &["drill", "history", "--name", "Bad_Name"],
            "--name: \"Bad_Name\"",
        ),
    ];
    for (flags, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut args = flags.to_vec();
        args.extend_from_slice(&["--region", "us-east-1"]);
        let o = terrace(tmp.path(), &args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert_eq!(files(tmp.path()), [], "{flags:?}: nothing written");
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = terrace(tmp.path(), &["drill", "--yes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--region: required"), "{}", stderr(&o));
}
