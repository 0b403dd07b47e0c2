//! The filter and sort grammar, its syntax tree, and the printer that reads back into the same tree.
//!
//! ```text
//! filter     := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" or ")" | comparison
//! comparison := field op literal
//! op         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//! literal    := number | 'string'            (quotes inside doubled: 'it''s')
//! field      := status | name | experiment | run_id
//!             | params.KEY | tags.KEY | metrics.KEY [.best | .last]
//! sort       := key ("," key)*      key := ["-" | "+"] field
//! ```
//!
//! Keywords are case-insensitive. Static typing happens here, so that most mistakes are reported
//! before any run is loaded: ordering operators need a number, metrics are numbers, attributes and
//! tags are text, `status` must name a real state, and `metrics.KEY` (the best value) needs a key
//! whose direction is known. Every node keeps the byte span it came from so that errors found later,
//! against the data, can still point at the text.

use std::fmt;

use super::{QueryError, QueryErrorKind, QueryPart};
use crate::model::RunState;
use regimen_metrics::{DIRECTIONS_HELP, MetricKey, Mode};

/// How deeply parentheses and `not`s may nest; deeper input is refused instead of overflowing the
/// stack.
const MAX_DEPTH: usize = 64;

/// A byte range of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether the operator orders values (and so applies to numbers only).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// Which value of a metric series a field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricAgg {
    /// The best value, by the key's direction.
    Best,
    /// The value at the last step.
    Last,
    /// The lowest finite value.
    Min,
    /// The highest finite value.
    Max,
}

/// What a comparison or sort key looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `params.KEY`: a flattened configuration value.
    Param(String),
    /// `metrics.KEY`, `metrics.KEY.best` or `metrics.KEY.last`.
    Metric {
        /// The metric key.
        key: String,
        /// Best or last.
        agg: MetricAgg,
    },
    /// `tags.KEY`.
    Tag(String),
    /// `status`.
    Status,
    /// `name`.
    Name,
    /// `experiment`.
    Experiment,
    /// `run_id`.
    RunId,
}

/// The attributes a field may name besides `params.*`, `metrics.*` and `tags.*`.
const ATTRIBUTES: &str = "status, name, experiment, run_id, params.KEY, metrics.KEY, metrics.KEY.last, metrics.KEY.min, metrics.KEY.max, tags.KEY";

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Param(key) => write!(f, "params.{key}"),
            Field::Tag(key) => write!(f, "tags.{key}"),
            Field::Metric { key, agg: MetricAgg::Last } => write!(f, "metrics.{key}.last"),
            Field::Metric { key, agg: MetricAgg::Min } => write!(f, "metrics.{key}.min"),
            Field::Metric { key, agg: MetricAgg::Max } => write!(f, "metrics.{key}.max"),
            Field::Metric { key, agg: MetricAgg::Best } => {
                if [".last", ".best", ".min", ".max"].iter().any(|suffix| key.ends_with(suffix)) {
                    write!(f, "metrics.{key}.best")
                } else {
                    write!(f, "metrics.{key}")
                }
            }
            Field::Status => f.write_str("status"),
            Field::Name => f.write_str("name"),
            Field::Experiment => f.write_str("experiment"),
            Field::RunId => f.write_str("run_id"),
        }
    }
}

impl Field {
    /// Whether the field's values are text (`true`) or may be numbers.
    fn is_text(&self) -> bool {
        !matches!(self, Field::Param(_) | Field::Metric { .. })
    }
}

/// A literal value in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A finite number.
    Number(f64),
    /// A string.
    Text(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Rust prints the shortest text that parses back to the same f64.
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both sides hold.
    And(Box<Expr>, Box<Expr>),
    /// Either side holds.
    Or(Box<Expr>, Box<Expr>),
    /// The inside does not hold.
    Not(Box<Expr>),
    /// `field op value`.
    Compare {
        /// What is compared.
        field: Field,
        /// How.
        op: CmpOp,
        /// With what.
        value: Literal,
        /// Where the field is in the input.
        field_span: Span,
        /// Where the value is in the input.
        value_span: Span,
    },
}

