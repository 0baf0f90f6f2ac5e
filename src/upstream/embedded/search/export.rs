//! The bulk export's direct scan of one resource type: the rows a set of
//! searches would match (each compiled exactly as a search of the type or of
//! a Patient compartment, OR'd), optionally limited to the compartments of a
//! list of patients, read in pages by keyset (`id > last id`, in id order
//! along the `(type, id)` unique index), so a page costs the same wherever
//! it starts and each current resource comes once. Rows inserted behind the
//! cursor are not seen, rows inserted ahead of it are; none is skipped or
//! repeated.

use sqlx::Row;

use super::{bind_all, plan, sql::Bind, Target};
use crate::{error::FhirResult, search::compartment::patient_compartment_params, search::query};

use super::super::EmbeddedStore;

/// One search the scan ORs in: its parameters (a `_typeFilter` query plus
/// the caller's constraint parameters, `_lastUpdated`, …) and the Patient
/// compartment it is confined to, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScanQuery {
    /// Search parameters (AND).
    pub params: Vec<(String, String)>,
    /// `Patient/{id}/{Type}` instead of `{Type}`.
    pub compartment: Option<String>,
}

/// A compiled scan.
#[derive(Debug, Clone)]
pub(crate) struct ExportScan {
    sql: String,
    binds: Vec<Bind>,
}

/// A row of a scan page: logical id and stored JSON.
#[derive(Debug, Clone)]
pub(crate) struct ScanRow {
    /// Logical id (the keyset cursor).
    pub id: String,
    /// The resource's JSON text.
    pub body: String,
}

impl ExportScan {
    /// Compiles the scan of `rtype` matching any of `queries` (none: every
    /// current resource of the type), within the compartments of `patients`
    /// when given (an empty list matches nothing).
    pub(crate) fn new(
        rtype: &str,
        queries: &[ScanQuery],
        patients: Option<&[String]>,
        base: &str,
    ) -> FhirResult<Self> {
        let mut binds: Vec<Bind> = vec![Bind::T(rtype.to_owned())];
        let mut alts: Vec<String> = Vec::new();
        let plain = [ScanQuery::default()];
        let queries = if queries.is_empty() {
            &plain[..]
        } else {
            queries
        };
        for sq in queries {
            let q = query::parse(rtype, &sq.params, base)?;
            let p = plan(
                &Target {
                    rtype: Some(rtype),
                    compartment: sq.compartment.as_deref(),
                },
                &q,
            );
            alts.push(format!("({})", p.where_sql));
            binds.extend(p.binds);
        }
        let mut sql = format!(
            "SELECT r.id, r.body FROM resource r WHERE r.type = ? AND r.id > ? AND ({})",
            alts.join(" OR ")
        );
        if let Some(ids) = patients {
            let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
            let params = patient_compartment_params(rtype);
            let mut any: Vec<String> = Vec::new();
            let mut extra: Vec<Bind> = Vec::new();
            if rtype == "Patient" {
                any.push("r.id IN (SELECT value FROM json_each(?))".into());
                extra.push(Bind::T(list.clone()));
            }
            if !params.is_empty() {
                extra.push(Bind::T(rtype.to_owned()));
                let qs: Vec<&str> = params
                    .iter()
                    .map(|p| {
                        extra.push(Bind::T((*p).to_owned()));
                        "?"
                    })
                    .collect();
                extra.push(Bind::T(list));
                any.push(format!(
                    "r.res IN (SELECT cx.res FROM idx_reference cx WHERE cx.rtype = ? AND cx.param IN ({}) AND cx.target_type = 'Patient' AND cx.target_id IN (SELECT value FROM json_each(?)))",
                    qs.join(", ")
                ));
            }
            if any.is_empty() {
                sql.push_str(" AND 0");
            } else {
                sql.push_str(&format!(" AND ({})", any.join(" OR ")));
            }
            binds.extend(extra);
        }
        sql.push_str(" ORDER BY r.id LIMIT ?");
        Ok(Self { sql, binds })
    }

    /// Up to `limit` rows after the id `after` (`""` for the first page),
    /// in id order.
    pub(crate) async fn page(
        &self,
        store: &EmbeddedStore,
        after: &str,
        limit: u32,
    ) -> FhirResult<Vec<ScanRow>> {
        let mut binds = Vec::with_capacity(self.binds.len() + 2);
        let mut it = self.binds.iter().cloned();
        if let Some(t) = it.next() {
            binds.push(t);
        }
        binds.push(Bind::T(after.to_owned()));
        binds.extend(it);
        binds.push(Bind::I(i64::from(limit.max(1))));
        let rows = bind_all(&self.sql, &binds).fetch_all(&store.pool).await?;
        Ok(rows
            .iter()
            .map(|r| ScanRow {
                id: r.get(0),
                body: r.get::<Option<String>, _>(1).unwrap_or_default(),
            })
            .collect())
    }
}
