//! Compiles parsed search clauses (`crate::search::query`) into SQL over the
//! index tables, with every value bound and only table/column names of our own
//! spliced in. One clause, the most selective, becomes the *driver*
//! (`r.res IN (SELECT res FROM idx_… WHERE rtype = ? AND param = ? AND …)`, which
//! SQLite answers from the `(rtype, param, value)` indexes); every other clause
//! is a correlated `EXISTS` whose `rtype`/`param` terms carry a unary `+` so
//! SQLite probes it through the `(res)` index instead of scanning a value index.

use capability::ParamType;

use crate::search::{
    date::instant_of,
    query::{Clause, StrMode, Test},
    text::{like_escape, prefix_upper},
    value::{DateValue, NumberValue, Prefix, RefValue, TokenValue},
};

/// A bound value.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    /// Text.
    T(String),
    /// Integer.
    I(i64),
    /// Real.
    F(f64),
}

/// How index rows are tied to the resource's type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'s> {
    /// A known type (type and compartment search): bound.
    Type(&'s str),
    /// Whatever the resource's type is (system search): `r.type`.
    Column,
}

/// Builds SQL text and its binds in textual order.
#[derive(Debug, Default)]
pub(crate) struct Compiler {
    /// Binds, in the order their `?` appear.
    pub binds: Vec<Bind>,
    n: u32,
}

/// How good a driver a clause is (lower is better); None if it cannot drive.
pub(crate) fn drive_rank(c: &Clause) -> Option<u8> {
    match &c.test {
        Test::Reference(_) => Some(1),
        Test::RefIdentifier(_) => Some(2),
        Test::Token { values, not: false } if values.iter().all(|v| v.code.is_some()) => Some(2),
        Test::Chain(b) if b.len() == 1 && b.iter().all(|(_, i)| drive_rank(i).is_some()) => Some(3),
        Test::Str {
            mode: StrMode::Exact | StrMode::Starts,
            ..
        }
        | Test::Uri { .. } => Some(3),
        Test::Date(_) | Test::Number(_) => Some(4),
        Test::Token { not: false, .. } => Some(5),
        _ => None,
    }
}

fn table(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Token => "idx_token",
        ParamType::String => "idx_string",
        ParamType::Date => "idx_date",
        ParamType::Reference => "idx_reference",
        ParamType::Quantity | ParamType::Number => "idx_quantity",
        ParamType::Uri => "idx_uri",
    }
}

fn or_join(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "0".into(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => format!("(({}))", parts.join(") OR (")),
    }
}

