//! Assertions the suites share. Each returns an error naming what was being
//! checked and what came back, so a suite can collect every failure of a run.

use serde_json::Value;

use crate::{Api, Resp, TestResult};

/// `ensure!(cond, "fmt", args…)`: return an error unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

/// The status is one of `want`.
pub fn status(r: &Resp, want: &[u16], what: &str) -> TestResult {
    ensure!(
        want.contains(&r.status),
        "{what}: status {} (wanted {want:?}): {}",
        r.status,
        r.text
    );
    Ok(())
}

/// The status is `want` and the body an OperationOutcome.
pub fn outcome(r: &Resp, want: u16, what: &str) -> TestResult {
    status(r, &[want], what)?;
    ensure!(
        r.json["resourceType"] == "OperationOutcome",
        "{what}: body is not an OperationOutcome: {}",
        r.text
    );
    Ok(())
}

/// Ids of a Bundle's entry resources, in order (search `outcome` entries left out).
pub fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["search"]["mode"] != "outcome" && e["resource"]["resourceType"] != "OperationOutcome"
        })
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Every `link[].url` and `entry[].fullUrl` of a Bundle is on the facade's base.
pub fn facade_urls(api: &Api, bundle: &Value) -> TestResult {
    let links = bundle["link"].as_array().into_iter().flatten();
    let entries = bundle["entry"].as_array().into_iter().flatten();
    let urls = links
        .filter_map(|l| l["url"].as_str())
        .chain(entries.filter_map(|e| e["fullUrl"].as_str()));
    for u in urls {
        ensure!(
            u.starts_with(&api.base) || u.starts_with("urn:"),
            "URL not on the facade base {}: {u}",
            api.base
        );
    }
    Ok(())
}

/// The version an `ETag: W/"n"` names.
pub fn etag(r: &Resp) -> Option<String> {
    let v = r.header("etag")?;
    Some(v.trim_start_matches("W/").trim_matches('"').to_owned())
}

/// The `next` link of a Bundle.
pub fn next_link(bundle: &Value) -> Option<&str> {
    bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
}
