//! What the SQL stores have in common below the queries: the engine a statement is written out
//! for ([`Dialect`]), the values that go in and come out of a statement free of either driver's
//! types ([`Value`], [`Row`]), and the two calls a store gives the queries ([`Session`], [`Tx`]).
//! With these, every query is written once (in `queries`) and a store is its connection and its
//! transactions.

use super::{
    columns::{COLUMNS, COUNTED},
    StoreError,
};

/// The SQL engine a statement is written out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `template` for this engine: `{columns}` every column of a job ([`COLUMNS`]), `{counted}`
    /// the condition on the jobs the limits count ([`COUNTED`]), `{prefix}` before every table and index name (PostgreSQL's
    /// tables share a database with other programs, so they are `runcomfy_…` there), `{key}` an
    /// auto-numbered primary key, `{bigint}` and `{double}` column types, `{lock_row}` after a
    /// SELECT of a row about to be changed (SQLite's write transaction already holds the file),
    /// and `?N` parameters as `$N` for PostgreSQL (SQLite reads `?N` itself).
    pub(crate) fn render(self, template: &str) -> String {
        let (prefix, key, bigint, double, lock_row) = match self {
            Self::Sqlite => ("", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "REAL", ""),
            Self::Postgres => (
                "runcomfy_",
                "BIGSERIAL PRIMARY KEY",
                "BIGINT",
                "DOUBLE PRECISION",
                " FOR UPDATE",
            ),
        };
        let sql = template
            .replace("{prefix}", prefix)
            .replace("{key}", key)
            .replace("{bigint}", bigint)
            .replace("{double}", double)
            .replace("{lock_row}", lock_row)
            .replace("{columns}", COLUMNS)
            .replace("{counted}", COUNTED);
        match self {
            Self::Sqlite => sql,
            Self::Postgres => numbered_dollars(&sql),
        }
    }
}

/// `?N` → `$N` (our statements hold no `?` inside string literals).
fn numbered_dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A parameter or a column value. Each store converts it to its driver's type, PostgreSQL by
/// the type the statement expects there (an `INTEGER` column takes 32 bits).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// Parameters for a statement, in `?1, ?2…` order.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        &[$($crate::journal::sql::Value::from($value)),*]
    };
}
pub(crate) use values;

/// A row of a result, its values in the order the statement selected them.
#[derive(Debug)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Its values in order, each read as the type the query knows the column has.
    pub(crate) fn cells(self) -> Cells {
        Cells(self.0.into_iter())
    }
}

/// A row being read, left to right.
pub(crate) struct Cells(std::vec::IntoIter<Value>);

impl Cells {
    fn next(&mut self, wanted: &str) -> Result<Value, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Decode(format!("a row has fewer columns than the query selected ({wanted})")))
    }

    pub(crate) fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next("an integer")? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v)),
            other => Err(unexpected("an integer", &other)),
        }
    }

    pub(crate) fn int(&mut self) -> Result<i64, StoreError> {
        self.opt_int()?.ok_or_else(|| unexpected("an integer", &Value::Null))
    }

    pub(crate) fn opt_real(&mut self) -> Result<Option<f64>, StoreError> {
        match self.next("a number")? {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(v)),
            // SQLite keeps a whole number in a REAL column as it was written.
            Value::Int(v) => Ok(Some(v as f64)),
            other => Err(unexpected("a number", &other)),
        }
    }

    pub(crate) fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        match self.next("text")? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v)),
            other => Err(unexpected("text", &other)),
        }
    }

    pub(crate) fn text(&mut self) -> Result<String, StoreError> {
        self.opt_text()?.ok_or_else(|| unexpected("text", &Value::Null))
    }

    pub(crate) fn flag(&mut self) -> Result<bool, StoreError> {
        match self.next("a flag")? {
            Value::Bool(v) => Ok(v),
            // SQLite keeps a BOOLEAN as 0 or 1.
            Value::Int(v) => Ok(v != 0),
            other => Err(unexpected("a flag", &other)),
        }
    }
}

fn unexpected(wanted: &str, found: &Value) -> StoreError {
    StoreError::Decode(format!("a row holds {found:?} where {wanted} was expected"))
}

/// Statements on a store's connection or in one of its transactions, written as templates for
/// [`Dialect::render`].
pub(crate) trait Session {
    /// The rows `template` selects (or returns).
    fn query(&mut self, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// Runs `template`; how many rows it changed.
    fn execute(&mut self, template: &str, params: &[Value]) -> Result<u64, StoreError>;
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub(crate) trait Tx: Session {
    /// Makes the next statements wait for any other submit of `owner`'s being recorded, up to
    /// the commit, so that two never pass a limit together. SQLite's write transaction already
    /// holds the whole file: nothing to do there.
    fn serialize_submits(&mut self, _owner: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn commit(self) -> Result<(), StoreError>;
}

/// A SQL database's plumbing: its connection for reads and its write transactions. The
/// journal's queries and the sign-in store's are written once over it.
pub(crate) trait Database: Send + Sync + 'static {
    /// The connection, for reads and single statements.
    type Reads<'a>: Session;
    /// A write transaction: no other process's write transaction interleaves with one that
    /// [`Tx::serialize_submits`]; a row read `{lock_row}` stays this one's to the commit.
    type Write<'a>: Tx;

    fn read<T>(&self, f: impl FnOnce(&mut Self::Reads<'_>) -> Result<T, StoreError>) -> Result<T, StoreError>;

    fn write<T>(&self, f: impl FnOnce(Self::Write<'_>) -> Result<T, StoreError>) -> Result<T, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_for_each_engine() {
        let template = "SELECT key FROM {prefix}jobs WHERE owner = ?2 AND submitted_at >= ?10{lock_row}";
        assert_eq!(
            Dialect::Sqlite.render(template),
            "SELECT key FROM jobs WHERE owner = ?2 AND submitted_at >= ?10"
        );
        assert_eq!(
            Dialect::Postgres.render(template),
            "SELECT key FROM runcomfy_jobs WHERE owner = $2 AND submitted_at >= $10 FOR UPDATE"
        );
    }

    #[test]
    fn cells_read_each_type_and_a_wrong_one_is_a_decode_error() {
        let row = Row(vec![
            Value::Int(3),
            Value::Null,
            Value::Int(1),
            Value::Int(2),
            Value::Text("x".into()),
        ]);
        let mut cells = row.cells();
        assert_eq!(cells.int().unwrap(), 3);
        assert_eq!(cells.opt_text().unwrap(), None);
        assert!(cells.flag().unwrap());
        assert_eq!(cells.opt_real().unwrap(), Some(2.0));
        assert!(matches!(cells.int(), Err(StoreError::Decode(_))));
        assert!(matches!(cells.text(), Err(StoreError::Decode(_))), "no column left");
    }
}
