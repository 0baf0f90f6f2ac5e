//! SQL of the payload tables (`audit_events`, `audit_event_agents`,
//! `0005_audit.sql`): sealed payloads with their search columns, written as
//! sidecar rows of the ledger append (same transaction), and the filtered,
//! paged search the AuditEvent read-back runs.
//!
//! Placeholders are `$1…$n`, numbered in order of appearance, which both
//! SQLite and PostgreSQL accept.

use super::ledger::{on_pool, Sidecar, SqlValue};
use crate::state::StateStore;

/// One stored payload with its search columns.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PayloadRow {
    /// Ledger seq (the AuditEvent id).
    pub seq: i64,
    /// Patient pseudonym or `deployment`.
    pub pseudonym: String,
    /// The data key it was sealed under.
    pub key_id: String,
    /// Milliseconds since the epoch.
    pub recorded: i64,
    /// `rest`, `authz-consent`, `http`, `erasure`.
    pub kind: String,
    /// C R U D E.
    pub action: String,
    /// 0 4 8 12.
    pub outcome: String,
    /// ` code code … ` (space-delimited, with spaces at both ends).
    pub entity_types: String,
    /// Hex nonce.
    pub nonce: String,
    /// Base64 ciphertext.
    pub payload: String,
}

/// The payload rows and their agent hashes as sidecar rows of the ledger
/// append (committed in the same transaction as the chained entries).
pub fn sidecars(rows: &[(PayloadRow, Vec<String>)]) -> Vec<Sidecar> {
    let events = rows
        .iter()
        .map(|(r, _)| {
            vec![
                SqlValue::Int(r.seq),
                SqlValue::Text(r.pseudonym.clone()),
                SqlValue::Text(r.key_id.clone()),
                SqlValue::Int(r.recorded),
                SqlValue::Text(r.kind.clone()),
                SqlValue::Text(r.action.clone()),
                SqlValue::Text(r.outcome.clone()),
                SqlValue::Text(r.entity_types.clone()),
                SqlValue::Text(r.nonce.clone()),
                SqlValue::Text(r.payload.clone()),
            ]
        })
        .collect();
    let mut agents = Vec::new();
    for (r, a) in rows {
        let mut a: Vec<&String> = a.iter().collect();
        a.sort_unstable();
        a.dedup();
        for agent in a {
            agents.push(vec![SqlValue::Text(agent.clone()), SqlValue::Int(r.seq)]);
        }
    }
    let mut out = vec![Sidecar {
        insert: "INSERT INTO audit_events (seq, pseudonym, key_id, recorded, kind, action, outcome, entity_types, nonce, payload) ",
        rows: events,
    }];
    if !agents.is_empty() {
        out.push(Sidecar {
            insert: "INSERT INTO audit_event_agents (agent, seq) ",
            rows: agents,
        });
    }
    out
}

/// A comparison on `recorded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
}

/// Search criteria; lists are OR-ed, criteria AND-ed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Any of these patients' pseudonyms.
    pub pseudonyms: Vec<String>,
    /// Only this pseudonym (the caller's own record), whatever else is asked.
    pub restrict: Option<String>,
    /// Only payloads whose key still exists (erased ones are left out).
    pub readable_only: bool,
    /// `_id` values (seqs).
    pub seqs: Vec<i64>,
    /// Bounds on `recorded` (ms).
    pub recorded: Vec<(Cmp, i64)>,
    /// Agent hashes.
    pub agents: Vec<String>,
    /// Entity type codes.
    pub entity_types: Vec<String>,
    /// Actions.
    pub actions: Vec<String>,
    /// Outcomes.
    pub outcomes: Vec<String>,
    /// Kinds.
    pub kinds: Vec<String>,
    /// A criterion can match nothing (e.g. a malformed value).
    pub nothing: bool,
}

