//! Adaptive forms (SDC `sdc-questionnaire-adapt`): a form is a rule table
//! kept as data (`content/*-rules.json`): the first question(s), every
//! question's item, and rules "after question X was answered A, ask Y"
//! (`ask: []` ends the form). Pure: [`Form::step`] replays the answers
//! given so far from the start and says which questions are asked and
//! whether the form is complete, so the answer depends only on the
//! answers, never on what the client claims was asked.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One adaptive form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// Canonical URL of the adaptive Questionnaire.
    pub questionnaire: String,
    /// Its version.
    pub version: String,
    /// The question(s) asked first.
    pub start: Vec<String>,
    /// Every question's `Questionnaire.item`, by linkId.
    pub questions: Map<String, Value>,
    /// What comes after an answer, first match wins.
    pub rules: Vec<Rule>,
}

/// "After `after` was answered `answer`, ask `ask`".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The linkId whose answer decides (the last question of a step).
    pub after: String,
    /// The answer's key ([`answer_key`]), or `*` for any answer.
    pub answer: String,
    /// The next question(s); empty: the form is complete.
    pub ask: Vec<String>,
}

/// Where the form stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The linkIds asked so far, in order (the previous ones first).
    pub asked: Vec<String>,
    /// No more questions.
    pub complete: bool,
}

