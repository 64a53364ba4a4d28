//! Registry credentials from docker auth JSON: the `seedAuth` key of the `seedgen` Secret,
//! an `--authfile`, or a pull secret. Secrets never reach a log: [`Credentials`] prints
//! only the registry and user.

use std::collections::BTreeMap;

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::{Error, Result};

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

impl Credentials {
    pub(crate) fn to_oci(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { user, password } => RegistryAuth::Basic(user.clone(), password.clone()),
        }
    }

    /// The credentials for `registry` (`host[:port]`) in the docker auth JSON `json`;
    /// anonymous when it has no entry for that registry.
    pub fn from_auth_json(json: &[u8], registry: &str) -> Result<Self> {
        let file: AuthFile = serde_json::from_slice(json).map_err(|e| {
            Error::Invalid(format!(
                "invalid docker auth JSON (expected {{\"auths\":{{...}}}}): {e}"
            ))
        })?;
        let entry = file
            .auths
            .iter()
            .find(|(k, _)| key_matches(k, registry))
            .map(|(_, v)| v);
        let Some(entry) = entry else {
            return Ok(Credentials::Anonymous);
        };
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Credentials::Basic {
                user: user.clone(),
                password: password.clone(),
            });
        }
        let Some(auth) = &entry.auth else {
            return Ok(Credentials::Anonymous);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| Error::Invalid(format!("the auth entry for {registry} is not valid base64")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| Error::Invalid(format!("the auth entry for {registry} is not UTF-8")))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Error::Invalid(format!("the auth entry for {registry} is not user:password")))?;
        Ok(Credentials::Basic {
            user: user.into(),
            password: password.into(),
        })
    }

    /// A docker auth JSON holding `user:password` for `registry` (what `skopeo login` writes).
    pub fn auth_json(registry: &str, user: &str, password: &str) -> String {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        serde_json::json!({ "auths": { registry: { "auth": auth } } }).to_string()
    }
}

/// Keys may be `host`, `https://host`, `host/v1/` or `host/repo`.
fn key_matches(key: &str, registry: &str) -> bool {
    let k = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    host == registry || (registry == "docker.io" && host == "index.docker.io")
}

/// The docker auth JSON of the `seedgen` Secret's data (`seedAuth` key, spec §8.3).
pub fn seed_auth_from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<&[u8]> {
    data.get(lca_api::consts::names::SEEDGEN_SECRET_AUTH_KEY)
        .map(|v| v.as_slice())
        .ok_or(Error::MissingSeedAuth)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_auth_and_never_prints_the_password() {
        let json = Credentials::auth_json("127.0.0.1:5001", "lca", "s3cret");
        assert_eq!(
            json,
            r#"{"auths":{"127.0.0.1:5001":{"auth":"bGNhOnMzY3JldA=="}}}"#
        );
        let c = Credentials::from_auth_json(json.as_bytes(), "127.0.0.1:5001").unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                user: "lca".into(),
                password: "s3cret".into()
            }
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let other = Credentials::from_auth_json(json.as_bytes(), "quay.io").unwrap();
        assert_eq!(other, Credentials::Anonymous);
    }

    #[test]
    fn bad_json_and_missing_key_have_clear_messages() {
        assert!(
            Credentials::from_auth_json(b"{", "x")
                .unwrap_err()
                .to_string()
                .contains("invalid docker auth JSON")
        );
        let data = BTreeMap::from([("other".to_string(), b"{}".to_vec())]);
        assert_eq!(
            seed_auth_from_secret(&data).unwrap_err().to_string(),
            "could not find seedAuth in seedgen secret"
        );
    }
}
