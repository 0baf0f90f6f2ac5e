//! The authorization UI's side of identity assurance (issue 11): before the
//! approval page, the signed-in session must meet what the client asked for
//! (`acr_values`, `max_age`) and what the policy wants for this user
//! (`crate::assurance::for_user`). When it does not, the user is sent once
//! to authenticate again and then back:
//! - a federated session: to the OpenID Provider, with the `acr_values`
//!   needed, `prompt=login` and the client's `max_age`;
//! - a local session: to the step-up page when a second factor or a more
//!   recent authentication would do (a step-up moves `auth_time`), or to
//!   the sign-in page when only `max_age` is short and the user has no
//!   second factor. A local account's acr (its identity proofing) cannot
//!   be raised by signing in again, so that shortfall is left to the
//!   resource server's RFC 9470 answer.
//!
//! Asked once per authorization request (`Pending::reauth_asked`); after
//! that the code carries whatever assurance the session has.

use axum::response::Response;
use smart_launch::assurance::Assurance;

use super::{federated, mfa::STEPUP_PATH, see_other, session::SignedIn, UiError};
use crate::{
    assurance::{self, session::SessionAssurance},
    federation::Ask,
    oauth::{authorize::Pending, now},
    AppState,
};

/// The assurance of `signed`'s session.
pub async fn of(app: &AppState, signed: &SignedIn) -> Result<SessionAssurance, UiError> {
    assurance::session::of_session(&app.state, &signed.id_hash())
        .await
        .map_err(UiError::internal)
}

/// What the session lacks for `pending`: acr values to ask for (empty when
/// none) and whether it is too old; `None` when nothing is lacking.
fn lacking(
    app: &AppState,
    pending: &Pending,
    signed: &SignedIn,
    a: &Assurance,
) -> Option<(Vec<String>, bool)> {
    let config = &app.config;
    let too_old = pending.max_age.is_some_and(|m| !a.fresh(m, now()));
    let acr = if !assurance::meets_acr_values(config, a, &pending.acr_values) {
        pending.acr_values.clone()
    } else {
        match assurance::for_user(config, Some(&signed.user.role), a) {
            Ok(()) => Vec::new(),
            Err(short) => short.acr_values,
        }
    };
    (too_old || !acr.is_empty()).then_some((acr, too_old))
}

/// `Some(redirect)` when the user must authenticate again before approving
/// `pending` (see the module docs); `here` is the page to come back to.
pub async fn reauth_for(
    app: &AppState,
    pending: &Pending,
    signed: &SignedIn,
    sa: &SessionAssurance,
    here: &str,
) -> Result<Option<Response>, UiError> {
    if pending.reauth_asked {
        return Ok(None);
    }
    let Some((acr_values, too_old)) = lacking(app, pending, signed, &sa.assurance) else {
        return Ok(None);
    };
    let mfa = acr_values.contains(&app.config.assurance.mfa_acr);
    let to = if sa.federated() && app.federation.is_some() {
        federated::start_url(
            here,
            &Ask {
                acr_values,
                login: true,
                max_age: pending.max_age,
            },
        )
    } else if mfa || too_old {
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        if mfa || super::mfa::has_factor(app, &signed.user.username).await? {
            format!("{STEPUP_PATH}?next={next}")
        } else {
            format!("/login?next={next}")
        }
    } else {
        return Ok(None);
    };
    let mut marked = pending.clone();
    marked.reauth_asked = true;
    crate::oauth::authorize::save_pending(app, &marked).await?;
    Ok(Some(see_other(&to)?))
}

/// `Err(page)` when `signed`'s session lacks what the policy wants for
/// their role (`crate::assurance::for_user`): a 403 page that offers the
/// way to get it (the provider again with the `acr_values` needed, for a
/// federated session; the step-up page, for a second factor), then back
/// to `here`. A link, not a redirect, so a provider that cannot give more
/// does not send the browser round in circles.
pub async fn gate_page(
    app: &AppState,
    signed: &SignedIn,
    here: &str,
) -> Result<Result<(), Response>, UiError> {
    let sa = of(app, signed).await?;
    let Err(short) = assurance::for_user(&app.config, Some(&signed.user.role), &sa.assurance)
    else {
        return Ok(Ok(()));
    };
    let mfa = short.acr_values.contains(&app.config.assurance.mfa_acr);
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    let (message, action_href, action_label) = if mfa {
        (
            "This page needs a sign-in with a second factor. Confirm it is you with your \
             authenticator app or phone."
                .to_owned(),
            Some(format!("{STEPUP_PATH}?next={next}")),
            "Confirm with a second factor",
        )
    } else if sa.federated() && app.federation.is_some() {
        (
            "This page needs a verified identity (a higher identity assurance level than your \
             sign-in has). Sign in again with your identity provider and complete its identity \
             verification."
                .to_owned(),
            Some(federated::start_url(
                here,
                &Ask {
                    acr_values: short.acr_values.clone(),
                    login: true,
                    max_age: None,
                },
            )),
            "Verify your identity",
        )
    } else {
        (
            "This page needs a verified identity (a higher identity assurance level than this \
             account has). Ask the organization that runs this service to verify your identity."
                .to_owned(),
            None,
            "",
        )
    };
    tracing::info!(role = %signed.user.role, "ui page refused: insufficient assurance");
    let page = ui::AssurancePage {
        chrome: super::session::chrome(Some(signed)),
        title: "More assurance needed".into(),
        message,
        action_href,
        action_label: action_label.to_owned(),
    };
    Ok(Err(super::page(axum::http::StatusCode::FORBIDDEN, &page)?))
}
