//! SMART scope parser: `ScopeSet::parse` on the raw `scope` parameter of
//! an authorize or token request (untrusted). Must never panic; a set it
//! accepts must print to a string it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smart_launch::scope::ScopeSet;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = ScopeSet::parse(s) else {
        return;
    };
    let _ = set.resource_scopes().count();
    let printed = set.to_string();
    if let Err(e) = ScopeSet::parse(&printed) {
        panic!("printed scope set {printed:?} does not parse again: {e:?}");
    }
});
