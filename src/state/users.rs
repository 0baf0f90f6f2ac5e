//! The embedded user directory: local accounts with argon2id password hashes
//! (demo users `dr.lee`, `pat.jones` and `admin` on a demo start). Sign-in itself
//! belongs to the SMART authorization server; this owns storage and checks.

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use sqlx::Row;

use super::StateStore;

/// A local account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Sign-in name.
    pub username: String,
    /// `clinician`, `patient` or `admin`.
    pub role: String,
    /// The FHIR resource the user is (`Practitioner/…`, `Patient/…`).
    pub fhir_user: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// The organization the user acts for (`Organization/…`), if recorded:
    /// carried into their access tokens as a consent decision input.
    pub organization: Option<String>,
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

impl StateStore {
    /// Creates or replaces a user with a new password.
    pub async fn upsert_user(&self, user: &User, password: &str) -> anyhow::Result<()> {
        let hash = hash_password(password)?;
        let now = crate::fhir::now_instant();
        let lite = "INSERT INTO users (username, password_hash, role, fhir_user, display_name, created_at, organization) VALUES (?, ?, ?, ?, ?, ?, ?) \
                    ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, fhir_user = excluded.fhir_user, display_name = excluded.display_name, organization = excluded.organization";
        let pg = "INSERT INTO users (username, password_hash, role, fhir_user, display_name, created_at, organization) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                  ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, fhir_user = excluded.fhir_user, display_name = excluded.display_name, organization = excluded.organization";
        match self {
            Self::Sqlite(p) => {
                sqlx::query(lite)
                    .bind(&user.username)
                    .bind(&hash)
                    .bind(&user.role)
                    .bind(&user.fhir_user)
                    .bind(&user.display_name)
                    .bind(&now)
                    .bind(&user.organization)
                    .execute(p)
                    .await?;
            }
            Self::Postgres(p) => {
                sqlx::query(pg)
                    .bind(&user.username)
                    .bind(&hash)
                    .bind(&user.role)
                    .bind(&user.fhir_user)
                    .bind(&user.display_name)
                    .bind(&now)
                    .bind(&user.organization)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// Returns the user when the password is right; `None` otherwise (unknown
    /// user and wrong password are indistinguishable to the caller).
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Option<User>> {
        let row = match self {
            Self::Sqlite(p) => sqlx::query("SELECT username, role, fhir_user, display_name, password_hash, organization FROM users WHERE username = ?")
                .bind(username).fetch_optional(p).await?
                .map(|r| (User { username: r.get(0), role: r.get(1), fhir_user: r.get(2), display_name: r.get(3), organization: r.get(5) }, r.get::<String, _>(4))),
            Self::Postgres(p) => sqlx::query("SELECT username, role, fhir_user, display_name, password_hash, organization FROM users WHERE username = $1")
                .bind(username).fetch_optional(p).await?
                .map(|r| (User { username: r.get(0), role: r.get(1), fhir_user: r.get(2), display_name: r.get(3), organization: r.get(5) }, r.get::<String, _>(4))),
        };
        let Some((user, hash)) = row else {
            // Spend the same argon2 work for an unknown user, so response
            // time does not tell which usernames exist.
            let _ = hash_password(password);
            return Ok(None);
        };
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .ok()
            .map(|_| user))
    }

    /// Looks a user up by name (for a signed-in session).
    pub async fn user_get(&self, username: &str) -> Result<Option<User>, sqlx::Error> {
        let sql = "SELECT username, role, fhir_user, display_name, organization FROM users WHERE username = $1";
        let row: Option<(String, String, String, String, Option<String>)> = match self {
            Self::Sqlite(p) => sqlx::query_as(sql).bind(username).fetch_optional(p).await?,
            Self::Postgres(p) => sqlx::query_as(sql).bind(username).fetch_optional(p).await?,
        };
        Ok(row.map(
            |(username, role, fhir_user, display_name, organization)| User {
                username,
                role,
                fhir_user,
                display_name,
                organization,
            },
        ))
    }

    /// Records (or, with `None`, clears) the organization a user acts for,
    /// leaving the rest of the account alone (e.g. from a federated
    /// provider's claim at sign-in). Returns whether the user exists.
    pub async fn user_set_organization(
        &self,
        username: &str,
        organization: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE users SET organization = $1 WHERE username = $2";
        let n = match self {
            Self::Sqlite(p) => sqlx::query(sql)
                .bind(organization)
                .bind(username)
                .execute(p)
                .await?
                .rows_affected(),
            Self::Postgres(p) => sqlx::query(sql)
                .bind(organization)
                .bind(username)
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(n == 1)
    }

    /// Number of users (to tell a fresh store).
    pub async fn user_count(&self) -> Result<i64, sqlx::Error> {
        match self {
            Self::Sqlite(p) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(p)
                    .await
            }
            Self::Postgres(p) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(p)
                    .await
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) async fn suite(store: &StateStore) {
        let u = User {
            username: "dr.test".into(),
            role: "clinician".into(),
            fhir_user: "Practitioner/p1".into(),
            display_name: "Dr Test".into(),
            organization: None,
        };
        store.upsert_user(&u, "pw1").await.unwrap();
        assert_eq!(
            store.check_password("dr.test", "pw1").await.unwrap(),
            Some(u.clone())
        );
        assert_eq!(store.check_password("dr.test", "nope").await.unwrap(), None);
        assert_eq!(store.check_password("nobody", "pw1").await.unwrap(), None);
        store.upsert_user(&u, "pw2").await.unwrap();
        assert_eq!(store.check_password("dr.test", "pw1").await.unwrap(), None);
        assert!(store
            .check_password("dr.test", "pw2")
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.user_count().await.unwrap(), 1);
        assert_eq!(store.user_get("dr.test").await.unwrap(), Some(u.clone()));
        assert_eq!(store.user_get("nobody").await.unwrap(), None);
        // the organization: stored, read back, changed alone, cleared
        let at_clinic = User {
            organization: Some("Organization/clinic".into()),
            ..u.clone()
        };
        store.upsert_user(&at_clinic, "pw2").await.unwrap();
        assert_eq!(
            store.user_get("dr.test").await.unwrap(),
            Some(at_clinic.clone())
        );
        assert_eq!(
            store.check_password("dr.test", "pw2").await.unwrap(),
            Some(at_clinic)
        );
        assert!(store
            .user_set_organization("dr.test", Some("Organization/hospital"))
            .await
            .unwrap());
        let got = store.user_get("dr.test").await.unwrap().unwrap();
        assert_eq!(got.organization.as_deref(), Some("Organization/hospital"));
        assert_eq!(got.fhir_user, "Practitioner/p1");
        assert!(store.user_set_organization("dr.test", None).await.unwrap());
        assert_eq!(store.user_get("dr.test").await.unwrap(), Some(u.clone()));
        assert!(!store
            .user_set_organization("nobody", Some("Organization/x"))
            .await
            .unwrap());
    }

    #[test]
    fn hashes_are_salted_argon2id() {
        let a = hash_password("demo").unwrap();
        let b = hash_password("demo").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
    }
}
