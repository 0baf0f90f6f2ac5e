//! Searches (GET and `POST _search`, `_include`, `_revinclude`,
//! `_summary=count`, `_total`), paging followed to the end, and the
//! embedded store's compartment searches, `$everything` and type history.

use std::collections::BTreeSet;

use crate::check::{entries, ids_of, next_of, no_leak, same_as_missing, total_ok};
use crate::cx::{Cx, Needles, Who};
use crate::seed::{find, View, DR, P1, PG_QUERY};
use conformance_tests::Resp;

/// A search answered on one page: matches (and includes) exactly the
/// released ones, total absent or true, no next link.
pub fn search(
    cx: &mut Cx,
    who: &Who,
    needles: &Needles,
    path: &str,
    want: &[String],
    includes: Option<&[String]>,
) -> Option<Resp> {
    let r = match who.get(path) {
        Ok(r) => r,
        Err(e) => {
            cx.fail(&who.label, path, e);
            return None;
        }
    };
    no_leak(cx, who, path, &r, needles, &[]);
    if r.status != 200 {
        cx.fail(&who.label, path, format!("status {}: {}", r.status, r.text));
        return None;
    }
    let got = ids_of(&r.json, "match");
    if got != want {
        cx.fail(
            &who.label,
            path,
            format!("matches {got:?}, wanted {want:?}"),
        );
    }
    if let Some(inc) = includes {
        let got = ids_of(&r.json, "include");
        if got != inc {
            cx.fail(
                &who.label,
                path,
                format!("includes {got:?}, wanted {inc:?}"),
            );
        }
    }
    total_ok(cx, who, path, &r.json, want.len());
    if let Some(n) = next_of(&r.json) {
        cx.fail(
            &who.label,
            path,
            format!("a next link on a complete result: {n}"),
        );
    }
    Some(r)
}

/// `_summary=count`: the caller's true count, nothing else.
pub fn count(cx: &mut Cx, who: &Who, needles: &Needles, path: &str, want: usize) {
    let r = match who.get(path) {
        Ok(r) => r,
        Err(e) => return cx.fail(&who.label, path, e),
    };
    no_leak(cx, who, path, &r, needles, &[]);
    if r.status != 200 {
        return cx.fail(&who.label, path, format!("status {}: {}", r.status, r.text));
    }
    if r.json["total"].as_u64() != Some(want as u64) {
        cx.fail(
            &who.label,
            path,
            format!("count {} is not the caller's count {want}", r.json["total"]),
        );
    }
    if !entries(&r.json).is_empty() {
        cx.fail(
            &who.label,
            path,
            format!("_summary=count with entries: {}", r.text),
        );
    }
}

/// Follows every `next` link of `path` (at most 40 pages): every page
/// leak-free, full but the last, links on the facade holding only `_page`;
/// returns the ids of all pages, or None when the first answer is not 200.
pub fn follow(
    cx: &mut Cx,
    who: &Who,
    needles: &Needles,
    path: &str,
    page_size: Option<usize>,
) -> Option<Vec<String>> {
    let mut url = path.to_owned();
    let mut all = Vec::new();
    // totals shown on pages with a next link: each must be the caller's true
    // count of the whole result (counted ahead by the facade)
    let mut early_totals: Vec<(String, u64)> = Vec::new();
    let facade_path = path.split('?').next().unwrap_or(path);
    for page in 0..40 {
        let r = match who.get(&url) {
            Ok(r) => r,
            Err(e) => {
                cx.fail(&who.label, &url, e);
                return None;
            }
        };
        no_leak(
            cx,
            who,
            &format!("{path} page {}", page + 1),
            &r,
            needles,
            &[],
        );
        if r.status != 200 {
            if page > 0 {
                cx.fail(
                    &who.label,
                    &url,
                    format!("next link answered {}: {}", r.status, r.text),
                );
            }
            return None;
        }
        let ids: Vec<String> = entries(&r.json)
            .into_iter()
            .filter(|(m, _)| m == "match")
            .map(|(_, id)| id)
            .collect();
        all.extend(ids.iter().cloned());
        let Some(next) = next_of(&r.json) else {
            for (u, t) in &early_totals {
                if *t as usize != all.len() {
                    cx.fail(
                        &who.label,
                        u,
                        format!(
                            "a total of {t} on a page with a next link, but the caller sees {}",
                            all.len()
                        ),
                    );
                }
            }
            return Some(all);
        };
        if let Some(n) = page_size {
            if ids.len() != n {
                cx.fail(
                    &who.label,
                    &url,
                    format!("page {} has {} matches, not {n}, and a next link (a short page shows hidden matches)", page + 1, ids.len()),
                );
            }
        }
        if let Some(t) = r.json.get("total") {
            match t.as_u64() {
                Some(t) => early_totals.push((url.clone(), t)),
                None => cx.fail(&who.label, &url, "a total that is not a number"),
            }
        }
        let prefix = format!("{}/{facade_path}?_page=", who.api.base);
        let only_page = next
            .strip_prefix(&prefix)
            .is_some_and(|t| !t.contains('&') && !t.contains('?'));
        if !only_page {
            cx.fail(
                &who.label,
                &url,
                format!("the next link is not `{prefix}<token>` alone: {next}"),
            );
        }
        url = next;
    }
    cx.fail(&who.label, path, "more than 40 pages");
    Some(all)
}