impl fmt::Display for Expr {
    /// Prints with the fewest parentheses that parse back into the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn wrapped(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
            if parens { write!(f, "({e})") } else { write!(f, "{e}") }
        }
        match self {
            Expr::Or(l, r) => {
                wrapped(f, l, false)?;
                f.write_str(" or ")?;
                wrapped(f, r, matches!(**r, Expr::Or(..)))
            }
            Expr::And(l, r) => {
                wrapped(f, l, matches!(**l, Expr::Or(..)))?;
                f.write_str(" and ")?;
                wrapped(f, r, matches!(**r, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Not(inner) => {
                f.write_str("not ")?;
                wrapped(f, inner, matches!(**inner, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Compare { field, op, value, .. } => write!(f, "{field} {} {value}", op.as_str()),
        }
    }
}

/// A parsed filter together with the text it came from (for error messages found while evaluating).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    source: String,
    expr: Expr,
}

impl Filter {
    /// Parses and type-checks a filter such as `params.lr < 0.01 and tags.arch = 'cnn'`.
    pub fn parse(source: &str) -> Result<Filter, QueryError> {
        let tokens = lex(source, QueryPart::Filter)?;
        let mut parser = Parser { source, tokens, pos: 0 };
        let expr = parser.or(0)?;
        if let Some(token) = parser.peek() {
            let message = match token.kind {
                Tok::RParen => "unmatched `)`".to_string(),
                _ => format!("expected `and`, `or` or the end of the filter, found {}", token.describe(source)),
            };
            return Err(error(source, QueryPart::Filter, QueryErrorKind::Syntax, token.span, message, None));
        }
        Ok(Filter { source: source.to_string(), expr })
    }

    /// The text the filter was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl fmt::Display for Filter {
    /// Prints the filter in canonical form (not necessarily the text it was parsed from).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

/// One key of a sort: a field and a direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// What to sort by.
    pub field: Field,
    /// Largest first (written with a leading `-`).
    pub descending: bool,
    /// Where the field is in the sort text.
    pub span: Span,
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.descending { "-" } else { "" }, self.field)
    }
}

/// Parsed sort keys together with the text they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    source: String,
    keys: Vec<SortKey>,
}

impl Sort {
    /// Parses comma-separated sort keys such as `-metrics.val.macro_f1,params.lr`.
    pub fn parse(source: &str) -> Result<Sort, QueryError> {
        Ok(Sort { source: source.to_string(), keys: parse_sort_keys(source)? })
    }

    /// The text the keys were parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The keys, most significant first.
    pub fn keys(&self) -> &[SortKey] {
        &self.keys
    }
}

impl fmt::Display for Sort {
    /// Prints the keys in canonical form, separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        f.write_str(&keys.join(","))
    }
}

fn parse_sort_keys(source: &str) -> Result<Vec<SortKey>, QueryError> {
    let mut keys = Vec::new();
    let mut start = 0;
    for piece in source.split(',') {
        let end = start + piece.len();
        let lead = piece.len() - piece.trim_start().len();
        let text = piece.trim();
        let mut at = start + lead;
        if text.is_empty() {
            let message = "expected a sort key (such as `-metrics.val.acc`) here".to_string();
            return Err(error(source, QueryPart::Sort, QueryErrorKind::Syntax, Span::new(at, at + 1), message, None));
        }
        let (descending, name) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        at += text.len() - name.len();
        let span = Span::new(at, at + name.len());
        let valid = ident_len(name) == name.len() && !name.is_empty();
        if !valid {
            let message = format!("`{name}` is not a field name");
            let help = Some(format!("sort by one of {ATTRIBUTES}, with a leading `-` for descending"));
            return Err(error(source, QueryPart::Sort, QueryErrorKind::Syntax, span, message, help));
        }
        let field = field_of(source, QueryPart::Sort, name, span)?;
        keys.push(SortKey { field, descending, span });
        start = end + 1;
    }
    Ok(keys)
}

fn error(
    source: &str,
    part: QueryPart,
    kind: QueryErrorKind,
    span: Span,
    message: String,
    help: Option<String>,
) -> QueryError {
    QueryError { part, kind, input: source.to_string(), span, message, help }
}

