//! The configuration text as the user wrote it: finding the line and column of a key, drawing a
//! snippet under an error (with secret values masked), spotting secrets written into the file, and
//! suggesting the key that was meant.

use std::ops::Range;

use toml_edit::{Array, ArrayOfTables, ImDocument, InlineTable, Item, Table, Value};

use super::error::{Location, Problem, Subject};

/// One step of a path into the document: a key, or an index into an array (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Seg {
        Seg::Key(key.to_owned())
    }
}

impl From<&String> for Seg {
    fn from(key: &String) -> Seg {
        Seg::Key(key.clone())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Seg {
        Seg::Index(index)
    }
}

/// A path into the document: `kpath!["service", 0, "ttl"]`.
macro_rules! kpath {
    ($($seg:expr),* $(,)?) => { vec![$($crate::config::source::Seg::from($seg)),*] };
}
pub(super) use kpath;

/// Keys that would put a secret into the file, and the pair of keys to use instead.
const LITERAL_SECRET_KEYS: &[(&str, &str)] = &[
    ("token", "token"),
    ("api-token", "token"),
    ("bot-token", "token"),
    ("api-key", "api-key"),
    ("apikey", "api-key"),
    ("secret", "tsig"),
    ("tsig-secret", "tsig"),
    ("tsig-key", "tsig"),
    ("key", "tsig"),
    ("private-key", "tsig"),
    ("password", "credentials"),
    ("passwd", "credentials"),
    ("credentials", "credentials"),
];

/// A node of the parsed document.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
    Array(&'a Array),
    Tables(&'a ArrayOfTables),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn from_item(item: &'a Item) -> Option<Node<'a>> {
        match item {
            Item::None => None,
            Item::Table(table) => Some(Node::Table(table)),
            Item::ArrayOfTables(tables) => Some(Node::Tables(tables)),
            Item::Value(value) => Some(Node::from_value(value)),
        }
    }

    fn from_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(table) => Node::Inline(table),
            Value::Array(array) => Node::Array(array),
            other => Node::Value(other),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Inline(t) => t.span(),
            Node::Array(a) => a.span(),
            Node::Tables(a) => a.span(),
            Node::Value(v) => v.span(),
        }
    }

    /// The child at `seg`, with the span of its key (for keys) and its own span.
    fn child(self, seg: &Seg) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match (self, seg) {
            (Node::Table(t), Seg::Key(k)) => {
                let (key, item) = t.get_key_value(k)?;
                Some((Node::from_item(item)?, key.span()))
            }
            (Node::Inline(t), Seg::Key(k)) => {
                let (key, item) = t.get_key_value(k)?;
                Some((Node::from_item(item)?, key.span()))
            }
            (Node::Tables(a), Seg::Index(i)) => Some((Node::Table(a.get(*i)?), None)),
            (Node::Array(a), Seg::Index(i)) => Some((Node::from_value(a.get(*i)?), None)),
            _ => None,
        }
    }

    /// Every child, with its path step and key span.
    fn children(self) -> Vec<(Seg, Node<'a>, Option<Range<usize>>)> {
        let mut out = Vec::new();
        match self {
            Node::Table(t) => {
                for (k, _) in t.iter() {
                    if let Some((key, item)) = t.get_key_value(k)
                        && let Some(node) = Node::from_item(item)
                    {
                        out.push((Seg::from(k), node, key.span()));
                    }
                }
            }
            Node::Inline(t) => {
                for (k, _) in t.iter() {
                    if let Some((key, item)) = t.get_key_value(k)
                        && let Some(node) = Node::from_item(item)
                    {
                        out.push((Seg::from(k), node, key.span()));
                    }
                }
            }
            Node::Tables(a) => {
                for (i, t) in a.iter().enumerate() {
                    out.push((Seg::Index(i), Node::Table(t), None));
                }
            }
            Node::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    out.push((Seg::Index(i), Node::from_value(v), None));
                }
            }
            Node::Value(_) => {}
        }
        out
    }
}

