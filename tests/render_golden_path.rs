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
