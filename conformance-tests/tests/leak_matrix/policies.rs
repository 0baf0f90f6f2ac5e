//! The policies of the matrix, in the order they are put in force, each
//! with the callers it concerns and the view each caller must get. Each
//! function returns how many (policy, caller) cells it ran.

use conformance_tests::{Api, TestResult};
use serde_json::Value;

use crate::cx::{Cx, Needles, Who};
use crate::gate::{Gate, PROVIDER};
use crate::paths::{cell, writes};
use crate::seed::{consent, provision, View, ORG, OTHER_ORG};
use crate::world::{notifications, own_record, revoked, sealed_links, wait_for, write_consent};

/// The callers of a run.
pub struct Callers<'g> {
    gate: &'g Gate,
    /// The exempt loader.
    pub loader: Api,
    /// Practitioner/dr-lee, role clinician, `user/*.cruds`, acting for
    /// [`ORG`] (token claim).
    pub clin: Who,
    /// A payer backend, `system/*.rs`.
    pub payer: Who,
    /// A provider backend mapped to [`ORG`] (`[payer] provider_clients`),
    /// `system/*.rs`.
    pub provider: Who,
    /// Patient/pat-one as themselves, `patient/*.cruds`.
    pub patient: Who,
    clin_t: String,
    /// Practitioner/dr-lee acting for [`OTHER_ORG`].
    elsewhere_t: String,
    payer_t: String,
    /// The payer's token with the claim `purpose_of_use: HPAYMT`.
    payer_hp_t: String,
    /// A UDAP B2B Backend Services client's tokens, by `client_credentials`
    /// with the `hl7-b2b` extension in its assertion: for [`ORG`] with
    /// purpose TREAT, for [`OTHER_ORG`] with TREAT, and for [`OTHER_ORG`]
    /// with HPAYMT.
    b2b_org_treat_t: String,
    b2b_other_treat_t: String,
    b2b_other_hpaymt_t: String,
}

/// The `hl7-b2b` extension of a B2B client acting for `org` with `purpose`
/// (an HL7 v3 ActReason code).
fn hl7_b2b(gate: &Gate, org: &str, purpose: &str) -> Value {
    serde_json::json!({"hl7-b2b": {
        "version": "1",
        "organization_id": format!("{}/{org}", gate.base),
        "purpose_of_use": [format!("urn:oid:2.16.840.1.113883.5.8#{purpose}")],
    }})
}

impl<'g> Callers<'g> {
    /// Mints every caller's token with `fhirgate token issue`.
    pub fn issue(gate: &'g Gate, loader: Api) -> TestResult<Self> {
        let clin_t = gate.token(&[
            "--client",
            "ehr",
            "--scope",
            "user/*.cruds",
            "--user",
            "Practitioner/dr-lee",
            "--role",
            "clinician",
            "--organization",
            ORG,
        ])?;
        let elsewhere_t = gate.token(&[
            "--client",
            "ehr",
            "--scope",
            "user/*.cruds",
            "--user",
            "Practitioner/dr-lee",
            "--role",
            "clinician",
            "--organization",
            OTHER_ORG,
        ])?;
        let provider_t = gate.token(&["--client", PROVIDER, "--scope", "system/*.rs"])?;
        let payer_t = gate.token(&["--client", "payer", "--scope", "system/*.rs"])?;
        let payer_hp_t = gate.token(&[
            "--client",
            "payer",
            "--scope",
            "system/*.rs",
            "--purpose",
            "HPAYMT",
        ])?;
        let b2b = gate.backend_client("system/*.rs")?;
        let b2b_token = |org: &str, purpose: &str| {
            b2b.token_with(
                gate.public_url(),
                "system/*.rs",
                Some(&hl7_b2b(gate, org, purpose)),
            )
        };
        let b2b_org_treat_t = b2b_token(ORG, "TREAT")?;
        let b2b_other_treat_t = b2b_token(OTHER_ORG, "TREAT")?;
        let b2b_other_hpaymt_t = b2b_token(OTHER_ORG, "HPAYMT")?;
        let pat_t = gate.token(&[
            "--client",
            "portal",
            "--scope",
            "patient/*.cruds",
            "--patient",
            "pat-one",
            "--user",
            "Patient/pat-one",
            "--role",
            "patient",
        ])?;
        Ok(Self {
            gate,
            loader,
            clin: who(gate, "clinician", &clin_t, &[])?,
            payer: who(gate, "payer", &payer_t, &[])?,
            provider: who(
                gate,
                "provider backend of the organization",
                &provider_t,
                &[],
            )?,
            patient: who(gate, "patient", &pat_t, &[])?,
            clin_t,
            elsewhere_t,
            payer_t,
            payer_hp_t,
            b2b_org_treat_t,
            b2b_other_treat_t,
            b2b_other_hpaymt_t,
        })
    }

