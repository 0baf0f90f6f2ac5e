//! One cell of the matrix (`cell`: a caller under a policy view, on every
//! path), and the paths on single records: read, vread, instance history,
//! conditional read, deleted records, earlier versions, Consents, DELETE.

use crate::bundles::{bundles, refusals};
use crate::check::{ids_of, like_missing, no_leak, same_as_missing};
use crate::cx::{Cx, Needles, Who};
use crate::searches::{compartment, paging, searches};
use crate::seed::{Seed, View};
use crate::Upstream;

/// Everything of one cell: the caller under the view, on every path.
pub fn cell(cx: &mut Cx, who: &Who, view: View) {
    let needles = Needles::new(cx, view);
    reads(cx, who, view, &needles);
    searches(cx, who, view, &needles);
    paging(cx, who, view, &needles);
    bundles(cx, who, view, &needles, "batch");
    bundles(cx, who, view, &needles, "transaction");
    refusals(cx, who, &needles);
    if cx.up == Upstream::Embedded {
        compartment(cx, who, view, &needles);
    }
}

/// Read, vread and instance history of every seeded record (not the paging
/// ones), a conditional read of each denied one, and the Consents.
pub fn reads(cx: &mut Cx, who: &Who, view: View, needles: &Needles) {
    let seeds = cx.seeds;
    for s in seeds.iter().filter(|s| !s.paging) {
        let hidden = view.hides(s, seeds);
        let vid = cx
            .stored
            .get(&s.reference())
            .and_then(|b| b["meta"]["versionId"].as_str().map(str::to_owned));
        if s.deleted {
            // hidden: 404 like a missing id, never 410
            if hidden {
                same_as_missing(cx, who, s.rtype, s.id, "", needles);
            } else {
                let path = s.reference();
                let want = if cx.up == Upstream::Embedded {
                    410
                } else {
                    404
                };
                match who.get(&path) {
                    Ok(r) => {
                        no_leak(cx, who, &path, &r, needles, &[&path]);
                        if r.status != want {
                            cx.fail(
                                &who.label,
                                &path,
                                format!("deleted and released: {} (wanted {want})", r.status),
                            );
                        }
                    }
                    Err(e) => cx.fail(&who.label, &path, e),
                }
            }
            continue;
        }
        let versioned = matches!(
            s.rtype,
            "Observation" | "Condition" | "Patient" | "Provenance"
        );
        let mut suffixes = vec![String::new()];
        if versioned {
            if let Some(v) = &vid {
                suffixes.push(format!("/_history/{v}"));
            }
            suffixes.push("/_history".to_owned());
        }
        for suffix in suffixes {
            // a record with several versions: its history in both orders
            let rounds = if s.prior.is_some() && suffix == "/_history" {
                2
            } else {
                1
            };
            for round in 0..rounds {
                if round > 0 {
                    cx.flip_history(&format!("{}/_history", s.reference()));
                }
                if hidden {
                    same_as_missing(cx, who, s.rtype, s.id, &suffix, needles);
                } else {
                    visible(cx, who, view, s, &suffix, needles);
                }
            }
        }
        if let (Some(_), Some(v)) = (
            s.prior.as_deref(),
            cx.prior_versions.get(&s.reference()).cloned(),
        ) {
            let suffix = format!("/_history/{v}");
            if view.hides_prior(s, seeds) {
                same_as_missing(cx, who, s.rtype, s.id, &suffix, needles);
            } else {
                let path = format!("{}{suffix}", s.reference());
                match who.get(&path) {
                    Ok(r) => {
                        no_leak(cx, who, &path, &r, needles, &[]);
                        if r.status != 200 || r.json["id"] != s.id {
                            cx.fail(
                                &who.label,
                                &path,
                                format!("released, yet {} {}", r.status, r.text),
                            );
                        }
                    }
                    Err(e) => cx.fail(&who.label, &path, e),
                }
            }
        }
        if hidden {
            // a 304 would confirm the hidden version
            if let Some(v) = &vid {
                let etag = format!("W/\"{v}\"");
                like_missing(
                    cx,
                    who,
                    "GET",
                    s.rtype,
                    s.id,
                    "",
                    &[("if-none-match", &etag)],
                    needles,
                );
            }
        }
    }
    for c in cx.consents.clone() {
        same_as_missing(cx, who, "Consent", &c, "", needles);
    }
}

/// A released read: 200, the resource, nothing denied, redaction marked,
/// and an ETag that differs from the stored one when the bytes do.
fn visible(cx: &mut Cx, who: &Who, view: View, s: &Seed, suffix: &str, needles: &Needles) {
    let path = format!("{}{suffix}", s.reference());
    let r = match who.get(&path) {
        Ok(r) => r,
        Err(e) => return cx.fail(&who.label, &path, e),
    };
    no_leak(cx, who, &path, &r, needles, &[]);
    if r.status != 200 {
        return cx.fail(
            &who.label,
            &path,
            format!("released, yet status {}: {}", r.status, r.text),
        );
    }
    if suffix == "/_history" {
        let ids = ids_of(&r.json, "match");
        if ids.is_empty() || ids.iter().any(|i| i != s.id) {
            cx.fail(&who.label, &path, format!("history entries {ids:?}"));
        }
        return;
    }
    let body = &r.json;
    if body["id"] != s.id {
        return cx.fail(&who.label, &path, format!("answered {}", r.text));
    }
    if view.redacts(s) && !r.text.contains("REDACTED") {
        cx.fail(
            &who.label,
            &path,
            format!("redacted without the REDACTED tag: {}", r.text),
        );
    }
    let stored = cx.stored.get(&s.reference()).cloned();
    if let (Some(stored), Some(etag)) = (stored, r.header("etag")) {
        let plain = format!(
            "W/\"{}\"",
            stored["meta"]["versionId"].as_str().unwrap_or("")
        );
        if *body != stored && etag == plain {
            cx.fail(
                &who.label,
                &path,
                format!(
                    "released bytes differ from the stored ones but the ETag is the stored {etag}"
                ),
            );
        }
    }
}

/// A write to a denied record answers like the same write to a missing id
/// (DELETE: nothing is created either way).
pub fn writes(cx: &mut Cx, who: &Who, needles: &Needles) {
    like_missing(
        cx,
        who,
        "DELETE",
        "Observation",
        "obs-one-b",
        "",
        &[],
        needles,
    );
}