/// The single-page searches of both upstreams.
pub fn searches(cx: &mut Cx, who: &Who, view: View, needles: &Needles) {
    let seeds = cx.seeds;
    let inc = cx.up.includes();
    let obs_p1 = view.visible(seeds, |s| s.rtype == "Observation" && s.patient == Some(P1));
    let obs_all = view.visible(seeds, |s| s.rtype == "Observation");
    let cond_p1 = view.visible(seeds, |s| s.rtype == "Condition");
    let pats = view.visible(seeds, |s| s.rtype == "Patient");
    let provs = view.visible(seeds, |s| s.rtype == "Provenance");
    let none: Vec<String> = Vec::new();
    search(
        cx,
        who,
        needles,
        &format!("Observation?patient=Patient/{P1}"),
        &obs_p1,
        None,
    );
    search(cx, who, needles, "Observation", &obs_all, None);
    search(
        cx,
        who,
        needles,
        &format!("Condition?patient=Patient/{P1}"),
        &cond_p1,
        None,
    );
    search(cx, who, needles, "Patient?_id=pat-one,pat-two", &pats, None);
    search(cx, who, needles, "Provenance", &provs, None);
    search(
        cx,
        who,
        needles,
        &format!("Consent?patient=Patient/{P1}"),
        &none,
        None,
    );
    // break-the-glass notifications are the patient's record too
    let path = format!("Communication?subject=Patient/{P1}");
    match who.get(&path) {
        Ok(r) => {
            no_leak(cx, who, &path, &r, needles, &[]);
            let got = ids_of(&r.json, "match");
            if r.status != 200 || (view == View::NoP1 && !got.is_empty()) {
                cx.fail(&who.label, &path, format!("{} {got:?}", r.status));
            }
        }
        Err(e) => cx.fail(&who.label, &path, e),
    }
    // _include: the subject, when released and a match survives
    let subject: Vec<String> = if inc && !obs_p1.is_empty() && !view.hides(&seeds[0], seeds) {
        vec![P1.to_owned()]
    } else {
        vec![]
    };
    search(
        cx,
        who,
        needles,
        &format!("Observation?patient=Patient/{P1}&_include=Observation:subject"),
        &obs_p1,
        Some(&subject),
    );
    // _revinclude: Provenance of released Conditions, when released itself
    let prov_of: Vec<String> = if inc {
        view.visible(seeds, |s| {
            s.rtype == "Provenance"
                && s.inherits
                    .and_then(|t| find(seeds, t))
                    .is_some_and(|t| t.rtype == "Condition")
        })
    } else {
        vec![]
    };
    search(
        cx,
        who,
        needles,
        &format!("Condition?patient=Patient/{P1}&_revinclude=Provenance:target"),
        &cond_p1,
        Some(&prov_of),
    );
    let by_dr: Vec<String> = if inc {
        view.visible(seeds, |s| s.by_dr)
    } else {
        vec![]
    };
    search(
        cx,
        who,
        needles,
        &format!("Practitioner?_id={DR}&_revinclude=Observation:performer"),
        &[DR.to_owned()],
        Some(&by_dr),
    );
    // counts and totals
    count(
        cx,
        who,
        needles,
        &format!("Observation?patient=Patient/{P1}&_summary=count"),
        obs_p1.len(),
    );
    count(
        cx,
        who,
        needles,
        "Observation?_summary=count",
        obs_all.len(),
    );
    count(cx, who, needles, "Condition?_summary=count", cond_p1.len());
    for path in [
        format!("Observation?patient=Patient/{P1}&_total=accurate"),
        "Condition?_total=accurate".to_owned(),
    ] {
        let want = if path.starts_with("Observation") {
            &obs_p1
        } else {
            &cond_p1
        };
        if let Some(r) = search(cx, who, needles, &path, want, None) {
            if r.json.get("total").is_none() {
                cx.fail(
                    &who.label,
                    &path,
                    "_total=accurate on a complete result without a total",
                );
            }
        }
    }
    // POST _search says exactly what GET says
    let form = format!("patient=Patient/{P1}");
    let path = "Observation/_search";
    match who.send(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.clone().into_bytes()),
    ) {
        Ok(r) => {
            no_leak(cx, who, "POST Observation/_search", &r, needles, &[&form]);
            let got = ids_of(&r.json, "match");
            if r.status != 200 || got != obs_p1 {
                cx.fail(
                    &who.label,
                    "POST Observation/_search",
                    format!("{} {got:?}, wanted {obs_p1:?}", r.status),
                );
            }
            total_ok(cx, who, "POST Observation/_search", &r.json, obs_p1.len());
        }
        Err(e) => cx.fail(&who.label, path, e),
    }
}

