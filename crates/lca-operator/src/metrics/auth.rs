//! Who may scrape `/metrics`: the API server decides, as controller-runtime's secure metrics
//! filter asks it to. The bearer token goes to a TokenReview; the user it names must be allowed
//! `get` on the non-resource URL by a SubjectAccessReview (the `lifecycle-agent-metrics-reader`
//! ClusterRole grants it). Called by `server` before anything else is read from the request.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::warn;

/// Why a scrape is refused; the response says no more than its status line.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token, or one the API server does not accept (401).
    Unauthenticated,
    /// A valid token whose user may not read the path (403).
    Forbidden,
    /// The API server could not be asked (500): refuse rather than serve unchecked.
    Unavailable,
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Allow the holder of `token` to `verb` `path`, or say why not.
pub async fn authorize(client: &Client, token: Option<&str>, verb: &str, path: &str) -> Result<(), Refusal> {
    let token = token.ok_or(Refusal::Unauthenticated)?;
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            // The error names the request, never the token.
            warn!(error = %e, "metrics: TokenReview failed");
            Refusal::Unavailable
        })?;
    let status = reviewed.status.unwrap_or_default();
    let user = match (status.authenticated, status.user) {
        (Some(true), Some(user)) => user,
        _ => return Err(Refusal::Unauthenticated),
    };
    let access = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.to_string()),
                verb: Some(verb.to_string()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let decided = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &access)
        .await
        .map_err(|e| {
            warn!(error = %e, "metrics: SubjectAccessReview failed");
            Refusal::Unavailable
        })?;
    match decided.status {
        Some(s) if s.allowed => Ok(()),
        _ => Err(Refusal::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }
}
