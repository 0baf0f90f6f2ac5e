//! `GET|POST /launcher`: the EHR launcher (SMART App Launch 2.2 §"EHR
//! launch"). A signed-in clinician picks a patient (`Select`), optionally
//! one of that patient's encounters, and a registered app (clients whose
//! metadata has `launch_url`, listed by name under `App`), then `Launch`:
//! `oauth::authorize::ehr_launch` mints the launch context and returns the
//! app's launch URL with `iss` and `launch`, which the browser is sent to.

use axum::{
    body::Bytes,
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    page, patients, request_id, see_other, session, session::SignedIn, with_form_targets, Fields,
    UiError,
};
use crate::{oauth::authorize as oauth, state::oauth::ClientRecord, AppState};

/// Where the launcher lives.
const PATH: &str = "/launcher";

/// The app's launch URL, when it has one.
fn launch_url(c: &ClientRecord) -> Option<&str> {
    c.metadata["launch_url"].as_str().filter(|u| !u.is_empty())
}

/// Registered clients that can be launched.
async fn launchable(app: &AppState) -> Result<Vec<ClientRecord>, UiError> {
    let all = app.state.client_list().await.map_err(UiError::internal)?;
    Ok(all
        .into_iter()
        .filter(|c| launch_url(c).is_some())
        .collect())
}

/// Only clinicians use the launcher.
fn require_clinician(signed: &SignedIn) -> Result<(), UiError> {
    if signed.is_clinician() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "The EHR launcher is for clinicians. Sign in with a clinician account to launch apps."
                .into(),
        ))
    }
}

/// `GET /launcher[?patient=…][&q=…]`.
pub async fn launcher_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let here = uri.path_and_query().map_or(PATH, |p| p.as_str());
    let signed = match session::require(&app, &headers, here).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_clinician(&signed)?;
    if let Err(page) = super::assurance::gate_page(&app, &signed, here).await? {
        return Ok(page);
    }
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let rid = request_id(&headers);
    let Some(patient_id) = q.get("patient").filter(|p| !p.is_empty()) else {
        let text = q.get("q").unwrap_or("");
        let (rows, search_error) = match patients::search_patients(&app, &rid, text).await {
            Ok(rows) => (rows, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        return page(
            StatusCode::OK,
            &ui::PickerPage {
                chrome: session::chrome(Some(&signed)),
                heading: "EHR launcher".into(),
                intro: "Choose the patient to launch an app for, as an EHR would.".into(),
                action: PATH.into(),
                hidden: Vec::new(),
                query: text.to_owned(),
                patients: rows,
                search_error,
            },
        );
    };
    let patient = patients::read_patient(&app, &rid, patient_id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("There is no patient with id {patient_id}.")))?;
    let (encounters, encounter_error) = match patients::encounters(&app, &rid, patient_id).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let clients = launchable(&app).await?;
    let launcher = ui::LauncherPage {
        chrome: session::chrome(Some(&signed)),
        patient,
        encounters,
        encounter_error,
        apps: clients
            .iter()
            .map(|c| ui::AppOption {
                client_id: c.client_id.clone(),
                name: c.client_name.clone(),
            })
            .collect(),
        csrf: signed.csrf(),
    };
    let res = page(StatusCode::OK, &launcher)?;
    Ok(with_form_targets(
        res,
        clients.iter().filter_map(launch_url),
    ))
}

/// `POST /launcher`: `patient`, optional `encounter`, `client_id` → 303 to the app.
pub async fn launcher_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_clinician(&signed)?;
    if let Err(page) = super::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    let rid = request_id(&headers);
    let patient_id = f.get("patient").unwrap_or("");
    if patients::read_patient(&app, &rid, patient_id)
        .await?
        .is_none()
    {
        return Err(UiError::NotFound(format!(
            "There is no patient with id {patient_id}."
        )));
    }
    let encounter = f.get("encounter").filter(|e| !e.is_empty());
    if let Some(e) = encounter {
        let found = patients::read(&app, &rid, "Encounter", e).await?;
        if !found.is_some_and(|enc| patients::encounter_is_of(&enc, patient_id)) {
            return Err(UiError::BadRequest(
                "That encounter is not one of this patient's.".into(),
            ));
        }
    }
    let client_id = f.get("client_id").unwrap_or("");
    if !launchable(&app)
        .await?
        .iter()
        .any(|c| c.client_id == client_id)
    {
        return Err(UiError::BadRequest(
            "Choose one of the listed apps (a registered client with a launch URL).".into(),
        ));
    }
    let to = oauth::ehr_launch(&app, client_id, &signed.user, patient_id, encounter).await?;
    see_other(&to)
}
