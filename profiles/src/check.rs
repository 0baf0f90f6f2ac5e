//! The checker: walks a resource along each element's path and reports
//! cardinality, fixed value, pattern, required binding, allowed type and
//! slice violations as [`Issue`]s. Everything it needs is in the profile
//! data; nothing here knows a resource type.

use serde_json::Value;

use crate::{Binding, Element, Issue, Profile, Slice};

/// A value found at a path.
struct Found<'a> {
    /// FHIRPath-like name (`Observation.value.ofType(Quantity)`).
    path: String,
    /// Its type when the JSON says it: a choice key's suffix, or a
    /// resource's `resourceType`.
    ty: Option<String>,
    value: &'a Value,
}

impl Profile {
    /// Checks `resource` against every constraint; `root` names the
    /// resource in issue paths (e.g. `Bundle.entry[0].resource.ofType(Claim)`).
    /// Every issue returned is an error; must-support gaps are not
    /// violations (see [`Profile::must_support_gaps`]).
    pub fn check(&self, resource: &Value, root: &str) -> Vec<Issue> {
        let mut issues = Vec::new();
        if resource["resourceType"] != self.resource_type.as_str() {
            issues.push(Issue {
                code: "structure",
                path: root.to_owned(),
                message: format!("{} expects a {} resource", self.name, self.resource_type),
            });
            return issues;
        }
        for e in &self.elements {
            e.check(resource, root, &self.name, &mut issues);
        }
        issues
    }

    /// Informational issues for optional must-support elements and slices
    /// absent from `resource` (where their parent is present). Advice for
    /// `$validate` output, never a reason to reject.
    pub fn must_support_gaps(&self, resource: &Value, root: &str) -> Vec<Issue> {
        let mut out = Vec::new();
        if resource["resourceType"] != self.resource_type.as_str() {
            return out;
        }
        for e in &self.elements {
            let (parent, name) = split(&e.path);
            for (ppath, pval) in parents(resource, root, parent) {
                let values = children(pval, &ppath, name);
                let shown = format!("{ppath}.{}", bare(name));
                if e.must_support && e.min == 0 && values.is_empty() {
                    out.push(gap(&self.name, shown.clone(), name));
                }
                for s in e.slices.iter().filter(|s| s.must_support && s.min == 0) {
                    if !values.iter().any(|f| s.matches(f.value)) {
                        let label = format!("{name}:{}", s.name);
                        out.push(gap(&self.name, format!("{shown}:{}", s.name), &label));
                    }
                }
            }
        }
        out
    }
}

fn gap(profile: &str, path: String, name: &str) -> Issue {
    Issue {
        code: "informational",
        path,
        message: format!("{profile}: must-support element {name} is absent"),
    }
}

impl Element {
    fn check(&self, resource: &Value, root: &str, profile: &str, issues: &mut Vec<Issue>) {
        let (parent, name) = split(&self.path);
        for (ppath, pval) in parents(resource, root, parent) {
            let values = children(pval, &ppath, name);
            let shown = format!("{ppath}.{}", bare(name));
            let label = Label {
                profile,
                name,
                path: &shown,
            };
            label.cardinality(self.min, &self.max, values.len(), issues);
            for f in &values {
                self.check_value(f, profile, issues);
            }
            for s in &self.slices {
                s.check(&values, &shown, name, profile, issues);
            }
            if self.closed {
                for f in values
                    .iter()
                    .filter(|f| !self.slices.iter().any(|s| s.matches(f.value)))
                {
                    issues.push(Issue {
                        code: "structure",
                        path: f.path.clone(),
                        message: format!("{profile}: {name} belongs to none of its closed slices"),
                    });
                }
            }
        }
    }

    fn check_value(&self, f: &Found<'_>, profile: &str, issues: &mut Vec<Issue>) {
        let mut push = |code, message| {
            issues.push(Issue {
                code,
                path: f.path.clone(),
                message,
            })
        };
        if let (Some(types), Some(ty)) = (&self.types, &f.ty) {
            if !types.contains(ty) {
                push(
                    "structure",
                    format!(
                        "{profile}: type {ty} is not allowed here (allowed: {})",
                        types.join(", ")
                    ),
                );
            }
        }
        if let Some(fixed) = &self.fixed {
            if f.value != fixed {
                push(
                    "value",
                    format!("{profile}: must be {fixed}, found {}", f.value),
                );
            }
        }
        if let Some(pattern) = &self.pattern {
            if !contains(f.value, pattern) {
                push(
                    "value",
                    format!("{profile}: must match the pattern {pattern}"),
                );
            }
        }
        if let Some(b) = &self.binding {
            if !has_code(f.value, b) {
                push(
                    "code-invalid",
                    format!(
                        "{profile}: the code is not in the required value set {}",
                        b.value_set
                    ),
                );
            }
        }
    }
}

impl Slice {
    /// Whether a repetition belongs to this slice.
    pub(crate) fn matches(&self, v: &Value) -> bool {
        self.pattern.as_ref().is_none_or(|p| contains(v, p))
            && self.binding.as_ref().is_none_or(|b| has_code(v, b))
    }

