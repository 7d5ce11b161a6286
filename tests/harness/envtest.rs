//! What `make envtest` installs once, outside the repository, for the kube tier: the
//! kube-apiserver built from Debian's source package and a Python with the Helm engine
//! (PyPI helm-sdkpy). Found through one environment variable each, else the cache
//! (`DBINIT_CACHE_DIR`, else `$XDG_CACHE_HOME/dbinit`, else `~/.cache/dbinit`), the same
//! places scripts/envtest.sh fills.

use std::path::PathBuf;

/// The cache `make envtest` fills.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("DBINIT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("dbinit")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dbinit")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/dbinit"))
}

/// The kube-apiserver binary: `DBINIT_KUBE_APISERVER`, else the cache.
pub fn apiserver_bin() -> PathBuf {
    installed(
        "DBINIT_KUBE_APISERVER",
        "kubernetes-1.20.2-r3/kube-apiserver",
        "run `make envtest` once (builds kube-apiserver from Debian's source package, ~10 min), or set DBINIT_KUBE_APISERVER",
    )
}

/// The Python that drives the real Helm engine (tests/helm/helm.py, tests/e2e/helm_cli.py):
/// `DBINIT_HELM_PYTHON`, else the cache's venv.
pub fn helm_python() -> PathBuf {
    installed(
        "DBINIT_HELM_PYTHON",
        "helm-venv/bin/python",
        "run `make envtest` (installs helm-sdkpy, the Helm engine)",
    )
}

/// The file that `var` names, else `in_cache` under [`cache_dir`], which must exist.
fn installed(var: &str, in_cache: &str, remedy: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    let p = cache_dir().join(in_cache);
    assert!(p.is_file(), "{} is missing: {remedy}", p.display());
    p
}
