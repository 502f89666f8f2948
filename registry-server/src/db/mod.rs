//! The registry's database: one diesel connection type over SQLite, PostgreSQL and
//! MySQL/MariaDB, an r2d2 pool, and the rule that diesel never runs on an async thread.

pub mod models;
pub mod queries;
pub mod schema;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::{Connection, MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use glance_common::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(PgConnection),
    Mysql(MysqlConnection),
    // SQLite last: the derive tries variants in order and SQLite accepts any string.
    Sqlite(SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// The SQL engine, chosen by the scheme of `sql_connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

/// A database URL as diesel wants it, from the SQLAlchemy form Glance's configs use
/// (`sqlite:////abs/path`, `postgresql+psycopg2://…`, `mysql+pymysql://…?charset=utf8`).
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    pub engine: Engine,
    url: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl DbUrl {
    pub fn parse(sql_connection: &str) -> Result<Self, String> {
        let (scheme, rest) = sql_connection
            .split_once("://")
            .ok_or_else(|| "expected a URL such as sqlite:////var/lib/glance/glance.sqlite".to_string())?;
        let dialect = scheme.split('+').next().unwrap_or_default().to_lowercase();
        match dialect.as_str() {
            "sqlite" => {
                // sqlite:///relative, sqlite:////absolute, sqlite:// (in memory)
                let path = rest.strip_prefix('/').unwrap_or(rest);
                let path = path.split('?').next().unwrap_or_default();
                let url = if path.is_empty() { ":memory:".to_string() } else { path.to_string() };
                Ok(Self { engine: Engine::Sqlite, url })
            }
            "postgres" | "postgresql" => Ok(Self { engine: Engine::Postgres, url: format!("postgresql://{rest}") }),
            "mysql" | "mariadb" => {
                // diesel understands only a few MySQL options; drop SQLAlchemy's (charset=utf8 …).
                let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| ["unix_socket=", "ssl_mode=", "ssl_ca="].iter().any(|k| kv.starts_with(k)))
                    .collect();
                let url = if kept.is_empty() {
                    format!("mysql://{base}")
                } else {
                    format!("mysql://{base}?{}", kept.join("&"))
                };
                Ok(Self { engine: Engine::Mysql, url })
            }
            other => Err(format!("unsupported database engine '{other}' (use sqlite, postgresql or mysql)")),
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => self.url.clone(),
        }
    }

    pub fn connect(&self) -> diesel::ConnectionResult<DbConn> {
        match self.engine {
            Engine::Sqlite => SqliteConnection::establish(&self.url).map(DbConn::Sqlite),
            Engine::Postgres => PgConnection::establish(&self.url).map(DbConn::Postgresql),
            Engine::Mysql => MysqlConnection::establish(&self.url).map(DbConn::Mysql),
        }
    }
}

/// Our own r2d2 manager: diesel's derived `establish` tries every engine and hides the error.
struct Manager(DbUrl);

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.0.connect().map_err(r2d2::Error::ConnectionError)
    }
    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Session settings that must hold on every pooled connection.
#[derive(Debug)]
struct SessionSettings;

impl CustomizeConnection<DbConn, r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        let settings = match conn {
            DbConn::Sqlite(_) => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 30000; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
            }
            // As PostgreSQL: each statement sees what was committed before it. Under InnoDB's
            // default (REPEATABLE READ) a transaction keeps reading the snapshot of its first
            // read, even after a row lock made it wait for another transaction's commit.
            DbConn::Mysql(_) => "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            DbConn::Postgresql(_) => return Ok(()),
        };
        conn.batch_execute(settings).map_err(r2d2::Error::QueryError)
    }
}

/// Pool settings from the config.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a connection before it answers 503.
    pub timeout: Duration,
    /// Connections idle longer than this are closed (`sql_idle_timeout`).
    pub idle_timeout: Duration,
}

/// The connection pool, plus the lock that serializes SQLite writers.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    pub engine: Engine,
    /// SQLite allows one writer at a time. Queuing writers here, instead of letting them race
    /// for the file lock, means concurrent writes wait their turn instead of failing with
    /// "database is locked" (busy_timeout still covers other processes such as glance-manage).
    sqlite_writer: Option<Arc<Mutex<()>>>,
}

/// A failure inside a query: a diesel error, or an answer for the client decided by the query.
#[derive(Debug)]
pub enum QueryError {
    Db(diesel::result::Error),
    Api(Error),
}

impl From<diesel::result::Error> for QueryError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl From<Error> for QueryError {
    fn from(e: Error) -> Self {
        Self::Api(e)
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        match e {
            QueryError::Api(e) => e,
            QueryError::Db(D::NotFound) => Error::not_found("Not found"),
            QueryError::Db(D::DatabaseError(K::UniqueViolation, info)) => {
                Error::conflict("A record with the same identity already exists")
                    .with_source(info.message().to_string())
            }
            QueryError::Db(e @ D::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _)) => {
                Error::unavailable("The registry database is unavailable").with_source(e)
            }
            QueryError::Db(e) => Error::internal(e),
        }
    }
}

pub type QueryResult<T> = Result<T, QueryError>;

