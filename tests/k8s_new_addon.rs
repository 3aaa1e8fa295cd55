//! "Adding an addon means adding a folder": a made-up addon folder
//! (`tests/fixtures/new-addon/log-shipper`) beside the shipped ones is
//! configured, rendered, installed and reported by `addons status` with no
//! Rust that names it. Its teardown section is checked beside the catalog
//! (`addons::tests::a_new_addon_folder_brings_its_own_teardown`).

mod support;

use include_dir::{Dir, include_dir};
use serde_json::Value;
use support::kube::{Behaviour, FakeCluster, fast_options};
use terrace::addons::install::install_with;
use terrace::addons::{Catalog, health};
use terrace::config::{self, Request};
use terrace::progress::Collect;
use terrace::render::{self, Outputs};

static SHIPPED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/addons");
static NEW: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/new-addon");

#[tokio::test]
async fn a_new_addon_folder_is_configured_rendered_installed_and_reported() {
    let catalog = Catalog::from_dirs(&[&SHIPPED, &NEW]).expect("a valid catalog");
    let request = Request {
        config: None,
        region: "us-east-1".into(),
        name: None,
    };
    let spec = config::load(&request, catalog.schema()).expect("default spec");
    assert!(spec.addon_enabled("log-shipper"));

    let tree = render::render_with(&catalog, &spec, &Outputs::placeholders()).expect("render");
    let text = tree
        .get("manifests/log-shipper/application.yaml")
        .expect("the new addon's Application is rendered");
    let app: Value = serde_norway::from_slice(text).unwrap();
    assert_eq!(app["spec"]["source"]["chart"], "log-shipper");
    assert_eq!(app["spec"]["source"]["targetRevision"], "1.0.0");
    assert_eq!(app["spec"]["destination"]["namespace"], "log-shipper");
    assert_eq!(
        app["metadata"]["namespace"],
        catalog.gitops().namespace.as_str()
    );
    assert!(
        app["spec"]["source"]["helm"]
            .to_string()
            .contains("replicas"),
        "values from the folder's values.yaml.tera: {app:#}"
    );

    let cluster = FakeCluster::running(Behaviour::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let report = install_with(
        &catalog,
        &cluster.kube,
        &tree,
        &spec,
        &fast_options(cache.path()),
        &Collect::default(),
    )
    .await
    .expect("install succeeds");
    assert!(
        report.addons.iter().any(|a| a.name == "log-shipper"),
        "{report:#?}"
    );

    let expected: Vec<&str> = catalog
        .iter()
        .filter(|a| spec.addon_enabled(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    let rows = health::status(&cluster.kube, catalog.gitops(), &expected)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.name == "log-shipper")
        .expect("a status row for the new addon");
    assert!(row.healthy, "{row:#?}");
    assert_eq!(row.version, "1.0.0");
    assert!(rows.iter().all(|r| r.healthy), "{rows:#?}");
}
