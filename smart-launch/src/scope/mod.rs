//! SMART scopes (SMART App Launch 2.2, "Scopes and Launch Context",
//! <https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html>):
//! one parser (`grammar`), one matcher (`matcher`), nothing else compares
//! scopes. Scopes are compared structurally, never as strings or substrings.
//!
//! Grammar accepted (§"Scopes for requesting FHIR Resources"):
//! - v2: `<patient|user|system>/<Type|*>.<cruds>[?param=value&…]` where the
//!   permission letters appear in the order c, r, u, d, s, each at most once,
//!   at least one; the optional query (§"Finer-grained resource constraints
//!   using search parameters") is `&`-separated `param=value` pairs,
//!   percent-decoded (`+` is a literal plus, as in RFC 3986), AND-ed.
//! - v1 (§"Scopes for requesting clinical data" of SMART 1.0, kept for
//!   compatibility): `.read` (= `rs`), `.write` (= `cud`), `.*` (= `cruds`);
//!   v1 scopes take no query part.
//! - `openid`, `fhirUser`, `profile`, `launch`, `launch/patient`,
//!   `launch/encounter`, `offline_access`, `online_access`; any other token
//!   that does not look like a resource scope is kept as [`SmartScope::Other`]
//!   (RFC 6749 §3.3 lets servers ignore scopes they do not know).
//!
//! The resource type is checked for shape only (`[A-Z][A-Za-z]{0,63}`, or
//! `*`): this crate does not depend on the FHIR server, and a scope for a type
//! the server does not know grants nothing because such requests are refused
//! when they are routed.
//!
//! A `ScopeSet` keeps scopes in request order without duplicates; its
//! `Display` is the space-separated `scope` value of RFC 6749 §3.3.

use std::fmt;

mod grammar;
mod matcher;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use matcher::Grant;

/// The context prefix of a resource scope (§"Scopes for requesting FHIR Resources").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    /// `patient/`: data about the patient in context.
    Patient,
    /// `user/`: data the signed-in user may see.
    User,
    /// `system/`: Backend Services, no user.
    System,
}

impl ScopeContext {
    /// The prefix as written, without the slash.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::User => "user",
            Self::System => "system",
        }
    }
}

/// One FHIR operation a permission letter stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c`: create.
    Create,
    /// `r`: read, vread, instance history.
    Read,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search, type history.
    Search,
}

impl Op {
    /// Every operation, in the letter order c, r, u, d, s.
    pub const ALL: [Op; 5] = [Op::Create, Op::Read, Op::Update, Op::Delete, Op::Search];

    /// The permission letter.
    pub fn letter(self) -> char {
        match self {
            Self::Create => 'c',
            Self::Read => 'r',
            Self::Update => 'u',
            Self::Delete => 'd',
            Self::Search => 's',
        }
    }
}

/// The permission letters of a resource scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Create.
    pub c: bool,
    /// Read.
    pub r: bool,
    /// Update.
    pub u: bool,
    /// Delete.
    pub d: bool,
    /// Search.
    pub s: bool,
}

impl Perms {
    /// v1 `.read`, v2 `rs`.
    pub const READ: Perms = Perms::of(false, true, false, false, true);
    /// v1 `.write`, v2 `cud`.
    pub const WRITE: Perms = Perms::of(true, false, true, true, false);
    /// v1 `.*`, v2 `cruds`.
    pub const ALL: Perms = Perms::of(true, true, true, true, true);

    /// Builds from the five letters.
    pub const fn of(c: bool, r: bool, u: bool, d: bool, s: bool) -> Self {
        Self { c, r, u, d, s }
    }

    /// Whether `op` is permitted.
    pub fn allows(self, op: Op) -> bool {
        match op {
            Op::Create => self.c,
            Op::Read => self.r,
            Op::Update => self.u,
            Op::Delete => self.d,
            Op::Search => self.s,
        }
    }

    /// Whether every letter of `self` is in `other`.
    pub fn is_subset(self, other: Perms) -> bool {
        Op::ALL
            .iter()
            .all(|op| !self.allows(*op) || other.allows(*op))
    }

    /// The letters in both.
    pub fn intersect(self, other: Perms) -> Perms {
        Perms::of(
            self.c && other.c,
            self.r && other.r,
            self.u && other.u,
            self.d && other.d,
            self.s && other.s,
        )
    }

    /// Whether no letter is set.
    pub fn is_empty(self) -> bool {
        self == Perms::default()
    }

    /// The v1 suffix (`read`, `write`, `*`) these letters are, if any.
    pub fn v1_name(self) -> Option<&'static str> {
        match self {
            p if p == Self::READ => Some("read"),
            p if p == Self::WRITE => Some("write"),
            p if p == Self::ALL => Some("*"),
            _ => None,
        }
    }
}

impl fmt::Display for Perms {
    /// The v2 letters, in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in Op::ALL {
            if self.allows(op) {
                write!(f, "{}", op.letter())?;
            }
        }
        Ok(())
    }
}

/// A scope for FHIR resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    /// `patient/`, `user/` or `system/`.
    pub context: ScopeContext,
    /// The resource type; `None` is `*` (every type).
    pub resource_type: Option<String>,
    /// Permitted operations.
    pub perms: Perms,
    /// Granular `?param=value` constraints (percent-decoded), all of which a
    /// resource must match; empty = unconstrained.
    pub constraints: Vec<(String, String)>,
    /// Written in the v2 grammar (letters) rather than v1 (`read`/`write`/`*`).
    pub v2: bool,
}

/// One scope of a token or request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmartScope {
    /// A resource scope.
    Resource(ResourceScope),
    /// `openid` (OpenID Connect id_token).
    OpenId,
    /// `fhirUser` (the user's FHIR resource in the id_token).
    FhirUser,
    /// `profile` (SMART 1.0's name for `fhirUser`, still accepted).
    Profile,
    /// `launch` (EHR launch).
    Launch,
    /// `launch/patient` (standalone launch: pick a patient).
    LaunchPatient,
    /// `launch/encounter` (standalone launch: pick an encounter).
    LaunchEncounter,
    /// `offline_access` (refresh token that outlives the session).
    OfflineAccess,
    /// `online_access` (refresh token tied to the session).
    OnlineAccess,
    /// Any other scope, kept verbatim and never granting FHIR access.
    Other(String),
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{scope}': {reason}")]
pub struct ScopeError {
    /// The offending scope as written.
    pub scope: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed scope list: the scopes in order, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    scopes: Vec<SmartScope>,
}

impl ScopeSet {
    /// Parses a space-separated `scope` value (RFC 6749 §3.3). Unknown
    /// non-resource scopes are kept as [`SmartScope::Other`]; a malformed
    /// resource scope is an error.
    pub fn parse(space_separated: &str) -> Result<Self, ScopeError> {
        space_separated
            .split([' ', '\t', '\n', '\r'])
            .filter(|s| !s.is_empty())
            .map(SmartScope::parse)
            .collect()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &SmartScope> {
        self.scopes.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Whether exactly `s` is in the set (structural equality).
    pub fn has(&self, s: &SmartScope) -> bool {
        self.scopes.contains(s)
    }

    /// The resource scopes.
    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.scopes.iter().filter_map(|s| match s {
            SmartScope::Resource(r) => Some(r),
            _ => None,
        })
    }

    /// Adds a scope unless already present.
    pub fn insert(&mut self, s: SmartScope) {
        if !self.scopes.contains(&s) {
            self.scopes.push(s);
        }
    }
}

impl FromIterator<SmartScope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = SmartScope>>(iter: I) -> Self {
        let mut set = ScopeSet::default();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.scopes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}
