//! Access tokens for the usual callers, built on [`TestApp::token_as`].

use super::TestApp;

impl TestApp {
    /// A patient's token from the portal app: `patient/*.cruds`, in
    /// `patient`'s context, `fhirUser` `Patient/{patient}`, role `patient`.
    pub async fn patient_token(&self, patient: &str) -> String {
        self.token_as(
            "portal-app",
            "patient/*.cruds",
            Some(patient),
            Some(&format!("Patient/{patient}")),
            Some("patient"),
            None,
        )
        .await
    }
}
