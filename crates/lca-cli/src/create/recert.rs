//! recert in seed generation (spec §8.5 steps 7 and 12, §9.5). With the kubelet stopped,
//! recert force-expires every certificate of the seed cluster (and gives it a throw-away
//! kubeadmin password), so nothing of the seed's identity stays valid in the seed image;
//! each upgraded node gets fresh ones from its own recert. Afterwards the seed cluster must
//! work again: a second recert extends the expired certificates, re-signed with the cluster's
//! own keys and admin CA, and restores its kubeadmin hash — all backed up by the operator
//! into `/var/tmp/backupCertsDir` before the imager ran.

use std::path::Path;

use lca_api::consts::paths;
use lca_seed::layout::files;
use serde_json::{Value, json};

use super::{Ctx, write_json};
use crate::error::{Error, Result};

/// Where the restoration config goes (inside `/var/tmp`, which recert's container sees).
const RESTORE_CONFIG: &str = "recert_restore_config.json";

/// What every recert of a seed node reads and rewrites (upstream's basic config).
fn basic() -> Value {
    json!({
        "dry_run": false,
        "etcd_endpoint": "localhost:2379",
        "crypto_dirs": ["/kubelet", "/kubernetes", "/machine-config-daemon"],
        "crypto_files": ["/host-etc/mcs-machine-config-content.json"],
        "cluster_customization_dirs": ["/kubelet", "/kubernetes", "/machine-config-daemon"],
        "cluster_customization_files": ["/host-etc/mcs-machine-config-content.json"],
    })
}

/// The force-expire config; `disposable_hash` replaces the kubeadmin password's hash when
/// the cluster has one.
pub fn creation_config(disposable_hash: Option<&str>) -> Value {
    let mut v = basic();
    v["force_expire"] = json!(true);
    v["etcd_defrag"] = json!(true);
    v["summary_file_clean"] = json!("/kubernetes/recert-seed-creation-summary.yaml");
    if let Some(h) = disposable_hash {
        v["kubeadmin_password_hash"] = json!(h);
    }
    v
}

/// The config that gives the seed cluster its identity back: its own signer keys and admin
/// CA from `certs_dir` (a path recert sees), extended expiry, its kubeadmin hash.
pub fn restoration_config(certs_dir: &str, original_hash: Option<&str>) -> Value {
    let mut v = basic();
    v["summary_file_clean"] = json!("/kubernetes/recert-seed-restoration-summary.yaml");
    v["extend_expiration"] = json!(true);
    v["use_key_rules"] = json!([
        format!("kube-apiserver-lb-signer {certs_dir}/loadbalancer-serving-signer.key"),
        format!("kube-apiserver-localhost-signer {certs_dir}/localhost-serving-signer.key"),
        format!("kube-apiserver-service-network-signer {certs_dir}/service-network-serving-signer.key"),
        format!("ingresskey-ingress-operator {certs_dir}/ingresskey-ingress-operator.key"),
    ]);
    v["use_cert_rules"] = json!([format!("{certs_dir}/admin-kubeconfig-client-ca.crt")]);
    if let Some(h) = original_hash {
        v["kubeadmin_password_hash"] = json!(h);
    }
    v
}

/// A bcrypt hash of a random password nobody knows.
fn disposable_hash() -> Result<String> {
    use std::io::Read;
    let mut secret = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| Error::Invalid(format!("no randomness for a password: {e}")))?;
    let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    bcrypt::hash(password, bcrypt::DEFAULT_COST)
        .map_err(|e| Error::Invalid(format!("hashing a password: {e}")))
}

fn original_hash(ctx: &Ctx) -> Result<Option<String>> {
    let path = ctx
        .paths
        .host(paths::BACKUP_CERTS_DIR)
        .join(paths::KUBEADMIN_HASH_FILE);
    Ok(ctx
        .fs
        .read_string_optional(&path)
        .map_err(Error::host("reading the kubeadmin hash"))?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty()))
}

