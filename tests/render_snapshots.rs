//! Snapshots of the rendered tree for the default cluster and a customised
//! one. Module files are copied verbatim from `terraform/modules/`, so the
//! snapshot lists them by name only; every rendered file is shown whole.

use std::path::PathBuf;

use terrace::config::{self, Request};
use terrace::render::{self, Outputs, Tree};

fn dump(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, contents) in tree.iter() {
        if path.starts_with("terraform/modules/") {
            out.push_str(&format!("=== {path} (copied from terraform/modules)\n"));
        } else {
            out.push_str(&format!(
                "=== {path}\n{}\n",
                String::from_utf8_lossy(contents)
            ));
        }
    }
    out
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn default_cluster() {
    let spec = config::load(
        &Request {
            region: "us-east-1".into(),
            ..Request::default()
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap();
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    insta::assert_snapshot!(dump(&tree));
}

#[test]
fn customised_cluster() {
    let request = Request {
        config: Some(fixture("fleet.yaml")),
        region: "eu-west-1".into(),
        name: None,
    };
    let spec = config::load(
        &request,
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap();
    assert_eq!(spec.name, "acme-eu-west-1");
    let tree = render::render(&spec, &Outputs::placeholders()).unwrap();
    insta::assert_snapshot!(dump(&tree));
}

#[test]
fn outputs_replace_placeholders() {
    let spec = config::load(
        &Request {
            region: "us-east-1".into(),
            ..Request::default()
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .unwrap();
    let offline = render::render(&spec, &Outputs::placeholders()).unwrap();
    let lbc = "manifests/aws-load-balancer-controller/application.yaml";
    let text = String::from_utf8(offline.get(lbc).unwrap().to_vec()).unwrap();
    assert!(text.contains("<terraform-output:vpc_id>"), "{text}");
    let applied = render::render(
        &spec,
        &Outputs {
            vpc_id: "vpc-0abc".into(),
            certificate_arns: Vec::new(),
            external_dns_zone_ids: vec![],
        },
    )
    .unwrap();
    let text = String::from_utf8(applied.get(lbc).unwrap().to_vec()).unwrap();
    assert!(
        text.contains("vpc-0abc") && !text.contains("<terraform-output:"),
        "{text}"
    );
}