/// Resolves a dotted name into a field, checking that it exists and that a best value is defined.
fn field_of(source: &str, part: QueryPart, name: &str, span: Span) -> Result<Field, QueryError> {
    let unknown = |message: String| {
        let help = Some(format!("fields are {ATTRIBUTES}"));
        error(source, part, QueryErrorKind::UnknownField, span, message, help)
    };
    let (head, rest) = match name.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (name, None),
    };
    let field = match (head, rest) {
        ("status", None) => Field::Status,
        ("name", None) => Field::Name,
        ("experiment", None) => Field::Experiment,
        ("run_id", None) => Field::RunId,
        ("params", Some(key)) => Field::Param(key.to_string()),
        ("tags", Some(key)) => Field::Tag(key.to_string()),
        ("metrics", Some(key)) => {
            let (key, agg) = if let Some(key) = key.strip_suffix(".last") {
                (key, MetricAgg::Last)
            } else if let Some(key) = key.strip_suffix(".min") {
                (key, MetricAgg::Min)
            } else if let Some(key) = key.strip_suffix(".max") {
                (key, MetricAgg::Max)
            } else if let Some(key) = key.strip_suffix(".best") {
                (key, MetricAgg::Best)
            } else {
                (key, MetricAgg::Best)
            };
            // A split's metric of unknown name may still have a best: the one a run monitors, in
            // the direction the run recorded.
            if agg == MetricAgg::Best && Mode::of_key(key).is_none() && MetricKey::parse(key).is_none() {
                let message =
                    format!("metric `{key}` has no best value: it is not known whether higher or lower is better");
                let help = Some(format!(
                    "use `metrics.{key}.last`; keys `<split>.<name>` have a best value when the name has a \
                     direction ({DIRECTIONS_HELP}) or the run monitors it"
                ));
                return Err(error(source, part, QueryErrorKind::UnknownField, span, message, help));
            }
            Field::Metric { key: key.to_string(), agg }
        }
        ("params" | "tags" | "metrics", None) => {
            return Err(unknown(format!("`{head}` needs a key, as in `{head}.KEY`")));
        }
        _ => return Err(unknown(format!("unknown field `{name}`"))),
    };
    Ok(field)
}

/// The length of the dotted identifier at the start of `text` (0 if none).
fn ident_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if bytes.first().is_none_or(|&b| !(b.is_ascii_alphabetic() || b == b'_')) {
        return 0;
    }
    let mut i = 1;
    loop {
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        if i + 1 < bytes.len() && bytes[i] == b'.' && word(bytes[i + 1]) {
            i += 1;
        } else {
            return i;
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident,
    Str(String),
    Num(f64),
    Op(CmpOp),
    LParen,
    RParen,
    And,
    Or,
    Not,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    span: Span,
}

impl Token {
    fn describe(&self, source: &str) -> String {
        format!("`{}`", &source[self.span.start..self.span.end])
    }
}

fn lex(source: &str, part: QueryPart) -> Result<Vec<Token>, QueryError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let syntax = |span: Span, message: String, help: Option<String>| {
        error(source, part, QueryErrorKind::Syntax, span, message, help)
    };
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let kind = match b {
            _ if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'=' => {
                i += if bytes.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                Tok::Op(CmpOp::Eq)
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'<' | b'>' => {
                let or_equal = bytes.get(i + 1) == Some(&b'=');
                i += if or_equal { 2 } else { 1 };
                Tok::Op(match (b, or_equal) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                })
            }
            b'\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    let Some(offset) = source[i..].find('\'') else {
                        let message = "this string has no closing quote".to_string();
                        let help = Some("strings are written in single quotes; write a quote inside as ''".to_string());
                        return Err(syntax(Span::new(start, start + 1), message, help));
                    };
                    text.push_str(&source[i..i + offset]);
                    i += offset + 1;
                    if bytes.get(i) == Some(&b'\'') {
                        text.push('\'');
                        i += 1;
                    } else {
                        break;
                    }
                }
                Tok::Str(text)
            }
            b'-' | b'.' | b'0'..=b'9' => {
                let len = number_len(&bytes[i..]);
                if len == 0 {
                    let message = format!("unexpected `{}`", b as char);
                    return Err(syntax(Span::new(start, start + 1), message, None));
                }
                i += len;
                let text = &source[start..i];
                if bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.') {
                    let message = format!("`{text}` must be followed by a space, an operator or a parenthesis");
                    return Err(syntax(Span::new(i, i + 1), message, None));
                }
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Tok::Num(n),
                    _ => return Err(syntax(Span::new(start, i), format!("`{text}` is out of range"), None)),
                }
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                i += ident_len(&source[i..]);
                match source[start..i].to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident,
                }
            }
            _ => {
                let c = source[i..].chars().next().unwrap_or('?');
                let span = Span::new(start, start + c.len_utf8());
                let help = match c {
                    '"' => Some("strings are written in single quotes: 'cnn'".to_string()),
                    '&' | '|' | '!' => Some("write `and`, `or`, `not` and `!=`".to_string()),
                    _ => None,
                };
                return Err(syntax(span, format!("unexpected character `{c}`"), help));
            }
        };
        tokens.push(Token { kind, span: Span::new(start, i) });
    }
    Ok(tokens)
}