/// Step 7: expire the seed cluster's certificates (the config goes into the seed as well).
pub fn expire(ctx: &Ctx) -> Result<()> {
    let disposable = original_hash(ctx)?.map(|_| disposable_hash()).transpose()?;
    write_json(ctx, files::RECERT_CONFIG, &creation_config(disposable.as_deref()))?;
    if ctx.args.skip_recert_validation {
        return Ok(());
    }
    let certs = ctx.paths.host(paths::BACKUP_CERTS_DIR);
    if !ctx
        .fs
        .exists(&certs)
        .map_err(Error::host("looking for the certificate backup"))?
    {
        // Without it the seed cluster could never be given its identity back.
        return Err(Error::Invalid(format!(
            "/{} is missing: the operator backs the cluster's keys up before the imager runs",
            paths::BACKUP_CERTS_DIR
        )));
    }
    // From here on the certificates may be expired, even if recert stops half way (upstream
    // restores only after a complete expiry, leaving such a cluster broken): the cleanup
    // restores whenever this marker is there.
    ctx.fs
        .write_atomic(&ctx.checks.join(STARTED), b"")
        .map_err(Error::host("marking the expiry started"))?;
    run(ctx, &ctx.backup.join(files::RECERT_CONFIG))
}

/// Marker of an expiry that may have touched the certificates.
pub(super) const STARTED: &str = "recert.started";

/// Whether the seed cluster needs its identity back (an expiry started); unreadable
/// markers count as yes, since a needless restoration is harmless and a missing one is not.
pub fn needs_restore(ctx: &Ctx) -> bool {
    !ctx.args.skip_recert_validation && ctx.fs.exists(&ctx.checks.join(STARTED)).unwrap_or(true)
}

/// Step 12 (only after an expiry ran): give the seed cluster its identity back.
pub fn restore(ctx: &Ctx) -> Result<()> {
    let certs = format!("/{}", paths::BACKUP_CERTS_DIR);
    let config = restoration_config(&certs, original_hash(ctx)?.as_deref());
    let path = ctx.paths.host(paths::BACKUP_CERTS_DIR).join(RESTORE_CONFIG);
    let bytes = serde_json::to_vec(&config)
        .map_err(|e| Error::Invalid(format!("serializing {RESTORE_CONFIG}: {e}")))?;
    ctx.fs
        .write_private(&path, &bytes)
        .map_err(Error::host("writing the restoration config"))?;
    run(ctx, &path)
}

fn run(ctx: &Ctx, config: &Path) -> Result<()> {
    let authfile = ctx.args.authfile.as_ref().map(|p| p.display().to_string());
    ctx.node.recert(
        &node_path(config, ctx),
        &ctx.args.recert_image,
        authfile.as_deref(),
    )
}

/// `path` (under the host root) as the node sees it.
fn node_path(path: &Path, ctx: &Ctx) -> String {
    let rel = path.strip_prefix(ctx.paths.host("")).unwrap_or(path);
    format!("/{}", rel.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_throws_the_identity_away_and_restoration_gives_it_back() {
        let c = creation_config(Some("$2b$12$disposable"));
        assert_eq!(c["force_expire"], true);
        assert_eq!(c["etcd_defrag"], true);
        assert_eq!(c["kubeadmin_password_hash"], "$2b$12$disposable");
        assert_eq!(c["etcd_endpoint"], "localhost:2379");
        assert!(c.get("extend_expiration").is_none());
        assert!(creation_config(None).get("kubeadmin_password_hash").is_none());

        let r = restoration_config("/var/tmp/backupCertsDir", Some("$2a$10$original"));
        assert_eq!(r["extend_expiration"], true);
        assert!(r.get("force_expire").is_none());
        assert_eq!(r["kubeadmin_password_hash"], "$2a$10$original");
        assert_eq!(
            r["use_key_rules"][0],
            "kube-apiserver-lb-signer /var/tmp/backupCertsDir/loadbalancer-serving-signer.key"
        );
        assert_eq!(
            r["use_cert_rules"],
            json!(["/var/tmp/backupCertsDir/admin-kubeconfig-client-ca.crt"])
        );
    }

    #[test]
    fn the_disposable_hash_is_bcrypt_of_an_unknown_password() {
        let (a, b) = (disposable_hash().unwrap(), disposable_hash().unwrap());
        assert!(a.starts_with("$2b$12$") && a.len() == 60, "{a}");
        assert_ne!(a, b);
    }
}