/// The text of one configuration file and, once it parses, its document (for spans).
pub(super) struct Source<'a> {
    /// The name shown in messages (the path, or a name given by the caller).
    pub name: &'a str,
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Source<'a> {
    /// Parse the text. A syntax error comes back as a [`Problem`] with a snippet.
    pub(super) fn parse(name: &'a str, text: &'a str) -> Result<Source<'a>, Box<Problem>> {
        let mut source = Source {
            name,
            text,
            doc: None,
        };
        match ImDocument::parse(text) {
            Ok(doc) => {
                source.doc = Some(doc);
                Ok(source)
            }
            Err(err) => {
                let message = err.message().trim().to_owned();
                Err(Box::new(source.problem_at(
                    err.span(),
                    Subject::File,
                    None,
                    message,
                    true,
                )))
            }
        }
    }

    /// The text.
    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    fn root(&self) -> Option<Node<'_>> {
        self.doc.as_ref().map(|doc| Node::Table(doc.as_table()))
    }

    /// The span of the value at `path`; when the path stops early, the span of the deepest part found.
    pub(super) fn span_of(&self, path: &[Seg]) -> Option<Range<usize>> {
        let mut node = self.root()?;
        let mut best = None;
        for seg in path {
            match node.child(seg) {
                Some((child, key_span)) => {
                    best = child.span().or(key_span).or(best);
                    node = child;
                }
                None => break,
            }
        }
        best
    }

    /// The line and column (1-based, columns in characters) of a byte offset.
    pub(super) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location { line, column }
    }

    /// A problem about the value at `path`, located in the file; subject and key come from the path.
    pub(super) fn problem(&self, path: &[Seg], message: impl Into<String>) -> Problem {
        let (subject, key) = self.subject_of(path);
        self.problem_at(self.span_of(path), subject, key, message.into(), false)
    }

    /// A problem at a span, with a snippet when asked for.
    pub(super) fn problem_at(
        &self,
        span: Option<Range<usize>>,
        subject: Subject,
        key: Option<String>,
        message: String,
        snippet: bool,
    ) -> Problem {
        Problem {
            file: self.name.to_owned(),
            location: span.as_ref().map(|s| self.location(s.start)),
            subject,
            key,
            message,
            snippet: match (snippet, span) {
                (true, Some(span)) => Some(self.snippet(span)),
                _ => None,
            },
        }
    }

    /// A problem from serde (an unknown key, a wrong type): located, with a snippet and a suggestion.
    pub(super) fn schema_problem(&self, span: Option<Range<usize>>, message: &str) -> Problem {
        let mut span = span;
        if let Some(unknown) = quoted_after(message, "unknown field `")
            && let Some(key_span) = span.clone().and_then(|s| self.key_within(unknown, s))
        {
            span = Some(key_span);
        }
        let path = span.as_ref().and_then(|s| self.path_at(s.start));
        let (subject, key) = match &path {
            Some(path) => self.subject_of(path),
            None => (Subject::File, None),
        };
        let message = with_suggestion(message.trim());
        self.problem_at(span, subject, key, message, true)
    }

    /// Secrets written into the file (`token = "…"` and the like): one problem each, values never shown.
    pub(super) fn literal_secrets(&self) -> Vec<Problem> {
        let mut found = Vec::new();
        if let Some(root) = self.root() {
            self.find_literal_secrets(root, &mut Vec::new(), &mut found);
        }
        found
    }

    fn find_literal_secrets(&self, node: Node<'_>, path: &mut Vec<Seg>, found: &mut Vec<Problem>) {
        for (seg, child, key_span) in node.children() {
            path.push(seg.clone());
            if let Seg::Key(key) = &seg
                && let Some((_, stem)) = LITERAL_SECRET_KEYS.iter().find(|(k, _)| k == key)
            {
                let (file_key, env_key) = match *stem {
                    "tsig" => ("tsig-key-file".to_owned(), "tsig-env".to_owned()),
                    stem => (format!("{stem}-file"), format!("{stem}-env")),
                };
                let (subject, key_name) = self.subject_of(path);
                found.push(self.problem_at(
                    key_span.or_else(|| child.span()),
                    subject,
                    key_name,
                    format!(
                        "a secret must not be written in the configuration file; put it in a file \
                             readable only by dane-roll and name it with `{file_key}`, or in an \
                             environment variable named with `{env_key}`"
                    ),
                    false,
                ));
            }
            self.find_literal_secrets(child, path, found);
            path.pop();
        }
    }

    /// The span of a key called `name` that lies inside `within`.
    fn key_within(&self, name: &str, within: Range<usize>) -> Option<Range<usize>> {
        let mut hits = Vec::new();
        if let Some(root) = self.root() {
            collect_keys(root, name, &mut hits);
        }
        hits.into_iter()
            .find(|s| s.start >= within.start && s.end <= within.end)
    }

    /// The path of the deepest node whose key or value contains `offset`.
    fn path_at(&self, offset: usize) -> Option<Vec<Seg>> {
        let mut path = Vec::new();
        let mut node = self.root()?;
        'descend: loop {
            for (seg, child, key_span) in node.children() {
                let hit = |s: &Option<Range<usize>>| {
                    s.as_ref()
                        .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
                };
                if hit(&key_span) || hit(&child.span()) || contains_offset(child, offset) {
                    path.push(seg);
                    node = child;
                    continue 'descend;
                }
            }
            return Some(path);
        }
    }

    /// Who a path belongs to (`service "mx"`, `provider "bind"`, …) and the key below that.
    pub(super) fn subject_of(&self, path: &[Seg]) -> (Subject, Option<String>) {
        let key = |rest: &[Seg]| (!rest.is_empty()).then(|| key_text(rest));
        match path {
            [Seg::Key(k), Seg::Index(i), rest @ ..] if k == "service" => {
                let name = self
                    .string_at(&[Seg::from("service"), Seg::from(*i), Seg::from("name")])
                    .unwrap_or_else(|| format!("#{}", i + 1));
                (Subject::Service(name), key(rest))
            }
            [Seg::Key(k), Seg::Key(name), rest @ ..] if k == "provider" => {
                (Subject::Provider(name.clone()), key(rest))
            }
            [Seg::Key(a), Seg::Key(c), Seg::Key(name), rest @ ..]
                if a == "alerts" && c == "channel" =>
            {
                (Subject::Channel(name.clone()), key(rest))
            }
            [Seg::Key(k), rest @ ..] if k == "alerts" => (Subject::Alerts, key(rest)),
            [Seg::Key(k), rest @ ..] if k == "resolver" => (Subject::Resolver, key(rest)),
            [Seg::Key(k), rest @ ..] if k == "check" => (Subject::Check, key(rest)),
            rest => (Subject::File, key(rest)),
        }
    }

    fn string_at(&self, path: &[Seg]) -> Option<String> {
        let mut node = self.root()?;
        for seg in path {
            node = node.child(seg)?.0;
        }
        match node {
            Node::Value(Value::String(s)) => Some(s.value().clone()),
            _ => None,
        }
    }

    /// The line holding `span.start`, with a caret line under the span; secret values are masked.
    fn snippet(&self, span: Range<usize>) -> String {
        let Location { line, column } = self.location(span.start);
        let text = self.text.lines().nth(line - 1).unwrap_or("");
        let shown = mask_secret_line(text);
        let width = self
            .text
            .get(span.clone())
            .map_or(1, |s| s.lines().next().unwrap_or("").chars().count().max(1));
        let width = width.min(shown.chars().count().saturating_sub(column - 1).max(1));
        let gutter = " ".repeat(line.to_string().len());
        format!(
            "{gutter} |\n{line} | {shown}\n{gutter} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(width)
        )
    }
}

