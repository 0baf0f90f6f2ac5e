//! Which Da Vinci PAS version fhirgate answers (`[prior_auth] pas_version`):
//! 2.0.1, the version CMS recommends (the default), or 2.2. Everything that
//! differs between the two on the wire is a method of [`PasVersion`]; the
//! 2.0.1 answers are exactly what fhirgate sent before the setting existed.
//!
//! Differences a payer server must honour, from the IG (2.0.1:
//! <https://hl7.org/fhir/us/davinci-pas/STU2/>, 2.2:
//! <https://hl7.org/fhir/us/davinci-pas/2.2.1/>, change log
//! <https://build.fhir.org/ig/HL7/davinci-pas/changelog.html>), and what this
//! module does about each:
//!
//! 1. Profile canonicals. The URLs did not change between 2.0.1 and 2.2
//!    (e.g. `…/StructureDefinition/profile-claimresponse`); the package
//!    version did: STU 2.2 is published as 2.2.1, a technical correction of
//!    2.2.0 (<https://hl7.org/fhir/us/davinci-pas/2.2.1/qa.html>). With 2.2
//!    fhirgate's answers declare the versioned canonical
//!    (`…/profile-claimresponse|2.2.1`, [`PasVersion::canonical`]) so a client
//!    can tell which rules produced them; 2.0.1 answers keep the bare URL.
//!    Requests are accepted declaring either version ([`PasVersion::rules_for`]):
//!    a Bundle or Claim whose `meta.profile` names a PAS canonical with
//!    `|2.0.x` (or 1.x) is checked against the 2.0.1 data, anything else
//!    against the 2.2 data (`profiles/pas-2.2/`).
//! 2. Required elements. PAS Claim `identifier` is 1..2 from 2.1 on (2.0.1
//!    data: 1..1), and 2.1/2.2 define the PAS Claim Update profile
//!    (`profile-claim-update`: `related` 1..1 with `claim` and
//!    `relationship`; the prior Claim referenced from `related.claim` and
//!    included in the Bundle):
//!    <https://hl7.org/fhir/us/davinci-pas/StructureDefinition-profile-claim-update-definitions.html>,
//!    <https://build.fhir.org/ig/HL7/davinci-pas/specification.html> ("Updating
//!    Authorization Requests").
//!    fhirgate validates a 2.2 Claim Update against it and matches it to the
//!    request it updates by the prior Claim's identifier
//!    ([`PasVersion::prior_claim`]).
//! 3. Cancelling a whole request. 2.1+ (FHIR-48586): a Claim Update whose
//!    `Claim.extension` `extension-certificationType` has code `3` (Cancel,
//!    X12 1322), "No items are needed to be sent to cancel the entire
//!    authorization" (specification page above). With 2.2 fhirgate takes
//!    that as a cancellation as well as `Claim.status = cancelled`
//!    ([`PasVersion::is_cancellation`]).
//! 4. Review actions. Unchanged: `extension-reviewAction` with the
//!    `extension-reviewActionCode` sub-extension stays on
//!    `ClaimResponse.item.adjudication` (2.2 also allows it on
//!    `addItem.adjudication`; `reasonCode` became 0..*). Source: the 2.2 FSH,
//!    `input/fsh/ClaimResponse.fsh` of <https://github.com/HL7/davinci-pas>,
//!    and <https://build.fhir.org/ig/HL7/davinci-pas/comparison-v2.1.0/sd+114-profile-claimresponse-profile-claimresponse.html>.
//!    Nothing to do: fhirgate emits one reason code at most.
//! 5. Response Bundle contents. 2.2: "All resources that are referenced by
//!    the ClaimResponse need to be returned in the response Bundle"; the
//!    Claim itself need not be (FHIR-48364, FHIR-49634;
//!    <https://build.fhir.org/ig/HL7/davinci-pas/specification.html>, "Prior
//!    Authorization Response").
//!    With 2.2 the Coverage the ClaimResponse names (`insurance.coverage`)
//!    is added to the Bundle ([`PasVersion::submit_answer`]).
//! 6. Inquiry. The operation's output is a PAS Inquiry Response Bundle
//!    (`profile-pas-inquiry-response-bundle`) whose ClaimResponses are PAS
//!    Claim Inquiry Responses (`profile-claiminquiryresponse`) (OperationDefinition
//!    `Claim-inquiry` and the Bundle profiles in `input/fsh/ClaimOperation.fsh`
//!    and `input/fsh/Bundle.fsh` of <https://github.com/HL7/davinci-pas>; the
//!    specification page: "zero or more PAS Inquiry Response Bundles");
//!    with 2.2 fhirgate answers with those profiles ([`PasVersion::inquiry_answer`]).
//!    (2.0.1 defines the same two profiles; fhirgate's 2.0.1 answer keeps
//!    the PAS Response Bundle it always sent, unchanged on purpose.) The
//!    member is identified by the Patient identifier slice of type `MB`
//!    (FHIR-48747; specification page, "Prior Authorization Inquiries");
//!    with 2.2 that identifier (else the first) is the member key
//!    ([`PasVersion::member_identifier`]). The input shape is the same in
//!    both versions: a PAS Inquiry Request Bundle with a PAS Claim Inquiry
//!    first; 2.2 also says `Claim.identifier` SHOULD be the REF-BB or REF-NT
//!    number previously returned, which fhirgate does not look up yet.
//! 7. Subscription notifications. 2.1/2.2: "This notification will include
//!    a full PAS Response Bundle" and "PAS Clients and Intermediaries SHALL
//!    only support subscriptions with content='full-resource'" (FHIR-48673,
//!    FHIR-53997; <https://build.fhir.org/ig/HL7/davinci-pas/specification.html>,
//!    "Subscription"; the Bundle-as-focus sentence is marked new in the
//!    current build, the full-resource rule is older);
//!    the 2.2.1 example's `focus` is the Response Bundle
//!    (<https://hl7.org/fhir/us/davinci-pas/2.2.1/en/Parameters-SubscriptionNotificationParameters.json>,
//!    <https://hl7.org/fhir/us/davinci-pas/2.2.1/en/Bundle-PASSubscriptionNotification.ttl>)
//!    and `profile-subscription` fixes `payloadContent` to `full-resource`.
//!    With 2.2 the focus is the PAS Response Bundle
//!    ([`PasVersion::notification_focus`]) and a subscription asking for
//!    `empty` or `id-only` goes to `error` instead of being served
//!    ([`PasVersion::full_resource_only`]). The filter name `org-identifier`
//!    (2.2, FHIR-52841) and rest-hook-only (FHIR-49086) are already accepted
//!    for both versions by `subscriptions::model`.
//!
//! Not handled (see the README): `infoCancelled` / `infoChanged` item
//! flags of a Claim Update, inquiry by REF-BB/REF-NT numbers, `errorPath`
//! on `ClaimResponse.error`, X12 reject reason codes in business rejections.

