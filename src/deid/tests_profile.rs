//! Profile parsing tests: the built-in profiles, and readable errors for
//! every kind of invalid rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{Profile, ProfileError};

#[test]
fn builtin_profiles_load() {
    for name in Profile::BUILTIN {
        let p = Profile::builtin(name).unwrap_or_else(|| panic!("{name} does not parse"));
        assert_eq!(p.name(), *name);
        assert!(!p.description().is_empty());
    }
    assert!(!Profile::builtin("safe-harbor").unwrap().keyed());
    assert!(Profile::builtin("safe-harbor-shifted").unwrap().keyed());
    assert!(Profile::builtin("nope").is_none());
}

#[test]
fn builtin_text_parses_with_errors_reported() {
    // builtin() hides errors; parse the sources directly to see them.
    for text in [
        include_str!("safe-harbor.toml"),
        include_str!("safe-harbor-shifted.toml"),
    ] {
        Profile::parse_toml(text).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn error(toml: &str) -> String {
    match Profile::parse_toml(toml) {
        Ok(_) => panic!("accepted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

fn rule(body: &str) -> String {
    format!("name = \"t\"\n[[rule]]\ntype = \"string\"\nmethod = \"redact\"\n[[rule]]\n{body}\n")
}

#[test]
fn invalid_rules_are_named_in_readable_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "type = \"string\"\nmethod = \"scramble\"",
            "unknown method `scramble`",
        ),
        (
            "type = \"Strng\"\nmethod = \"redact\"",
            "unknown type `Strng`",
        ),
        ("method = \"redact\"", "needs a `path` or a `type`"),
        (
            "path = \"Patient.name\"\nmethod = \"substitute\"",
            "needs a `value`",
        ),
        (
            "type = \"date\"\nmethod = \"dateShift\"",
            "needs `range_days`",
        ),
        (
            "type = \"date\"\nmethod = \"dateShift\"\nrange_days = 0",
            "range_days = 0",
        ),
        (
            "type = \"date\"\nmethod = \"dateShift\"\nrange_days = 99999",
            "between 1 and",
        ),
        (
            "type = \"HumanName\"\nmethod = \"perturb\"\nspan = 0.1",
            "cannot be applied to type `HumanName`",
        ),
        ("type = \"decimal\"\nmethod = \"perturb\"", "needs `span`"),
        (
            "type = \"decimal\"\nmethod = \"perturb\"\nspan = -1",
            "span = -1",
        ),
        (
            "type = \"decimal\"\nmethod = \"perturb\"\nspan = 2.0",
            "at most 1",
        ),
        (
            "type = \"string\"\nmethod = \"generalize\"",
            "cannot be applied to type `string`",
        ),
        (
            "type = \"date\"\nmethod = \"cryptoHash\"",
            "cannot be applied to type `date`",
        ),
        (
            "type = \"id\"\nmethod = \"keep\"",
            "cannot be applied to type `id`",
        ),
        (
            "type = \"Reference\"\nmethod = \"keep\"",
            "cannot be applied to type `Reference`",
        ),
        (
            "path = \"Patient.id\"\nmethod = \"keep\"",
            "always pseudonymized",
        ),
        (
            "path = \"Observation.subject.reference\"\nmethod = \"keep\"",
            "always pseudonymized",
        ),
        (
            "type = \"string\"\nmethod = \"redact\"\nspan = 0.1",
            "`span` is not an option of method `redact`",
        ),
        (
            "type = \"string\"\nmethod = \"redact\"\nvalue = 1",
            "`value` is not an option",
        ),
        (
            "path = \"name\"\nmethod = \"redact\"",
            "must name an element inside a resource",
        ),
        (
            "path = \"patient.name\"\nmethod = \"redact\"",
            "must start with a resource type",
        ),
        (
            "path = \"Patient..name\"\nmethod = \"redact\"",
            "is not an element name",
        ),
        (
            "type = \"decimal\"\nmethod = \"generalize\"\nround_to = 40",
            "round_to = 40",
        ),
    ];
    for (body, expected) in cases {
        let msg = error(&rule(body));
        assert!(msg.contains("rule 2"), "{msg}");
        assert!(msg.contains(expected), "expected {expected:?} in: {msg}");
    }
}

#[test]
fn unknown_keys_and_bad_syntax_are_readable() {
    let msg =
        error("name = \"t\"\n[[rule]]\ntype = \"string\"\nmethod = \"redact\"\nmethd = \"x\"\n");
    assert!(msg.contains("methd"), "{msg}");
    let msg = error("name = \"t\"\ncolour = \"blue\"\n");
    assert!(msg.contains("colour"), "{msg}");
    let msg = error("description = \"no name\"\n");
    assert!(msg.contains("name"), "{msg}");
    let msg = error("name = \"\"\n");
    assert!(msg.contains("must not be empty"), "{msg}");
    let msg = error("name = \"t\"\n[[rule]\n");
    assert!(msg.contains("de-identification profile"), "{msg}");
}

#[test]
fn date_shift_rules_share_one_range() {
    let msg = error(
        "name = \"t\"\n[[rule]]\ntype = \"date\"\nmethod = \"dateShift\"\nrange_days = 30\n\
         [[rule]]\ntype = \"dateTime\"\nmethod = \"dateShift\"\nrange_days = 60\n",
    );
    assert!(
        msg.contains("rule 2") && msg.contains("one offset"),
        "{msg}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"t\"\n[[rule]]\ntype = \"x\"\nmethod = \"redact\"\n",
    )
    .unwrap();
    let msg = Profile::load(&path).unwrap_err().to_string();
    assert!(msg.contains("bad.toml") && msg.contains("rule 1"), "{msg}");
    let missing = dir.path().join("missing.toml");
    let err = Profile::load(&missing).unwrap_err();
    assert!(matches!(err, ProfileError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"));
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "name = \"good\"\ndescription = \"d\"\n[[rule]]\ntype = [\"date\", \"dateTime\"]\nmethod = \"generalize\"\n").unwrap();
    let p = Profile::load(&good).unwrap();
    assert_eq!((p.name(), p.description(), p.keyed()), ("good", "d", false));
}
