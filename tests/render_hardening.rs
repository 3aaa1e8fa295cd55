//! What a real account, a second cluster in it and a real Argo CD need from
//! the rendered stack (issue 13), checked on the rendered files: zone IDs
//! for ExternalDNS, External Secrets tenancy, per-cluster secrets, IAM
//! scoped to this cluster, install order and the Terraform pins.

use std::path::{Path, PathBuf};

use serde_json::Value;
use terrace::config::{ClusterSpec, Request};
use terrace::render::{self, Outputs, Tree};

fn load(config: Option<&str>, region: &str) -> (Option<tempfile::TempDir>, ClusterSpec) {
    let tmp = config.map(|yaml| {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("terrace.yaml"), yaml).unwrap();
        tmp
    });
    let spec = terrace::cluster::spec(&Request {
        config: tmp.as_ref().map(|t| t.path().join("terrace.yaml")),
        region: region.into(),
        name: None,
    })
    .unwrap();
    (tmp, spec)
}

fn fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.yaml")
}

fn text(tree: &Tree, path: &str) -> String {
    String::from_utf8(
        tree.get(path)
            .unwrap_or_else(|| panic!("{path} not rendered"))
            .to_vec(),
    )
    .unwrap()
}

fn yaml(tree: &Tree, path: &str) -> Value {
    serde_norway::from_str(&text(tree, path)).unwrap()
}

fn args(app: &Value) -> Vec<String> {
    app["spec"]["source"]["helm"]["valuesObject"]["extraArgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn external_dns_reads_exactly_the_configured_public_zones() {
    let spec = terrace::cluster::spec(&Request {
        config: Some(fleet()),
        region: "us-east-1".into(),
        name: None,
    })
    .unwrap();
    let outputs = Outputs {
        vpc_id: "vpc-0abc".into(),
        external_dns_zone_ids: vec!["Z0EXAMPLE".into(), "Z0ACME".into()],
        certificate_arns: Vec::new(),
    };
    let tree = render::render(&spec, &outputs).unwrap();
    let app = yaml(&tree, "manifests/external-dns/application.yaml");
    assert_eq!(
        args(&app),
        [
            "--aws-zone-type=public",
            "--zone-id-filter=Z0EXAMPLE",
            "--zone-id-filter=Z0ACME"
        ]
    );
    let policy = text(&tree, "terraform/addon_external_dns.tf");
    assert!(
        policy.contains("output \"external_dns_zone_ids\"")
            && policy.contains("data.aws_route53_zone.external_dns_zone_1.zone_id"),
        "{policy}"
    );

    let offline = render::render(&spec, &Outputs::placeholders()).unwrap();
    let app = yaml(&offline, "manifests/external-dns/application.yaml");
    assert_eq!(
        args(&app),
        [
            "--aws-zone-type=public",
            "--zone-id-filter=<terraform-output:external_dns_zone_ids>"
        ]
    );
}

#[test]
fn external_dns_without_zones_is_a_public_dry_run() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let app = yaml(&tree, "manifests/external-dns/application.yaml");
    assert_eq!(args(&app), ["--aws-zone-type=public", "--dry-run"]);
}

#[test]
fn cluster_secret_stores_admit_only_labelled_namespaces() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    for store in ["cluster-secret-store.yaml", "cluster-parameter-store.yaml"] {
        let store = yaml(&tree, &format!("manifests/external-secrets/{store}"));
        assert_eq!(
            store["spec"]["conditions"][0]["namespaceSelector"]["matchLabels"]["terrace.dev/secrets"],
            "allowed",
            "{store}"
        );
    }
    let (_tmp, custom) = load(
        Some(
            "defaults:\n  addons: { external-secrets: { namespace_label: acme.io/tenant=platform } }\n",
        ),
        "us-east-1",
    );
    let tree = render::render(&custom, &Outputs::placeholders()).unwrap();
    let store = yaml(
        &tree,
        "manifests/external-secrets/cluster-secret-store.yaml",
    );
    assert_eq!(
        store["spec"]["conditions"][0]["namespaceSelector"]["matchLabels"],
        serde_json::json!({ "acme.io/tenant": "platform" })
    );
}