/// Paging through hidden matches: every page full, links sealed.
pub fn paging(cx: &mut Cx, who: &Who, view: View, needles: &Needles) {
    let want = view.visible(cx.seeds, |s| s.paging);
    let path = format!("Observation?{PG_QUERY}&_count=2");
    if let Some(mut got) = follow(cx, who, needles, &path, Some(2)) {
        let n = got.len();
        got.sort();
        got.dedup();
        if got != want || n != want.len() {
            cx.fail(
                &who.label,
                &path,
                format!("pages held {got:?} ({n} entries), wanted {want:?} once each"),
            );
        }
    } else {
        cx.fail(&who.label, &path, "not answered");
    }
    count(
        cx,
        who,
        needles,
        &format!("Observation?{PG_QUERY}&_summary=count"),
        want.len(),
    );
}

/// Embedded store only (Medplum's router has none of these): compartment
/// searches, `Patient/$everything`, type history.
pub fn compartment(cx: &mut Cx, who: &Who, view: View, needles: &Needles) {
    let seeds = cx.seeds;
    for t in ["Observation", "Condition"] {
        let want = view.visible(seeds, |s| s.rtype == t && s.patient == Some(P1));
        search(cx, who, needles, &format!("Patient/{P1}/{t}"), &want, None);
    }
    let path = format!("Patient/{P1}/$everything");
    let want = view.visible(seeds, |s| s.patient == Some(P1));
    match follow(cx, who, needles, &path, None) {
        Some(got) => {
            let got: BTreeSet<String> = got.into_iter().collect();
            let lacking: Vec<&String> = want.iter().filter(|w| !got.contains(*w)).collect();
            if !lacking.is_empty() {
                cx.fail(
                    &who.label,
                    &path,
                    format!("released records missing: {lacking:?}"),
                );
            }
        }
        None if want.is_empty() => same_as_missing(cx, who, "Patient", P1, "/$everything", needles),
        None => cx.fail(&who.label, &path, "not answered"),
    }
    let path = "Observation/_history?_count=3";
    let want = view.visible_or_deleted(seeds, |s| s.rtype == "Observation");
    if let Some(got) = follow(cx, who, needles, path, Some(3)) {
        let got: BTreeSet<String> = got.into_iter().collect();
        let want: BTreeSet<String> = want.into_iter().collect();
        if got != want {
            cx.fail(
                &who.label,
                path,
                format!("history held {got:?}, wanted {want:?}"),
            );
        }
    } else {
        cx.fail(&who.label, path, "not answered");
    }
}
