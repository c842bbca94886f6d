//! Hand-written SQL that the database parses and plans once per connection.
//!
//! diesel never keeps a `sql_query` as a prepared statement, since its text may be built at run
//! time: each run is parsed, analysed and planned again. The hot paths' single-statement writes
//! on PostgreSQL (a refresh rotation, a code redemption) are such statements, and parsing and
//! analysing them was an eighth of PostgreSQL's CPU in the code flow. A [`Fixed`] statement takes
//! its text as a `&'static str`, so diesel caches it by its text like any statement of its own
//! DSL.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::result::QueryResult;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement whose text is fixed at compile time, with its bind parameters. `$n` in the text
/// is the n-th value given to [`Fixed::bind`], and may appear more than once; the text is sent
/// with the database's own placeholders (`$1`… on PostgreSQL, `?` on SQLite), one per
/// occurrence. Rows load through `QueryableByName`, as with `sql_query`. Every `$` is read as a
/// placeholder, in string literals and comments too: the text must have no other.
#[must_use = "a statement does nothing until it is run"]
pub struct Fixed<Binds = NoBinds> {
    sql: &'static str,
    binds: Binds,
}

/// The statement's text; bind its parameters, then run it like any diesel query.
pub fn statement(sql: &'static str) -> Fixed {
    Fixed {
        sql,
        binds: NoBinds,
    }
}

impl<Binds> Fixed<Binds> {
    /// Binds the next parameter as SQL type `ST`.
    pub fn bind<ST, V>(self, value: V) -> Fixed<Bound<Binds, ST, V>> {
        Fixed {
            sql: self.sql,
            binds: Bound {
                earlier: self.binds,
                value,
                sql_type: PhantomData,
            },
        }
    }
}

/// The end of a bind list.
pub struct NoBinds;

/// A bind list: the parameters before, then `value` as SQL type `ST`.
pub struct Bound<Earlier, ST, V> {
    earlier: Earlier,
    value: V,
    sql_type: PhantomData<ST>,
}

/// A list of bound values, any of which can be placed at a placeholder.
pub trait BindList<DB: Backend> {
    /// How many values are bound.
    const LEN: usize;
    /// Places value `n` (from 1) at the current position of `out`.
    fn place<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<DB: Backend> BindList<DB> for NoBinds {
    const LEN: usize = 0;
    fn place<'b>(&'b self, n: usize, _: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        Err(diesel::result::Error::QueryBuilderError(
            format!("the statement names ${n}, which is not bound").into(),
        ))
    }
}

impl<DB, Earlier, ST, V> BindList<DB> for Bound<Earlier, ST, V>
where
    DB: Backend + HasSqlType<ST>,
    Earlier: BindList<DB>,
    V: ToSql<ST, DB>,
{
    const LEN: usize = Earlier::LEN + 1;
    fn place<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if n == Self::LEN {
            out.push_bind_param::<ST, V>(&self.value)
        } else {
            self.earlier.place(n, out)
        }
    }
}

impl<DB, Binds> QueryFragment<DB> for Fixed<Binds>
where
    DB: Backend,
    Binds: BindList<DB>,
{
    // Unlike `sql_query`, no `unsafe_to_cache_prepared`: the text cannot vary between runs.
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let n = after[..digits].parse::<usize>().map_err(|_| {
                diesel::result::Error::QueryBuilderError("a `$` without a number".into())
            })?;
            self.binds.place(n, &mut out)?;
            rest = &after[digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// No type-level identity: diesel then keys its statement cache by the SQL text and the binds'
/// types.
impl<Binds> QueryId for Fixed<Binds> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Binds> Query for Fixed<Binds> {
    type SqlType = Untyped;
}

impl<Binds, Conn> RunQueryDsl<Conn> for Fixed<Binds> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{BigInt, Text};

    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = Text)]
        word: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[test]
    fn binds_in_order_and_is_kept_prepared() {
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        let q = || {
            statement("SELECT $2 || '!' || $2 AS word, $1 + 1 AS n")
                .bind::<BigInt, _>(41_i64)
                .bind::<Text, _>("hi")
        };
        assert!(
            QueryFragment::<diesel::sqlite::Sqlite>::is_safe_to_cache_prepared(
                &q(),
                &diesel::sqlite::Sqlite
            )
            .unwrap()
        );
        // What `sql_query` is not, whatever its text: the reason this module exists.
        assert!(
            !QueryFragment::<diesel::sqlite::Sqlite>::is_safe_to_cache_prepared(
                &diesel::sql_query("SELECT 1"),
                &diesel::sqlite::Sqlite
            )
            .unwrap()
        );
        for _ in 0..2 {
            let row: Row = q().get_result(&mut c).unwrap();
            assert_eq!(
                row,
                Row {
                    word: "hi!hi".into(),
                    n: 42
                }
            );
        }
        let unbound = statement("SELECT $2 AS word, 1 AS n").bind::<Text, _>("hi");
        assert!(unbound.get_result::<Row>(&mut c).is_err());
    }
}
