//! FHIR search-parameter parser: `fhirgate::search::query::parse`, which
//! turns the request's `(name, value)` pairs for a resource type into a
//! `SearchQuery`. Input: `<Type>?<query string>` (form-urlencoded, as the
//! HTTP layer decodes it); without `?`, the whole input is the query of an
//! Observation search. Also run as a system search (`Resource`).
#![no_main]

use fhirgate::search::query::parse;
use libfuzzer_sys::fuzz_target;

const BASE: &str = "https://fhirgate.test/fhir";

fuzz_target!(|data: &[u8]| {
    let (rtype, query) = match data.iter().position(|b| *b == b'?') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => ("Observation".to_owned(), data),
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let _ = parse(&rtype, &params, BASE);
    let _ = parse("Resource", &params, BASE);
});
