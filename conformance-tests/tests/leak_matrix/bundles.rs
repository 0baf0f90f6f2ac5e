//! Batch and transaction GET entries judged one by one (a denied entry
//! answers like the same GET of a missing id), and what consent enforcement
//! refuses with 403 whatever the policy.

use conformance_tests::{Resp, TestResult};
use serde_json::json;

use crate::check::{ids_of, next_of, no_leak, total_ok};
use crate::cx::{Cx, Needles, Who};
use crate::seed::{Seed, View, P1, PG_QUERY};

/// What one GET entry of a batch asks.
enum Ask<'s> {
    /// A seed: read (""), vread (`/_history/v`) or history (`/_history`).
    Seed(&'s Seed, &'static str),
    /// The earlier version of a seed (vread).
    Prior(&'s Seed),
    /// A never-existing id: read (0) or history (1); the reference answers.
    Missing,
    /// A Consent (answers like a missing read).
    Consent,
    /// A search and its released matches.
    Search(Vec<String>),
    /// A `_summary=count` and the caller's count.
    Count(usize),
    /// The first page of a longer search and how many matches it must hold.
    Page(usize),
}

/// A batch or transaction of GETs: a hidden entry (read, vread, history,
/// Consent) answers exactly like the same GET of a missing id; nested
/// searches hold only released matches, no paging links, no untrue total.
pub fn bundles(cx: &mut Cx, who: &Who, view: View, needles: &Needles, kind: &str) {
    let seeds = cx.seeds;
    let mut asks: Vec<(String, Ask)> = vec![
        ("Observation/zzzzzzzzz".into(), Ask::Missing),
        ("Observation/zzzzzzzzz/_history".into(), Ask::Missing),
    ];
    for s in seeds
        .iter()
        .filter(|s| !s.paging && !s.deleted && s.rtype != "Practitioner")
    {
        asks.push((s.reference(), Ask::Seed(s, "")));
        if matches!(s.rtype, "Observation" | "Condition") {
            asks.push((
                format!("{}/_history", s.reference()),
                Ask::Seed(s, "/_history"),
            ));
            let vid = cx
                .stored
                .get(&s.reference())
                .and_then(|b| b["meta"]["versionId"].as_str());
            if let Some(v) = vid {
                asks.push((
                    format!("{}/_history/{v}", s.reference()),
                    Ask::Seed(s, "/_history/v"),
                ));
            }
            if let Some(v) = cx.prior_versions.get(&s.reference()) {
                asks.push((format!("{}/_history/{v}", s.reference()), Ask::Prior(s)));
            }
        }
    }
    for c in &cx.consents {
        asks.push((format!("Consent/{c}"), Ask::Consent));
    }
    let obs_p1 = view.visible(seeds, |s| s.rtype == "Observation" && s.patient == Some(P1));
    asks.push((
        format!("Observation?patient=Patient/{P1}&_summary=count"),
        Ask::Count(obs_p1.len()),
    ));
    asks.push((
        format!("Observation?patient=Patient/{P1}"),
        Ask::Search(obs_p1),
    ));
    // A nested page must be as full as a top-level one: a short page with
    // its next link removed shows that hidden matches were dropped.
    let pg = view.visible(seeds, |s| s.paging).len();
    asks.push((
        format!("Observation?{PG_QUERY}&_count=2"),
        Ask::Page(pg.min(2)),
    ));
    let body = json!({"resourceType": "Bundle", "type": kind, "entry": asks.iter()
        .map(|(u, _)| json!({"request": {"method": "GET", "url": u}})).collect::<Vec<_>>()});
    let what = format!("{kind} of {} GETs", asks.len());
    let r = match who.json("POST", "", &[], &body) {
        Ok(r) => r,
        Err(e) => return cx.fail(&who.label, &what, e),
    };
    no_leak(cx, who, &what, &r, needles, &[]);
    if r.status != 200 {
        return cx.fail(
            &who.label,
            &what,
            format!("status {}: {}", r.status, r.text),
        );
    }
    let Some(es) = r.json["entry"].as_array() else {
        return cx.fail(&who.label, &what, format!("no entries: {}", r.text));
    };
    if es.len() != asks.len() {
        return cx.fail(
            &who.label,
            &what,
            format!("{} entries for {} requests", es.len(), asks.len()),
        );
    }
    let (missing, missing_history) = (&es[0], &es[1]);
    for m in [missing, missing_history] {
        if !m["response"]["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("404")
        {
            cx.fail(&who.label, &what, format!("a missing id answered {m}"));
        }
    }
    for (i, (u, ask)) in asks.iter().enumerate().skip(2) {
        let e = &es[i];
        let here = format!("{what}: GET {u}");
        match ask {
            Ask::Missing => {}
            Ask::Consent => {
                if e != missing {
                    cx.fail(
                        &who.label,
                        &here,
                        format!("differs from a missing id's entry:\n  {e}\n  {missing}"),
                    );
                }
            }
            Ask::Search(want) => {
                let got = ids_of(&e["resource"], "match");
                if &got != want {
                    cx.fail(
                        &who.label,
                        &here,
                        format!("nested matches {got:?}, wanted {want:?}"),
                    );
                }
                if next_of(&e["resource"]).is_some() {
                    cx.fail(&who.label, &here, "nested search with a next link");
                }
                total_ok(cx, who, &here, &e["resource"], want.len());
            }
            Ask::Page(n) => {
                let got = ids_of(&e["resource"], "match");
                if got.len() != *n {
                    cx.fail(
                        &who.label,
                        &here,
                        format!("nested first page holds {} matches ({got:?}), not {n}: a short page shows hidden matches were dropped", got.len()),
                    );
                }
            }
            Ask::Count(n) => total_ok(cx, who, &here, &e["resource"], *n),
            Ask::Prior(s) if view.hides_prior(s, seeds) => {
                if e != missing {
                    cx.fail(
                        &who.label,
                        &here,
                        format!("a denied version differs from a missing id's entry:\n  {e}\n  {missing}"),
                    );
                }
            }
            Ask::Prior(s) => {
                let ok = e["response"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("200");
                if !ok || e["resource"]["id"] != s.id {
                    cx.fail(&who.label, &here, format!("released, yet {e}"));
                }
            }
            Ask::Seed(s, suffix) if view.hides(s, seeds) => {
                let like = if *suffix == "/_history" {
                    missing_history
                } else {
                    missing
                };
                if e != like {
                    cx.fail(
                        &who.label,
                        &here,
                        format!("a denied entry differs from the same GET of a missing id (existence oracle):\n  {e}\n  {like}"),
                    );
                }
            }
            Ask::Seed(s, suffix) => {
                let ok = e["response"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("200");
                let ids = if *suffix == "/_history" {
                    ids_of(&e["resource"], "match")
                } else {
                    e["resource"]["id"]
                        .as_str()
                        .map(|i| vec![i.to_owned()])
                        .unwrap_or_default()
                };
                if !ok || ids.is_empty() || ids.iter().any(|i| i != s.id) {
                    cx.fail(&who.label, &here, format!("released, yet {e}"));
                }
                if view.redacts(s) && !e.to_string().contains("REDACTED") {
                    cx.fail(&who.label, &here, "redacted without the REDACTED tag");
                }
            }
        }
    }
}

/// What consent enforcement refuses (403) whatever the policy: chained
/// parameters, `_has`, `_security`, `_tag`, `_text`, `_sort` on labels,
/// the same inside POST `_search` and batch entries, conditional writes.
pub fn refusals(cx: &mut Cx, who: &Who, needles: &Needles) {
    let gets = [
        "Observation?subject:Patient.name=Onewell",
        "Observation?subject.name=Onewell",
        "Patient?_has:Observation:subject:code=2345-7",
        "Condition?_security=HIV",
        "Condition?_tag=PSY",
        "Condition?_text=HIV",
        "Condition?_content=HIV",
        "Condition?_sort=_security",
    ];
    for path in gets {
        expect_403(cx, who, needles, path, who.get(path), &[path]);
    }
    let form = "_has:Observation:subject:code=2345-7";
    let r = who.send(
        "POST",
        "Patient/_search",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes().to_vec()),
    );
    expect_403(
        cx,
        who,
        needles,
        "POST Patient/_search with _has",
        r,
        &[form],
    );
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Condition?_security=HIV"}}]});
    let r = who.json("POST", "", &[], &batch);
    expect_403(
        cx,
        who,
        needles,
        "batch GET Condition?_security=HIV",
        r,
        &["Condition?_security=HIV"],
    );
    let new_obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "conditional-probe"}, "subject": {"reference": "Patient/pat-two"}});
    let r = who.json(
        "POST",
        "Observation",
        &[("if-none-exist", "patient=pat-one")],
        &new_obs,
    );
    expect_403(
        cx,
        who,
        needles,
        "conditional create (If-None-Exist)",
        r,
        &["patient=pat-one"],
    );
    let r = who.json("PUT", "Observation?patient=pat-one", &[], &new_obs);
    expect_403(
        cx,
        who,
        needles,
        "conditional update",
        r,
        &["patient=pat-one"],
    );
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_obs, "request": {"method": "POST", "url": "Observation", "ifNoneExist": "patient=pat-one"}}]});
    let r = who.json("POST", "", &[], &tx);
    expect_403(
        cx,
        who,
        needles,
        "transaction with ifNoneExist",
        r,
        &["patient=pat-one"],
    );
}

fn expect_403(
    cx: &mut Cx,
    who: &Who,
    needles: &Needles,
    what: &str,
    r: TestResult<Resp>,
    echo: &[&str],
) {
    match r {
        Ok(r) => {
            no_leak(cx, who, what, &r, needles, echo);
            if r.status != 403 {
                cx.fail(
                    &who.label,
                    what,
                    format!("status {} (wanted 403): {}", r.status, r.text),
                );
            }
        }
        Err(e) => cx.fail(&who.label, what, e),
    }
}
