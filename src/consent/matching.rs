//! Does one provision match one request, and which provision of a tree
//! decides (the deepest matching one; deny-overrides among siblings).

use std::collections::BTreeSet;

use super::classify::{Classification, Confidentiality, Sensitivity};
use super::codes::ValueSets;
use super::model::{Code, DataMeaning, Provision, ProvisionType};

/// The request as provisions see it.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The resource's classification.
    pub class: &'a Classification,
    /// Requester identities: fhirUser, organization, `Device/<client_id>`.
    pub identities: Vec<String>,
    /// Consent action codes the request counts as.
    pub actions: &'static [&'static str],
    /// Purpose of use, if any.
    pub purpose: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: i64,
    /// Value sets (for the categories a provision `code` names).
    pub sets: &'a ValueSets,
}

/// What a matched provision decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// permit
    Permit,
    /// deny of the whole resource
    Deny,
    /// deny matched only inline-labelled elements of these categories
    Redact(BTreeSet<Sensitivity>),
}

impl Verdict {
    /// Deny-overrides rank: Deny > Redact > Permit.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Permit => 0,
            Self::Redact(_) => 1,
            Self::Deny => 2,
        }
    }
}

/// The deciding provision of one tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Its verdict.
    pub verdict: Verdict,
    /// Its path, e.g. `provision.provision[1]`.
    pub path: String,
    /// Categories it or an ancestor names (securityLabel or code).
    pub named: BTreeSet<Sensitivity>,
    /// The Consent it belongs to (`Consent/c1 v3`), set by the caller.
    pub consent: String,
}

/// Combine hits: the highest rank wins, Redacts union their categories, the
/// categories named by every winning hit are united (so whether a consent
/// "names" a category never depends on the order of Consents or siblings),
/// and the first hit of the winning rank explains.
pub fn combine(hits: Vec<Hit>) -> Option<Hit> {
    let top = hits.iter().map(|h| h.verdict.rank()).max()?;
    let mut winners = hits.into_iter().filter(|h| h.verdict.rank() == top);
    let mut first = winners.next()?;
    for h in winners {
        if let (Verdict::Redact(a), Verdict::Redact(b)) = (&mut first.verdict, &h.verdict) {
            a.extend(b.iter().copied());
        }
        first.named.extend(h.named.iter().copied());
    }
    Some(first)
}

/// Evaluate a provision tree: `None` when nothing in it matches.
pub fn evaluate(
    p: &Provision,
    f: &Facts<'_>,
    path: &mut Vec<usize>,
    named: &BTreeSet<Sensitivity>,
) -> Option<Hit> {
    let deny = p.kind == Some(ProvisionType::Deny);
    let label = label_match(p, f.class)?;
    if !matches(p, f, deny) {
        return None;
    }
    let mut named = named.clone();
    named.extend(
        p.security_labels
            .iter()
            .filter_map(|c| Sensitivity::from_code(&c.code)),
    );
    for c in &p.codes {
        named.extend(f.sets.categories(c.system.as_deref(), &c.code));
    }
    let mut children = Vec::new();
    for (i, c) in p.provisions.iter().enumerate() {
        path.push(i);
        children.extend(evaluate(c, f, path, &named));
        path.pop();
    }
    if let Some(h) = combine(children) {
        return Some(h);
    }
    let verdict = match (p.kind?, label) {
        (ProvisionType::Permit, _) => Verdict::Permit,
        (ProvisionType::Deny, None) => Verdict::Deny,
        (ProvisionType::Deny, Some(inline)) => Verdict::Redact(inline),
    };
    Some(Hit {
        verdict,
        path: render(path),
        named,
        consent: String::new(),
    })
}

/// `None`: no match. `Some(None)`: matches the whole resource (or no label
/// condition). `Some(Some(cats))`: matches only inline-labelled elements.
#[allow(clippy::option_option)]
fn label_match(p: &Provision, c: &Classification) -> Option<Option<BTreeSet<Sensitivity>>> {
    if p.security_labels.is_empty() {
        return Some(None);
    }
    let cats = c.categories();
    let mut inline = BTreeSet::new();
    for l in &p.security_labels {
        if let Some(k) = Confidentiality::from_code(&l.code) {
            if c.confidentiality >= k {
                return Some(None);
            }
        } else if let Some(s) = Sensitivity::from_code(&l.code) {
            if cats.contains(&s) {
                return Some(None);
            }
            if c.inline.contains(&s) {
                inline.insert(s);
            }
        }
    }
    if inline.is_empty() {
        None
    } else {
        Some(Some(inline))
    }
}

fn any_code(wanted: &[Code], have: &[Code]) -> bool {
    wanted.iter().any(|w| have.iter().any(|h| w.matches(h)))
}

fn matches(p: &Provision, f: &Facts<'_>, deny: bool) -> bool {
    let c = f.class;
    if p.period.is_some_and(|per| !per.contains(f.now)) {
        return false;
    }
    if !p.actors.is_empty() && !p.actors.iter().any(|a| f.identities.contains(&a.reference)) {
        return false;
    }
    if !p.actions.is_empty()
        && !p
            .actions
            .iter()
            .any(|a| f.actions.contains(&a.code.as_str()))
    {
        return false;
    }
    if !p.purposes.is_empty()
        && !f
            .purpose
            .is_some_and(|pu| p.purposes.iter().any(|x| x.code == pu))
    {
        return false;
    }
    if !p.classes.is_empty() && !p.classes.iter().any(|k| k.code == c.resource_type) {
        return false;
    }
    if !p.codes.is_empty() && !any_code(&p.codes, &c.codings) {
        return false;
    }
    if let Some(dp) = p.data_period {
        // Unknown clinical time is read against the caller: a deny matches,
        // a permit does not.
        match c.clinical_time {
            Some(t) if !dp.contains(t) => return false,
            None if !deny => return false,
            _ => {}
        }
    }
    if !p.data.is_empty()
        && !p
            .data
            .iter()
            .any(|d| data_matches(d.meaning, &d.reference, c))
    {
        return false;
    }
    true
}

fn data_matches(meaning: DataMeaning, reference: &str, c: &Classification) -> bool {
    let is_self = c.self_ref.as_deref() == Some(reference);
    let refers = c.references.contains(reference);
    match meaning {
        DataMeaning::Instance => is_self,
        DataMeaning::Related => is_self || refers,
        DataMeaning::Dependents => refers,
        DataMeaning::AuthoredBy => c.authors.contains(reference),
    }
}

/// `provision.provision[1].provision[0]` from child indexes.
fn render(path: &[usize]) -> String {
    let mut s = String::from("provision");
    for i in path {
        s.push_str(&format!(".provision[{i}]"));
    }
    s
}
