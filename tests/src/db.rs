//! A database of its own for each test.

use diesel::connection::SimpleConnection;
use diesel::{Connection, MysqlConnection, PgConnection, RunQueryDsl, SqliteConnection};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    /// The server every test database on this engine is created on.
    fn admin_url(self) -> Option<String> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some(
                std::env::var("GLANCE_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into()),
            ),
            Engine::Mysql => Some(
                std::env::var("GLANCE_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
            ),
        }
    }
}

/// True in CI: a test that needs PostgreSQL or MariaDB fails instead of skipping.
pub fn services_required() -> bool {
    std::env::var("GLANCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A database created for one test and dropped when it ends.
pub struct TestDb {
    pub engine: Engine,
    /// The URL glance-rs is configured with (SQLAlchemy form).
    pub sql_connection: String,
    admin_url: Option<String>,
    name: String,
}

impl TestDb {
    pub fn create(engine: Engine, dir: &Path) -> Option<Self> {
        let name = format!("glance_test_{}", uuid::Uuid::new_v4().simple());
        let Some(admin_url) = engine.admin_url() else {
            let sql_connection = format!("sqlite:///{}/tests.sqlite", dir.display());
            return Some(Self { engine, sql_connection, admin_url: None, name });
        };
        let created = match engine {
            Engine::Postgres => PgConnection::establish(&admin_url).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                ))
                .map_err(|e| e.to_string())
            }),
            Engine::Mysql => MysqlConnection::establish(&admin_url).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
                    .map_err(|e| e.to_string())
            }),
            Engine::Sqlite => unreachable!("handled above"),
        };
        if let Err(e) = created {
            let message = format!("{engine:?} is not reachable at {admin_url}: {e}");
            if services_required() {
                panic!("{message} (GLANCE_TEST_REQUIRE_SERVICES is set, so this fails)");
            }
            eprintln!(
                "\n!!!!! SKIPPED: {message}\n!!!!! set GLANCE_TEST_POSTGRES_URL / GLANCE_TEST_MYSQL_URL, or start the server\n"
            );
            return None;
        }
        let mut url = url::Url::parse(&admin_url).expect("a valid admin URL");
        url.set_path(&format!("/{name}"));
        Some(Self { engine, sql_connection: url.to_string(), admin_url: Some(admin_url), name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TestDb {
    /// The text values a query returns (its one column named `value`), read straight from the
    /// database as anyone with SQL access would.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let rows: Vec<Row> = match self.engine {
            Engine::Sqlite => {
                let path = self.sql_connection.trim_start_matches("sqlite:///");
                diesel::sql_query(sql).load(&mut SqliteConnection::establish(path).expect("open SQLite"))
            }
            Engine::Postgres => diesel::sql_query(sql)
                .load(&mut PgConnection::establish(&self.sql_connection).expect("connect to PostgreSQL")),
            Engine::Mysql => diesel::sql_query(sql)
                .load(&mut MysqlConnection::establish(&self.sql_connection).expect("connect to MariaDB")),
        }
        .expect("query");
        rows.into_iter().map(|r| r.value).collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = &self.admin_url else { return };
        let dropped = match self.engine {
            Engine::Postgres => PgConnection::establish(admin_url).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                    .map_err(|e| e.to_string())
            }),
            Engine::Mysql => MysqlConnection::establish(admin_url).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.name)).map_err(|e| e.to_string())
            }),
            Engine::Sqlite => Ok(()),
        };
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
