//! Byte-level helpers around fhirbolt's XML reader and writer, for what it
//! does not do itself: bound the nesting depth before its recursive parser
//! runs, keep the whitespace at the edges of narrative text (its reader and
//! writer trim every text node), check that a narrative is one `div`, and
//! escape whitespace inside attribute values (XML parsers turn a raw
//! newline there into a space, XML 1.0 §3.3.3).
//!
//! The scanner only splits text from markup (`<…>` honouring quotes,
//! comments, CDATA, processing instructions); well-formedness proper is
//! fhirbolt's (quick-xml's) job.

use super::XmlError;

/// The XHTML namespace every narrative `div` lives in (R4 narrative.html).
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// One piece of an XML text.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    /// Character data between markup (still escaped).
    Text(&'a str),
    /// A start tag (`empty` for `<x/>`), with its local name.
    Start {
        raw: &'a str,
        name: &'a str,
        empty: bool,
    },
    /// An end tag, with its local name.
    End { raw: &'a str, name: &'a str },
    /// A comment, CDATA section or processing instruction, copied as is.
    Other(&'a str),
    /// `<!DOCTYPE …>` (refused: no DTDs, no entities).
    Doctype,
}

/// Splits `s` into pieces; unterminated markup is an error.
fn pieces(s: &str) -> Result<Vec<Piece<'_>>, XmlError> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(lt) = rest.find('<') {
        if lt > 0 {
            out.push(Piece::Text(&rest[..lt]));
        }
        let tail = &rest[lt..];
        let closer = |end: &str| {
            tail.find(end)
                .map(|i| i + end.len())
                .ok_or_else(|| XmlError::Invalid(format!("unterminated markup: expected '{end}'")))
        };
        let (len, piece) = if tail.starts_with("<!--") {
            let n = closer("-->")?;
            (n, Piece::Other(&tail[..n]))
        } else if tail.starts_with("<![CDATA[") {
            let n = closer("]]>")?;
            (n, Piece::Other(&tail[..n]))
        } else if tail.starts_with("<?") {
            let n = closer("?>")?;
            (n, Piece::Other(&tail[..n]))
        } else if tail.starts_with("<!") {
            (closer(">")?, Piece::Doctype)
        } else {
            let n = tag_len(tail)?;
            let raw = &tail[..n];
            if let Some(inner) = raw.strip_prefix("</") {
                (
                    n,
                    Piece::End {
                        raw,
                        name: local_name(inner),
                    },
                )
            } else {
                let empty = raw.ends_with("/>");
                (
                    n,
                    Piece::Start {
                        raw,
                        name: local_name(&raw[1..]),
                        empty,
                    },
                )
            }
        };
        out.push(piece);
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Length of the tag at the start of `s` (through its `>`), quotes honoured.
fn tag_len(s: &str) -> Result<usize, XmlError> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Ok(i + 1),
            (None, '<') if i > 0 => break,
            _ => {}
        }
    }
    Err(XmlError::Invalid("unterminated tag".into()))
}

/// The local name of a tag body (`x:div a="1">` → `div`).
fn local_name(body: &str) -> &str {
    let end = body
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(body.len());
    let qname = &body[..end];
    qname.rsplit(':').next().unwrap_or(qname)
}

