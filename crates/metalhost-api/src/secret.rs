//! BMC credentials from a Kubernetes Secret (`data` base64 or `stringData`), as upstream reads them.

use k8s_openapi::api::core::v1::Secret;

use crate::bmc::Credentials;

/// Why a credentials Secret cannot be used. Messages follow upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// No Secret with that name exists.
    #[error("spec.bmc.credentialsName: secret '{name}' not found in namespace '{namespace}'")]
    NotFound {
        /// The Secret's name.
        name: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// `spec.bmc.credentialsName` is empty.
    #[error("spec.bmc.credentialsName: Missing BMC connection detail 'credentialsName'")]
    MissingName,
    /// The Secret lacks a user name.
    #[error("secret '{0}': Missing BMC connection detail 'username' in credentials")]
    MissingUsername(String),
    /// The Secret lacks a password.
    #[error("secret '{0}': Missing BMC connection details 'password' in credentials")]
    MissingPassword(String),
    /// A value is not UTF-8 text.
    #[error("secret '{name}': key '{key}' is not UTF-8 text")]
    NotText {
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
    },
}

/// The text under `key` in a Secret (`stringData` wins over `data`, as in Kubernetes); None when
/// the key is absent.
pub fn secret_text(secret: &Secret, key: &str) -> Result<Option<String>, CredentialsError> {
    if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(Some(v.clone()));
    }
    match secret.data.as_ref().and_then(|d| d.get(key)) {
        Some(bytes) => String::from_utf8(bytes.0.clone()).map(Some).map_err(|_| CredentialsError::NotText {
            name: secret.metadata.name.clone().unwrap_or_default(),
            key: key.into(),
        }),
        None => Ok(None),
    }
}

/// Reads `username` and `password` from a Secret; `stringData` wins over `data` as in Kubernetes.
pub fn credentials_from_secret(secret: &Secret) -> Result<Credentials, CredentialsError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let get = |key: &str| -> Result<String, CredentialsError> {
        Ok(secret_text(secret, key)?.map(|v| v.trim().to_string()).unwrap_or_default())
    };
    let username = get("username")?;
    if username.is_empty() {
        return Err(CredentialsError::MissingUsername(name));
    }
    let password = get("password")?;
    if password.is_empty() {
        return Err(CredentialsError::MissingPassword(name));
    }
    Ok(Credentials::new(username, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(yaml: &str) -> Secret {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn reads_base64_data() {
        let s = secret("metadata: {name: s}\ndata: {username: YWRtaW4=, password: cGFzc3dvcmQ=}");
        let c = credentials_from_secret(&s).unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("admin", "password"));
    }

    #[test]
    fn string_data_wins() {
        let s = secret(
            "metadata: {name: s}\ndata: {username: YWRtaW4=}\nstringData: {username: root, password: pw}",
        );
        let c = credentials_from_secret(&s).unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("root", "pw"));
    }

    #[test]
    fn empty_user_or_password_is_named() {
        let s = secret("metadata: {name: s}\ndata: {username: '', password: MWYyZDFlMmU2N2Rm}");
        assert_eq!(credentials_from_secret(&s).unwrap_err(), CredentialsError::MissingUsername("s".into()));
        let s = secret("metadata: {name: s}\ndata: {username: YWRtaW4=, password: ''}");
        let err = credentials_from_secret(&s).unwrap_err();
        assert_eq!(err.to_string(), "secret 's': Missing BMC connection details 'password' in credentials");
    }
}
