//! The scope grammar: `SmartScope::parse` and its inverse, `Display`
//! (SMART App Launch 2.2 §"Scopes for requesting FHIR Resources" and
//! §"Finer-grained resource constraints using search parameters").
//! `parse(display(s)) == s` for every scope; `display(parse(t)) == t` for
//! every scope written canonically (letters in order, minimal escaping).
//! A `ResourceScope` with `v2 == false` is shown in the v1 form only when its
//! letters are a v1 set and it has no constraints (the only v1 scopes the
//! parser produces); otherwise it is shown, and re-parsed, as v2.

use std::fmt;

use super::{Perms, ResourceScope, ScopeContext, ScopeError, SmartScope};

/// Longest resource type name accepted.
const MAX_TYPE_LEN: usize = 64;

fn err(scope: &str, reason: impl Into<String>) -> ScopeError {
    ScopeError {
        scope: scope.to_owned(),
        reason: reason.into(),
    }
}

impl SmartScope {
    /// Parses one scope token.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let fixed = match s {
            "openid" => Some(Self::OpenId),
            "fhirUser" => Some(Self::FhirUser),
            "profile" => Some(Self::Profile),
            "launch" => Some(Self::Launch),
            "launch/patient" => Some(Self::LaunchPatient),
            "launch/encounter" => Some(Self::LaunchEncounter),
            "offline_access" => Some(Self::OfflineAccess),
            "online_access" => Some(Self::OnlineAccess),
            _ => None,
        };
        if let Some(f) = fixed {
            return Ok(f);
        }
        let context = match s.split_once('/') {
            Some(("patient", _)) => Some(ScopeContext::Patient),
            Some(("user", _)) => Some(ScopeContext::User),
            Some(("system", _)) => Some(ScopeContext::System),
            _ => None,
        };
        match context {
            Some(c) => parse_resource(s, c).map(Self::Resource),
            None if is_scope_token(s) => Ok(Self::Other(s.to_owned())),
            None => Err(err(s, "not a valid scope token (RFC 6749 §3.3)")),
        }
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn parse_resource(s: &str, context: ScopeContext) -> Result<ResourceScope, ScopeError> {
    if !is_scope_token(s) {
        return Err(err(s, "not a valid scope token (RFC 6749 §3.3)"));
    }
    let rest = s.split_once('/').map_or("", |(_, r)| r);
    let (body, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (rtype, perms_text) = body
        .split_once('.')
        .ok_or_else(|| err(s, "expected <context>/<type>.<permissions>"))?;
    let resource_type = match rtype {
        "*" => None,
        t if is_type_name(t) => Some(t.to_owned()),
        _ => return Err(err(s, "the resource type must be * or a FHIR type name")),
    };
    let (perms, v2) = match perms_text {
        "read" => (Perms::READ, false),
        "write" => (Perms::WRITE, false),
        "*" => (Perms::ALL, false),
        letters => (parse_letters(letters).map_err(|r| err(s, r))?, true),
    };
    let constraints = match query {
        None => Vec::new(),
        Some(_) if !v2 => {
            return Err(err(
                s,
                "search-parameter constraints need v2 permissions (e.g. .rs)",
            ))
        }
        Some(q) => parse_query(q).map_err(|r| err(s, r))?,
    };
    Ok(ResourceScope {
        context,
        resource_type,
        perms,
        constraints,
        v2,
    })
}

/// `[A-Z][A-Za-z]{0,63}`.
fn is_type_name(t: &str) -> bool {
    let mut b = t.bytes();
    t.len() <= MAX_TYPE_LEN
        && b.next().is_some_and(|c| c.is_ascii_uppercase())
        && b.all(|c| c.is_ascii_alphabetic())
}

/// v2 letters: a non-empty subsequence of `cruds`.
fn parse_letters(letters: &str) -> Result<Perms, String> {
    if letters.is_empty() {
        return Err("no permissions after the '.'".into());
    }
    let mut p = Perms::default();
    let mut last = None;
    for ch in letters.chars() {
        let rank = "cruds"
            .find(ch)
            .ok_or_else(|| format!("'{ch}' is not one of c, r, u, d, s"))?;
        if last.is_some_and(|l| rank <= l) {
            return Err("permissions must appear once each, in the order c, r, u, d, s".into());
        }
        last = Some(rank);
        match ch {
            'c' => p.c = true,
            'r' => p.r = true,
            'u' => p.u = true,
            'd' => p.d = true,
            _ => p.s = true,
        }
    }
    Ok(p)
}

fn parse_query(q: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in q.split('&') {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("constraint '{pair}' is not param=value"))?;
        let (k, v) = (decode(k)?, decode(v)?);
        if k.is_empty() || v.is_empty() {
            return Err(format!("constraint '{pair}' has an empty name or value"));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Percent-decodes (RFC 3986 §2.1); `+` stays a plus; the result must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' does not decode to UTF-8"))
}

/// Percent-encodes everything but letters, digits and `-._~:/|,*!$'()@;`.
fn encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/|,*!$'()@;".contains(&b) {
            write!(f, "{}", char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.resource_type.as_deref().unwrap_or("*");
        write!(f, "{}/{t}.", self.context.as_str())?;
        match self.perms.v1_name() {
            Some(v1) if !self.v2 && self.constraints.is_empty() => f.write_str(v1)?,
            _ => write!(f, "{}", self.perms)?,
        }
        for (i, (k, v)) in self.constraints.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            encode(k, f)?;
            f.write_str("=")?;
            encode(v, f)?;
        }
        Ok(())
    }
}

impl fmt::Display for SmartScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resource(r) => write!(f, "{r}"),
            Self::OpenId => f.write_str("openid"),
            Self::FhirUser => f.write_str("fhirUser"),
            Self::Profile => f.write_str("profile"),
            Self::Launch => f.write_str("launch"),
            Self::LaunchPatient => f.write_str("launch/patient"),
            Self::LaunchEncounter => f.write_str("launch/encounter"),
            Self::OfflineAccess => f.write_str("offline_access"),
            Self::OnlineAccess => f.write_str("online_access"),
            Self::Other(s) => f.write_str(s),
        }
    }
}
