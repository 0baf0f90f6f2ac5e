//! SMS and voice one-time codes through Twilio Verify (v2 REST API): the
//! adapter behind [`Verifier`] for deployments that configure a Verify
//! service (`[mfa.twilio] service_sid`, `account_sid`, `auth_token`).
//!
//! Wire: `POST {base}/v2/Services/{ServiceSid}/Verifications` with form
//! fields `To` (E.164) and `Channel` (`sms` | `call`) starts a verification
//! (Twilio generates and sends the code); `POST
//! {base}/v2/Services/{ServiceSid}/VerificationCheck` with `To` and `Code`
//! checks it: `status` `approved` is a match, `pending` a wrong code. Both
//! use HTTP Basic with the account SID and auth token. Errors are JSON
//! `{code, message, more_info, status}`: 404 (20404) when there is no
//! pending verification (expired, approved already, or too many checks),
//! 429 (60203, 60202) when sends or checks are exhausted, 400 (60200) for a
//! bad number. `base` is `https://verify.twilio.com` in production; tests
//! point it at a local server speaking the same shapes.

use serde::Deserialize;

/// What a verifier needs to send and check codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A text message.
    Sms,
    /// A voice call reading the code.
    Call,
}

impl Channel {
    /// The API's name of the channel (also the step-up factor recorded).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Call => "call",
        }
    }

    /// The channel named `s` (`sms` | `call`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sms" => Some(Self::Sms),
            "call" => Some(Self::Call),
            _ => None,
        }
    }
}

/// One HTTP client for every verifier of the process (10-second timeout);
/// `None` if none can be built (the provider is then unavailable).
fn shared_client() -> Option<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .ok()
        })
        .clone()
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The code matched.
    Approved,
    /// The code did not match; the verification is still open.
    Wrong,
    /// No open verification (expired, used, or attempts exhausted).
    NoPending,
}

/// Failures of the provider.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The provider refused the request (`code` is its error code).
    #[error("verification provider refused: {status} (code {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Provider error code (Twilio's numeric code).
        code: i64,
        /// Provider message (no secrets).
        message: String,
    },
    /// Too many sends or checks for this destination.
    #[error("too many verification attempts; try again later")]
    TooMany,
    /// The provider could not be reached or answered nonsense.
    #[error("verification provider unavailable: {0}")]
    Unavailable(String),
}

/// A Twilio Verify service.
#[derive(Clone)]
pub struct Verifier {
    http: reqwest::Client,
    base: String,
    service_sid: String,
    account_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("base", &self.base)
            .field("service_sid", &self.service_sid)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

impl Verifier {
    /// A verifier for the service at `base` (no trailing slash needed).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        service_sid: &str,
        account_sid: &str,
        auth_token: &str,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            service_sid: service_sid.to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        }
    }

    /// The verifier `[mfa.twilio]` configures, on the process's client.
    pub fn from_config(c: &crate::mfa::config::TwilioConfig) -> Result<Self, VerifyError> {
        let http =
            shared_client().ok_or_else(|| VerifyError::Unavailable("no HTTP client".to_owned()))?;
        Ok(Self::new(
            http,
            &c.base_url,
            &c.service_sid,
            &c.account_sid,
            &c.auth_token,
        ))
    }

    async fn post(&self, resource: &str, form: &[(&str, &str)]) -> Result<Answer, VerifyError> {
        let url = format!("{}/v2/Services/{}/{resource}", self.base, self.service_sid);
        let res = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|e| VerifyError::Unavailable(e.without_url().to_string()))?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| VerifyError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| VerifyError::Unavailable(format!("unreadable answer: {e}")));
        }
        let err: ErrorBody = serde_json::from_slice(&body).unwrap_or(ErrorBody {
            code: None,
            message: None,
        });
        if status.as_u16() == 429 {
            return Err(VerifyError::TooMany);
        }
        if status.is_server_error() {
            return Err(VerifyError::Unavailable(format!("HTTP {status}")));
        }
        Err(VerifyError::Refused {
            status: status.as_u16(),
            code: err.code.unwrap_or(0),
            message: err.message.unwrap_or_default(),
        })
    }

    /// Sends a code to `to` (E.164) over `channel`.
    pub async fn start(&self, to: &str, channel: Channel) -> Result<(), VerifyError> {
        let a = self
            .post(
                "Verifications",
                &[("To", to), ("Channel", channel.as_str())],
            )
            .await?;
        match a.status.as_deref() {
            Some("pending") => Ok(()),
            other => Err(VerifyError::Unavailable(format!(
                "verification not started (status {other:?})"
            ))),
        }
    }

    /// Checks `code` for `to`.
    pub async fn check(&self, to: &str, code: &str) -> Result<Check, VerifyError> {
        match self
            .post("VerificationCheck", &[("To", to), ("Code", code)])
            .await
        {
            Ok(a) => Ok(match a.status.as_deref() {
                Some("approved") => Check::Approved,
                Some("pending") => Check::Wrong,
                _ => Check::NoPending,
            }),
            Err(VerifyError::Refused { status: 404, .. }) => Ok(Check::NoPending),
            Err(e) => Err(e),
        }
    }
}