impl Compiler {
    fn t(&mut self, s: impl Into<String>) -> &'static str {
        self.binds.push(Bind::T(s.into()));
        "?"
    }
    fn alias(&mut self) -> String {
        self.n += 1;
        format!("x{}", self.n)
    }
    fn rtype(&mut self, scope: Scope<'_>, r: &str) -> String {
        match scope {
            Scope::Type(t) => self.t(t).to_owned(),
            Scope::Column => format!("{r}.type"),
        }
    }

    /// Opens a subquery over `tab` for parameter `param` of resource alias `r`;
    /// the caller appends ` AND (preds))`.
    fn head(
        &mut self,
        tab: &str,
        x: &str,
        r: &str,
        scope: Scope<'_>,
        param: &str,
        driver: bool,
    ) -> String {
        let rt = self.rtype(scope, r);
        let p = self.t(param);
        if driver {
            format!("{r}.res IN (SELECT {x}.res FROM {tab} {x} WHERE {x}.rtype = {rt} AND {x}.param = {p}")
        } else {
            format!("EXISTS (SELECT 1 FROM {tab} {x} WHERE {x}.res = {r}.res AND +{x}.rtype = {rt} AND +{x}.param = {p}")
        }
    }

    /// A boolean SQL expression: resource alias `r` satisfies `c`.
    pub fn clause(&mut self, c: &Clause, r: &str, scope: Scope<'_>, driver: bool) -> String {
        let driver = driver && matches!(scope, Scope::Type(_)) && drive_rank(c).is_some();
        let def = c.def;
        let x = self.alias();
        match &c.test {
            Test::Id(ids) => {
                let qs: Vec<&str> = ids.iter().map(|i| self.t(i.clone())).collect();
                if qs.is_empty() {
                    "0".into()
                } else {
                    format!("{r}.id IN ({})", qs.join(", "))
                }
            }
            Test::LastUpdated(vals) => {
                let parts = vals.iter().map(|v| self.last_updated(r, v)).collect();
                or_join(parts)
            }
            Test::Missing(m) if matches!(def.name, "_id" | "_lastUpdated") => {
                if *m {
                    "0".into()
                } else {
                    "1".into()
                }
            }
            Test::Missing(m) => {
                let h = self.head(table(def.kind), &x, r, scope, def.name, false);
                format!("{}{h})", if *m { "NOT " } else { "" })
            }
            Test::Token { values, not } => {
                let h = self.head("idx_token", &x, r, scope, def.name, driver && !not);
                let parts = values
                    .iter()
                    .map(|v| self.token(&x, "code", "system", v))
                    .collect();
                let body = format!("{h} AND {})", or_join(parts));
                if *not {
                    format!("NOT {body}")
                } else {
                    body
                }
            }
            Test::Text(vals) => {
                let h = self.head("idx_token", &x, r, scope, def.name, false);
                let parts = vals
                    .iter()
                    .map(|v| {
                        format!(
                            "{x}.display LIKE {} ESCAPE '\\'",
                            self.t(format!("%{}%", like_escape(v)))
                        )
                    })
                    .collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Str { values, mode } => {
                let h = self.head("idx_string", &x, r, scope, def.name, driver);
                let parts = values
                    .iter()
                    .map(|v| match mode {
                        StrMode::Exact => format!("{x}.exact = {}", self.t(v.clone())),
                        StrMode::Starts => format!(
                            "{x}.norm >= {} AND {x}.norm < {}",
                            self.t(v.clone()),
                            self.t(prefix_upper(v))
                        ),
                        StrMode::Contains => format!(
                            "{x}.norm LIKE {} ESCAPE '\\'",
                            self.t(format!("%{}%", like_escape(v)))
                        ),
                    })
                    .collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Uri { values, below } => {
                let h = self.head("idx_uri", &x, r, scope, def.name, driver);
                let parts = values
                    .iter()
                    .map(|v| {
                        if *below {
                            format!(
                                "{x}.value >= {} AND {x}.value < {}",
                                self.t(v.clone()),
                                self.t(prefix_upper(v))
                            )
                        } else {
                            format!("{x}.value = {}", self.t(v.clone()))
                        }
                    })
                    .collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Date(vals) => {
                let h = self.head("idx_date", &x, r, scope, def.name, driver);
                let parts = vals.iter().map(|v| self.date(&x, v)).collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Number(vals) => {
                let h = self.head("idx_quantity", &x, r, scope, def.name, driver);
                let parts = vals.iter().map(|v| self.number(&x, v)).collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Reference(vals) => {
                let h = self.head("idx_reference", &x, r, scope, def.name, driver);
                let parts = vals.iter().map(|v| self.reference(&x, v)).collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::RefIdentifier(vals) => {
                let h = self.head("idx_reference", &x, r, scope, def.name, driver);
                let parts = vals
                    .iter()
                    .map(|v| self.token(&x, "ident_value", "ident_system", v))
                    .collect();
                format!("{h} AND {})", or_join(parts))
            }
            Test::Chain(branches) => {
                let parts = branches
                    .iter()
                    .map(|(t, inner)| {
                        self.chain(
                            &x,
                            r,
                            scope,
                            def.name,
                            t,
                            inner,
                            driver && branches.len() == 1,
                        )
                    })
                    .collect();
                or_join(parts)
            }
            Test::Has { rtype, inner } => {
                let o = self.alias();
                let tt = match scope {
                    Scope::Type(t) => self.t(t).to_owned(),
                    Scope::Column => format!("{r}.type"),
                };
                let rt = self.t(rtype.clone());
                let p = self.t(def.name);
                let cond = self.clause(inner, &o, Scope::Type(rtype), false);
                format!(
                    "EXISTS (SELECT 1 FROM idx_reference {x} JOIN resource {o} ON {o}.res = {x}.res WHERE {x}.target_type = {tt} AND {x}.target_id = {r}.id AND {x}.rtype = {rt} AND {x}.param = {p} AND {o}.deleted = 0 AND {cond})"
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chain(
        &mut self,
        x: &str,
        r: &str,
        scope: Scope<'_>,
        param: &str,
        target: &'static str,
        inner: &Clause,
        driver: bool,
    ) -> String {
        let r2 = self.alias();
        let inner_drives = drive_rank(inner).is_some();
        if driver {
            let h = self.head("idx_reference", x, r, scope, param, true);
            let tt = self.t(target);
            let t2 = self.t(target);
            let plus = if inner_drives { "+" } else { "" };
            let cond = self.clause(inner, &r2, Scope::Type(target), true);
            format!("{h} AND {x}.target_type = {tt} AND {x}.target_id IN (SELECT {r2}.id FROM resource {r2} WHERE {plus}{r2}.type = {t2} AND {r2}.deleted = 0 AND {cond}))")
        } else {
            let t2 = self.t(target);
            let rt = self.rtype(scope, r);
            let p = self.t(param);
            let tt = self.t(target);
            let cond = self.clause(inner, &r2, Scope::Type(target), false);
            format!(
                "EXISTS (SELECT 1 FROM idx_reference {x} JOIN resource {r2} ON {r2}.type = {t2} AND {r2}.id = {x}.target_id WHERE {x}.res = {r}.res AND +{x}.rtype = {rt} AND +{x}.param = {p} AND +{x}.target_type = {tt} AND {r2}.deleted = 0 AND {cond})"
            )
        }
    }

    fn token(&mut self, x: &str, code_col: &str, sys_col: &str, v: &TokenValue) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &v.code {
            parts.push(format!("{x}.{code_col} = {}", self.t(c.clone())));
        }
        match &v.system {
            None => {}
            Some(None) => parts.push(format!("{x}.{sys_col} IS NULL")),
            Some(Some(s)) => parts.push(format!("{x}.{sys_col} = {}", self.t(s.clone()))),
        }
        if parts.is_empty() {
            "1".into()
        } else {
            parts.join(" AND ")
        }
    }

    fn reference(&mut self, x: &str, v: &RefValue) -> String {
        match v {
            RefValue::Local { rtype: Some(t), id } => {
                format!(
                    "{x}.target_id = {} AND {x}.target_type = {}",
                    self.t(id.clone()),
                    self.t(t.clone())
                )
            }
            RefValue::Local { rtype: None, id } => {
                format!("{x}.target_id = {}", self.t(id.clone()))
            }
            RefValue::Url(u) if !u.contains('|') => {
                let versioned = format!("{u}|");
                format!(
                    "({x}.url = {} OR ({x}.url >= {} AND {x}.url < {}))",
                    self.t(u.clone()),
                    self.t(versioned.clone()),
                    self.t(prefix_upper(&versioned))
                )
            }
            RefValue::Url(u) => format!("{x}.url = {}", self.t(u.clone())),
        }
    }

    fn date(&mut self, x: &str, v: &DateValue) -> String {
        let (ql, qh) = (v.range.low, v.range.high);
        let mut i = |n: i64| {
            self.binds.push(Bind::I(n));
            "?"
        };
        match v.prefix {
            Prefix::Eq => format!("{x}.low >= {} AND {x}.high <= {}", i(ql), i(qh)),
            Prefix::Ne => format!("NOT ({x}.low >= {} AND {x}.high <= {})", i(ql), i(qh)),
            Prefix::Gt => format!("{x}.high > {}", i(qh)),
            Prefix::Lt => format!("{x}.low < {}", i(ql)),
            Prefix::Ge => format!("{x}.high >= {}", i(ql)),
            Prefix::Le => format!("{x}.low <= {}", i(qh)),
            Prefix::Sa => format!("{x}.low > {}", i(qh)),
            Prefix::Eb => format!("{x}.high < {}", i(ql)),
            Prefix::Ap => {
                let pad = ((qh - ql) / 10).max(86_400_000);
                format!(
                    "{x}.low <= {} AND {x}.high >= {}",
                    i(qh.saturating_add(pad)),
                    i(ql.saturating_sub(pad))
                )
            }
        }
    }

    fn last_updated(&mut self, r: &str, v: &DateValue) -> String {
        let lo = instant_of(v.range.low);
        let hi = instant_of(v.range.high);
        let c = format!("{r}.last_updated");
        match v.prefix {
            Prefix::Eq => format!("({c} >= {} AND {c} <= {})", self.t(lo), self.t(hi)),
            Prefix::Ne => format!("NOT ({c} >= {} AND {c} <= {})", self.t(lo), self.t(hi)),
            Prefix::Gt | Prefix::Sa => format!("{c} > {}", self.t(hi)),
            Prefix::Lt | Prefix::Eb => format!("{c} < {}", self.t(lo)),
            Prefix::Ge => format!("{c} >= {}", self.t(lo)),
            Prefix::Le => format!("{c} <= {}", self.t(hi)),
            Prefix::Ap => {
                let pad = ((v.range.high - v.range.low) / 10).max(86_400_000);
                let lo = instant_of(v.range.low.saturating_sub(pad));
                let hi = instant_of(v.range.high.saturating_add(pad));
                format!("({c} >= {} AND {c} <= {})", self.t(lo), self.t(hi))
            }
        }
    }

    fn number(&mut self, x: &str, v: &NumberValue) -> String {
        let mut f = |n: f64| {
            self.binds.push(Bind::F(n));
            "?"
        };
        let c = format!("{x}.value");
        let mut pred = match v.prefix {
            Prefix::Eq if v.low == v.high => format!("{c} = {}", f(v.value)),
            Prefix::Eq => format!("{c} >= {} AND {c} < {}", f(v.low), f(v.high)),
            Prefix::Ne => format!("NOT ({c} >= {} AND {c} < {})", f(v.low), f(v.high)),
            Prefix::Gt | Prefix::Sa => format!("{c} > {}", f(v.value)),
            Prefix::Lt | Prefix::Eb => format!("{c} < {}", f(v.value)),
            Prefix::Ge => format!("{c} >= {}", f(v.value)),
            Prefix::Le => format!("{c} <= {}", f(v.value)),
            Prefix::Ap => {
                let pad = (v.value * 0.1).abs();
                format!(
                    "{c} >= {} AND {c} <= {}",
                    f(v.value - pad),
                    f(v.value + pad)
                )
            }
        };
        if let Some(s) = &v.system {
            pred.push_str(&format!(" AND {x}.system = {}", self.t(s.clone())));
        }
        if let Some(code) = &v.code {
            let a = self.t(code.clone());
            let b = self.t(code.clone());
            pred.push_str(&format!(" AND ({x}.code = {a} OR {x}.unit = {b})"));
        }
        pred
    }
}
