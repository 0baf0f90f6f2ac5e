//! CMS-0057-F prior-authorization metrics (issue 7 item 3), reported by
//! `GET /admin/api/prior-auth/metrics` and `fhirgate pa-metrics`.
//!
//! [`compute`] is pure: over the stored requests (optionally only those
//! *received* within a period) it reports, separately for standard and
//! expedited requests:
//!
//! - `decided`: requests in a final decided state (approved, partially
//!   approved or denied) with a decision time. Cancelled requests and
//!   requests whose every item needed no authorization (X12 `NA`) are not
//!   prior-authorization decisions and are left out.
//! - `approved_pct` / `denied_pct`: of the decided; a partially approved
//!   request counts as approved (at least one item was certified).
//! - `approved_after_appeal_pct`: of the decided, those approved with an
//!   appeal on record (`super::review::appeal`; the decision after it).
//! - `approved_extended_pct`: of the decided, those approved whose
//!   timeframe a reviewer extended (`super::review::extend`).
//! - `avg_hours` / `median_hours`: time from receipt to decision (the
//!   request's last item decision), in hours; `null` when none decided.
//! - `pending` / `overdue`: requests still pended now, and those of them
//!   past their deadline at `now`.
//!
//! Percentages are rounded to two decimals.

use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::Response,
};
use serde::{Deserialize, Serialize};

use super::{
    state::{ItemState, State as PaState},
    store::Record,
    timeframe::Urgency,
};
use crate::{
    http::admin_api::{caller, ok, ApiError},
    state::StateStore,
    AppState,
};

/// The figures for one urgency.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Requests decided.
    pub decided: u64,
    /// Of them approved (fully or partially).
    pub approved: u64,
    /// Of them denied.
    pub denied: u64,
    /// Approved with an extended timeframe.
    pub approved_extended: u64,
    /// Approved after an appeal.
    pub approved_after_appeal: u64,
    /// Percent approved.
    pub approved_pct: f64,
    /// Percent denied.
    pub denied_pct: f64,
    /// Percent approved after appeal.
    pub approved_after_appeal_pct: f64,
    /// Percent approved with an extended timeframe.
    pub approved_extended_pct: f64,
    /// Average hours from receipt to decision.
    pub avg_hours: Option<f64>,
    /// Median hours from receipt to decision.
    pub median_hours: Option<f64>,
    /// Still pended now.
    pub pending: u64,
    /// Pended past their deadline now.
    pub overdue: u64,
}

/// The report: the period it covers and the figures per urgency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Received from (ms, inclusive), if bounded.
    pub from_ms: Option<i64>,
    /// Received before (ms, exclusive), if bounded.
    pub to_ms: Option<i64>,
    /// When "now" was for pending and overdue (ms).
    pub now_ms: i64,
    /// Standard requests (7 calendar days).
    pub standard: Figures,
    /// Expedited requests (72 hours).
    pub expedited: Figures,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    round2(part as f64 * 100.0 / whole as f64)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The median of unsorted values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Review actions a request had: `(timeframe extended, appealed)`.
pub type Flags = (bool, bool);

fn figures<'a>(records: impl Iterator<Item = (&'a Record, Flags)>, now_ms: i64) -> Figures {
    let mut f = Figures::default();
    let mut hours = Vec::new();
    for (r, (extended, appealed)) in records {
        if r.state == PaState::Pended {
            f.pending += 1;
            if r.overdue(now_ms) {
                f.overdue += 1;
            }
            continue;
        }
        let all_na =
            !r.items.is_empty() && r.items.iter().all(|i| i.state == ItemState::NotRequired);
        let Some(decided) = r.decided_ms else {
            continue;
        };
        let approved = match r.state {
            PaState::Approved | PaState::PartiallyApproved => true,
            PaState::Denied => false,
            PaState::Pended | PaState::Cancelled => continue,
        };
        if all_na {
            continue;
        }
        f.decided += 1;
        if approved {
            f.approved += 1;
            f.approved_extended += u64::from(extended);
            f.approved_after_appeal += u64::from(appealed);
        } else {
            f.denied += 1;
        }
        hours.push((decided - r.received_ms).max(0) as f64 / 3_600_000.0);
    }
    f.approved_pct = pct(f.approved, f.decided);
    f.denied_pct = pct(f.denied, f.decided);
    f.approved_extended_pct = pct(f.approved_extended, f.decided);
    f.approved_after_appeal_pct = pct(f.approved_after_appeal, f.decided);
    if !hours.is_empty() {
        f.avg_hours = Some(round2(hours.iter().sum::<f64>() / hours.len() as f64));
    }
    f.median_hours = median(&hours).map(round2);
    f
}