impl Db {
    pub fn new(url: &DbUrl, opts: &PoolOptions) -> Self {
        let in_memory = url.engine == Engine::Sqlite && url.url == ":memory:";
        let max_size = match url.engine {
            // Every connection to :memory: is a database of its own.
            Engine::Sqlite if in_memory => 1,
            Engine::Sqlite => opts.max_size.clamp(1, 4),
            _ => opts.max_size.max(1),
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            // A network database can drop connections (restart, failover): check each one on
            // checkout. An embedded SQLite file cannot, and the check costs a query per request.
            .test_on_check_out(url.engine != Engine::Sqlite)
            .min_idle(Some(0))
            .connection_timeout(opts.timeout)
            .idle_timeout(Some(opts.idle_timeout.max(Duration::from_secs(1))))
            .connection_customizer(Box::new(SessionSettings))
            .build_unchecked(Manager(url.clone()));
        let sqlite_writer = (url.engine == Engine::Sqlite).then(|| Arc::new(Mutex::new(())));
        Self { pool, engine: url.engine, sqlite_writer }
    }

    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, QueryError> {
        self.pool.get().map_err(|e| {
            QueryError::Api(Error::unavailable("The registry database is unavailable; try again later").with_source(e))
        })
    }

    /// Runs read-only work on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> QueryResult<T> + Send + 'static,
    {
        let db = self.clone();
        web::block(move || {
            let mut conn = db.checkout()?;
            f(&mut conn)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::from)
    }

    /// Runs `f` in one transaction on a blocking thread: all of it is written, or none.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> QueryResult<T> + Send + 'static,
    {
        let db = self.clone();
        web::block(move || {
            let _turn = db.sqlite_writer.as_ref().map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            let mut pooled = db.checkout()?;
            let conn: &mut DbConn = &mut pooled;
            match conn {
                // BEGIN IMMEDIATE takes SQLite's write lock up front, so a writer in another
                // process (workers, glance-manage) makes us wait (busy_timeout) instead of failing
                // with SQLITE_BUSY when a read-then-write transaction tries to upgrade.
                DbConn::Sqlite(_) => {
                    conn.batch_execute("BEGIN IMMEDIATE")?;
                    match f(conn) {
                        Ok(value) => {
                            conn.batch_execute("COMMIT")?;
                            Ok(value)
                        }
                        Err(e) => {
                            let _ = conn.batch_execute("ROLLBACK");
                            Err(e)
                        }
                    }
                }
                _ => conn.transaction(f),
            }
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::from)
    }

    /// Applies pending migrations (blocking; for start-up and glance-manage).
    pub fn migrate_blocking(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.checkout().map_err(Error::from)?;
        migrate(&mut conn)
    }

    /// Waits for one connection (blocking; start-up check).
    pub fn check_blocking(&self) -> Result<(), Error> {
        self.checkout().map(drop).map_err(Error::from)
    }
}

fn migration_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("database migration failed: {e}"))
}

/// Runs the pending migrations of the connection's engine; returns the versions applied.
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, Error> {
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
        DbConn::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions),
        DbConn::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(versions),
    };
    applied.map_err(migration_error)
}

/// The newest migration applied, if any.
pub fn current_version(conn: &mut DbConn) -> Result<Option<String>, Error> {
    let applied = match conn {
        DbConn::Sqlite(c) => c.applied_migrations(),
        DbConn::Postgresql(c) => c.applied_migrations(),
        DbConn::Mysql(c) => c.applied_migrations(),
    };
    let applied = applied.map_err(migration_error)?;
    Ok(applied.iter().map(ToString::to_string).max())
}

fn versions(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_urls() {
        let u = DbUrl::parse("sqlite:////tmp/x/tests.sqlite").expect("url");
        assert_eq!((u.engine, u.url.as_str()), (Engine::Sqlite, "/tmp/x/tests.sqlite"));
        let u = DbUrl::parse("sqlite:///glance.sqlite").expect("url");
        assert_eq!(u.url, "glance.sqlite");
        assert_eq!(DbUrl::parse("sqlite://").expect("url").url, ":memory:");
        let u = DbUrl::parse("postgresql+psycopg2://glance:s3cret@db/glance").expect("url");
        assert_eq!(u.engine, Engine::Postgres);
        assert!(!u.redacted().contains("s3cret"));
        let u = DbUrl::parse("mysql+pymysql://root@127.0.0.1:3306/glance?charset=utf8").expect("url");
        assert_eq!((u.engine, u.url.as_str()), (Engine::Mysql, "mysql://root@127.0.0.1:3306/glance"));
        assert!(DbUrl::parse("oracle://x").is_err());
        assert!(DbUrl::parse("glance.sqlite").is_err());
    }

    #[test]
    fn migration_trees_match() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .expect("migrations dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("sqlite"), names("postgres"));
        assert_eq!(names("sqlite"), names("mysql"));
    }

    #[test]
    fn sqlite_schema_has_no_bigint_and_migrates_twice() {
        let dir = tempfile::tempdir().expect("dir");
        let url = DbUrl::parse(&format!("sqlite:///{}/g.sqlite", dir.path().display())).expect("url");
        let mut conn = url.connect().expect("connect");
        let tree = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).expect("tree").count();
        assert_eq!(migrate(&mut conn).expect("migrate").len(), tree);
        assert!(migrate(&mut conn).expect("again").is_empty());
        let DbConn::Sqlite(c) = &mut conn else { unreachable!() };
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Ddl {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        let ddl: Vec<Ddl> =
            diesel::sql_query("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").load(c).expect("ddl");
        assert!(ddl.iter().any(|d| d.sql.contains("CREATE TABLE images")));
        assert!(ddl.iter().all(|d| !d.sql.to_uppercase().contains("BIGINT")));
    }
}
