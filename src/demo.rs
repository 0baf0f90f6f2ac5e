//! Demo start: on a fresh data dir in demo mode, seed the deterministic
//! population through the upstream and create the demo users of the
//! interface contract (`dr.lee`, `pat.jones`, password `demo`) plus the
//! administrator `admin` (password `demo`, the `/admin` page).
//!
//! Organizations, for Consents that name one: `dr.lee` acts for
//! `Organization/org-riverside-clinic` (user directory, matching the seeded
//! PractitionerRole), and the demo provider Backend Services client
//! [`DEMO_PROVIDER_CLIENT`] for `Organization/org-riverside-hospital`
//! (`[payer] provider_clients`, unless the configuration maps it already).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{
    fhir::{FhirRequest, Interaction},
    state::users::User,
    upstream::embedded::EmbeddedStore,
    AppState,
};

/// Marker in the state store's `meta` table once the demo is set up.
const DEMO_MARKER: &str = "demo_seeded";
/// Resources per transaction Bundle while seeding.
const SEED_BUNDLE_SIZE: usize = 2000;
/// Patients generated per streamed batch.
const SEED_BATCH_PATIENTS: u32 = 20;
/// The demo administrator's sign-in name.
pub const ADMIN_USERNAME: &str = "admin";
/// The FHIR resource the demo administrator is (a seeded Organization).
pub const ADMIN_FHIR_USER: &str = "Organization/org-riverside-clinic";
/// The demo provider Backend Services client id, mapped to the hospital in
/// `[payer] provider_clients` in demo mode (mint it a token with
/// `fhirgate token issue --client demo-provider --any-client --scope
/// 'system/*.rs'`).
pub const DEMO_PROVIDER_CLIENT: &str = "demo-provider";

/// Demo-mode configuration (every command, so `consent explain` sees what
/// the server does): maps [`DEMO_PROVIDER_CLIENT`] to the seeded hospital
/// in `[payer] provider_clients` (an existing mapping of that client id is
/// kept), and declares the demo research client and key set in `[deid]`.
pub fn configure(config: &mut crate::config::Config) -> anyhow::Result<()> {
    config
        .payer
        .provider_clients
        .entry(DEMO_PROVIDER_CLIENT.to_owned())
        .or_insert_with(|| crate::seed::HOSPITAL_ORGANIZATION.to_owned());
    // the demo research client may run de-identified exports
    crate::deid::config::configure_demo(&mut config.deid);
    // the demo EHR may call CRD (`fhirgate crd demo-jwt`)
    crate::crd::demo::trust_demo_ehr(config)
}

/// What the demo start produced.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// Patients seeded.
    pub patients: u32,
    /// `Patient/…` linked to `pat.jones`.
    pub pat_jones: String,
    /// `Practitioner/…` of `dr.lee`.
    pub dr_lee: String,
}

/// Result of a seeding run.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// Resources written.
    pub resources: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Patient linked to `pat.jones`.
    pub pat_jones: String,
    /// Practitioner of `dr.lee`.
    pub dr_lee: String,
}

