#![allow(clippy::unwrap_used)]

use super::*;
use std::path::Path;

fn config(toml: &str, demo: bool) -> Config {
    let env = vec![
        (
            "FHIRGATE_DEMO".to_owned(),
            if demo { "1" } else { "0" }.to_owned(),
        ),
        ("FHIRGATE_DATA_DIR".to_owned(), "/nonexistent".to_owned()),
    ];
    Config::from_parts(toml, Path::new("fhirgate.toml"), &env).unwrap()
}

fn a(acr: Option<&str>, amr: &[&str], auth_time: Option<i64>) -> Assurance {
    Assurance {
        acr: acr.map(str::to_owned),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        auth_time,
    }
}

#[test]
fn demo_mode_asks_patients_for_ial2_and_proofs_the_demo_users() {
    let c = config("", true);
    assert_eq!(patient_acr_values(&c), [config::IAL2]);
    assert_eq!(local_acr(&c, "pat.jones"), config::IAL2);
    assert_eq!(local_acr(&c, "someone"), config::IAL1);
    let ial1 = a(Some(config::IAL1), &["pwd"], Some(1));
    let e = for_user(&c, Some("patient"), &ial1).unwrap_err();
    assert_eq!(e.acr_values, [config::IAL2]);
    assert!(for_user(&c, Some("patient"), &a(Some(config::IAL2), &["pwd"], None)).is_ok());
    // no user, or a clinician without clinician_mfa: no requirement
    assert!(for_user(&c, None, &Assurance::default()).is_ok());
    assert!(for_user(&c, Some("clinician"), &ial1).is_ok());
}

#[test]
fn outside_demo_mode_nothing_is_required_unless_configured() {
    let c = config("", false);
    assert!(patient_acr_values(&c).is_empty());
    assert_eq!(local_acr(&c, "pat.jones"), config::IAL1);
    let c = config(
        "[assurance]\npatient_acr_values = [\"urn:x:high\"]\nclinician_mfa = true\nusers = { \"p\" = \"urn:x:high\" }\n",
        false,
    );
    assert_eq!(local_acr(&c, "p"), "urn:x:high");
    let pwd = a(Some("urn:x:high"), &["pwd"], Some(1));
    assert!(for_user(&c, Some("patient"), &pwd).is_ok());
    let e = for_user(&c, Some("clinician"), &pwd).unwrap_err();
    assert_eq!(e.acr_values, [config::PAPE_MFA]);
    assert!(for_user(&c, Some("clinician"), &a(None, &["pwd", "otp"], None)).is_ok());
}

#[test]
fn sensitive_operations_need_a_fresh_second_factor_when_step_up_is_required() {
    let off = config("", false);
    assert!(for_sensitive(&off, &Assurance::default(), 1000).is_ok());
    let on = config(
        "[mfa]\nstepup = \"required\"\nstepup_max_age_seconds = 300\n",
        false,
    );
    let e = for_sensitive(&on, &a(None, &["pwd"], Some(1000)), 1000).unwrap_err();
    assert_eq!(e.max_age, Some(300));
    assert!(for_sensitive(&on, &a(None, &["pwd", "otp", "mfa"], Some(1000)), 1300).is_ok());
    assert!(for_sensitive(&on, &a(None, &["pwd", "otp", "mfa"], Some(1000)), 1301).is_err());
}

#[test]
fn the_challenge_follows_rfc_9470() {
    let s = Shortfall {
        acr_values: vec!["a".into(), "b".into()],
        max_age: Some(300),
        reason: "why",
    };
    assert_eq!(
        s.challenge(),
        "error=\"insufficient_user_authentication\", error_description=\"why\", acr_values=\"a b\", max_age=\"300\""
    );
    let e = s.clone().into_fhir();
    assert_eq!(e.status.as_u16(), 401);
    assert_eq!(s.json()["acr_values"], "a b");
}

#[test]
fn client_acr_values_are_met_by_the_acr_or_by_mfa() {
    let c = config("", false);
    let mfa = vec![config::PAPE_MFA.to_owned()];
    assert!(meets_acr_values(&c, &a(None, &["otp"], None), &mfa));
    assert!(!meets_acr_values(
        &c,
        &a(Some(config::IAL2), &["pwd"], None),
        &mfa
    ));
    assert!(meets_acr_values(
        &c,
        &a(Some(config::IAL2), &["pwd"], None),
        &[config::IAL2.to_owned()]
    ));
    assert!(meets_acr_values(&c, &Assurance::default(), &[]));
}

#[test]
fn bad_sections_are_refused() {
    let env = vec![("FHIRGATE_DATA_DIR".to_owned(), "/nonexistent".to_owned())];
    for toml in [
        "[assurance]\nmfa_acr = \"\"\n",
        "[assurance]\npatient_acr_values = [\"a\\\"b\"]\n",
        "[assurance]\nusers = { \"x\" = \" \" }\n",
        "[assurance]\nunknown = 1\n",
    ] {
        assert!(
            Config::from_parts(toml, Path::new("fhirgate.toml"), &env).is_err(),
            "{toml}"
        );
    }
}

#[test]
fn step_up_is_required_by_default_in_demo_mode_only() {
    use crate::mfa::config::StepUp;
    assert_eq!(config("", true).stepup(), StepUp::Required);
    assert_eq!(config("", false).stepup(), StepUp::Off);
    assert_eq!(
        config("[mfa]\nstepup = \"off\"\n", true).stepup(),
        StepUp::Off
    );
    assert_eq!(
        config("[mfa]\nstepup = \"required\"\n", false).stepup(),
        StepUp::Required
    );
    // and sensitive operations follow it
    let demo = config("", true);
    assert!(for_sensitive(&demo, &Assurance::default(), 0).is_err());
}
