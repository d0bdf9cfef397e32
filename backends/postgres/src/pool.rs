//! The connection pool: r2d2 over blocking `postgres` clients, each pointed at the store's
//! schema and keeping the statements prepared on it; PostgreSQL errors as CORTEX errors.

use crate::{PostgresConfig, PostgresStore, redact};
use cortex_core::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::r2d2::{self, CustomizeConnection, ManageConnection, Pool, PooledConnection};
use std::collections::HashMap;

/// Points each new pooled connection at the store's schema.
#[derive(Debug)]
struct SearchPath(Option<String>);

impl CustomizeConnection<PgConn, postgres::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        if let Some(s) = &self.0 {
            conn.batch_execute(&format!("SET search_path TO \"{s}\""))?;
        }
        Ok(())
    }
}

/// A pooled connection and the statements prepared on it (the append path's statements are
/// prepared once per connection, saving a round trip each time they run).
pub(crate) struct PgConn {
    pub(crate) client: Client,
    pub(crate) stmts: HashMap<&'static str, Statement>,
}

impl std::ops::Deref for PgConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The r2d2 manager of [`PgConn`]s.
#[derive(Debug)]
pub(crate) struct Manager(PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;
    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            stmts: HashMap::new(),
        })
    }
    fn is_valid(&self, c: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        self.0.is_valid(&mut c.client)
    }
    fn has_broken(&self, c: &mut PgConn) -> bool {
        self.0.has_broken(&mut c.client)
    }
}

/// `sql` prepared on this connection (once).
impl PgConn {
    /// `sql` prepared once per connection: later uses skip the prepare round trip.
    pub(crate) fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(pg_err)?;
        self.stmts.insert(sql, s.clone());
        Ok(s)
    }
}

pub(crate) fn cached(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement> {
    if let Some(s) = stmts.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(pg_err)?;
    stmts.insert(sql, s.clone());
    Ok(s)
}

pub(crate) type Conn = PooledConnection<Manager>;

/// The pool for `config`: at most `pool_size` connections, each pointed at the store's schema.
pub(crate) fn connect(config: &PostgresConfig) -> Result<Pool<Manager>> {
    // One direct connection first: the pool would wait its whole timeout for a server that
    // refuses (or a database that does not exist, or a wrong password) and then say only
    // "timed out waiting for connection"; this says why, at once.
    let mut probe = config.client.clone();
    if probe.get_connect_timeout().is_none() {
        probe.connect_timeout(
            config
                .connect_timeout
                .min(std::time::Duration::from_secs(10)),
        );
    }
    if let Err(e) = probe.connect(NoTls) {
        let cause = match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string()),
        };
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("cannot connect to {}: {cause}", redact(&config.url)),
        )
        .with_source(e));
    }
    let manager = Manager(PostgresConnectionManager::new(config.client.clone(), NoTls));
    Pool::builder()
        .max_size(config.pool_size)
        .min_idle(Some(1))
        .connection_timeout(config.connect_timeout)
        .connection_customizer(Box::new(SearchPath(config.schema.clone())))
        .build(manager)
        .map_err(|e: r2d2::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot connect to {}", redact(&config.url)),
            )
            .with_source(e)
        })
}

pub(crate) fn pg_err(e: postgres::Error) -> Error {
    let kind = match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            ErrorKind::Unavailable
        }
        None if e.is_closed() => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, "PostgreSQL error").with_source(e)
}

pub(crate) fn has_code(e: &postgres::Error, code: &SqlState) -> bool {
    e.code() == Some(code)
}

impl PostgresStore {
    pub(crate) fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("no connection to {}", redact(&self.config.url)),
            )
            .with_source(e)
        })
    }
}