/// The length of the number at the start of `bytes`: `-?(d+(.d*)?|.d+)([eE][+-]?d+)?`, or 0.
fn number_len(bytes: &[u8]) -> usize {
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits(i);
    i += whole;
    let mut fraction = 0;
    if bytes.get(i) == Some(&b'.') {
        fraction = digits(i + 1);
        if whole > 0 || fraction > 0 {
            i += 1 + fraction;
        }
    }
    if whole == 0 && fraction == 0 {
        return 0;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
        let exponent = digits(i + 1 + sign);
        if exponent > 0 {
            i += 1 + sign + exponent;
        }
    }
    i
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, kind: &Tok) -> bool {
        let matched = self.peek().is_some_and(|t| t.kind == *kind);
        self.pos += usize::from(matched);
        matched
    }

    fn fail(&self, kind: QueryErrorKind, span: Span, message: String, help: Option<String>) -> QueryError {
        error(self.source, QueryPart::Filter, kind, span, message, help)
    }

    /// The span of the next token, or an empty span at the end of the input.
    fn here(&self) -> Span {
        self.peek().map_or(Span::new(self.source.len(), self.source.len()), |t| t.span)
    }

    fn found(&self) -> String {
        self.peek().map_or_else(|| "the end of the filter".to_string(), |t| t.describe(self.source))
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut left = self.and(depth)?;
        while self.eat(&Tok::Or) {
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut left = self.unary(depth)?;
        while self.eat(&Tok::And) {
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if depth >= MAX_DEPTH {
            let message = format!("the filter nests deeper than {MAX_DEPTH} levels");
            return Err(self.fail(QueryErrorKind::Syntax, self.here(), message, None));
        }
        let Some(token) = self.peek().cloned() else {
            let message = "the filter ends where a comparison was expected".to_string();
            let help = Some("a comparison looks like `params.lr < 0.01`".to_string());
            return Err(self.fail(QueryErrorKind::Syntax, self.here(), message, help));
        };
        match token.kind {
            Tok::Not => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            Tok::LParen => {
                self.pos += 1;
                let inner = self.or(depth + 1)?;
                if !self.eat(&Tok::RParen) {
                    let message = format!(
                        "expected `)` to close the `(` at column {}, found {}",
                        self.column(token.span),
                        self.found()
                    );
                    return Err(self.fail(QueryErrorKind::Syntax, self.here(), message, None));
                }
                Ok(inner)
            }
            Tok::Ident => self.comparison(token.span),
            _ => {
                let message =
                    format!("expected a field such as `params.lr` or `status`, found {}", token.describe(self.source));
                let help = Some(format!("fields are {ATTRIBUTES}"));
                Err(self.fail(QueryErrorKind::Syntax, token.span, message, help))
            }
        }
    }

    fn column(&self, span: Span) -> usize {
        self.source[..span.start].chars().count() + 1
    }

    fn comparison(&mut self, field_span: Span) -> Result<Expr, QueryError> {
        self.pos += 1;
        let name = &self.source[field_span.start..field_span.end];
        let field = field_of(self.source, QueryPart::Filter, name, field_span)?;
        let op = match self.peek().map(|t| &t.kind) {
            Some(Tok::Op(op)) => *op,
            _ => {
                let message = format!("expected an operator (= != < <= > >=) after `{name}`, found {}", self.found());
                return Err(self.fail(QueryErrorKind::Syntax, self.here(), message, None));
            }
        };
        self.pos += 1;
        let value_span = self.here();
        let value = match self.peek().map(|t| &t.kind) {
            Some(Tok::Num(n)) => Literal::Number(*n),
            Some(Tok::Str(s)) => Literal::Text(s.clone()),
            Some(Tok::Ident) => {
                let word = &self.source[value_span.start..value_span.end];
                let message = format!("expected a number or a 'quoted string' after `{}`, found `{word}`", op.as_str());
                let help = Some(format!("to compare with the text {word}, quote it: '{word}'"));
                return Err(self.fail(QueryErrorKind::Syntax, value_span, message, help));
            }
            _ => {
                let message =
                    format!("expected a number or a 'quoted string' after `{}`, found {}", op.as_str(), self.found());
                return Err(self.fail(QueryErrorKind::Syntax, value_span, message, None));
            }
        };
        self.pos += 1;
        self.check_types(&field, op, &value, field_span, value_span)?;
        Ok(Expr::Compare { field, op, value, field_span, value_span })
    }

    /// The checks that need no data: operator and literal against the field's type.
    fn check_types(
        &self,
        field: &Field,
        op: CmpOp,
        value: &Literal,
        field_span: Span,
        value_span: Span,
    ) -> Result<(), QueryError> {
        let mismatch = |span: Span, message: String, help: Option<String>| {
            Err(self.fail(QueryErrorKind::TypeMismatch, span, message, help))
        };
        match value {
            Literal::Text(text) if op.is_ordering() => mismatch(
                value_span,
                format!("`{}` compares numbers, but '{text}' is a string", op.as_str()),
                Some("compare strings with = or !=".to_string()),
            ),
            Literal::Text(text) if matches!(field, Field::Metric { .. }) => mismatch(
                value_span,
                format!("`{field}` is a number, but '{text}' is a string"),
                text.parse::<f64>().is_ok().then(|| format!("drop the quotes: {text}")),
            ),
            Literal::Number(n) if field.is_text() => {
                if op.is_ordering() {
                    mismatch(
                        field_span,
                        format!("`{field}` is text and cannot be compared with `{}`", op.as_str()),
                        None,
                    )
                } else {
                    mismatch(
                        value_span,
                        format!("`{field}` is text, but {n} is a number"),
                        Some(format!("quote it: '{n}'")),
                    )
                }
            }
            Literal::Text(text) if *field == Field::Status && RunState::parse(text).is_none() => {
                let states: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
                let message = format!("'{text}' is not a run status");
                let help = Some(format!("a status is one of {}", states.join(", ")));
                Err(self.fail(QueryErrorKind::BadValue, value_span, message, help))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Expr, QueryError> {
        Filter::parse(text).map(|f| f.expr)
    }

    fn err(text: &str) -> QueryError {
        match Filter::parse(text) {
            Ok(filter) => panic!("`{text}` parsed as {filter}"),
            Err(e) => e,
        }
    }

    /// Zeroes every span so that trees parsed from different texts compare by structure only.
    fn strip(expr: &Expr) -> Expr {
        match expr {
            Expr::And(l, r) => Expr::And(Box::new(strip(l)), Box::new(strip(r))),
            Expr::Or(l, r) => Expr::Or(Box::new(strip(l)), Box::new(strip(r))),
            Expr::Not(e) => Expr::Not(Box::new(strip(e))),
            Expr::Compare { field, op, value, .. } => Expr::Compare {
                field: field.clone(),
                op: *op,
                value: value.clone(),
                field_span: Span::default(),
                value_span: Span::default(),
            },
        }
    }

    /// Checks that `input` parses and prints back as `expect`.
    fn check(input: &str, expect: &str) {
        match Filter::parse(input) {
            Ok(filter) => assert_eq!(filter.to_string(), expect, "printing the parse of `{input}`"),
            Err(e) => panic!("`{input}` failed:\n{e}"),
        }
    }

    #[test]
    fn parses_the_documented_example() {
        check(
            "params.lr < 0.01 and metrics.val.acc > 0.9 and tags.arch = 'cnn'",
            "params.lr < 0.01 and metrics.val.acc > 0.9 and tags.arch = 'cnn'",
        );
    }

    #[test]
    fn precedence_and_parentheses() {
        check("status = 'finished' or name = 'a' and name = 'b'", "status = 'finished' or name = 'a' and name = 'b'");
        check(
            "(status = 'finished' or name = 'a') and name = 'b'",
            "(status = 'finished' or name = 'a') and name = 'b'",
        );
        check("not (params.x = 1 or params.y = 2)", "not (params.x = 1 or params.y = 2)");
        check("NOT not params.x = 1", "not not params.x = 1");
        check("params.x = 1 and (params.y = 2 and params.z = 3)", "params.x = 1 and (params.y = 2 and params.z = 3)");
        check("((params.x == 1))", "params.x = 1");
    }

    #[test]
    fn literals() {
        check("params.lr <= 1e-3", "params.lr <= 0.001");
        check("params.lr >= -2.5E+2", "params.lr >= -250");
        check("params.lr != .5", "params.lr != 0.5");
        check("params.lr>=5.", "params.lr >= 5");
        check("tags.note = 'it''s'", "tags.note = 'it''s'");
        check("name = ''", "name = ''");
        check("name = 'é ü'", "name = 'é ü'");
    }

    #[test]
    fn metric_fields() {
        let e = parse("metrics.val.acc.last > 1").map(|e| strip(&e));
        assert!(matches!(e, Ok(Expr::Compare { field: Field::Metric { agg: MetricAgg::Last, .. }, .. })));
        check("metrics.val.loss.best < 1", "metrics.val.loss < 1");
        check("metrics.lr.last < 1", "metrics.lr.last < 1");
        check("metrics.val.top5_acc > 0.5", "metrics.val.top5_acc > 0.5");
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let e = err("params.lr < and x");
        assert_eq!((e.kind, e.column()), (QueryErrorKind::Syntax, 13));
        assert_eq!(
            e.to_string(),
            "invalid filter at column 13: expected a number or a 'quoted string' after `<`, found `and`\n  \
             params.lr < and x\n              ^^^"
        );
        assert_eq!(err("params.lr <").column(), 12);
        assert_eq!(err("(params.lr < 1").column(), 15);
        assert_eq!(err("params.lr < 1)").column(), 14);
        assert_eq!(err("params.lr 1").column(), 11);
        assert_eq!(err("name = 'abc").column(), 8);
        assert_eq!(err("params.lr < 1 && x").column(), 15);
        assert_eq!(err("params.lr < 1 and").column(), 18);
        assert_eq!(err("params.lr < 1abc").column(), 14);
        assert_eq!(err("name = \"x\"").column(), 8);
        assert_eq!(err("").kind, QueryErrorKind::Syntax);
        assert_eq!(err("é = 1").column(), 1);
        assert_eq!(err("name = 'é' and ü").column(), 16);
        assert_eq!(err("name = cnn").help.as_deref(), Some("to compare with the text cnn, quote it: 'cnn'"));
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = err("params.lr < 1 and colour = 'red'");
        assert_eq!((e.kind, e.column()), (QueryErrorKind::UnknownField, 19));
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        assert_eq!(err("params = 1").kind, QueryErrorKind::UnknownField);
        let e = err("metrics.lr > 0.1");
        assert_eq!(e.kind, QueryErrorKind::UnknownField);
        assert!(e.to_string().contains("metrics.lr.last"), "{e}");
    }

    #[test]
    fn type_mismatches_are_caught_before_any_data() {
        let cases = [
            ("name < 'b'", 8),
            ("params.opt >= 'adam'", 15),
            ("metrics.val.acc = 'high'", 19),
            ("status = 1", 10),
            ("tags.arch > 3", 1),
        ];
        for (text, column) in cases {
            let e = err(text);
            assert_eq!((e.kind, e.column()), (QueryErrorKind::TypeMismatch, column), "{text}: {e}");
        }
        let e = err("status = 'runing'");
        assert_eq!(e.kind, QueryErrorKind::BadValue);
        assert!(e.to_string().contains("finished"), "{e}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}params.x = 1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(err(&deep).kind, QueryErrorKind::Syntax);
        let nots = format!("{}params.x = 1", "not ".repeat(200));
        assert_eq!(err(&nots).kind, QueryErrorKind::Syntax);
    }

    #[test]
    fn sort_keys() {
        let sort = Sort::parse("-metrics.val.macro_f1, params.lr ,+name").map(|s| s.to_string());
        assert_eq!(sort, Ok("-metrics.val.macro_f1,params.lr,name".to_string()));
        let e = Sort::parse("name,,status").err();
        assert_eq!(e.map(|e| e.column()), Some(6));
        let e = Sort::parse("name, -colour").err();
        assert_eq!(e.as_ref().map(|e| (e.kind, e.column())), Some((QueryErrorKind::UnknownField, 8)));
        let e = Sort::parse("name, -metrics.x y").err();
        assert_eq!(e.as_ref().map(|e| (e.kind, e.column())), Some((QueryErrorKind::Syntax, 8)));
        assert!(Sort::parse("-metrics.lr").is_err());
    }

    fn key() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z_][a-z0-9_]{0,5}(\\.[a-z0-9_]{1,4}){0,2}").expect("valid regex")
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            key().prop_map(Field::Param),
            key().prop_map(Field::Tag),
            (proptest::sample::select(regimen_metrics::SPLITS.to_vec()), key())
                .prop_map(|(split, name)| Field::Metric { key: format!("{split}.{name}"), agg: MetricAgg::Best }),
            key().prop_map(|key| Field::Metric { key, agg: MetricAgg::Last }),
            key().prop_map(|key| Field::Metric { key, agg: MetricAgg::Min }),
            key().prop_map(|key| Field::Metric { key, agg: MetricAgg::Max }),
            Just(Field::Name),
            Just(Field::Experiment),
            Just(Field::RunId),
        ]
    }

    fn comparison() -> impl Strategy<Value = Expr> {
        let op = prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge)
        ];
        let number = prop_oneof![any::<f64>().prop_filter("finite", |n| n.is_finite()), -1e6..1e6f64];
        (field(), op, number, ".{0,8}").prop_map(|(field, op, n, text)| {
            // Keep only well-typed comparisons: the printer prints trees the parser accepts.
            let value = match (&field, op.is_ordering()) {
                (Field::Metric { .. }, _) | (Field::Param(_), true) => Literal::Number(n),
                (Field::Param(_), false) if n > 0.0 => Literal::Number(n),
                (_, true) => {
                    return Expr::Compare {
                        field: Field::Param("x".into()),
                        op,
                        value: Literal::Number(n),
                        field_span: Span::default(),
                        value_span: Span::default(),
                    };
                }
                _ => Literal::Text(text),
            };
            Expr::Compare { field, op, value, field_span: Span::default(), value_span: Span::default() }
        })
    }

    fn expr() -> impl Strategy<Value = Expr> {
        comparison().prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = Filter::parse(&text).map_err(|e| e.to_string());
            let _ = Sort::parse(&text).map_err(|e| e.to_string());
        }

        #[test]
        fn filter_like_text_never_panics(text in "[a-z_. ()'=<>!0-9e-]{0,40}") {
            if let Err(e) = Filter::parse(&text) {
                prop_assert!(e.span.start <= text.len());
                let _ = e.to_string();
            }
        }

        #[test]
        fn printed_trees_parse_back(tree in expr()) {
            let printed = tree.to_string();
            let parsed = parse(&printed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(strip(&parsed), tree);
            prop_assert_eq!(parsed.to_string(), printed);
        }
    }
}
