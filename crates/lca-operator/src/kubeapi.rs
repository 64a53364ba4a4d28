//! The one way this operator writes to the API: every create, patch and status write carries
//! the field manager `lca-rs` ([`CONTROLLER_NAME`]), and the "already there" / "already
//! gone" answers that are success for an idempotent reconcile (409 on create, 404 on delete
//! and on reads of optional objects) are decided here, not in each caller.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::CONTROLLER_NAME;

/// Create/replace parameters with our field manager.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(CONTROLLER_NAME.into()),
        ..Default::default()
    }
}

/// Patch parameters with our field manager.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(CONTROLLER_NAME.into()),
        ..Default::default()
    }
}

/// Whether `e` is the API server answering with HTTP `code`.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

/// The object, or the kind, does not exist (404).
pub fn is_not_found(e: &kube::Error) -> bool {
    is_status(e, 404)
}

/// What a create-if-missing found.
#[derive(Debug)]
pub enum Created<K> {
    /// Created now; the object as the server stored it.
    New(K),
    /// It was there already (409); nothing was written.
    Existed,
}

/// Create `obj`; an object of that name already there (409) is success.
pub async fn create_if_missing<K>(api: &Api<K>, obj: &K) -> kube::Result<Created<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&post_params(), obj).await {
        Ok(created) => Ok(Created::New(created)),
        Err(e) if is_status(&e, 409) => Ok(Created::Existed),
        Err(e) => Err(e),
    }
}

/// Delete `name` with `params`; an object already gone (404) is success. `true` when this
/// call deleted (or started deleting) it.
pub async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str, params: &DeleteParams) -> kube::Result<bool>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// GET `name`; `None` when the object, or its kind (a CRD not installed), is absent.
pub async fn get_optional<K>(api: &Api<K>, name: &str) -> kube::Result<Option<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    match api.get(name).await {
        Ok(obj) => Ok(Some(obj)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A JSON merge patch of the object (metadata, spec); the patched object.
pub async fn merge_patch<K>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> kube::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    api.patch(name, &patch_params(), &Patch::Merge(patch)).await
}

/// A JSON merge patch of the status subresource with `{"status": status}`: no
/// resourceVersion precondition, so a metadata change made in the same reconcile cannot make
/// it conflict. Only this operator writes these statuses.
pub async fn patch_status<K, S>(api: &Api<K>, name: &str, status: &S) -> kube::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &patch_params(), &Patch::Merge(&patch))
        .await
}

/// The node of this single-node cluster (the first listed), `None` before it registered.
pub async fn single_node(client: &kube::Client) -> kube::Result<Option<k8s_openapi::api::core::v1::Node>> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    Ok(nodes.list(&Default::default()).await?.items.into_iter().next())
}

/// The node's `InternalIP` addresses, in the order it reports them.
pub fn internal_ips(node: &k8s_openapi::api::core::v1::Node) -> Vec<String> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("x", "Reason").with_code(code).boxed())
    }

    #[test]
    fn every_write_names_the_field_manager() {
        assert_eq!(post_params().field_manager.as_deref(), Some("lca-rs"));
        assert_eq!(patch_params().field_manager.as_deref(), Some("lca-rs"));
        assert!(!post_params().dry_run && !patch_params().dry_run);
    }

    #[test]
    fn status_codes_are_recognised() {
        assert!(is_not_found(&api_error(404)));
        assert!(!is_not_found(&api_error(409)));
        assert!(is_status(&api_error(409), 409));
        assert!(!is_not_found(&kube::Error::Service("refused".into())));
    }
}
