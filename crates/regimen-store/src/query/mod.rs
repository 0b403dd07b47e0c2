//! Which runs to list and in what order: the filter and sort language of `regimen runs`.
//!
//! `params.lr < 0.01 and metrics.val.acc > 0.9 and tags.arch = 'cnn'`, sorted by
//! `-metrics.val.macro_f1,params.lr`. The parser is hand-written ([`parse`]) rather than built on
//! `nom` or `winnow`: the grammar is a dozen rules, and owning the lexer is what lets every error
//! point at the exact column with a message in our words, which is the part users see.
//!
//! Filters are evaluated in Rust over loaded [`RunRow`]s ([`eval`]) rather than translated to SQL.
//! A metric's "best" depends on its key's direction and NaN handling, unknown keys are reported
//! against the keys that exist, and a store holds thousands of runs, not millions: evaluating in
//! one place keeps the semantics identical for every [`crate::RunStore`] implementation.

pub mod eval;
pub mod parse;

use std::fmt;

pub use parse::{CmpOp, Expr, Field, Filter, Literal, MetricAgg, Sort, SortKey, Span};

use crate::model::RunRow;

/// Which part of a query an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPart {
    /// The filter expression.
    Filter,
    /// The sort keys.
    Sort,
}

/// What kind of mistake a query has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A field that is not `params.*`, `metrics.*`, `tags.*` or a run attribute.
    UnknownField,
    /// A param, metric or tag key that no run in the store has.
    UnknownKey,
    /// Values of different types compared, or an operator that does not apply to the type.
    TypeMismatch,
    /// A value that cannot match, such as a status that does not exist.
    BadValue,
}

/// A mistake in a filter or sort, with the text and the place it is at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct QueryError {
    /// Filter or sort.
    pub part: QueryPart,
    /// What kind of mistake.
    pub kind: QueryErrorKind,
    /// The text the user typed.
    pub input: String,
    /// Where the mistake is, in bytes into `input`.
    pub span: Span,
    /// What is wrong, in a sentence.
    pub message: String,
    /// What to do, when there is something to say.
    pub help: Option<String>,
}

impl QueryError {
    /// The 1-based column (in characters) the error points at.
    pub fn column(&self) -> usize {
        let start = self.span.start.min(self.input.len());
        let start = (0..=start).rev().find(|&i| self.input.is_char_boundary(i)).unwrap_or(0);
        self.input[..start].chars().count() + 1
    }
}

impl fmt::Display for QueryError {
    /// Prints the message, the input, and carets under the offending part:
    ///
    /// ```text
    /// invalid filter at column 13: expected a value after `<`, found `and`
    ///   params.lr < and x
    ///               ^^^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = match self.part {
            QueryPart::Filter => "filter",
            QueryPart::Sort => "sort",
        };
        let column = self.column();
        let width = {
            let end = self.span.end.clamp(self.span.start, self.input.len());
            let start = self.span.start.min(end);
            self.input.get(start..end).map_or(1, |s| s.chars().count().max(1))
        };
        // Tabs and newlines would misplace the caret: show them as spaces.
        let shown: String = self.input.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
        writeln!(f, "invalid {part} at column {column}: {}", self.message)?;
        writeln!(f, "  {shown}")?;
        write!(f, "  {}{}", " ".repeat(column - 1), "^".repeat(width))?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// What `regimen runs` asks for: a filter, an order and a limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Keep only runs for which this is true; all runs when `None`.
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; newest first when `None`. Ties go newest first.
    pub sort: Option<Sort>,
    /// Keep at most this many runs (after sorting).
    pub limit: Option<usize>,
}

impl Query {
    /// Every run, newest first.
    pub fn all() -> Query {
        Query::default()
    }

    /// Parses the user's `--filter`, `--sort` and `--limit`.
    pub fn parse(filter: Option<&str>, sort: Option<&str>, limit: Option<usize>) -> Result<Query, QueryError> {
        let filter = match filter.map(str::trim) {
            Some(text) if !text.is_empty() => Some(Filter::parse(text)?),
            _ => None,
        };
        let sort = match sort {
            Some(text) if !text.trim().is_empty() => Some(Sort::parse(text)?),
            _ => None,
        };
        Ok(Query { filter, sort, limit })
    }

    /// Filters, sorts and limits loaded rows. `rows` must be every run of the store: unknown keys
    /// are detected against them.
    pub fn apply(&self, rows: Vec<RunRow>) -> Result<Vec<RunRow>, QueryError> {
        eval::apply(self, rows)
    }

    /// [`apply`](Query::apply) over borrowed rows: the ones kept, in order, without copying any
    /// (a server that keeps the listing answers each page from it).
    pub fn select<'a>(&self, rows: &'a [RunRow]) -> Result<Vec<&'a RunRow>, QueryError> {
        eval::select(self, rows)
    }
}
