//! Rendering: a [`ClusterSpec`] → the files of a cluster's work directory.
//!
//! Pure: templates and Terraform modules are embedded in the binary, the
//! result is an in-memory [`Tree`], and the same inputs give byte-identical
//! files. Writing the tree to disk, atomically, is [`Tree::write_atomic`].
//! This module knows nothing of AWS calls, Terraform runs or clusters.

mod hcl;

use std::error::Error as _;
use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use serde::{Deserialize as _, Serialize};
use serde_json::{Value, json};

pub use crate::tree::{Tree, WriteError};

use crate::addons::{Addon, Catalog, CatalogError, Kind};
use crate::config::ClusterSpec;
use crate::model::system::{
    SYSTEM_TAINT_KEY, SYSTEM_TAINT_VALUE, system_node_selector, system_tolerations,
};
use crate::model::tags::{TAG_KEEP, TAG_KEEP_VALUE, cluster_tags};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static MODULES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/terraform/modules");

/// Shown in manifests for values that exist only after `terraform apply`;
/// `up` renders again with the real Terraform outputs.
pub const PLACEHOLDER_PREFIX: &str = "<terraform-output:";

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
    #[error("{file}: rendered YAML does not parse: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: must declare data \"aws_iam_policy_document\" \"{ident}\"")]
    Policy { file: String, ident: String },
    #[error(transparent)]
    Catalog(#[from] &'static CatalogError),
}

/// Values Terraform knows only after apply.
#[derive(Debug, Clone, Serialize)]
pub struct Outputs {
    pub vpc_id: String,
    /// The certificates Terraform issued, one per DNS zone (in zone order);
    /// empty when it issued none.
    pub certificate_arns: Vec<String>,
    /// The hosted zones ExternalDNS may change; empty without zones.
    pub external_dns_zone_ids: Vec<String>,
}

impl Outputs {
    /// What an offline render shows in their place.
    pub fn placeholders() -> Outputs {
        Outputs {
            vpc_id: format!("{PLACEHOLDER_PREFIX}vpc_id>"),
            certificate_arns: vec![format!("{PLACEHOLDER_PREFIX}certificate_arns>")],
            external_dns_zone_ids: vec![format!("{PLACEHOLDER_PREFIX}external_dns_zone_ids>")],
        }
    }
}

/// Renders the whole work directory of one cluster.
pub fn render(spec: &ClusterSpec, outputs: &Outputs) -> Result<Tree, RenderError> {
    let catalog = Catalog::embedded()?;
    render_tree(catalog, engine(catalog)?, spec, outputs)
}

/// [`render`] from the addon folders of `catalog`: nothing here names an
/// addon, so a new folder renders without a change to this code.
pub fn render_with(
    catalog: &Catalog,
    spec: &ClusterSpec,
    outputs: &Outputs,
) -> Result<Tree, RenderError> {
    render_tree(catalog, &Engine::build(catalog)?, spec, outputs)
}

fn render_tree(
    catalog: &Catalog,
    engine: &Engine,
    spec: &ClusterSpec,
    outputs: &Outputs,
) -> Result<Tree, RenderError> {
    let enabled: Vec<&Addon> = catalog
        .iter()
        .filter(|a| spec.addon_enabled(&a.name))
        .collect();
    let mut base = base_context(spec, outputs, &enabled);
    base.insert("certificates", &catalog.certificates(spec));
    let mut tree = Tree::default();

    for file in TEMPLATES
        .get_dir("terraform")
        .into_iter()
        .flat_map(|d| d.files())
    {
        let name = template_name(file.path());
        let target = name.trim_end_matches(".tera").to_string();
        tree.insert(target, engine.render(&name, &base)?);
    }
    for file in all_files(&MODULES) {
        tree.insert(
            format!("terraform/modules/{}", path_str(file.path())),
            file.contents().to_vec(),
        );
    }

    for addon in &enabled {
        let ctx = addon_context(&base, spec, addon);
        if addon.policy_template.is_some() {
            let file = format!("terraform/addon_{}.tf", addon.ident());
            let text = engine.render(&addon_template(addon, "policy.tf.tera"), &ctx)?;
            let declaration = format!("data \"aws_iam_policy_document\" \"{}\"", addon.ident());
            if !text.contains(&declaration) {
                return Err(RenderError::Policy {
                    file,
                    ident: addon.ident(),
                });
            }
            tree.insert(file, text);
        }
        if addon.kind == Kind::Helm {
            let values_name = addon_template(addon, "values.yaml.tera");
            let values = yaml_documents(&engine.render(&values_name, &ctx)?, &values_name)?
                .into_iter()
                .next()
                .unwrap_or_else(|| json!({}));
            let mut app_ctx = ctx.clone();
            app_ctx.insert("values", &values);
            let app = engine.render("manifests/application.yaml.tera", &app_ctx)?;
            insert_manifest(
                &mut tree,
                format!("manifests/{}/application.yaml", addon.name),
                &app,
            )?;
        }
        for (stem, _) in &addon.manifest_templates {
            let text = engine.render(
                &addon_template(addon, &format!("manifests/{stem}.tera")),
                &ctx,
            )?;
            insert_manifest(&mut tree, format!("manifests/{}/{stem}", addon.name), &text)?;
        }
    }
    Ok(tree)
}

/// The tera engine of the embedded catalog, built once per process.
fn engine(catalog: &'static Catalog) -> Result<&'static Engine, RenderError> {
    static ENGINE: OnceLock<Result<Engine, RenderError>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::build(catalog))
        .as_ref()
        .map_err(Clone::clone)
}