#[test]
fn namespace_users_cannot_create_secret_stores() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let values = &yaml(&tree, "manifests/external-secrets/application.yaml")["spec"]["source"]["helm"]
        ["valuesObject"];
    assert_eq!(values["processSecretStore"], false);
    assert_eq!(values["rbac"]["aggregateToEdit"], false);
    assert_eq!(values["rbac"]["aggregateToAdmin"], false);
    let role = &values["extraObjects"][0];
    assert_eq!(role["kind"], "ClusterRole");
    assert_eq!(
        role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": ["external-secrets.io"],
            "resources": ["externalsecrets"],
            "verbs": ["create", "delete", "deletecollection", "patch", "update"],
        }])
    );
}

#[test]
fn secrets_are_per_cluster_unless_a_prefix_is_shared_on_purpose() {
    let (_tmp, spec) = load(None, "eu-west-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let policy = text(&tree, "terraform/addon_external_secrets.tf");
    assert!(
        policy.contains(":secret:terrace/terrace-eu-west-1/*\"")
            && policy.contains(":parameter/terrace/terrace-eu-west-1/*\""),
        "{policy}"
    );
    let (_tmp, shared) = load(
        Some("defaults:\n  addons: { external-secrets: { secrets_prefix: shared/ } }\n"),
        "eu-west-1",
    );
    let tree = render::render(&shared, &Outputs::placeholders()).unwrap();
    let policy = text(&tree, "terraform/addon_external_secrets.tf");
    assert!(policy.contains(":secret:shared/*\""), "{policy}");
}

#[test]
fn load_balancer_controller_touches_only_this_clusters_load_balancers() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let policy = text(&tree, "terraform/addon_aws_load_balancer_controller.tf");
    let body: Vec<&str> = policy.lines().collect();
    let mut equals = 0;
    for (i, line) in body.iter().enumerate() {
        if line.contains("variable = \"aws:ResourceTag/elbv2.k8s.aws/cluster\"")
            || line.contains("variable = \"aws:RequestTag/elbv2.k8s.aws/cluster\"")
        {
            let test = body[i - 1];
            let values = body[i + 1];
            if test.contains("\"StringEquals\"") {
                assert!(values.contains("[local.cluster_name]"), "{values}");
                equals += 1;
            } else {
                // Only "this request does not set the tag" may stay a Null test.
                assert!(
                    test.contains("\"Null\"")
                        && line.contains("RequestTag")
                        && values.contains("\"true\""),
                    "{test} {line} {values}"
                );
            }
        }
    }
    assert_eq!(equals, 7, "every existence check became a value check");
    let app = yaml(
        &tree,
        "manifests/aws-load-balancer-controller/application.yaml",
    );
    assert_eq!(
        app["spec"]["source"]["helm"]["valuesObject"]["podDisruptionBudget"],
        serde_json::json!({ "maxUnavailable": 1 })
    );
}

#[test]
fn applications_carry_no_sync_wave() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    for (path, contents) in tree.iter() {
        if path.ends_with("/application.yaml") {
            let text = String::from_utf8_lossy(contents);
            assert!(!text.contains("sync-wave"), "{path}");
        }
    }
}

#[test]
fn the_provider_is_pinned_to_one_major_version() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let versions = text(&tree, "terraform/versions.tf");
    assert!(versions.contains("version = \"~> 5.100\""), "{versions}");
}

#[test]
fn zones_eks_refuses_are_excluded_by_id() {
    let (_tmp, spec) = load(None, "us-east-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    let main = text(&tree, "terraform/main.tf");
    assert!(
        main.contains("excluded_zone_ids   = [\"use1-az3\", \"usw1-az2\", \"cac1-az3\"]"),
        "{main}"
    );
    assert!(
        main.contains("node_subnet_ids       = module.network.routed_private_subnet_ids"),
        "{main}"
    );
    assert!(
        main.contains("capacity_reservation  = \"terrace-us-east-1-capacity-reservation\""),
        "{main}"
    );
}

#[test]
fn pod_identity_trust_names_cluster_namespace_and_service_account() {
    let module = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/modules/addon-identity/main.tf"),
    )
    .unwrap();
    for (key, value) in [
        ("aws:RequestTag/eks-cluster-name", "var.cluster_name"),
        ("aws:RequestTag/kubernetes-namespace", "var.namespace"),
        (
            "aws:RequestTag/kubernetes-service-account",
            "var.service_account",
        ),
    ] {
        let at = module
            .find(&format!("variable = \"{key}\""))
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(
            module[at..].lines().nth(1).unwrap().contains(value),
            "{key} = {value}"
        );
    }
}
