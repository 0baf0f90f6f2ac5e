//! The operations fhirgate answers itself (never the store), each with the
//! OperationDefinition canonical of the IG that defines it, where it is
//! routed in the server, and the feature that enables it. The table is the
//! one place to add an operation; [`enabled`] is what a statement lists.
//!
//! | Operation | Level | Server routing |
//! |---|---|---|
//! | `$export` | system, Patient, Group/[id] | `bulk::is_export` / `bulk::kickoff` |
//! | `Claim/$submit`, `Claim/$inquire` | type | `prior_auth::Operation::of` |
//! | `Patient/$member-match` | type | `payer::Operation::of` |
//! | `Group/$bulk-member-match` | type | `payer::Operation::of` |
//! | `Group/[id]/$davinci-data-export` | instance | `payer::Operation::of` |
//! | `$questionnaire-package` | system, Questionnaire | `dtr::Operation::of` |
//! | `Questionnaire/$next-question` | type | `dtr::Operation::of` |
//! | `$validate` | type, instance (every type) | the validate module |
//! | `Subscription/[id]/$status` | instance | `subscriptions::route` |
//!
//! `Patient/[id]/$everything` is not here: it is the store's, forwarded by
//! fhirgate (authorized and filtered), so it is declared only where the
//! store declares it (`embedded`, or the HTTP upstream's own statement).

/// Where an operation is invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `[base]/$op` (`rest.operation`).
    System,
    /// `[base]/Type/$op` or `[base]/Type/[id]/$op` (`rest.resource.operation`).
    Type(&'static str),
    /// Type and instance level on every declared resource type.
    EveryType,
}

/// A feature that switches operations on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Bulk Data `$export` (`bulk` module).
    BulkExport,
    /// Da Vinci PAS (`prior_auth` module).
    PriorAuth,
    /// CMS-0057-F payer APIs (`payer` module).
    Payer,
    /// Da Vinci DTR (`dtr` module).
    Dtr,
    /// `$validate` against the profiles fhirgate carries.
    Validate,
    /// PAS subscriptions (`subscriptions` module).
    Subscriptions,
}

/// What is switched on in the running server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Bulk Data `$export` at system, Patient and Group level.
    pub bulk_export: bool,
    /// `Claim/$submit` and `Claim/$inquire`.
    pub prior_auth: bool,
    /// `$member-match`, `$bulk-member-match`, `$davinci-data-export`.
    pub payer: bool,
    /// `$questionnaire-package`, `$next-question`.
    pub dtr: bool,
    /// `$validate`.
    pub validate: bool,
    /// `Subscription` (R4 Backport) and its `$status`.
    pub subscriptions: bool,
    /// `AuditEvent` read and search from the ledger.
    pub audit_read: bool,
    /// UDAP (HL7 FAST Security) registration and authentication.
    pub udap: bool,
}

impl Features {
    /// Whether `f` is on.
    pub fn has(&self, f: Feature) -> bool {
        match f {
            Feature::BulkExport => self.bulk_export,
            Feature::PriorAuth => self.prior_auth,
            Feature::Payer => self.payer,
            Feature::Dtr => self.dtr,
            Feature::Validate => self.validate,
            Feature::Subscriptions => self.subscriptions,
        }
    }
}

/// One operation fhirgate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOperation {
    /// Name without `$`.
    pub name: &'static str,
    /// OperationDefinition canonical.
    pub definition: &'static str,
    /// Where it is declared.
    pub at: At,
    /// What enables it.
    pub feature: Feature,
}

/// Every operation fhirgate answers itself (one entry a line: a table).
#[rustfmt::skip]
pub const LOCAL_OPERATIONS: &[LocalOperation] = &[
    op("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export", At::System, Feature::BulkExport),
    op("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export", At::Type("Patient"), Feature::BulkExport),
    op("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export", At::Type("Group"), Feature::BulkExport),
    op("submit", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit", At::Type("Claim"), Feature::PriorAuth),
    op("inquire", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry", At::Type("Claim"), Feature::PriorAuth),
    op("member-match", "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match", At::Type("Patient"), Feature::Payer),
    op("bulk-member-match", "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/BulkMemberMatch", At::Type("Group"), Feature::Payer),
    // PDex reuses the ATR IG's definition for this operation.
    op("davinci-data-export", "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/davinci-data-export", At::Type("Group"), Feature::Payer),
    op("questionnaire-package", "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package", At::System, Feature::Dtr),
    op("questionnaire-package", "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package", At::Type("Questionnaire"), Feature::Dtr),
    op("next-question", "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/DTR-Questionnaire-next-question", At::Type("Questionnaire"), Feature::Dtr),
    op("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate", At::EveryType, Feature::Validate),
    op("status", "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status", At::Type("Subscription"), Feature::Subscriptions),
];

const fn op(
    name: &'static str,
    definition: &'static str,
    at: At,
    feature: Feature,
) -> LocalOperation {
    LocalOperation {
        name,
        definition,
        at,
        feature,
    }
}

/// The operations `features` switch on.
pub fn enabled(features: &Features) -> impl Iterator<Item = &'static LocalOperation> + '_ {
    LOCAL_OPERATIONS
        .iter()
        .filter(move |o| features.has(o.feature))
}

/// Names of the operations fhirgate answers itself under `features` (an
/// upstream's operation of the same name is never reached).
pub fn local_names(features: &Features) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = enabled(features).map(|o| o.name).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_gated_on_its_feature() {
        let none = Features::default();
        assert_eq!(enabled(&none).count(), 0);
        let pas = Features {
            prior_auth: true,
            ..Features::default()
        };
        let names: Vec<_> = enabled(&pas).map(|o| o.name).collect();
        assert_eq!(names, vec!["submit", "inquire"]);
        let bulk = Features {
            bulk_export: true,
            ..Features::default()
        };
        let at: Vec<_> = enabled(&bulk).map(|o| o.at).collect();
        assert_eq!(at, vec![At::System, At::Type("Patient"), At::Type("Group")]);
        assert_eq!(local_names(&bulk), vec!["export"]);
    }

    #[test]
    fn canonicals_are_absolute_and_named_after_their_ig() {
        for o in LOCAL_OPERATIONS {
            assert!(o.definition.starts_with("http://hl7.org/fhir/"), "{o:?}");
            assert!(o.definition.contains("/OperationDefinition/"), "{o:?}");
        }
    }
}