enum Bind {
    I(i64),
    S(String),
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn where_clause(f: &Filter) -> (String, Vec<Bind>) {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut binds: Vec<Bind> = Vec::new();
    let mark = |binds: &mut Vec<Bind>, b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    if f.nothing {
        sql.push_str(" AND 1 = 0");
    }
    if let Some(p) = &f.restrict {
        let m = mark(&mut binds, Bind::S(p.clone()));
        sql.push_str(&format!(" AND pseudonym = {m}"));
    }
    if !f.pseudonyms.is_empty() {
        let marks: Vec<String> = f
            .pseudonyms
            .iter()
            .map(|p| mark(&mut binds, Bind::S(p.clone())))
            .collect();
        sql.push_str(&format!(" AND pseudonym IN ({})", marks.join(", ")));
    }
    if f.readable_only {
        sql.push_str(" AND EXISTS (SELECT 1 FROM audit_patient_keys k WHERE k.pseudonym = audit_events.pseudonym AND k.key_id = audit_events.key_id)");
    }
    if !f.seqs.is_empty() {
        let marks: Vec<String> = f
            .seqs
            .iter()
            .map(|s| mark(&mut binds, Bind::I(*s)))
            .collect();
        sql.push_str(&format!(" AND seq IN ({})", marks.join(", ")));
    }
    for (cmp, ms) in &f.recorded {
        let m = mark(&mut binds, Bind::I(*ms));
        let op = match cmp {
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
        };
        sql.push_str(&format!(" AND recorded {op} {m}"));
    }
    if !f.agents.is_empty() {
        let marks: Vec<String> = f
            .agents
            .iter()
            .map(|a| mark(&mut binds, Bind::S(a.clone())))
            .collect();
        sql.push_str(&format!(
            " AND seq IN (SELECT seq FROM audit_event_agents WHERE agent IN ({}))",
            marks.join(", ")
        ));
    }
    if !f.entity_types.is_empty() {
        let likes: Vec<String> = f
            .entity_types
            .iter()
            .map(|t| {
                let m = mark(&mut binds, Bind::S(format!("% {} %", like_escape(t))));
                format!("entity_types LIKE {m} ESCAPE '\\'")
            })
            .collect();
        sql.push_str(&format!(" AND ({})", likes.join(" OR ")));
    }
    for (column, values) in [
        ("action", &f.actions),
        ("outcome", &f.outcomes),
        ("kind", &f.kinds),
    ] {
        if !values.is_empty() {
            let marks: Vec<String> = values
                .iter()
                .map(|v| mark(&mut binds, Bind::S(v.clone())))
                .collect();
            sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
        }
    }
    (sql, binds)
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::I(i) => q.bind(*i),
                Bind::S(s) => q.bind(s.as_str()),
            };
        }
        q
    }};
}

/// The matching rows, newest first, and the total number of matches.
pub async fn search(
    store: &StateStore,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PayloadRow>, i64), sqlx::Error> {
    let (clause, binds) = where_clause(f);
    let n = binds.len();
    let rows_sql = format!(
        "SELECT seq, pseudonym, key_id, recorded, kind, action, outcome, entity_types, nonce, payload FROM audit_events{clause} ORDER BY seq DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let count_sql = format!("SELECT COUNT(*) FROM audit_events{clause}");
    let rows: Vec<PayloadRow> = on_pool!(store, |p| {
        bind_all!(sqlx::query_as(&rows_sql), &binds)
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await
    })?;
    let (total,): (i64,) = on_pool!(store, |p| {
        bind_all!(sqlx::query_as(&count_sql), &binds)
            .fetch_one(p)
            .await
    })?;
    Ok((rows, total))
}

/// The rows with seqs in `[from, from + limit)`, in seq order.
pub async fn range(
    store: &StateStore,
    from: i64,
    limit: i64,
) -> Result<Vec<PayloadRow>, sqlx::Error> {
    let sql = "SELECT seq, pseudonym, key_id, recorded, kind, action, outcome, entity_types, nonce, payload FROM audit_events WHERE seq >= $1 AND seq < $2 ORDER BY seq";
    on_pool!(store, |p| sqlx::query_as(sql)
        .bind(from)
        .bind(from + limit)
        .fetch_all(p)
        .await)
}
