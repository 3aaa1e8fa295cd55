//! EKS bearer tokens, made the way `aws eks get-token` makes them, so
//! kubectl and Terrace's own Kubernetes client need no AWS CLI.
//!
//! A token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL on the regional endpoint, valid for 60 seconds,
//! whose signature covers the `x-k8s-aws-id: <cluster>` header. EKS replays
//! the URL to STS to learn who the caller is. Signing is a pure function of
//! credentials, region, cluster and time ([`presign`]). A token is a
//! credential: it has no `Display`, its `Debug` is redacted, and no error
//! here carries it.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_types::date_time::{DateTime, Format};
use base64::Engine;
use serde::Serialize;

use super::{Aws, ClientError};

pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";
const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header EKS checks to bind a token to one cluster.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long STS accepts the presigned URL.
const URL_EXPIRES: Duration = Duration::from_secs(60);
/// When clients should fetch a new token: EKS accepts one for 15 minutes;
/// a minute less leaves room for clock skew, as `aws eks get-token` does.
const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Credentials(#[from] ClientError),
    #[error("cannot sign the STS request for cluster {cluster}: {reason}")]
    Signing { cluster: String, reason: String },
}

/// A bearer token for one cluster.
#[derive(Clone)]
pub struct Token {
    value: String,
    pub expires: SystemTime,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"** redacted **")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Token {
    /// The secret bearer value, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// `expires` as RFC 3339 UTC, to the second.
    pub fn expiration_timestamp(&self) -> String {
        rfc3339(self.expires)
    }

    /// The kubectl exec-plugin answer carrying this token.
    pub fn exec_credential(&self) -> ExecCredential {
        ExecCredential {
            api_version: EXEC_API_VERSION,
            kind: "ExecCredential",
            spec: serde_json::Map::new(),
            status: ExecCredentialStatus {
                expiration_timestamp: self.expiration_timestamp(),
                token: self.value.clone(),
            },
        }
    }
}

/// `client.authentication.k8s.io/v1beta1` ExecCredential, as kubectl
/// expects on the plugin's stdout.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecCredential {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub spec: serde_json::Map<String, serde_json::Value>,
    pub status: ExecCredentialStatus,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecCredentialStatus {
    pub expiration_timestamp: String,
    pub token: String,
}

impl fmt::Debug for ExecCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecCredential")
            .field("expiration_timestamp", &self.status.expiration_timestamp)
            .field("token", &"** redacted **")
            .finish()
    }
}

/// A token for `cluster` from `aws`'s credentials, region and clock.
pub async fn token(aws: &Aws, cluster: &str) -> Result<Token, TokenError> {
    let credentials = aws.credentials().await?;
    presign(&credentials, aws.region(), cluster, SystemTime::now())
}

/// The token for `cluster` signed with `credentials` in `region` at `now`.
pub fn presign(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<Token, TokenError> {
    let url =
        presigned_url(credentials, region, cluster, now).map_err(|reason| TokenError::Signing {
            cluster: cluster.to_string(),
            reason,
        })?;
    Ok(Token {
        value: format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
        ),
        expires: now + TOKEN_LIFETIME,
    })
}

fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    // The body hash is that of an empty body, not UNSIGNED-PAYLOAD: STS
    // recomputes it from the (empty) GET it receives.
    let signable = SignableRequest::new(
        "GET",
        &url,
        std::iter::once((CLUSTER_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| e.to_string())?;
    instructions.apply_to_request_http1x(&mut request);
    // aws-sigv4 appends the session token after the signature; botocore puts
    // the signature last. Either verifies; matching it keeps tokens
    // byte-identical with `aws eks get-token`.
    let uri = request.uri().to_string();
    let (signature, rest): (Vec<&str>, Vec<&str>) = uri
        .split('&')
        .partition(|part| part.starts_with("X-Amz-Signature="));
    Ok(rest
        .into_iter()
        .chain(signature)
        .collect::<Vec<_>>()
        .join("&"))
}

/// RFC 3339 UTC to the second (`2024-01-02T03:18:05Z`).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &Token) -> String {
        let b64 = token.expose().strip_prefix(TOKEN_PREFIX).unwrap();
        assert!(!b64.contains('='), "no padding");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// The expected URL is what botocore 1.35 (the library behind
    /// `aws eks get-token`) presigns for the same key, session token,
    /// region, cluster and frozen clock — an independent implementation.
    #[test]
    fn matches_botocore_for_a_fixed_key_and_clock() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("SESSIONTOKENEXAMPLE".into()),
            None,
            "test",
        );
        // 2024-01-02T03:04:05Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        let token = presign(&credentials, "eu-west-1", "demo-cluster", now).unwrap();
        assert_eq!(
            decode(&token),
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Feu-west-1%2Fsts%2Faws4_request\
             &X-Amz-Date=20240102T030405Z&X-Amz-Expires=60\
             &X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
             &X-Amz-Security-Token=SESSIONTOKENEXAMPLE\
             &X-Amz-Signature=0f8ba26b2345b93a92645debb0de780d0fc5afe3c51a0dc7e7d7805c5da09d33"
        );
        assert_eq!(token.expiration_timestamp(), "2024-01-02T03:18:05Z");
        let credential = token.exec_credential();
        let json = serde_json::to_value(&credential).unwrap();
        assert_eq!(json["apiVersion"], EXEC_API_VERSION);
        assert_eq!(json["kind"], "ExecCredential");
        assert_eq!(
            json["status"]["expirationTimestamp"],
            "2024-01-02T03:18:05Z"
        );
        assert!(!format!("{token:?} {credential:?}").contains("k8s-aws-v1."));
    }
}
