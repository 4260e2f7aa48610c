//! The subset of Drive's `q` search language the emulator understands.
//!
//! Terms: `'<id>' in parents` (`root` alias), `'<email>' in owners`, `trashed`, `starred`,
//! `name` / `mimeType` (`=`, `!=`, `contains`), `fullText contains`, `createdTime` / `modifiedTime`
//! comparisons, `sharedWithMe`; combined with `and`, `or`, `not` and parentheses.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::DriveError;
use crate::state::FileEntry;

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    InParents(String),
    InOwners(String),
    Trashed(bool),
    Starred(bool),
    SharedWithMe(bool),
    Name(StrOp, String),
    MimeType(StrOp, String),
    FullText(String),
    Time(TimeField, Cmp, DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrOp {
    Eq,
    Ne,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeField {
    Created,
    Modified,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge,
}

/// What a query needs to know about the caller.
pub struct Context<'a> {
    pub root_id: &'a str,
    pub email: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Op(&'static str),
    Open,
    Close,
}

fn invalid() -> DriveError {
    DriveError::invalid("q", "Invalid Value")
}

fn tokenize(input: &str) -> Result<Vec<Tok>, DriveError> {
    let chars: Vec<char> = input.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(invalid()),
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or_else(invalid)?);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            '=' => {
                toks.push(Tok::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                toks.push(Tok::Op(match (c, eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    ('>', true) => ">=",
                    _ => ">",
                }));
                i += if eq { 2 } else { 1 };
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    i: usize,
}

impl Parser {
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.i), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn or(&mut self) -> Result<Query, DriveError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.i += 1;
            let right = self.and()?;
            left = Query::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, DriveError> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.i += 1;
            let right = self.unary()?;
            left = Query::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Query, DriveError> {
        if self.peek_keyword("not") {
            self.i += 1;
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.i) == Some(&Tok::Open) {
            self.i += 1;
            let inner = self.or()?;
            if self.next() != Some(Tok::Close) {
                return Err(invalid());
            }
            return Ok(inner);
        }
        self.term()
    }

    fn string(&mut self) -> Result<String, DriveError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err(invalid()),
        }
    }

    fn boolean(&mut self) -> Result<bool, DriveError> {
        match self.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(invalid()),
        }
    }

    fn eq_ne(&mut self) -> Result<bool, DriveError> {
        match self.next() {
            Some(Tok::Op("=")) => Ok(true),
            Some(Tok::Op("!=")) => Ok(false),
            _ => Err(invalid()),
        }
    }

    fn str_op(&mut self) -> Result<StrOp, DriveError> {
        match self.next() {
            Some(Tok::Op("=")) => Ok(StrOp::Eq),
            Some(Tok::Op("!=")) => Ok(StrOp::Ne),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("contains") => Ok(StrOp::Contains),
            _ => Err(invalid()),
        }
    }

    fn bool_term(&mut self, make: fn(bool) -> Query) -> Result<Query, DriveError> {
        let eq = self.eq_ne()?;
        let value = self.boolean()?;
        Ok(make(value == eq))
    }

    fn term(&mut self) -> Result<Query, DriveError> {
        match self.next() {
            Some(Tok::Str(value)) => {
                if !self.peek_keyword("in") {
                    return Err(invalid());
                }
                self.i += 1;
                match self.next() {
                    Some(Tok::Word(w)) if w == "parents" => Ok(Query::InParents(value)),
                    Some(Tok::Word(w)) if w == "owners" => Ok(Query::InOwners(value)),
                    _ => Err(invalid()),
                }
            }
            Some(Tok::Word(field)) => match field.as_str() {
                "trashed" => self.bool_term(Query::Trashed),
                "starred" => self.bool_term(Query::Starred),
                "sharedWithMe" => {
                    if matches!(self.toks.get(self.i), Some(Tok::Op(_))) {
                        self.bool_term(Query::SharedWithMe)
                    } else {
                        Ok(Query::SharedWithMe(true))
                    }
                }
                "name" => {
                    let op = self.str_op()?;
                    Ok(Query::Name(op, self.string()?))
                }
                "mimeType" => {
                    let op = self.str_op()?;
                    Ok(Query::MimeType(op, self.string()?))
                }
                "fullText" => {
                    if self.str_op()? != StrOp::Contains {
                        return Err(invalid());
                    }
                    Ok(Query::FullText(self.string()?))
                }
                "createdTime" | "modifiedTime" => {
                    let which = if field == "createdTime" { TimeField::Created } else { TimeField::Modified };
                    let cmp = match self.next() {
                        Some(Tok::Op("<")) => Cmp::Lt,
                        Some(Tok::Op("<=")) => Cmp::Le,
                        Some(Tok::Op("=")) => Cmp::Eq,
                        Some(Tok::Op("!=")) => Cmp::Ne,
                        Some(Tok::Op(">")) => Cmp::Gt,
                        Some(Tok::Op(">=")) => Cmp::Ge,
                        _ => return Err(invalid()),
                    };
                    let at = parse_time(&self.string()?).ok_or_else(invalid)?;
                    Ok(Query::Time(which, cmp, at))
                }
                _ => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Drive takes a timestamp without zone as UTC.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

impl Query {
    pub fn parse(input: &str) -> Result<Query, DriveError> {
        let mut p = Parser { toks: tokenize(input)?, i: 0 };
        let q = p.or()?;
        if p.i != p.toks.len() {
            return Err(invalid());
        }
        Ok(q)
    }

    pub fn matches(&self, f: &FileEntry, cx: &Context<'_>) -> bool {
        match self {
            Query::And(a, b) => a.matches(f, cx) && b.matches(f, cx),
            Query::Or(a, b) => a.matches(f, cx) || b.matches(f, cx),
            Query::Not(a) => !a.matches(f, cx),
            Query::InParents(id) => {
                let id = if id == "root" { cx.root_id } else { id.as_str() };
                f.parents.iter().any(|p| p == id)
            }
            // My Drive files a user can see are their own; shared-drive files have no owner.
            Query::InOwners(email) => f.drive_id.is_none() && (email == "me" || email.eq_ignore_ascii_case(cx.email)),
            Query::Trashed(v) => f.trashed == *v,
            Query::Starred(v) => f.starred == *v,
            Query::SharedWithMe(v) => !*v,
            Query::Name(op, v) => match op {
                StrOp::Eq => f.name == *v,
                StrOp::Ne => f.name != *v,
                StrOp::Contains => word_prefix_match(&f.name, v),
            },
            Query::MimeType(op, v) => match op {
                StrOp::Eq => f.mime_type == *v,
                StrOp::Ne => f.mime_type != *v,
                StrOp::Contains => f.mime_type.contains(v.as_str()),
            },
            Query::FullText(v) => f.name.to_lowercase().contains(&v.to_lowercase()),
            Query::Time(which, cmp, at) => {
                let t = match which {
                    TimeField::Created => f.created,
                    TimeField::Modified => f.modified,
                };
                match cmp {
                    Cmp::Lt => t < *at,
                    Cmp::Le => t <= *at,
                    Cmp::Eq => t == *at,
                    Cmp::Ne => t != *at,
                    Cmp::Gt => t > *at,
                    Cmp::Ge => t >= *at,
                }
            }
        }
    }
}

/// Drive's `name contains`: case-insensitive prefix match at the start of any word.
fn word_prefix_match(name: &str, needle: &str) -> bool {
    let name = name.to_lowercase();
    let needle = needle.to_lowercase();
    let mut prev_alnum = false;
    for (i, c) in name.char_indices() {
        if !prev_alnum && name[i..].starts_with(&needle) {
            return true;
        }
        prev_alnum = c.is_alphanumeric();
    }
    needle.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_queries() {
        let q = Query::parse("'root' in parents and trashed = false").expect("q");
        assert_eq!(q, Query::And(Box::new(Query::InParents("root".into())), Box::new(Query::Trashed(false))));
        let q = Query::parse("mimeType != 'application/vnd.google-apps.folder' AND name = 'it\\'s'").expect("q");
        assert!(matches!(q, Query::And(_, _)));
        assert!(Query::parse("not (starred = true or sharedWithMe)").is_ok());
        assert!(Query::parse("modifiedTime > '2024-01-02T03:04:05Z'").is_ok());
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "name",
            "name = ",
            "'x' in",
            "trashed = maybe",
            "bogus = 'x'",
            "name = 'x' and",
            "(trashed = false",
            "name = 'unterminated",
        ] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contains_is_word_prefix() {
        assert!(word_prefix_match("Hello World", "wor"));
        assert!(word_prefix_match("HelloWorld", "hello"));
        assert!(!word_prefix_match("HelloWorld", "world"));
    }
}