/// An answer as the rules compare it: the code of a Coding, `true` /
/// `false`, a number or the text; empty for other types.
pub fn answer_key(answer: &Value) -> String {
    let Some(obj) = answer.as_object() else {
        return String::new();
    };
    for (k, v) in obj {
        if !k.starts_with("value") {
            continue;
        }
        return match v {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Object(o) => o
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
    }
    String::new()
}

impl Form {
    /// The canonical `url|version` of the form's Questionnaire.
    pub fn canonical(&self) -> String {
        format!("{}|{}", self.questionnaire, self.version)
    }

    /// Every linkId the table names is a question; each question's item
    /// has that linkId; every question is followed by some rule.
    pub fn check(&self) -> Result<(), String> {
        for (id, item) in &self.questions {
            if item["linkId"].as_str() != Some(id) {
                return Err(format!("question {id} has another linkId"));
            }
            if !self.rules.iter().any(|r| r.after == *id) {
                return Err(format!("no rule says what comes after {id}"));
            }
        }
        let named = self
            .start
            .iter()
            .chain(self.rules.iter().map(|r| &r.after))
            .chain(self.rules.iter().flat_map(|r| &r.ask));
        for id in named {
            if !self.questions.contains_key(id) {
                return Err(format!("{id} is not a question of the form"));
            }
        }
        if self.start.is_empty() {
            return Err("the form asks nothing first".into());
        }
        Ok(())
    }

    /// The question item of a linkId.
    pub fn item(&self, link_id: &str) -> Option<&Value> {
        self.questions.get(link_id)
    }

    /// Replays `answers` (by linkId) from the start. A step's questions
    /// count as answered once the client has seen them (`seen`: the
    /// linkIds of the Questionnaire it sent) and answered each required
    /// one; the rules then pick the next step from the answer to the
    /// step's last question. Err: an answer the form does not accept.
    pub fn step(
        &self,
        answers: &BTreeMap<String, Vec<Value>>,
        seen: &[String],
    ) -> Result<Step, String> {
        let mut asked: Vec<String> = Vec::new();
        let mut next = self.start.clone();
        loop {
            if next.is_empty() {
                return Ok(Step {
                    asked,
                    complete: true,
                });
            }
            for id in &next {
                if asked.contains(id) {
                    return Err(format!("the form's rules ask {id} twice"));
                }
                asked.push(id.clone());
            }
            let mut key = String::new();
            for id in &next {
                let item = self
                    .item(id)
                    .ok_or_else(|| format!("unknown question {id}"))?;
                let given = answers.get(id).map(Vec::as_slice).unwrap_or(&[]);
                let required = item["required"].as_bool().unwrap_or(false);
                if !seen.contains(id) || (required && given.is_empty()) {
                    return Ok(Step {
                        asked,
                        complete: false,
                    });
                }
                check_answers(item, given)?;
                key = given.first().map(answer_key).unwrap_or_default();
            }
            let last = next.last().cloned().unwrap_or_default();
            let rule = self
                .rules
                .iter()
                .find(|r| r.after == last && (r.answer == "*" || r.answer == key))
                .ok_or_else(|| {
                    format!("the answer '{key}' to question {last} is not one this form accepts")
                })?;
            next = rule.ask.clone();
        }
    }
}

/// Whether `given` fits the question: its cardinality, the answer type of
/// its `type`, and for `choice` one of its `answerOption`s.
fn check_answers(item: &Value, given: &[Value]) -> Result<(), String> {
    let id = item["linkId"].as_str().unwrap_or_default();
    if given.len() > 1 && !item["repeats"].as_bool().unwrap_or(false) {
        return Err(format!("question {id} takes one answer"));
    }
    let kind = item["type"].as_str().unwrap_or_default();
    for a in given {
        let ok = match kind {
            "boolean" => a["valueBoolean"].is_boolean(),
            "integer" => a["valueInteger"].is_i64(),
            "decimal" => a["valueDecimal"].is_number(),
            "string" | "text" => a["valueString"]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "choice" => item["answerOption"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| {
                    let (x, y) = (&o["valueCoding"], &a["valueCoding"]);
                    x.is_object() && x["system"] == y["system"] && x["code"] == y["code"]
                }),
            _ => true,
        };
        if !ok {
            return Err(format!(
                "the answer to question {id} is not a valid {kind} answer for it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn form() -> Form {
        serde_json::from_str(include_str!(
            "content/knee-arthroplasty-adaptive-rules.json"
        ))
        .unwrap()
    }

    fn answers(pairs: &[(&str, Value)]) -> BTreeMap<String, Vec<Value>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![v.clone()]))
            .collect()
    }

    fn seen(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn grade(code: &str) -> Value {
        json!({"valueCoding": {"system": "http://example.org/fhir/CodeSystem/kellgren-lawrence", "code": code}})
    }

    #[test]
    fn the_shipped_form_is_consistent() {
        form().check().unwrap();
    }

    #[test]
    fn the_first_call_asks_the_first_question() {
        let s = form().step(&BTreeMap::new(), &[]).unwrap();
        assert_eq!(s.asked, ["conservative-therapy"]);
        assert!(!s.complete);
    }

    #[test]
    fn the_next_question_depends_on_the_answer() {
        let f = form();
        let yes = answers(&[("conservative-therapy", json!({"valueBoolean": true}))]);
        let s = f.step(&yes, &seen(&["conservative-therapy"])).unwrap();
        assert_eq!(s.asked, ["conservative-therapy", "xray-grade"]);
        let no = answers(&[("conservative-therapy", json!({"valueBoolean": false}))]);
        let s = f.step(&no, &seen(&["conservative-therapy"])).unwrap();
        assert_eq!(s.asked, ["conservative-therapy", "no-conservative-reason"]);
        // grade 4 → function question; grade 1 → findings question
        let seen2 = seen(&["conservative-therapy", "xray-grade"]);
        let mut a = yes.clone();
        a.insert("xray-grade".into(), vec![grade("4")]);
        assert_eq!(f.step(&a, &seen2).unwrap().asked[2], "adl-limitation");
        a.insert("xray-grade".into(), vec![grade("1")]);
        assert_eq!(f.step(&a, &seen2).unwrap().asked[2], "imaging-findings");
    }

    #[test]
    fn the_form_completes_when_the_last_rule_asks_nothing() {
        let f = form();
        let mut a = answers(&[
            ("conservative-therapy", json!({"valueBoolean": true})),
            ("xray-grade", grade("3")),
            ("adl-limitation", json!({"valueBoolean": true})),
        ]);
        let all = seen(&["conservative-therapy", "xray-grade", "adl-limitation"]);
        let s = f.step(&a, &all).unwrap();
        assert!(s.complete);
        assert_eq!(s.asked.len(), 3);
        // an answer to a question the client has not been shown is not used
        a.remove("adl-limitation");
        let s = f.step(&a, &all[..2]).unwrap();
        assert!(!s.complete);
    }

    #[test]
    fn answers_the_form_does_not_accept_are_refused() {
        let f = form();
        let a = answers(&[("conservative-therapy", json!({"valueString": "yes"}))]);
        assert!(f.step(&a, &seen(&["conservative-therapy"])).is_err());
        let a = answers(&[
            ("conservative-therapy", json!({"valueBoolean": true})),
            ("xray-grade", grade("7")),
        ]);
        assert!(f
            .step(&a, &seen(&["conservative-therapy", "xray-grade"]))
            .is_err());
    }

    #[test]
    fn answer_keys() {
        assert_eq!(answer_key(&json!({"valueBoolean": false})), "false");
        assert_eq!(answer_key(&json!({"valueCoding": {"code": "3"}})), "3");
        assert_eq!(answer_key(&json!({"valueInteger": 12})), "12");
        assert_eq!(answer_key(&json!({"item": []})), "");
    }
}
