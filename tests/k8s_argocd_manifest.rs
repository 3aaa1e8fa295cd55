//! Argo CD's release manifest over HTTP from a local server: the right
//! bytes install and are cached, a tampered body is refused before anything
//! reaches the cluster, and a cached copy needs no server.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::kube::{
    Behaviour, FakeCluster, default_stack, fast_options, install_fixture, resource,
};
use terrace::addons::install::{InstallError, install};
use terrace::addons::release::{ManifestSource, ReleaseError};
use terrace::progress::Collect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body` to every request on a loopback port; counts requests.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(body: Vec<u8>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/argo-cd/v3.5.1/manifests/install.yaml",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Server { url, hits, task }
}

#[tokio::test]
async fn downloads_verifies_caches_and_then_needs_no_server() {
    let (path, _) = install_fixture();
    let server = serve(std::fs::read(path).unwrap()).await;
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let mut options = fast_options(cache.path());
    options.argocd_manifest = ManifestSource::Url(server.url.clone());

    let report = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .expect("install from the local server");
    assert_eq!(report.bootstrap.origin, server.url);
    assert!(!report.bootstrap.from_cache);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let cached = cache
        .path()
        .join(format!("{}.yaml", report.bootstrap.sha256));
    assert!(cached.is_file());

    let url = server.url.clone();
    drop(server);
    options.argocd_manifest = ManifestSource::Url(url);
    let again = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .expect("install from the cache, with the server gone");
    assert!(again.bootstrap.from_cache);
}

#[tokio::test]
async fn a_tampered_manifest_is_refused_and_nothing_is_applied() {
    let (path, _) = install_fixture();
    let mut body = std::fs::read(path).unwrap();
    body.extend_from_slice(b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: injected }\n");
    let server = serve(body).await;
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let mut options = fast_options(cache.path());
    options.argocd_manifest = ManifestSource::Url(server.url.clone());

    let err = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            InstallError::Release {
                source: ReleaseError::Checksum { .. },
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("argocd: refusing to apply {}", server.url)),
        "{text}"
    );
    assert!(text.contains("--argocd-sha256"), "{text}");

    for (api_version, kind, plural) in [
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
        ("apps/v1", "Deployment", "deployments"),
        ("v1", "ConfigMap", "configmaps"),
        ("argoproj.io/v1alpha1", "Application", "applications"),
    ] {
        let objects = cluster
            .dynamic(&resource(api_version, kind, plural), None)
            .list(&Default::default())
            .await
            .unwrap();
        assert!(
            objects.items.is_empty(),
            "{kind} applied despite the bad checksum"
        );
    }
    assert!(cluster.namespaces().is_empty());
    assert_eq!(
        std::fs::read_dir(cache.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing cached"
    );
}

#[tokio::test]
async fn a_mirror_is_still_checked_against_the_pinned_hash() {
    let (path, _) = install_fixture();
    let server = serve(std::fs::read(path).unwrap()).await;
    let cluster = FakeCluster::new().await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let mut options = fast_options(cache.path());
    options.argocd_manifest = ManifestSource::Url(server.url.clone());
    options.argocd_sha256 = None;

    let err = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .unwrap_err();
    let pinned = terrace::addons::Catalog::embedded()
        .unwrap()
        .get("argocd")
        .unwrap();
    let pinned = &pinned.manifest.as_ref().unwrap().sha256;
    assert!(
        err.to_string().contains(&format!("expected {pinned}")),
        "{err}"
    );
}
