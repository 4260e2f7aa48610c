//! The database's clock as SQL expressions. Leases, expiry checks and the timestamps of worker writes use the
//! server's `now()` only, never a process's clock, so skewed clocks cannot shorten or stretch a lease.

use std::time::Duration;

/// `now()` on the database server.
pub(crate) fn db_now() -> diesel::expression::SqlLiteral<diesel::sql_types::Timestamptz> {
    diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()")
}

pub(crate) fn db_now_nullable()
-> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>("now()")
}

/// `now() + lease` on the database server. The interval is a number this process computed (never input), so it
/// is written into the SQL text.
pub(crate) fn db_now_plus(
    lease: Duration,
) -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>(&format!(
        "(now() + make_interval(secs => {:.3}))",
        lease.as_secs_f64()
    ))
}