use profiles::Profiles;
use serde_json::{json, Value};

use super::{response, store::Record, validate};

/// Prefix of the PAS StructureDefinition canonicals.
pub const PAS_SD: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/";
/// The published STU 2.2 package version.
pub const PACKAGE_2_2: &str = "2.2.1";
/// PAS Claim Update profile (2.1+).
pub const CLAIM_UPDATE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-update";
/// PAS Claim Inquiry Response profile.
pub const INQUIRY_RESPONSE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claiminquiryresponse";
/// PAS Inquiry Response Bundle profile.
pub const INQUIRY_RESPONSE_BUNDLE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-inquiry-response-bundle";
/// PAS certificationType extension (X12 UM02).
pub const CERTIFICATION_TYPE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType";
/// HL7 v2 table 0203 (identifier types; `MB` member number).
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The PAS version answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasVersion {
    /// Da Vinci PAS 2.0.1 (STU 2), the version CMS recommends.
    #[default]
    V2_0_1,
    /// Da Vinci PAS 2.2 (STU 2.2, package 2.2.1).
    V2_2,
}

impl PasVersion {
    /// Parses the `pas_version` setting.
    pub fn parse(setting: &str) -> Result<Self, String> {
        match setting {
            "2.0.1" => Ok(Self::V2_0_1),
            "2.2" => Ok(Self::V2_2),
            other => Err(format!(
                "[prior_auth] pas_version must be \"2.0.1\" or \"2.2\", not {other:?}"
            )),
        }
    }

    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_0_1 => "2.0.1",
            Self::V2_2 => "2.2",
        }
    }

    /// The IG package version whose profiles are declared.
    pub fn package(self) -> &'static str {
        match self {
            Self::V2_0_1 => "2.0.1",
            Self::V2_2 => PACKAGE_2_2,
        }
    }

    /// A PAS profile canonical as fhirgate declares it in `meta.profile`:
    /// bare for 2.0.1 (as always), `url|2.2.1` for 2.2.
    pub fn canonical(self, url: &str) -> String {
        match self {
            Self::V2_0_1 => url.to_owned(),
            Self::V2_2 => format!("{url}|{PACKAGE_2_2}"),
        }
    }

    /// The PAS version a resource declares in `meta.profile` (a PAS
    /// canonical with `|version`), if any.
    fn declared_in(resource: &Value) -> Option<Self> {
        resource["meta"]["profile"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .filter(|p| p.starts_with(PAS_SD))
            .filter_map(|p| p.split_once('|').map(|(_, v)| v))
            .find_map(|v| {
                if v.starts_with("2.0") || v.starts_with("1.") {
                    Some(Self::V2_0_1)
                } else if v.starts_with("2.1") || v.starts_with("2.2") {
                    Some(Self::V2_2)
                } else {
                    None
                }
            })
    }

    /// The PAS version a request Bundle declares (the Bundle's own
    /// `meta.profile`, else its first entry's).
    pub fn declared(bundle: &Value) -> Option<Self> {
        Self::declared_in(bundle).or_else(|| Self::declared_in(&bundle["entry"][0]["resource"]))
    }

    /// Whose profile data checks `bundle`: 2.0.1 always under 2.0.1; under
    /// 2.2 the version the request declares, 2.2 when it declares none.
    pub fn rules_for(self, bundle: &Value) -> Self {
        match self {
            Self::V2_0_1 => Self::V2_0_1,
            Self::V2_2 => Self::declared(bundle).unwrap_or(Self::V2_2),
        }
    }

    /// The profile data of this version.
    pub fn profiles(self) -> &'static Profiles {
        match self {
            Self::V2_0_1 => profiles::pas(),
            Self::V2_2 => profiles::pas_2_2(),
        }
    }

    /// Whether `claim` is a PAS Claim Update (2.2 only; by `meta.profile`).
    pub fn is_update(self, claim: &Value) -> bool {
        self == Self::V2_2
            && claim["meta"]["profile"].as_array().is_some_and(|ps| {
                ps.iter()
                    .filter_map(Value::as_str)
                    .any(|p| p.split('|').next() == Some(CLAIM_UPDATE))
            })
    }

    /// The profile name (in [`Self::profiles`]) the first entry is checked
    /// against.
    pub fn claim_profile(self, claim: &Value, kind: validate::Kind) -> &'static str {
        match kind {
            validate::Kind::Inquiry => "PASClaimInquiry",
            validate::Kind::Request if self.is_update(claim) => "PASClaimUpdate",
            validate::Kind::Request => "PASClaim",
        }
    }

    /// Whether a submitted Claim cancels its request: `status = cancelled`
    /// (both versions); with 2.2 also `extension-certificationType` code
    /// `3` (Cancel) on the Claim.
    pub fn is_cancellation(self, claim: &Value) -> bool {
        if claim["status"] == "cancelled" {
            return true;
        }
        self == Self::V2_2
            && claim["extension"].as_array().is_some_and(|es| {
                es.iter()
                    .filter(|e| e["url"] == CERTIFICATION_TYPE)
                    .filter_map(|e| e["valueCodeableConcept"]["coding"].as_array())
                    .flatten()
                    .any(|c| {
                        c["code"] == "3"
                            && c["system"].as_str().is_none_or(|s| s.ends_with("/1322"))
                    })
            })
    }

    /// With 2.2, the identifier (`system`, `value`) of the Claim a Claim
    /// Update updates: `Claim.related.claim` resolved in the Bundle (or
    /// given by identifier). None for 2.0.1 and for a Claim that updates
    /// nothing.
    pub fn prior_claim(self, bundle: &Value) -> Option<(String, String)> {
        if self != Self::V2_2 {
            return None;
        }
        let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let claim = &bundle["entry"][0]["resource"];
        claim["related"].as_array()?.iter().find_map(|rel| {
            let target = &rel["claim"];
            let id = match target["reference"].as_str() {
                Some(r) => {
                    let (_, prior) = validate::resolve(entries, r)?;
                    (prior["resourceType"] == "Claim").then(|| prior["identifier"][0].clone())?
                }
                None => target["identifier"].clone(),
            };
            let value = id["value"].as_str()?;
            Some((
                id["system"].as_str().unwrap_or_default().to_owned(),
                value.to_owned(),
            ))
        })
    }

    /// The Patient identifier that identifies the member: with 2.2 the one
    /// of type `MB` (member number) if there is one; otherwise (and always
    /// for 2.0.1) the first.
    pub fn member_identifier(self, patient: &Value) -> Option<&Value> {
        let ids = patient["identifier"].as_array()?;
        let mb = || {
            ids.iter().find(|id| {
                id["type"]["coding"].as_array().is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["code"] == "MB" && c["system"].as_str().is_none_or(|s| s == V2_0203)
                    })
                })
            })
        };
        match self {
            Self::V2_2 => mb().or_else(|| ids.first()),
            Self::V2_0_1 => ids.first(),
        }
    }

    /// The `$submit` answer (a PAS Response Bundle from
    /// [`response::bundle`]) as this version sends it: unchanged for
    /// 2.0.1; for 2.2 with versioned canonicals and every resource the
    /// ClaimResponse references (except the Claim) present.
    pub fn submit_answer(self, request: &Value, bundle: Value) -> Value {
        self.answer(request, bundle, response::BUNDLE_PROFILE, response::PROFILE)
    }

    /// The `$inquire` answer: unchanged for 2.0.1; for 2.2 a PAS Inquiry
    /// Response Bundle with a PAS Claim Inquiry Response, and the
    /// referenced resources.
    pub fn inquiry_answer(self, request: &Value, bundle: Value) -> Value {
        self.answer(request, bundle, INQUIRY_RESPONSE_BUNDLE, INQUIRY_RESPONSE)
    }

    fn answer(self, request: &Value, mut bundle: Value, bundle_sd: &str, cr_sd: &str) -> Value {
        if self == Self::V2_0_1 {
            return bundle;
        }
        bundle["meta"] = json!({"profile": [self.canonical(bundle_sd)]});
        let cr = &mut bundle["entry"][0]["resource"];
        if cr["resourceType"] == "ClaimResponse" {
            cr["meta"] = json!({"profile": [self.canonical(cr_sd)]});
        }
        let mut wanted = Vec::new();
        let mut cr = bundle["entry"][0]["resource"].clone();
        if let Value::Object(m) = &mut cr {
            m.remove("request");
        }
        references(&cr, &mut wanted);
        let entries = request["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for reference in wanted {
            let Some((i, r)) = validate::resolve(entries, &reference) else {
                continue;
            };
            if r["resourceType"] == "Claim" {
                continue;
            }
            let present = bundle["entry"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["fullUrl"] == entries[i]["fullUrl"]));
            if !present {
                if let Some(es) = bundle["entry"].as_array_mut() {
                    es.push(entries[i].clone());
                }
            }
        }
        bundle
    }

    /// The `focus` of a subscription notification about `rec`, and its
    /// full URL: for 2.0.1 the ClaimResponse (`{base}/ClaimResponse/{id}`);
    /// for 2.2 the PAS Response Bundle (`urn:uuid:…`, a new Bundle each
    /// time, as `$submit` would answer now).
    pub fn notification_focus(self, rec: &Record, base: &str, now: &str) -> (String, Value) {
        match self {
            Self::V2_0_1 => (
                format!("{base}/ClaimResponse/{}", rec.id),
                rec.response.clone(),
            ),
            Self::V2_2 => {
                let id = uuid::Uuid::new_v4().to_string();
                let bundle = response::bundle(&rec.request, rec.response.clone(), &id, now);
                (
                    format!("urn:uuid:{id}"),
                    self.submit_answer(&rec.request, bundle),
                )
            }
        }
    }

    /// Whether only `full-resource` subscriptions are served (2.2).
    pub fn full_resource_only(self) -> bool {
        self == Self::V2_2
    }
}

