//! The PostgreSQL of the suites that need one (the ledger's scale-out test,
//! the two-replica suite): the test command starts a PostgreSQL and sets
//! `FHIRGATE_TEST_DATABASE_URL` ([`postgres_url`]); each test gets a fresh
//! database on it ([`FreshDb`]), dropped when the test ends.

use crate::TestResult;

/// The shared PostgreSQL URL, or `None` (skip, saying why) when the test
/// command did not start one; an error when `FHIRGATE_REQUIRE_POSTGRES` is set.
pub fn postgres_url() -> TestResult<Option<String>> {
    match std::env::var("FHIRGATE_TEST_DATABASE_URL") {
        Ok(u) => Ok(Some(u)),
        Err(_) if std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_ok() => Err(
            "FHIRGATE_REQUIRE_POSTGRES is set but FHIRGATE_TEST_DATABASE_URL is not: \
             this test needs the PostgreSQL the test command starts"
                .into(),
        ),
        Err(_) => {
            eprintln!(
                "skipped: FHIRGATE_TEST_DATABASE_URL not set (scripts/test.sh starts a \
                 PostgreSQL and sets it)"
            );
            Ok(None)
        }
    }
}

/// A database created for one test and dropped (even while in use) after it.
pub struct FreshDb {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl FreshDb {
    fn run(sql: &str, url: &str) -> TestResult {
        use sqlx::Connection;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query(sql).execute(&mut c).await?;
            c.close().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Creates `fhirgate_{label}_{random}` on the server of `admin` (a
    /// database URL whose user may create databases); `label` is lower-case
    /// letters, digits and `_`.
    pub fn create(admin: &str, label: &str) -> TestResult<Self> {
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("not a database name label: {label}").into());
        }
        let name = format!("fhirgate_{label}_{:016x}", rand::random::<u64>());
        let (main, query) = match admin.split_once('?') {
            Some((m, q)) => (m, format!("?{q}")),
            None => (admin, String::new()),
        };
        let (prefix, _) = main.rsplit_once('/').ok_or("database URL without a path")?;
        Self::run(&format!("CREATE DATABASE {name}"), admin)?;
        Ok(Self {
            admin: admin.to_owned(),
            url: format!("{prefix}/{name}{query}"),
            name,
        })
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let _ = Self::run(
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            &self.admin,
        );
    }
}
