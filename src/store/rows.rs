//! Rows read by position, from whichever path answered a query: sqlx's `AnyRow`, rusqlite's
//! rows (`fast::direct`) and tokio-postgres's (`fast::pipeline`). A row type read on more than
//! one path has one decoder, written against [`RowSource`], which serves them all.

use sqlx::Row;

/// A result row whose columns can be read by position: rusqlite's (here) and tokio-postgres's
/// (`pipeline`), so that the hot rows are decoded by one function on both backends.
pub trait RowSource {
    type Error;
    fn column_name(&self, i: usize) -> Option<&str>;
    fn text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// The error for a NULL in column `i`, which the caller needs a value from.
    fn unexpected_null(&self, i: usize) -> Self::Error;
}

/// A column's value, decoded from any [`RowSource`].
pub trait Decode: Sized {
    fn decode<R: RowSource>(row: &R, i: usize) -> Result<Self, R::Error>;
}

impl Decode for Option<String> {
    fn decode<R: RowSource>(row: &R, i: usize) -> Result<Self, R::Error> {
        row.text(i)
    }
}

impl Decode for String {
    fn decode<R: RowSource>(row: &R, i: usize) -> Result<Self, R::Error> {
        row.text(i)?.ok_or_else(|| row.unexpected_null(i))
    }
}

impl Decode for Option<i64> {
    fn decode<R: RowSource>(row: &R, i: usize) -> Result<Self, R::Error> {
        row.int(i)
    }
}

impl Decode for i64 {
    fn decode<R: RowSource>(row: &R, i: usize) -> Result<Self, R::Error> {
        row.int(i)?.ok_or_else(|| row.unexpected_null(i))
    }
}

/// Reads a row's columns in order, by position. rusqlite's lookup by name compares the name with
/// every column's until it matches, which for a 40-column row read field by field was most of
/// the cost of decoding it. Debug builds (the tests) check that each position has the name the
/// caller expects, so the field order cannot drift from the query's column order unnoticed.
pub struct Columns<'a, R: RowSource> {
    row: &'a R,
    next: usize,
}

impl<'a, R: RowSource> Columns<'a, R> {
    pub fn new(row: &'a R) -> Self {
        Self::at(row, 0)
    }

    /// Starting at column `offset`.
    pub fn at(row: &'a R, offset: usize) -> Self {
        Self { row, next: offset }
    }

    /// The next column, which is called `name`.
    pub fn get<T: Decode>(&mut self, name: &str) -> Result<T, R::Error> {
        let i = self.next;
        self.next += 1;
        debug_assert_eq!(
            self.row.column_name(i),
            Some(name),
            "column {i} of the query"
        );
        let _ = name;
        T::decode(self.row, i)
    }

    /// The row, for a nested reader.
    pub fn row(&self) -> &'a R {
        self.row
    }
}

impl RowSource for sqlx::any::AnyRow {
    type Error = sqlx::Error;

    fn column_name(&self, i: usize) -> Option<&str> {
        use sqlx::Column;
        self.columns().get(i).map(|c| c.name())
    }

    fn text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }

    fn int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(i)
    }

    fn unexpected_null(&self, i: usize) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: RowSource::column_name(self, i).unwrap_or("?").to_string(),
            source: "unexpected NULL".into(),
        }
    }
}