fn contains_offset(node: Node<'_>, offset: usize) -> bool {
    node.children().into_iter().any(|(_, child, key_span)| {
        key_span
            .as_ref()
            .is_some_and(|s| s.start <= offset && offset < s.end)
            || child
                .span()
                .is_some_and(|s| s.start <= offset && offset < s.end)
            || contains_offset(child, offset)
    })
}

fn collect_keys(node: Node<'_>, name: &str, hits: &mut Vec<Range<usize>>) {
    for (seg, child, key_span) in node.children() {
        if matches!(&seg, Seg::Key(k) if k == name) {
            hits.extend(key_span);
        }
        collect_keys(child, name, hits);
    }
}

/// `endpoints[2].port` for the path `["endpoints", 1, "port"]` (indices shown 1-based).
fn key_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{}]", i + 1)),
        }
    }
    out
}

/// A line of the file with the value of a secret-like key replaced by `***`.
pub(super) fn mask_secret_line(line: &str) -> String {
    let Some((key, _)) = line.split_once('=') else {
        return line.to_owned();
    };
    let name = key
        .trim()
        .trim_matches(['"', '\''])
        .rsplit('.')
        .next()
        .unwrap_or("");
    let name = name.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    if LITERAL_SECRET_KEYS.iter().any(|(k, _)| *k == name) {
        format!("{key}= {}", super::secret::MASK)
    } else {
        line.to_owned()
    }
}

/// The text between `prefix` and the next backquote.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = message.get(start..)?;
    rest.get(..rest.find('`')?)
}

/// Add "did you mean `x`?" to serde's "unknown field/variant `y`, expected one of `a`, `b`".
pub(super) fn with_suggestion(message: &str) -> String {
    let unknown = quoted_after(message, "unknown field `")
        .or_else(|| quoted_after(message, "unknown variant `"));
    let Some(unknown) = unknown else {
        return message.to_owned();
    };
    let Some(expected) = message
        .find("expected one of ")
        .map(|i| &message[i..])
        .or_else(|| message.find("expected `").map(|i| &message[i..]))
    else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (edit_distance(unknown, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((distance, candidate)) if distance * 3 <= unknown.len().max(candidate.len()) => {
            format!("{message}; did you mean `{candidate}`?")
        }
        _ => message.to_owned(),
    }
}

/// Edit distance between two short strings, counting a swap of neighbours as one edit
/// (optimal string alignment), so `smpt` is one edit from `smtp`.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