    fn check(
        &self,
        values: &[Found<'_>],
        sliced: &str,
        name: &str,
        profile: &str,
        issues: &mut Vec<Issue>,
    ) {
        let members: Vec<&Found<'_>> = values.iter().filter(|f| self.matches(f.value)).collect();
        let path = format!("{sliced}:{}", self.name);
        let name = format!("{name}:{}", self.name);
        let label = Label {
            profile,
            name: &name,
            path: &path,
        };
        label.cardinality(self.min, &self.max, members.len(), issues);
        for m in members {
            for e in &self.elements {
                e.check(m.value, &m.path, profile, issues);
            }
        }
    }
}

/// Names an element (or slice) in cardinality issues.
struct Label<'a> {
    profile: &'a str,
    name: &'a str,
    path: &'a str,
}

impl Label<'_> {
    fn cardinality(&self, min: u32, max: &str, found: usize, issues: &mut Vec<Issue>) {
        let Label {
            profile,
            name,
            path,
        } = *self;
        let n = u32::try_from(found).unwrap_or(u32::MAX);
        if n < min {
            issues.push(Issue {
                code: "required",
                path: path.to_owned(),
                message: format!("{profile}: {name} is required (min {min}), found {n}"),
            });
        }
        if let Ok(max) = max.parse::<u32>() {
            if n > max {
                issues.push(Issue {
                    code: "structure",
                    path: path.to_owned(),
                    message: format!("{profile}: {name} allows at most {max}, found {n}"),
                });
            }
        }
    }
}

/// `a.b.c` as (`Some("a.b")`, `c`).
fn split(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, path),
    }
}

/// A step's name without the choice marker: `value[x]` → `value`.
fn bare(name: &str) -> &str {
    name.strip_suffix("[x]").unwrap_or(name)
}

fn parents<'a>(resource: &'a Value, root: &str, parent: Option<&str>) -> Vec<(String, &'a Value)> {
    match parent {
        Some(p) => walk(resource, root, p),
        None => vec![(root.to_owned(), resource)],
    }
}

/// Every value at a dotted `path` under `v`, with its FHIRPath-like name.
pub fn walk<'a>(v: &'a Value, root: &str, path: &str) -> Vec<(String, &'a Value)> {
    let mut current = vec![(root.to_owned(), v)];
    for step in path.split('.') {
        current = current
            .into_iter()
            .flat_map(|(p, v)| children(v, &p, step))
            .map(|f| (f.path, f.value))
            .collect();
    }
    current
}

/// The values of element `name` of `v` (arrays as indexed repetitions; a
/// choice `name[x]` as every `nameType` key).
fn children<'a>(v: &'a Value, path: &str, name: &str) -> Vec<Found<'a>> {
    let Some(base) = name.strip_suffix("[x]") else {
        return repetitions(v.get(name), format!("{path}.{name}"), None);
    };
    let Some(map) = v.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, x)| {
            let suffix = k.strip_prefix(base)?;
            suffix
                .starts_with(|c: char| c.is_ascii_uppercase())
                .then(|| {
                    let ty = type_name(suffix);
                    repetitions(Some(x), format!("{path}.{base}.ofType({ty})"), Some(ty))
                })
        })
        .flatten()
        .collect()
}

fn repetitions(v: Option<&Value>, path: String, choice: Option<String>) -> Vec<Found<'_>> {
    let ty = |x: &Value| {
        choice
            .clone()
            .or_else(|| x["resourceType"].as_str().map(str::to_owned))
    };
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| Found {
                path: format!("{path}[{i}]"),
                ty: ty(x),
                value: x,
            })
            .collect(),
        Some(x) => vec![Found {
            path,
            ty: ty(x),
            value: x,
        }],
    }
}

/// The FHIR type named by a choice suffix: primitives start lower-case
/// (`String` → `string`, `DateTime` → `dateTime`), complex types do not.
fn type_name(suffix: &str) -> String {
    const PRIMITIVES: &[&str] = &[
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
    ];
    PRIMITIVES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(suffix))
        .map_or_else(|| suffix.to_owned(), |p| (*p).to_owned())
}

/// Whether `v` has everything `pattern` has (arrays: each pattern item
/// matched by some item).
fn contains(v: &Value, pattern: &Value) -> bool {
    match (v, pattern) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| contains(av, pv))),
        (Value::Array(a), Value::Array(b)) => {
            b.iter().all(|pv| a.iter().any(|av| contains(av, pv)))
        }
        _ => v == pattern,
    }
}

/// Whether `v` carries a code of the binding's value set.
fn has_code(v: &Value, b: &Binding) -> bool {
    codes_of(v).iter().any(|c| b.codes.contains(c))
}

/// The codes a value carries: a `code` string, a Coding's `system|code`,
/// or every coding of a CodeableConcept.
fn codes_of(v: &Value) -> Vec<String> {
    let coding = |c: &Value| match (c["system"].as_str(), c["code"].as_str()) {
        (Some(s), Some(k)) => Some(format!("{s}|{k}")),
        (None, Some(k)) => Some(k.to_owned()),
        _ => None,
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(_) if v.get("coding").is_some() => v["coding"]
            .as_array()
            .map(|cs| cs.iter().filter_map(coding).collect())
            .unwrap_or_default(),
        Value::Object(_) => coding(v).into_iter().collect(),
        _ => Vec::new(),
    }
}