/// Seeds the demo once per data dir (state store marker) and ensures the demo users.
pub async fn ensure(
    app: &AppState,
    embedded: Option<&EmbeddedStore>,
    patients: u32,
) -> anyhow::Result<DemoInfo> {
    if let Some(marker) = app.state.meta(DEMO_MARKER).await? {
        ensure_admin(app).await?;
        crate::http::ui::dtr_app::ensure_client(app).await?;
        let v: Value = serde_json::from_str(&marker)?;
        return Ok(DemoInfo {
            patients: v["patients"].as_u64().unwrap_or(0) as u32,
            pat_jones: v["pat_jones"].as_str().unwrap_or_default().to_owned(),
            dr_lee: v["dr_lee"].as_str().unwrap_or_default().to_owned(),
        });
    }
    tracing::info!(patients, "fresh data dir: seeding the demo population");
    let report = seed_population(app, patients).await?;
    if let Some(store) = embedded {
        store.optimize().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    tracing::info!(
        resources = report.resources,
        secs = report.elapsed.as_secs_f64(),
        "demo population seeded"
    );
    let users = [
        User {
            username: "dr.lee".into(),
            role: "clinician".into(),
            fhir_user: report.dr_lee.clone(),
            display_name: "Dr. Lee".into(),
            organization: Some(crate::seed::DR_LEE_ORGANIZATION.to_owned()),
        },
        User {
            username: "pat.jones".into(),
            role: "patient".into(),
            fhir_user: report.pat_jones.clone(),
            display_name: "Pat Jones".into(),
            organization: None,
        },
        admin_user(),
    ];
    for u in &users {
        app.state.upsert_user(u, "demo").await?;
    }
    // The DTR SMART app CRD cards link to (public client `dtr-app`).
    crate::http::ui::dtr_app::ensure_client(app).await?;
    let info = DemoInfo {
        patients,
        pat_jones: report.pat_jones,
        dr_lee: report.dr_lee,
    };
    app.state
        .set_meta(
            DEMO_MARKER,
            &json!({"patients": patients, "pat_jones": info.pat_jones, "dr_lee": info.dr_lee})
                .to_string(),
        )
        .await?;
    Ok(info)
}

/// The demo administrator (password `demo`).
fn admin_user() -> User {
    User {
        username: ADMIN_USERNAME.into(),
        role: "admin".into(),
        fhir_user: ADMIN_FHIR_USER.into(),
        display_name: "Administrator".into(),
        organization: None,
    }
}

/// Creates the demo administrator on a demo data dir seeded before it
/// existed (an existing account, and its password, are left alone).
async fn ensure_admin(app: &AppState) -> anyhow::Result<()> {
    if app.state.user_get(ADMIN_USERNAME).await?.is_none() {
        app.state.upsert_user(&admin_user(), "demo").await?;
    }
    Ok(())
}

/// Writes the population through the configured upstream as transaction
/// Bundles of `PUT Type/id` entries (idempotent: deterministic ids). The
/// generator runs on a blocking thread and streams batches, so memory stays
/// bounded whatever the population size.
pub async fn seed_population(app: &AppState, patients: u32) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Value>>(2);
    let generator = tokio::task::spawn_blocking(move || {
        crate::seed::generate_batches(patients, SEED_BATCH_PATIENTS, |batch| {
            tx.blocking_send(batch)
                .map_err(|_| anyhow::anyhow!("the seed writer stopped"))
        })
    });
    let ctx = app.request_context("seed");
    let mut written = 0;
    while let Some(batch) = rx.recv().await {
        for chunk in batch.chunks(SEED_BUNDLE_SIZE) {
            write_chunk(app, chunk, &ctx).await?;
            written += chunk.len();
        }
    }
    let ids = generator.await??;
    // Provider Access attribution Groups reference every patient: last.
    let groups = crate::seed::attribution_groups(patients);
    write_chunk(app, &groups, &ctx).await?;
    written += groups.len();
    Ok(SeedReport {
        resources: written,
        elapsed: started.elapsed(),
        pat_jones: format!("Patient/{}", ids.pat_jones_patient),
        dr_lee: format!("Practitioner/{}", ids.dr_lee_practitioner),
    })
}

async fn write_chunk(
    app: &AppState,
    chunk: &[Value],
    ctx: &crate::upstream::RequestContext,
) -> anyhow::Result<()> {
    let entries: Vec<Value> = chunk
        .iter()
        .map(|r| {
            let url = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            );
            json!({"resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let mut req = FhirRequest::new(Interaction::BatchOrTransaction);
    req.body = Some(json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}));
    app.upstream.execute(&req, ctx).await.map_err(|e| {
        anyhow::anyhow!(
            "seeding failed: {e} {}",
            e.internal.clone().unwrap_or_default()
        )
    })?;
    Ok(())
}
