//! The golden path for apps, as rendered: one ACM certificate (zone and
//! wildcard, DNS-validated) per ExternalDNS zone, none without zones or
//! when turned off, and the `certificates` setting checked by field.

use std::path::Path;

use terrace::config::{self, ClusterSpec, Request};
use terrace::render::{self, Outputs, Tree};

fn spec(dir: &Path, yaml: &str) -> Result<ClusterSpec, String> {
    let file = dir.join("terrace.yaml");
    std::fs::write(&file, yaml).unwrap();
    config::load(
        &Request {
            config: Some(file),
            region: "eu-west-1".into(),
            name: None,
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .map_err(|e| e.to_string())
}

fn rendered(yaml: &str) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    render::render(&spec(tmp.path(), yaml).unwrap(), &Outputs::placeholders()).unwrap()
}

fn file(tree: &Tree, path: &str) -> String {
    let (_, contents) = tree
        .iter()
        .find(|(p, _)| *p == path)
        .unwrap_or_else(|| panic!("{path} not rendered"));
    String::from_utf8_lossy(contents).into_owned()
}

const TWO_ZONES: &str =
    "defaults:\n  addons:\n    external-dns: { zones: [example.com, apps.example.org] }\n";

#[test]
fn each_zone_gets_a_certificate_for_itself_and_its_wildcard() {
    let tree = rendered(TWO_ZONES);
    let main = file(&tree, "terraform/main.tf");
    assert!(
        main.contains(
            "module \"certificates\" {\n  source = \"./modules/certificates\"\n\n  zones = [\"apps.example.org\", \"example.com\"]\n}"
        ),
        "{main}"
    );
    let outputs = file(&tree, "terraform/outputs.tf");
    assert!(
        outputs.contains("output \"certificate_arns\"")
            && outputs.contains("module.certificates.certificate_arns"),
        "{outputs}"
    );

    // The module: one certificate, one validation record and one wait per
    // zone, the wildcard as the certificate's second name.
    let module = file(&tree, "terraform/modules/certificates/main.tf");
    for needle in [
        "resource \"aws_acm_certificate\" \"this\"",
        "subject_alternative_names = [\"*.${each.value}\"]",
        "validation_method         = \"DNS\"",
        "private_zone = false",
        "resource \"aws_route53_record\" \"validation\"",
        "resource \"aws_acm_certificate_validation\" \"this\"",
        "validation_record_fqdns = [aws_route53_record.validation[each.value].fqdn]",
        "create_before_destroy = true",
    ] {
        assert!(module.contains(needle), "{needle:?} in {module}");
    }
    // Tagged like everything else: through the provider's default tags.
    let providers = file(&tree, "terraform/providers.tf");
    assert!(providers.contains("\"terrace.dev/cluster\""), "{providers}");
}

#[test]
fn no_zones_no_certificates() {
    for yaml in [
        "defaults: {}\n",
        // Turned off, or existing certificates named instead.
        "defaults:\n  addons:\n    external-dns: { zones: [example.com] }\n    aws-load-balancer-controller: { certificates: none }\n",
        "defaults:\n  addons:\n    external-dns: { zones: [example.com] }\n    aws-load-balancer-controller:\n      certificates: [\"arn:aws:acm:eu-west-1:123456789012:certificate/0f4e2b6c-1a2b-4c3d-9e8f-001122334455\"]\n",
    ] {
        let tree = rendered(yaml);
        let main = file(&tree, "terraform/main.tf");
        assert!(!main.contains("module \"certificates\""), "{yaml}: {main}");
        let outputs = file(&tree, "terraform/outputs.tf");
        assert!(!outputs.contains("certificate_arns"), "{yaml}: {outputs}");
    }
}

#[test]
fn the_certificates_setting_names_the_field_and_what_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let err = spec(
        tmp.path(),
        "defaults:\n  addons:\n    aws-load-balancer-controller: { certificates: always }\n",
    )
    .unwrap_err();
    assert!(
        err.contains("defaults.addons.aws-load-balancer-controller.certificates")
            && err.contains("issue, none, or a list of ACM certificate ARNs"),
        "{err}"
    );
    let err = spec(
        tmp.path(),
        "defaults:\n  addons:\n    aws-load-balancer-controller: { certificates: [\"arn:aws:iam::123456789012:role/x\"] }\n",
    )
    .unwrap_err();
    assert!(
        err.contains("defaults.addons.aws-load-balancer-controller.certificates")
            && err.contains("is not an ACM certificate ARN"),
        "{err}"
    );
}

