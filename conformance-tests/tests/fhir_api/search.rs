//! Search (token, string, `POST _search`), instance history and paging
//! links followed back through the facade.

use std::collections::BTreeSet;

use conformance_tests::{check, ensure, TestResult};

use super::{patient, Run};

fn search_ids(run: &Run, query: &str) -> TestResult<Vec<String>> {
    let r = run.api.get(&format!("Patient?{query}"))?;
    check::status(&r, &[200], &format!("GET Patient?{query}"))?;
    ensure!(r.json["type"] == "searchset", "not a searchset: {}", r.text);
    check::facade_urls(run.api, &r.json)?;
    Ok(check::ids(&r.json))
}

pub fn search(run: &mut Run) -> TestResult {
    let by_token = search_ids(run, "identifier=urn%3Afhirgate%3Aconformance%7Cp-1")?;
    ensure!(
        by_token == [run.id.clone()],
        "identifier search found {by_token:?}"
    );
    let by_string = search_ids(run, "family=Conformance")?;
    ensure!(
        by_string == [run.id.clone()],
        "family search found {by_string:?}"
    );
    let none = search_ids(run, "family=Nobody")?;
    ensure!(none.is_empty(), "family=Nobody found {none:?}");
    Ok(())
}

pub fn post_search(run: &mut Run) -> TestResult {
    let get = search_ids(run, "identifier=urn%3Afhirgate%3Aconformance%7Cp-1")?;
    let form = b"identifier=urn%3Afhirgate%3Aconformance%7Cp-1".to_vec();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let r = run
        .api
        .send("POST", "Patient/_search", &headers, Some(form))?;
    check::status(&r, &[200], "POST Patient/_search")?;
    check::facade_urls(run.api, &r.json)?;
    ensure!(
        check::ids(&r.json) == get,
        "POST _search found {:?}, GET found {get:?}",
        check::ids(&r.json)
    );
    Ok(())
}

pub fn history(run: &mut Run) -> TestResult {
    let r = run.api.get(&format!("Patient/{}/_history", run.id))?;
    check::status(&r, &[200], "history")?;
    ensure!(r.json["type"] == "history", "not a history Bundle");
    check::facade_urls(run.api, &r.json)?;
    let versions: BTreeSet<&str> = r.json["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str())
        .collect();
    let want: BTreeSet<&str> = [run.v1.as_str(), run.v2.as_str()].into();
    ensure!(
        versions == want,
        "history versions {versions:?}, wanted {want:?}"
    );
    Ok(())
}

pub fn paging(run: &mut Run) -> TestResult {
    let mut created = BTreeSet::new();
    for i in 0..3 {
        let r = run.api.send_json(
            "POST",
            "Patient",
            &[],
            &patient("Pagetest", &format!("pg-{i}")),
        )?;
        check::status(&r, &[201], "create for paging")?;
        created.insert(r.json["id"].as_str().unwrap_or("").to_owned());
    }
    let first = run.api.get("Patient?family=Pagetest&_count=2")?;
    check::status(&first, &[200], "first page")?;
    check::facade_urls(run.api, &first.json)?;
    let mut seen = check::ids(&first.json);
    ensure!(seen.len() == 2, "first page has {} entries", seen.len());
    let next = first.json["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .ok_or("first page has no next link")?;
    let second = run.api.get(next)?;
    check::status(&second, &[200], "next page")?;
    seen.extend(check::ids(&second.json));
    let seen_set: BTreeSet<String> = seen.iter().cloned().collect();
    ensure!(
        seen.len() == 3 && seen_set == created,
        "pages gave {seen:?}, created {created:?}"
    );
    Ok(())
}