/// Checks the nesting depth of an incoming document (at most `max`
/// elements deep), refuses a DOCTYPE, and protects the edge whitespace of
/// narrative text as character references so fhirbolt keeps it. A
/// whitespace-only text that contains a line break is left alone: that is
/// indentation (fhirbolt's own writer indents), dropped as before.
pub fn prepare_input(text: &str, max: usize) -> Result<String, XmlError> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut depth = 0usize;
    let mut div_at: Option<usize> = None;
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) if div_at.is_some() => {
                if t.trim().is_empty() && t.contains('\n') {
                    out.push_str(t);
                } else {
                    protect_edges(t, &mut out);
                }
            }
            Piece::Text(t) | Piece::Other(t) => out.push_str(t),
            Piece::Doctype => {
                return Err(XmlError::Invalid(
                    "DOCTYPE declarations are not accepted".into(),
                ))
            }
            Piece::End { raw, .. } => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| XmlError::Invalid("unbalanced end tag".into()))?;
                if div_at == Some(depth) {
                    div_at = None;
                }
                out.push_str(raw);
            }
            Piece::Start { raw, name, empty } => {
                out.push_str(raw);
                if !empty {
                    if div_at.is_none() && name == "div" {
                        div_at = Some(depth);
                    }
                    depth += 1;
                    if depth > max {
                        return Err(XmlError::TooDeep(max));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Writes `t` with the whitespace at both of its edges as character
/// references (a text that is all whitespace entirely so).
fn protect_edges(t: &str, out: &mut String) {
    let start = t.len() - t.trim_start().len();
    let end = t.trim_end().len().max(start);
    push_refs(&t[..start], out);
    out.push_str(&t[start..end]);
    push_refs(&t[end..], out);
}

fn push_refs(ws: &str, out: &mut String) {
    for c in ws.chars() {
        match c {
            ' ' => out.push_str("&#32;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// A narrative `div` from JSON made ready for fhirbolt's XML writer: one
/// `div` element and nothing around it (else an error: it would not be
/// XHTML, and could smuggle markup next to it), the XHTML namespace
/// declared (FHIR JSON requires it; many writers forget), edge whitespace
/// of its texts protected.
pub fn div_for_xml(div: &str) -> Result<String, XmlError> {
    let bad =
        || XmlError::Unrepresentable("the narrative is not a single XHTML div element".into());
    let mut out = String::with_capacity(div.len() + 48);
    let mut depth = 0usize;
    let mut seen_root = false;
    for piece in pieces(div).map_err(|_| bad())? {
        match piece {
            Piece::Text(t) if depth == 0 => {
                if !t.trim().is_empty() {
                    return Err(bad());
                }
            }
            Piece::Text(t) => protect_edges(t, &mut out),
            Piece::Other(t) if depth > 0 => out.push_str(t),
            Piece::Other(_) | Piece::Doctype => return Err(bad()),
            Piece::Start { raw, name, empty } => {
                if depth == 0 {
                    if seen_root || name != "div" {
                        return Err(bad());
                    }
                    seen_root = true;
                    out.push_str(&with_xhtml_ns(raw));
                } else {
                    out.push_str(raw);
                }
                if !empty {
                    depth += 1;
                }
            }
            Piece::End { raw, name } => {
                depth = depth.checked_sub(1).ok_or_else(bad)?;
                if depth == 0 && name != "div" {
                    return Err(bad());
                }
                out.push_str(raw);
            }
        }
    }
    if !seen_root || depth != 0 {
        return Err(bad());
    }
    Ok(out)
}

/// The root start tag with `xmlns="…xhtml"` added when it declares no
/// default namespace.
fn with_xhtml_ns(raw: &str) -> String {
    if raw.contains("xmlns=") {
        return raw.to_owned();
    }
    let name_end = raw
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(raw.len());
    format!(
        "{} xmlns=\"{XHTML_NS}\"{}",
        &raw[..name_end],
        &raw[name_end..]
    )
}

/// A narrative `div` read back from XML: the character references of
/// whitespace in its texts (ours, see [`prepare_input`], or the sender's)
/// become the characters again.
pub fn div_from_xml(div: &str) -> String {
    let Ok(parts) = pieces(div) else {
        return div.to_owned();
    };
    let mut out = String::with_capacity(div.len());
    for piece in parts {
        match piece {
            Piece::Text(t) => out.push_str(
                &t.replace("&#32;", " ")
                    .replace("&#9;", "\t")
                    .replace("&#10;", "\n")
                    .replace("&#13;", "\r"),
            ),
            Piece::Start { raw, .. } => out.push_str(raw),
            Piece::End { raw, .. } | Piece::Other(raw) => out.push_str(raw),
            Piece::Doctype => {}
        }
    }
    out
}

/// fhirbolt's writer leaves tabs and line breaks raw inside attribute
/// values, where any XML parser would read them as spaces: escape them.
pub fn escape_attribute_whitespace(xml: String) -> String {
    if !xml.contains(['\n', '\r', '\t']) {
        return xml;
    }
    let mut out = String::with_capacity(xml.len() + 16);
    let mut in_tag = false;
    let mut quote: Option<char> = None;
    for c in xml.chars() {
        match (in_tag, quote, c) {
            (false, _, '<') => {
                in_tag = true;
                out.push(c);
            }
            (true, None, '>') => {
                in_tag = false;
                out.push(c);
            }
            (true, None, '"' | '\'') => {
                quote = Some(c);
                out.push(c);
            }
            (true, Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (true, Some(_), '\n') => out.push_str("&#10;"),
            (true, Some(_), '\r') => out.push_str("&#13;"),
            (true, Some(_), '\t') => out.push_str("&#9;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_bounded() {
        let deep = "<a>".repeat(10) + &"</a>".repeat(10);
        assert!(prepare_input(&deep, 10).is_ok());
        assert!(matches!(prepare_input(&deep, 9), Err(XmlError::TooDeep(9))));
        assert!(prepare_input("<a/><b x='>'/>", 1).is_ok());
        assert!(prepare_input("<!DOCTYPE x [<!ENTITY e 'x'>]><a/>", 5).is_err());
    }

    #[test]
    fn narrative_whitespace_is_protected_then_restored() {
        let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b>World</b> !</p></div>"#;
        let prepared = div_for_xml(div).unwrap();
        assert!(prepared.contains("Hello&#32;<b>"));
        assert_eq!(div_from_xml(&prepared), div);
    }

    #[test]
    fn narrative_must_be_one_div() {
        assert!(div_for_xml("<div>a</div><status value='x'/>").is_err());
        assert!(div_for_xml("<p>a</p>").is_err());
        assert!(div_for_xml("text").is_err());
        assert_eq!(
            div_for_xml("<div>a</div>").unwrap(),
            format!("<div xmlns=\"{XHTML_NS}\">a</div>")
        );
    }

    #[test]
    fn attribute_whitespace_is_escaped() {
        assert_eq!(
            escape_attribute_whitespace("<a value=\"x\ny\">\n</a>".into()),
            "<a value=\"x&#10;y\">\n</a>"
        );
    }
}