    fn with(&self, label: &str, token: &str, headers: &[(&'static str, &str)]) -> TestResult<Who> {
        who(self.gate, label, token, headers)
    }
}

fn who(gate: &Gate, label: &str, token: &str, headers: &[(&'static str, &str)]) -> TestResult<Who> {
    Ok(Who {
        label: label.to_owned(),
        api: gate.api(token)?,
        headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    })
}

/// No Consent: Part 2 alone hides the SUD record; the patient sees it all.
pub fn consent_free(cx: &mut Cx, c: &Callers) -> usize {
    cx.enter("no Consent (Part 2 only)");
    cell(cx, &c.clin, View::Baseline);
    cell(cx, &c.payer, View::Baseline);
    own_record(cx, &c.patient);
    2
}

/// Deny all, written through the facade by the exempt loader: in force on
/// the next request (as any Consent written through the facade), then
/// revoked the same way.
pub fn exempt_written(cx: &mut Cx, c: &Callers) -> TestResult<usize> {
    cx.enter("deny all, written by an exempt client through the facade");
    write_consent(cx, &c.loader, "cns-exempt", "active", provision::deny_all());
    let r = c.clin.get("Observation/obs-one-a")?;
    if r.status != 404 {
        cx.fail(
            "clinician",
            "GET Observation/obs-one-a right after PUT Consent/cns-exempt (deny all) by the exempt client `loader`",
            format!(
                "status {}: a Consent written through the facade by an exempt client does not \
                 take effect on the next request (only when the poller runs)",
                r.status
            ),
        );
    }
    let mut cells = 0;
    if wait_for(&c.clin, "Observation/obs-one-a", 404) {
        cell(cx, &c.clin, View::NoP1);
        cells += 1;
    } else {
        cx.fail(
            "clinician",
            "poller",
            "the deny-all Consent never took effect",
        );
    }
    write_consent(
        cx,
        &c.loader,
        "cns-exempt",
        "inactive",
        provision::deny_all(),
    );
    if !wait_for(&c.clin, "Observation/obs-one-a", 200) {
        cx.fail(
            "clinician",
            "poller",
            "the revoked Consent never stopped applying",
        );
    }
    Ok(cells)
}

/// The patient's own Consents: deny all, deny a category, deny an actor,
/// deny an organization, permit only a purpose, redact a category.
pub fn patient_written(cx: &mut Cx, c: &Callers) -> TestResult<usize> {
    let put = |cx: &mut Cx, name: &str, p: Value| {
        cx.enter(name);
        write_consent(cx, &c.patient, "cns-matrix", "active", p);
    };
    put(cx, "deny all", provision::deny_all());
    cell(cx, &c.clin, View::NoP1);
    cell(cx, &c.payer, View::NoP1);
    sealed_links(cx, &c.clin, &c.payer);
    let needles = Needles::new(cx, View::NoP1);
    writes(cx, &c.clin, &needles);

    put(cx, "deny a category (HIV)", provision::deny_label("HIV"));
    cell(cx, &c.clin, View::NoHiv);

    put(
        cx,
        "deny an actor (Practitioner/dr-lee)",
        provision::deny_actor(),
    );
    cell(cx, &c.clin, View::NoP1);
    cell(cx, &c.payer, View::Baseline);

    put(
        cx,
        &format!("deny an organization ({ORG})"),
        provision::deny_org(),
    );
    let elsewhere = c.with(
        "clinician acting for another organization",
        &c.elsewhere_t,
        &[],
    )?;
    let b2b_org = c.with(
        "UDAP B2B client stating the organization (hl7-b2b)",
        &c.b2b_org_treat_t,
        &[],
    )?;
    let b2b_other = c.with(
        "UDAP B2B client stating another organization (hl7-b2b)",
        &c.b2b_other_treat_t,
        &[],
    )?;
    cell(cx, &c.clin, View::NoP1);
    cell(cx, &c.provider, View::NoP1);
    cell(cx, &b2b_org, View::NoP1);
    cell(cx, &elsewhere, View::Baseline);
    cell(cx, &b2b_other, View::Baseline);
    cell(cx, &c.payer, View::Baseline);

    put(
        cx,
        "permit only a purpose (HPAYMT)",
        provision::only_purpose("HPAYMT"),
    );
    let by_header = c.with(
        "payer with X-Purpose-Of-Use: HPAYMT",
        &c.payer_t,
        &[("x-purpose-of-use", "HPAYMT")],
    )?;
    let by_claim = c.with(
        "payer with purpose_of_use HPAYMT in its token",
        &c.payer_hp_t,
        &[],
    )?;
    let b2b_hpaymt = c.with(
        "UDAP B2B client stating purpose HPAYMT (hl7-b2b)",
        &c.b2b_other_hpaymt_t,
        &[],
    )?;
    cell(cx, &c.clin, View::NoP1);
    cell(cx, &c.payer, View::NoP1);
    cell(cx, &b2b_other, View::NoP1);
    cell(cx, &by_header, View::Baseline);
    cell(cx, &by_claim, View::Baseline);
    cell(cx, &b2b_hpaymt, View::Baseline);

    put(cx, "redact a category (PSY)", provision::deny_label("PSY"));
    cell(cx, &c.clin, View::NoPsy);
    Ok(18)
}

/// Break-the-glass over deny all: released with purpose BTG and a reason
/// (and the patient notified), not without a reason, not for a role that
/// may not break the glass (and no notification then).
pub fn break_glass(cx: &mut Cx, c: &Callers) -> TestResult<usize> {
    cx.enter("break-the-glass over deny all");
    write_consent(
        cx,
        &c.patient,
        "cns-matrix",
        "active",
        provision::deny_all(),
    );
    let reason = "unconscious in ED, lm";
    let btg = [
        ("x-purpose-of-use", "BTG"),
        ("x-break-glass-reason", reason),
    ];
    let glass = c.with(
        "clinician breaking the glass with a reason",
        &c.clin_t,
        &btg,
    )?;
    let no_reason = c.with(
        "clinician with purpose BTG and no reason",
        &c.clin_t,
        &btg[..1],
    )?;
    let payer = c.with("payer breaking the glass (role may not)", &c.payer_t, &btg)?;
    let what = "Communication?subject=Patient/pat-one";
    let before = notifications(&c.loader)?;
    cell(cx, &no_reason, View::NoP1);
    cell(cx, &payer, View::NoP1);
    let between = notifications(&c.loader)?;
    if between != before {
        let n = between.len().saturating_sub(before.len());
        cx.fail(
            "loader",
            what,
            format!("{n} notifications after glass that stayed closed"),
        );
    }
    cell(cx, &glass, View::Glass);
    let after = notifications(&c.loader)?;
    let new: Vec<&Value> = after.iter().filter(|n| !before.contains(n)).collect();
    if new.is_empty() || !new.iter().all(|n| n.to_string().contains(reason)) {
        cx.fail(
            "loader",
            what,
            format!(
                "no break-the-glass notification with the reason for the patient ({} new)",
                new.len()
            ),
        );
    }
    Ok(3)
}

/// Revoked (status inactive: visible on the very next request, open paging
/// invalidated), then an expired period.
pub fn revocation(cx: &mut Cx, c: &Callers) -> usize {
    cx.enter("revoked, then read");
    revoked(cx, &c.clin, &c.patient);
    cell(cx, &c.clin, View::Baseline);
    cx.enter("expired period");
    write_consent(
        cx,
        &c.patient,
        "cns-matrix",
        "active",
        provision::expired_deny(),
    );
    cell(cx, &c.clin, View::Baseline);
    2
}

/// Deny all written directly to the HTTP upstream (not through the facade):
/// in force once the poller has seen it, and no longer once revoked there.
pub fn upstream_written(cx: &mut Cx, c: &Callers, direct: &Api) -> TestResult<usize> {
    cx.enter("deny all, written directly to the upstream");
    let r = direct.send_json(
        "PUT",
        "Consent/cns-upstream",
        &[],
        &consent("cns-upstream", "active", provision::deny_all()),
    )?;
    if !matches!(r.status, 200 | 201) {
        cx.fail(
            "upstream",
            "PUT Consent/cns-upstream",
            format!("{} {}", r.status, r.text),
        );
    }
    cx.consents.push("cns-upstream".into());
    let mut cells = 0;
    if wait_for(&c.clin, "Observation/obs-one-a", 404) {
        cell(cx, &c.clin, View::NoP1);
        cells += 1;
    } else {
        cx.fail(
            "clinician",
            "poller",
            "a Consent written to the upstream never took effect",
        );
    }
    direct.send_json(
        "PUT",
        "Consent/cns-upstream",
        &[],
        &consent("cns-upstream", "inactive", provision::deny_all()),
    )?;
    if !wait_for(&c.clin, "Observation/obs-one-a", 200) {
        cx.fail(
            "clinician",
            "poller",
            "a Consent revoked on the upstream kept applying",
        );
    }
    Ok(cells)
}
