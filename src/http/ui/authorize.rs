//! `GET|POST /auth/continue?req=<pending id>`: the user's part of the
//! authorization endpoint (SMART App Launch 2.2 §"Obtain authorization
//! code"): sign in, pick a patient when a standalone launch asked for
//! `launch/patient`, then allow or deny the app's scopes.
//!
//! Who supplies the patient (`patient_for`):
//! - a `patient`-role user: always their own record (`fhir_user`), never a picker;
//! - a clinician, when the request needs a patient: the one picked in the
//!   picker (carried as `patient` through the approval form, re-checked on POST);
//! - otherwise none (an EHR launch already carries its patient in the pending request).
//!
//! Protocol decisions (what a code grants, redirects) stay in
//! `oauth::authorize` (`load_pending`, `approve`, `deny`).

use axum::{
    body::Bytes,
    extract::{OriginalUri, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    page, patients, request_id, scopes::Plan, see_other, session, session::SignedIn,
    with_form_targets, Fields, UiError,
};
use crate::{
    oauth::authorize::{self as oauth, Pending},
    AppState,
};

/// Where the GET page lives.
const PATH: &str = "/auth/continue";

/// What `patient_for` decided.
enum PatientChoice {
    /// Use this patient (id).
    Use(String),
    /// No patient is needed from the user.
    None,
    /// A clinician must pick one first.
    Pick,
}

/// Decides the patient for `pending` and `signed` (see the module docs).
fn patient_for(
    pending: &Pending,
    signed: &SignedIn,
    picked: Option<&str>,
) -> Result<PatientChoice, UiError> {
    if signed.is_patient() {
        return match signed.own_patient() {
            Some(id) => Ok(PatientChoice::Use(id)),
            None if pending.needs_patient => Err(UiError::Forbidden(
                "Your account is not linked to a patient record, so this app cannot be given one."
                    .into(),
            )),
            None => Ok(PatientChoice::None),
        };
    }
    if !pending.needs_patient {
        return Ok(PatientChoice::None);
    }
    if !signed.is_clinician() {
        return Err(UiError::Forbidden(
            "This app needs a patient, and only clinicians can choose one.".into(),
        ));
    }
    Ok(match picked.filter(|p| !p.is_empty()) {
        Some(p) => PatientChoice::Use(p.to_owned()),
        None => PatientChoice::Pick,
    })
}

/// Loads the pending request and checks it is this user's to answer.
async fn pending_for(app: &AppState, req: &str, signed: &SignedIn) -> Result<Pending, UiError> {
    let pending = oauth::load_pending(app, req).await?;
    if pending
        .launch_user
        .as_deref()
        .is_some_and(|u| u != signed.user.username)
    {
        return Err(UiError::Forbidden(
            "This app was launched by another user; only they can approve it.".into(),
        ));
    }
    Ok(pending)
}

/// `GET /auth/continue`.
pub async fn continue_get(
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
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let req = q
        .get("req")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| UiError::BadRequest("No authorization request was given.".into()))?;
    let pending = pending_for(&app, req, &signed).await?;
    let sa = super::assurance::of(&app, &signed).await?;
    if let Some(to) = super::assurance::reauth_for(&app, &pending, &signed, &sa, here).await? {
        return Ok(to);
    }
    let rid = request_id(&headers);
    let choice = patient_for(&pending, &signed, q.get("patient"))?;
    let (patient_id, shown) = match &choice {
        PatientChoice::Pick => {
            return picker(&app, &rid, &signed, req, q.get("q").unwrap_or("")).await
        }
        PatientChoice::Use(id) => (id.clone(), Some(id.clone())),
        PatientChoice::None => (String::new(), pending.launch_patient.clone()),
    };
    let patient = match &shown {
        Some(id) => Some(
            patients::read_patient(&app, &rid, id)
                .await?
                .ok_or_else(|| UiError::NotFound(format!("There is no patient with id {id}.")))?,
        ),
        None => None,
    };
    let plan = Plan::new(&pending.scope, signed.is_patient())?;
    let approval = ui::ApprovalPage {
        chrome: session::chrome(Some(&signed)),
        app_name: pending.client_name.clone(),
        patient,
        patient_is_self: signed.is_patient(),
        items: plan.items(),
        req: pending.id.clone(),
        patient_id,
        csrf: signed.csrf(),
    };
    let res = page(StatusCode::OK, &approval)?;
    Ok(with_form_targets(res, [pending.redirect_uri.as_str()]))
}

/// The patient picker for a standalone launch.
async fn picker(
    app: &AppState,
    rid: &str,
    signed: &SignedIn,
    req: &str,
    query: &str,
) -> Result<Response, UiError> {
    let (rows, search_error) = match patients::search_patients(app, rid, query).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    page(
        StatusCode::OK,
        &ui::PickerPage {
            chrome: session::chrome(Some(signed)),
            heading: "Choose a patient".into(),
            intro: "The app asked to work with one patient's record. Choose the patient.".into(),
            action: PATH.into(),
            hidden: vec![ui::Hidden {
                name: "req".into(),
                value: req.to_owned(),
            }],
            query: query.to_owned(),
            patients: rows,
            search_error,
        },
    )
}

/// `POST /auth/continue`: `decision=allow` approves the ticked scopes,
/// `decision=deny` refuses; both answer with a 303 to the app.
pub async fn continue_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = Fields::parse(&body);
    let req = f
        .get("req")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| UiError::BadRequest("No authorization request was given.".into()))?;
    let here = format!(
        "{PATH}?req={}",
        url::form_urlencoded::byte_serialize(req.as_bytes()).collect::<String>()
    );
    let signed = match session::require(&app, &headers, &here).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    signed.check_csrf(f.get("csrf"))?;
    let pending = pending_for(&app, req, &signed).await?;
    match f.get("decision") {
        Some("deny") => {
            let to = oauth::deny(&app, &pending.id).await?;
            see_other(&to)
        }
        Some("allow") => {
            let patient = match patient_for(&pending, &signed, f.get("patient"))? {
                PatientChoice::Use(id) => Some(id),
                PatientChoice::None => None,
                PatientChoice::Pick => {
                    return Err(UiError::BadRequest(
                        "Choose a patient before allowing the app.".into(),
                    ))
                }
            };
            if let Some(id) = &patient {
                let rid = request_id(&headers);
                if patients::read_patient(&app, &rid, id).await?.is_none() {
                    return Err(UiError::NotFound(format!(
                        "There is no patient with id {id}."
                    )));
                }
            }
            let plan = Plan::new(&pending.scope, signed.is_patient())?;
            let granted = plan.granted(&f)?;
            let sa = super::assurance::of(&app, &signed).await?;
            let to = oauth::approve(
                &app,
                &pending.id,
                &signed.user,
                &sa.assurance,
                &granted,
                patient.as_deref(),
            )
            .await?;
            see_other(&to)
        }
        _ => Err(UiError::BadRequest("Choose Allow or Deny.".into())),
    }
}