struct Engine(tera::Tera);

impl Engine {
    /// Every shared template and every template of `catalog`'s addons.
    fn build(catalog: &Catalog) -> Result<Engine, RenderError> {
        let mut templates: Vec<(String, &'static str)> = all_files(&TEMPLATES)
            .filter_map(|f| Some((template_name(f.path()), f.contents_utf8()?)))
            .collect();
        for addon in catalog.iter() {
            let own = [
                ("values.yaml.tera", addon.values_template),
                ("policy.tf.tera", addon.policy_template),
            ];
            for (file, body) in own {
                if let Some(body) = body {
                    templates.push((addon_template(addon, file), body));
                }
            }
            for (stem, body) in &addon.manifest_templates {
                templates.push((
                    addon_template(addon, &format!("manifests/{stem}.tera")),
                    body,
                ));
            }
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        tera.register_filter("hcl", hcl::filter);
        tera.add_raw_templates(templates)
            .map_err(|e| template_error("(loading)", &e))?;
        Ok(Engine(tera))
    }

    fn render(&self, name: &str, ctx: &tera::Context) -> Result<String, RenderError> {
        self.0
            .render(name, ctx)
            .map_err(|e| template_error(name, &e))
    }
}

/// Tera's top-level error says only "failed to render"; the cause is in
/// its source chain.
fn template_error(template: &str, err: &tera::Error) -> RenderError {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RenderError::Template {
        template: template.to_string(),
        message,
    }
}

fn addon_template(addon: &Addon, file: &str) -> String {
    format!("addons/{}/{file}", addon.name)
}

fn template_name(path: &std::path::Path) -> String {
    path_str(path)
}

fn path_str(path: &std::path::Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn all_files(
    dir: &'static Dir<'static>,
) -> impl Iterator<Item = &'static include_dir::File<'static>> {
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        files.extend(d.files());
        stack.extend(d.dirs());
    }
    files.sort_by(|a, b| a.path().cmp(b.path()));
    files.into_iter()
}

fn base_context(spec: &ClusterSpec, outputs: &Outputs, enabled: &[&Addon]) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert(
        "cluster",
        &json!({
            "name": spec.name,
            "region": spec.region,
            "fleet": spec.fleet,
            "kubernetes_version": spec.kubernetes_version,
            "cidr": spec.network.cidr,
            "azs": spec.network.azs,
            "network": spec.network,
            "endpoint": spec.endpoint,
            "system_nodes": spec.system_nodes,
            "logs": spec.logs,
            "access": spec.access,
        }),
    );
    ctx.insert("names", &spec.names);
    ctx.insert("outputs", outputs);
    let mut tags = cluster_tags(&spec.name);
    if spec.lifetime.keep {
        tags.insert(TAG_KEEP, TAG_KEEP_VALUE.to_string());
    }
    ctx.insert("tags", &tags);
    ctx.insert("expires_at", &spec.lifetime.expires_at);
    ctx.insert("system_tolerations", &system_tolerations());
    ctx.insert(
        "system_taint",
        &json!({ "key": SYSTEM_TAINT_KEY, "value": SYSTEM_TAINT_VALUE }),
    );
    ctx.insert("system_node_selector", &system_node_selector());
    let identities: Vec<Value> = enabled
        .iter()
        .filter(|a| a.has_identity())
        .map(|a| {
            json!({
                "name": a.name,
                "ident": a.ident(),
                "namespace": a.namespace,
                "service_account": a.service_account,
                "role_name": spec.names.addon_roles.get(&a.name),
            })
        })
        .collect();
    ctx.insert("identity_addons", &identities);
    ctx.insert(
        "enabled_addons",
        &enabled.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
    );
    ctx.insert("ami_type", spec.system_nodes.ami_type());
    ctx.insert(
        "eks_unsupported_zone_ids",
        crate::config::regions::EKS_UNSUPPORTED_ZONE_IDS,
    );
    ctx
}

fn addon_context(base: &tera::Context, spec: &ClusterSpec, addon: &Addon) -> tera::Context {
    let mut ctx = base.clone();
    ctx.insert(
        "addon",
        &json!({
            "name": addon.name,
            "ident": addon.ident(),
            "namespace": addon.namespace,
            "service_account": addon.service_account,
            "chart": addon.chart,
            "manifest": addon.manifest,
        }),
    );
    let settings = spec
        .addons
        .get(&addon.name)
        .map(|a| a.settings.clone())
        .unwrap_or_default();
    ctx.insert("settings", &settings);
    ctx
}

/// Parses rendered YAML into its documents, skipping empty ones.
fn yaml_documents(text: &str, file: &str) -> Result<Vec<Value>, RenderError> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| RenderError::Yaml {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Normalises a rendered manifest through the YAML parser so formatting
/// never depends on template whitespace; a template that renders nothing
/// (a disabled optional object) produces no file.
fn insert_manifest(tree: &mut Tree, file: String, text: &str) -> Result<(), RenderError> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(doc).map_err(|e| RenderError::Yaml {
            file: file.clone(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            let yaml = serde_norway::to_string(&value).map_err(|e| RenderError::Yaml {
                file: file.clone(),
                message: e.to_string(),
            })?;
            docs.push(yaml);
        }
    }
    if !docs.is_empty() {
        tree.insert(file, docs.join("---\n"));
    }
    Ok(())
}