/// The metrics of `records` received in `[from_ms, to_ms)` at `now_ms`;
/// `flags[i]` are the review actions of `records[i]` (none when missing).
pub fn compute(
    records: &[Record],
    flags: &[Flags],
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    now_ms: i64,
) -> Metrics {
    let within = |r: &&Record| {
        from_ms.is_none_or(|f| r.received_ms >= f) && to_ms.is_none_or(|t| r.received_ms < t)
    };
    let of = |u: Urgency| {
        figures(
            records
                .iter()
                .enumerate()
                .filter(|(_, r)| within(r) && r.urgency == u)
                .map(|(i, r)| (r, flags.get(i).copied().unwrap_or_default())),
            now_ms,
        )
    };
    Metrics {
        from_ms,
        to_ms,
        now_ms,
        standard: of(Urgency::Standard),
        expedited: of(Urgency::Expedited),
    }
}

/// Loads the requests received in the period and computes the metrics now.
pub async fn load(
    store: &StateStore,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<Metrics, sqlx::Error> {
    let records = store.pa_received_between(from_ms, to_ms).await?;
    let flags = super::review_store::flags(store, &records).await?;
    Ok(compute(
        &records,
        &flags,
        from_ms,
        to_ms,
        crate::audit::auditor::now_ms(),
    ))
}

/// Parses a period bound: `YYYY-MM-DD` (UTC midnight; as an upper bound,
/// the whole day is included) or RFC 3339.
pub fn parse_bound(raw: &str, upper: bool) -> Result<i64, String> {
    use time::{format_description::well_known::Rfc3339, macros::format_description};
    if let Ok(d) = time::Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        let day = if upper {
            d.next_day()
                .ok_or_else(|| format!("{raw}: date out of range"))?
        } else {
            d
        };
        let ts = day.midnight().assume_utc().unix_timestamp();
        return Ok(ts * 1000);
    }
    let t = time::OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| format!("`{raw}` is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The metrics as JSON (the admin endpoint's and `--json`'s shape).
pub fn to_json(m: &Metrics) -> serde_json::Value {
    serde_json::to_value(m).unwrap_or_default()
}

/// One row of the table: its label and how to print a figure.
type Row = (&'static str, fn(&Figures) -> String);

fn hours(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |h| format!("{h:.2}"))
}

/// The rows of [`table`].
const ROWS: [Row; 10] = [
    ("decided", |f| f.decided.to_string()),
    ("approved (count)", |f| f.approved.to_string()),
    ("approved %", |f| format!("{:.2}", f.approved_pct)),
    ("denied %", |f| format!("{:.2}", f.denied_pct)),
    ("approved after appeal % (1)", |f| {
        format!("{:.2}", f.approved_after_appeal_pct)
    }),
    ("approved, extended timeframe % (2)", |f| {
        format!("{:.2}", f.approved_extended_pct)
    }),
    ("average hours to decision", |f| hours(f.avg_hours)),
    ("median hours to decision", |f| hours(f.median_hours)),
    ("pending now", |f| f.pending.to_string()),
    ("overdue now", |f| f.overdue.to_string()),
];

/// A readable table.
pub fn table(m: &Metrics) -> String {
    let mut out = format!("{:<36} {:>12} {:>12}\n", "", "standard", "expedited");
    for (name, get) in ROWS {
        out.push_str(&format!(
            "{name:<36} {:>12} {:>12}\n",
            get(&m.standard),
            get(&m.expedited)
        ));
    }
    out.push_str("(1) approved with an appeal on record\n");
    out.push_str("(2) approved after a reviewer extended the timeframe\n");
    out
}

/// Query of the admin endpoint.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/api/prior-auth/metrics[?from=&to=]`: same callers as the
/// ledger API (an administrator's session or token, or an auditor's token).
pub async fn endpoint(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    caller(&app, &headers).await?;
    let bound = |raw: Option<&str>, upper: bool| {
        raw.map(|r| parse_bound(r, upper))
            .transpose()
            .map_err(ApiError::bad_request)
    };
    let from = bound(q.from.as_deref(), false)?;
    let to = bound(q.to.as_deref(), true)?;
    let m = load(&app.state, from, to).await.map_err(|e| {
        tracing::error!(error = %e, "admin API: prior-auth metrics unavailable");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the state store is unavailable; try again",
        )
    })?;
    Ok(ok(to_json(&m)))
}

/// `fhirgate pa-metrics [--from D] [--to D] [--json]`.
pub async fn cli(
    config: crate::config::Config,
    from: Option<String>,
    to: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let from = from
        .as_deref()
        .map(|r| parse_bound(r, false))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = to
        .as_deref()
        .map(|r| parse_bound(r, true))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let (app, _) = AppState::open(config).await?;
    let m = load(&app.state, from, to).await?;
    if as_json {
        crate::stdout::json(&to_json(&m))?;
    } else {
        crate::stdout::text(&table(&m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::prior_auth::store::Item;
    use serde_json::json;

    const H: i64 = 3_600_000;

    fn item(state: ItemState) -> Item {
        Item {
            sequence: 1,
            service: "cpt|1".into(),
            state,
            decided_ms: None,
            reviewer: None,
            reason: None,
            questionnaire: None,
            auth_number: None,
            auth_start: None,
            auth_end: None,
        }
    }

    /// A request received at `received_h` hours, decided `after_h` later.
    fn rec(u: Urgency, state: PaState, received_h: i64, after_h: Option<i64>) -> Record {
        let item_state = match state {
            PaState::Pended => ItemState::Pended,
            PaState::Approved | PaState::PartiallyApproved => ItemState::Approved,
            PaState::Denied => ItemState::Denied,
            PaState::Cancelled => ItemState::Cancelled,
        };
        Record {
            id: format!("r{received_h}"),
            client_id: "c".into(),
            organization: None,
            claim_system: "s".into(),
            claim_value: format!("v{received_h}"),
            patient_key: "p".into(),
            provider_key: "o".into(),
            urgency: u,
            state,
            received_ms: received_h * H,
            deadline_ms: u.deadline_ms(received_h * H),
            decided_ms: after_h.map(|a| (received_h + a) * H),
            items: vec![item(item_state)],
            request: json!({}),
            response: json!({}),
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 10.0]), Some(3.5));
    }

    #[test]
    fn every_figure_per_urgency() {
        use PaState::*;
        use Urgency::*;
        let mut na = rec(Standard, Approved, 9, Some(0));
        na.items = vec![item(ItemState::NotRequired)];
        let records = vec![
            // Standard: 4 decided (2 approved, one of them late; 1 partial; 1 denied).
            rec(Standard, Approved, 0, Some(2)),
            rec(Standard, Approved, 1, Some(200)), // extended (flags below)
            rec(Standard, PartiallyApproved, 2, Some(10)),
            rec(Standard, Denied, 3, Some(4)),
            rec(Standard, Cancelled, 4, None),
            na,
            rec(Standard, Pended, 5, None),
            // Expedited: 3 decided, pended ones overdue or not.
            rec(Expedited, Approved, 10, Some(1)),
            rec(Expedited, Denied, 11, Some(5)),
            rec(Expedited, Denied, 12, Some(3)),
            rec(Expedited, Pended, 13, None),
            rec(Expedited, Pended, 500, None),
        ];
        let now = 200 * H; // request 13 (deadline 85 h) is overdue, 500 is not
                           // request 1 was extended; 2 (partial) and 11 (denied) appealed
        let mut flags = vec![(false, false); records.len()];
        flags[1] = (true, false);
        flags[2] = (false, true);
        flags[8] = (false, true);
        let m = compute(&records, &flags, None, None, now);
        let s = &m.standard;
        assert_eq!((s.decided, s.approved, s.denied), (4, 3, 1));
        assert_eq!(s.approved_pct, 75.0);
        assert_eq!(s.denied_pct, 25.0);
        assert_eq!(s.approved_after_appeal, 1);
        assert_eq!(s.approved_after_appeal_pct, 25.0);
        assert_eq!(s.approved_extended, 1);
        assert_eq!(s.approved_extended_pct, 25.0);
        assert_eq!(s.avg_hours, Some(54.0)); // (2 + 200 + 10 + 4) / 4
        assert_eq!(s.median_hours, Some(7.0)); // (4 + 10) / 2
        assert_eq!((s.pending, s.overdue), (1, 1)); // 5 h + 168 h < 200 h
        let e = &m.expedited;
        assert_eq!((e.decided, e.approved, e.denied), (3, 1, 2));
        assert_eq!(e.approved_pct, 33.33);
        assert_eq!(e.denied_pct, 66.67);
        assert_eq!(e.approved_extended_pct, 0.0);
        assert_eq!(
            e.approved_after_appeal, 0,
            "an appealed denial is no approval"
        );
        assert_eq!(e.avg_hours, Some(3.0));
        assert_eq!(e.median_hours, Some(3.0));
        assert_eq!((e.pending, e.overdue), (2, 1));

        // A period on received time: [1 h, 3 h).
        let m = compute(&records, &flags, Some(H), Some(3 * H), now);
        assert_eq!(m.standard.decided, 2);
        assert_eq!(m.standard.median_hours, Some(105.0));
        assert_eq!(m.expedited, Figures::default());
        assert!(table(&m).contains("standard"));
        assert_eq!(to_json(&m)["standard"]["approved_after_appeal_pct"], 50.0);
    }

    #[test]
    fn bounds_parse_dates_and_times() {
        assert_eq!(parse_bound("1970-01-02", false), Ok(24 * H));
        assert_eq!(parse_bound("1970-01-02", true), Ok(48 * H));
        assert_eq!(parse_bound("1970-01-01T01:00:00Z", false), Ok(H));
        assert!(parse_bound("yesterday", false).is_err());
    }
}