/// Every non-contained `reference` string in `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                if !r.starts_with('#') && !out.contains(r) {
                    out.push(r.clone());
                }
            }
            m.values().for_each(|x| references(x, out));
        }
        Value::Array(xs) => xs.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::prior_auth::validate::Kind;

    const CR: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claimresponse";

    fn request() -> Value {
        json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:claim", "resource": {"resourceType": "Claim",
                "identifier": [{"system": "s", "value": "new"}],
                "patient": {"reference": "urn:uuid:pat"},
                "insurance": [{"coverage": {"reference": "urn:uuid:cov"}}],
                "related": [{"claim": {"reference": "urn:uuid:prior"}, "relationship": {"text": "prior"}}]}},
            {"fullUrl": "urn:uuid:pat", "resource": {"resourceType": "Patient", "identifier": [
                {"system": "other", "value": "1"},
                {"type": {"coding": [{"system": V2_0203, "code": "MB"}]}, "system": "min", "value": "2"}]}},
            {"fullUrl": "urn:uuid:cov", "resource": {"resourceType": "Coverage"}},
            {"fullUrl": "urn:uuid:prior", "resource": {"resourceType": "Claim",
                "identifier": [{"system": "s", "value": "old"}]}}
        ]})
    }

    fn answer() -> Value {
        json!({"resourceType": "Bundle", "meta": {"profile": [response::BUNDLE_PROFILE]}, "entry": [
            {"fullUrl": "urn:uuid:cr", "resource": {"resourceType": "ClaimResponse",
                "meta": {"profile": [CR]},
                "patient": {"reference": "urn:uuid:pat"},
                "request": {"reference": "urn:uuid:claim"},
                "insurance": [{"coverage": {"reference": "urn:uuid:cov"}}]}},
            {"fullUrl": "urn:uuid:pat", "resource": {"resourceType": "Patient"}}
        ]})
    }

    #[test]
    fn the_setting_is_2_0_1_or_2_2() {
        assert_eq!(PasVersion::parse("2.0.1"), Ok(PasVersion::V2_0_1));
        assert_eq!(PasVersion::parse("2.2"), Ok(PasVersion::V2_2));
        for bad in ["2.1", "2.2.1", "", "v2.2"] {
            let e = PasVersion::parse(bad).unwrap_err();
            assert!(e.contains("pas_version"), "{e}");
        }
        assert_eq!(PasVersion::default(), PasVersion::V2_0_1);
        assert_eq!(PasVersion::V2_2.as_str(), "2.2");
    }

    #[test]
    fn canonicals_are_versioned_only_for_2_2() {
        assert_eq!(PasVersion::V2_0_1.canonical(CR), CR);
        assert_eq!(PasVersion::V2_2.canonical(CR), format!("{CR}|2.2.1"));
        assert_eq!(PasVersion::V2_2.package(), "2.2.1");
    }

    #[test]
    fn declared_versions_choose_the_rules_under_2_2_only() {
        let with = |p: &str| json!({"entry": [{"resource": {"meta": {"profile": [p]}}}]});
        let old = with(&format!("{PAS_SD}profile-claim|2.0.1"));
        let new = with(&format!("{PAS_SD}profile-claim|2.2.0"));
        let bare = with(&format!("{PAS_SD}profile-claim"));
        assert_eq!(PasVersion::declared(&old), Some(PasVersion::V2_0_1));
        assert_eq!(PasVersion::declared(&new), Some(PasVersion::V2_2));
        assert_eq!(PasVersion::declared(&bare), None);
        assert_eq!(PasVersion::V2_2.rules_for(&old), PasVersion::V2_0_1);
        assert_eq!(PasVersion::V2_2.rules_for(&bare), PasVersion::V2_2);
        assert_eq!(PasVersion::V2_0_1.rules_for(&new), PasVersion::V2_0_1);
        assert!(PasVersion::V2_2.profiles().get("PASClaimUpdate").is_some());
        assert!(PasVersion::V2_0_1
            .profiles()
            .get("PASClaimUpdate")
            .is_none());
    }

    #[test]
    fn claim_update_profile_only_with_2_2() {
        let claim = json!({"meta": {"profile": [format!("{CLAIM_UPDATE}|2.2.1")]}});
        assert!(PasVersion::V2_2.is_update(&claim));
        assert!(!PasVersion::V2_0_1.is_update(&claim));
        assert_eq!(
            PasVersion::V2_2.claim_profile(&claim, Kind::Request),
            "PASClaimUpdate"
        );
        assert_eq!(
            PasVersion::V2_0_1.claim_profile(&claim, Kind::Request),
            "PASClaim"
        );
        assert_eq!(
            PasVersion::V2_2.claim_profile(&claim, Kind::Inquiry),
            "PASClaimInquiry"
        );
    }

    #[test]
    fn certification_type_3_cancels_with_2_2() {
        let cancel = json!({"status": "active", "extension": [{"url": CERTIFICATION_TYPE,
            "valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]}}]});
        assert!(PasVersion::V2_2.is_cancellation(&cancel));
        assert!(!PasVersion::V2_0_1.is_cancellation(&cancel));
        let status = json!({"status": "cancelled"});
        assert!(PasVersion::V2_2.is_cancellation(&status));
        assert!(PasVersion::V2_0_1.is_cancellation(&status));
        let initial = json!({"status": "active", "extension": [{"url": CERTIFICATION_TYPE,
            "valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "I"}]}}]});
        assert!(!PasVersion::V2_2.is_cancellation(&initial));
    }

    #[test]
    fn prior_claim_and_member_identifier() {
        let b = request();
        assert_eq!(
            PasVersion::V2_2.prior_claim(&b),
            Some(("s".into(), "old".into()))
        );
        assert_eq!(PasVersion::V2_0_1.prior_claim(&b), None);
        let patient = &b["entry"][1]["resource"];
        assert_eq!(
            PasVersion::V2_2.member_identifier(patient).unwrap()["value"],
            "2"
        );
        assert_eq!(
            PasVersion::V2_0_1.member_identifier(patient).unwrap()["value"],
            "1"
        );
        let mut by_id = b.clone();
        by_id["entry"][0]["resource"]["related"][0]["claim"] =
            json!({"identifier": {"system": "t", "value": "v"}});
        assert_eq!(
            PasVersion::V2_2.prior_claim(&by_id),
            Some(("t".into(), "v".into()))
        );
    }

    #[test]
    fn answers_are_untouched_for_2_0_1() {
        assert_eq!(
            PasVersion::V2_0_1.submit_answer(&request(), answer()),
            answer()
        );
        assert_eq!(
            PasVersion::V2_0_1.inquiry_answer(&request(), answer()),
            answer()
        );
    }

    #[test]
    fn answers_for_2_2_are_versioned_and_complete() {
        let a = PasVersion::V2_2.submit_answer(&request(), answer());
        assert_eq!(
            a["meta"]["profile"][0],
            format!("{}|2.2.1", response::BUNDLE_PROFILE)
        );
        assert_eq!(
            a["entry"][0]["resource"]["meta"]["profile"][0],
            format!("{CR}|2.2.1")
        );
        let urls: Vec<&str> = a["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        assert_eq!(urls, ["urn:uuid:cr", "urn:uuid:pat", "urn:uuid:cov"]);
        let i = PasVersion::V2_2.inquiry_answer(&request(), answer());
        assert_eq!(
            i["meta"]["profile"][0],
            format!("{INQUIRY_RESPONSE_BUNDLE}|2.2.1")
        );
        assert_eq!(
            i["entry"][0]["resource"]["meta"]["profile"][0],
            format!("{INQUIRY_RESPONSE}|2.2.1")
        );
    }

    #[test]
    fn only_2_2_is_full_resource_only() {
        assert!(PasVersion::V2_2.full_resource_only());
        assert!(!PasVersion::V2_0_1.full_resource_only());
    }
}
