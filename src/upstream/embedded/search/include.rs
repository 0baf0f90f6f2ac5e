//! `_include` and `_revinclude` (R4 search.html §3.1.1.5.4): resources the
//! page's matches point at, and resources pointing at them (including
//! `Provenance:target`), found through `idx_reference`. `:iterate` repeats the
//! step on what was just included, a few rounds at most.

use std::collections::HashSet;

use sqlx::SqliteConnection;

use super::{bind_all, sql::Bind, to_hit, Hit};
use crate::{error::FhirResult, search::query::SearchQuery};

/// Rounds of `:iterate` after the first.
const MAX_ROUNDS: usize = 3;
/// Ids per `IN (...)` list.
const CHUNK: usize = 400;

/// Included resources for `matches`, without duplicates of matches or each other.
pub(crate) async fn collect(
    conn: &mut SqliteConnection,
    matches: &[Hit],
    q: &SearchQuery,
) -> FhirResult<Vec<Hit>> {
    if q.includes.is_empty() && q.revincludes.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().map(|h| h.res).collect();
    let mut out: Vec<Hit> = Vec::new();
    let mut frontier: Vec<Hit> = matches.to_vec();
    for round in 0..=MAX_ROUNDS {
        if frontier.is_empty() {
            break;
        }
        let mut found = Vec::new();
        for inc in q.includes.iter().filter(|i| round == 0 || i.iterate) {
            let sources: Vec<i64> = frontier
                .iter()
                .filter(|h| inc.source == "*" || h.rtype == inc.source)
                .map(|h| h.res)
                .collect();
            for chunk in sources.chunks(CHUNK) {
                let mut binds: Vec<Bind> = chunk.iter().map(|r| Bind::I(*r)).collect();
                let mut sql = format!(
                    "SELECT DISTINCT t.res, t.type, t.id, t.body FROM idx_reference x JOIN resource t ON t.type = x.target_type AND t.id = x.target_id WHERE x.res IN ({}) AND t.deleted = 0",
                    marks(chunk.len())
                );
                if let Some(def) = inc.param {
                    sql.push_str(" AND x.param = ?");
                    binds.push(Bind::T(def.name.to_owned()));
                }
                if let Some(t) = &inc.target {
                    sql.push_str(" AND x.target_type = ?");
                    binds.push(Bind::T(t.clone()));
                }
                found.extend(
                    bind_all(&sql, &binds)
                        .fetch_all(&mut *conn)
                        .await?
                        .iter()
                        .map(to_hit),
                );
            }
        }
        for inc in q.revincludes.iter().filter(|i| round == 0 || i.iterate) {
            let Some(def) = inc.param else { continue };
            for ttype in def
                .targets
                .iter()
                .filter(|t| inc.target.as_deref().is_none_or(|x| x == **t))
            {
                let ids: Vec<&str> = frontier
                    .iter()
                    .filter(|h| h.rtype == *ttype)
                    .map(|h| h.id.as_str())
                    .collect();
                for chunk in ids.chunks(CHUNK) {
                    let mut binds = vec![Bind::T(inc.source.clone()), Bind::T(def.name.to_owned())];
                    binds.extend(chunk.iter().map(|i| Bind::T((*i).to_owned())));
                    binds.push(Bind::T((*ttype).to_owned()));
                    let sql = format!(
                        "SELECT DISTINCT s.res, s.type, s.id, s.body FROM idx_reference x JOIN resource s ON s.res = x.res WHERE x.rtype = ? AND x.param = ? AND x.target_id IN ({}) AND x.target_type = ? AND s.deleted = 0",
                        marks(chunk.len())
                    );
                    found.extend(
                        bind_all(&sql, &binds)
                            .fetch_all(&mut *conn)
                            .await?
                            .iter()
                            .map(to_hit),
                    );
                }
            }
        }
        frontier.clear();
        for h in found {
            if seen.insert(h.res) {
                frontier.push(h.clone());
                out.push(h);
            }
        }
        if !q.includes.iter().chain(&q.revincludes).any(|i| i.iterate) {
            break;
        }
    }
    out.sort_by_key(|h| h.res);
    Ok(out)
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}