fn documents(tree: &Tree, path: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(&file(tree, path))
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

const INGRESS_CLASS: &str = "manifests/aws-load-balancer-controller/ingress-class.yaml";

#[test]
fn the_default_ingress_class_puts_every_ingress_on_one_https_alb() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path(), TWO_ZONES).unwrap();
    let arns = vec![
        "arn:aws:acm:eu-west-1:123456789012:certificate/aaaa".to_string(),
        "arn:aws:acm:eu-west-1:123456789012:certificate/bbbb".to_string(),
    ];
    let tree = render::render(
        &spec,
        &Outputs {
            vpc_id: "vpc-0abc".into(),
            certificate_arns: arns.clone(),
            external_dns_zone_ids: Vec::new(),
        },
    )
    .unwrap();
    let docs = documents(&tree, INGRESS_CLASS);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["IngressClassParams", "IngressClass", "Ingress"]);
    let (params, class, redirect) = (&docs[0], &docs[1], &docs[2]);

    assert_eq!(params["metadata"]["name"], "alb");
    let spec = &params["spec"];
    assert_eq!(spec["group"]["name"], "alb", "one shared ALB");
    assert_eq!(spec["scheme"], "internet-facing");
    assert_eq!(spec["certificateArn"], serde_json::json!(arns));
    assert_eq!(spec["sslPolicy"], "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert_eq!(spec["sslRedirectPort"], "443");

    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(class["spec"]["controller"], "ingress.k8s.aws/alb");
    assert_eq!(class["spec"]["parameters"]["kind"], "IngressClassParams");
    assert_eq!(class["spec"]["parameters"]["name"], "alb");

    // The group's port 80, redirected. No default backend: an app may
    // set one (two in a group are an error), and without one the
    // controller answers 404 for hosts no app serves.
    assert_eq!(redirect["spec"]["ingressClassName"], "alb");
    assert_eq!(
        redirect["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"],
        r#"[{"HTTP": 80}, {"HTTPS": 443}]"#
    );
    assert!(redirect["spec"].get("defaultBackend").is_none());
    let rule = &redirect["spec"]["rules"][0];
    assert_eq!(rule["host"], "alb.http-to-https.invalid");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["port"]["name"],
        "use-annotation"
    );
    // None of them has a status to wait for.
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["annotations"]["terrace.dev/ready"],
            "exists"
        );
    }

    // Offline, the issued certificates are placeholders.
    let offline = rendered(TWO_ZONES);
    let params = &documents(&offline, INGRESS_CLASS)[0];
    assert_eq!(
        params["spec"]["certificateArn"],
        serde_json::json!(["<terraform-output:certificate_arns>"])
    );
}

#[test]
fn named_certificates_or_none() {
    let arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f4e2b6c-1a2b-4c3d-9e8f-001122334455";
    let named = rendered(&format!(
        "defaults:\n  addons:\n    aws-load-balancer-controller:\n      certificates: [\"{arn}\"]\n      ingress_class: apps\n      default_class: false\n"
    ));
    let docs = documents(&named, INGRESS_CLASS);
    assert_eq!(docs[0]["metadata"]["name"], "apps");
    assert_eq!(docs[0]["spec"]["group"]["name"], "apps");
    assert_eq!(docs[0]["spec"]["certificateArn"], serde_json::json!([arn]));
    assert!(
        docs[1]["metadata"]["annotations"]
            .get("ingressclass.kubernetes.io/is-default-class")
            .is_none()
    );
    assert_eq!(docs[2]["spec"]["ingressClassName"], "apps");

    // No zone and no certificate: HTTP only, so no redirect and no TLS settings.
    let plain = documents(&rendered("defaults: {}\n"), INGRESS_CLASS);
    assert_eq!(plain.len(), 2, "no HTTP listener Ingress without HTTPS");
    for key in ["certificateArn", "sslPolicy", "sslRedirectPort"] {
        assert!(plain[0]["spec"].get(key).is_none(), "{key}");
    }
    assert_eq!(plain[0]["spec"]["scheme"], "internet-facing");
}
