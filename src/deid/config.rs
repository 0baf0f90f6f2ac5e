//! `[deid]`: who may run a de-identified `$export`, with which profiles and
//! key sets, and how research Consents decide whose data enters one; plus
//! the [`Registry`] a process loads from it (built-in and file profiles,
//! key material).
//!
//! ```toml
//! [deid]
//! purposes = ["HRESCH", "HMARKT"]      # secondary-use purposes of use
//! research_consent = "opt-out"         # or "opt-in"
//! profile_files = ["deid/limited.toml"]
//! [deid.key_sets.research-2026]
//! env = "FHIRGATE_DEID_KEY_RESEARCH_2026"   # 64 hex chars; unset: a key file
//! [deid.clients.analytics]
//! purposes = ["HRESCH"]
//! key_sets = ["research-2026"]
//! ```
//!
//! Key material: a named key set is 32 bytes from its `env` variable (hex;
//! how an Azure Container Apps Key Vault reference arrives) or else the file
//! `<data_dir>/keys/deid-<name>.key`, created on first use. An export that
//! names no key set gets a key of its own, `HMAC(deid-jobs.key, job id)`:
//! stable if the job is resumed elsewhere, unlinkable to any other export.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::Profile;
use crate::audit::pseudonym::load_or_create_secret;

/// The `[deid]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidConfig {
    /// Purposes of use (v3 ActReason) that count as secondary use: a
    /// de-identified export must state one of them.
    #[serde(default = "default_purposes")]
    pub purposes: Vec<String>,
    /// Whether a patient's data enters a de-identified export without a
    /// research Consent (`opt-out`) or only with a permitting one (`opt-in`).
    #[serde(default)]
    pub research_consent: ResearchPolicy,
    /// Profile files (TOML, `src/deid/profile.rs`) besides the built-ins;
    /// relative paths are read from the working directory.
    #[serde(default)]
    pub profile_files: Vec<PathBuf>,
    /// Declared key sets, by name.
    #[serde(default)]
    pub key_sets: BTreeMap<String, KeySetConfig>,
    /// The clients that may run de-identified exports, by client id.
    #[serde(default)]
    pub clients: BTreeMap<String, DeidClient>,
}

impl Default for DeidConfig {
    fn default() -> Self {
        Self {
            purposes: default_purposes(),
            research_consent: ResearchPolicy::default(),
            profile_files: Vec::new(),
            key_sets: BTreeMap::new(),
            clients: BTreeMap::new(),
        }
    }
}

fn default_purposes() -> Vec<String> {
    vec!["HRESCH".into(), "HMARKT".into()]
}

/// How research Consents gate a de-identified export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResearchPolicy {
    /// Everyone's data enters unless an active research Consent denies.
    #[default]
    OptOut,
    /// Only patients with an active permitting research Consent enter.
    OptIn,
}

/// One declared key set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySetConfig {
    /// Environment variable holding the key (64 hex characters).
    #[serde(default)]
    pub env: Option<String>,
}

/// What one client may do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidClient {
    /// Purposes it may state (each must also be in `[deid] purposes`).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Key sets it may name (empty: none; it gets per-export keys only).
    #[serde(default)]
    pub key_sets: Vec<String>,
    /// Profiles it may use (empty: any).
    #[serde(default)]
    pub profiles: Vec<String>,
}

/// The demo research client (`fhirgate token issue --client demo-research
/// --any-client --scope 'system/*.rs'`, then kick off with
/// `X-Purpose-Of-Use: HRESCH`).
pub const DEMO_RESEARCH_CLIENT: &str = "demo-research";
/// The demo key set.
pub const DEMO_KEY_SET: &str = "demo";

/// Demo mode: the research client and the `demo` key set (kept when the
/// configuration declares them already).
pub fn configure_demo(cfg: &mut DeidConfig) {
    cfg.key_sets.entry(DEMO_KEY_SET.to_owned()).or_default();
    cfg.clients
        .entry(DEMO_RESEARCH_CLIENT.to_owned())
        .or_insert_with(|| DeidClient {
            purposes: vec!["HRESCH".into(), "HMARKT".into()],
            key_sets: vec![DEMO_KEY_SET.into()],
            profiles: Vec::new(),
        });
}

/// Why a key set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not declared in `[deid.key_sets]`.
    #[error("key set '{0}' is not declared")]
    Unknown(String),
    /// The variable or file is unusable.
    #[error("key set '{name}': {message}")]
    Unusable {
        /// Key set.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The profiles and keys of a process.
#[derive(Debug)]
pub struct Registry {
    profiles: BTreeMap<String, Arc<Profile>>,
    key_sets: BTreeMap<String, KeySetConfig>,
    keys_dir: PathBuf,
}

impl Registry {
    /// The built-in profiles plus `profile_files` (a file may not reuse a
    /// built-in's or another file's name).
    pub fn load(cfg: &DeidConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let mut profiles = BTreeMap::new();
        for name in Profile::BUILTIN {
            if let Some(p) = Profile::builtin(name) {
                profiles.insert((*name).to_owned(), Arc::new(p));
            }
        }
        for path in &cfg.profile_files {
            let p = Profile::load(path)
                .map_err(|e| anyhow::anyhow!("[deid] profile {}: {e}", path.display()))?;
            let name = p.name().to_owned();
            if profiles.insert(name.clone(), Arc::new(p)).is_some() {
                anyhow::bail!(
                    "[deid] profile {}: the name '{name}' is taken",
                    path.display()
                );
            }
        }
        for (client, c) in &cfg.clients {
            for k in &c.key_sets {
                if !cfg.key_sets.contains_key(k) {
                    anyhow::bail!("[deid.clients.{client}] names key set '{k}', which [deid.key_sets] does not declare");
                }
            }
            for p in &c.profiles {
                if !profiles.contains_key(p) {
                    anyhow::bail!(
                        "[deid.clients.{client}] names profile '{p}', which is not loaded"
                    );
                }
            }
        }
        Ok(Self {
            profiles,
            key_sets: cfg.key_sets.clone(),
            keys_dir: data_dir.join("keys"),
        })
    }

    /// A profile by name.
    pub fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        self.profiles.get(name).cloned()
    }

    /// The names of the loaded profiles.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The key of a declared key set.
    pub fn named_key(&self, name: &str) -> Result<[u8; 32], KeyError> {
        let set = self
            .key_sets
            .get(name)
            .ok_or_else(|| KeyError::Unknown(name.to_owned()))?;
        let unusable = |message: String| KeyError::Unusable {
            name: name.to_owned(),
            message,
        };
        if let Some(var) = &set.env {
            let text = std::env::var(var).map_err(|_| unusable(format!("{var} is not set")))?;
            let bytes =
                hex::decode(text.trim()).map_err(|_| unusable(format!("{var} is not hex")))?;
            return bytes
                .try_into()
                .map_err(|_| unusable(format!("{var} must hold 32 bytes (64 hex characters)")));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(unusable(
                "a key file name allows letters, digits, - and _".into(),
            ));
        }
        load_or_create_secret(&self.keys_dir.join(format!("deid-{name}.key")))
            .map_err(|e| unusable(e.to_string()))
    }

    /// The key of one export that names no key set.
    pub fn job_key(&self, job_id: &str) -> Result<[u8; 32], KeyError> {
        self.derived_key("deid-job:", job_id)
    }

    /// The key of a client's de-identified searches that name no key set:
    /// stable across its searches (paging, references), its own.
    pub fn search_key(&self, client_id: &str) -> Result<[u8; 32], KeyError> {
        self.derived_key("deid-search:", client_id)
    }

    /// `HMAC(deid-jobs.key, label || what)`.
    fn derived_key(&self, label: &str, what: &str) -> Result<[u8; 32], KeyError> {
        let unusable = |message: String| KeyError::Unusable {
            name: "(derived)".into(),
            message,
        };
        let secret = load_or_create_secret(&self.keys_dir.join("deid-jobs.key"))
            .map_err(|e| unusable(e.to_string()))?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .map_err(|_| unusable("bad key length".into()))?;
        mac.update(label.as_bytes());
        mac.update(what.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn defaults_and_parsing() {
        let c = DeidConfig::default();
        assert_eq!(c.purposes, ["HRESCH", "HMARKT"]);
        assert_eq!(c.research_consent, ResearchPolicy::OptOut);
        let c: DeidConfig = toml::from_str(
            "research_consent = \"opt-in\"\n[key_sets.k1]\n[clients.a]\npurposes = [\"HRESCH\"]\nkey_sets = [\"k1\"]\n",
        )
        .unwrap();
        assert_eq!(c.research_consent, ResearchPolicy::OptIn);
        assert_eq!(c.clients["a"].key_sets, ["k1"]);
        assert!(toml::from_str::<DeidConfig>("bogus = 1\n").is_err());
    }

    #[test]
    fn keys_are_stable_per_name_and_per_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = DeidConfig::default();
        configure_demo(&mut c);
        c.key_sets.insert("other".into(), KeySetConfig::default());
        let r = Registry::load(&c, dir.path()).unwrap();
        let a = r.named_key(DEMO_KEY_SET).unwrap();
        assert_eq!(a, r.named_key(DEMO_KEY_SET).unwrap());
        assert_ne!(a, r.named_key("other").unwrap());
        assert!(matches!(r.named_key("nope"), Err(KeyError::Unknown(_))));
        // a key from the environment (a Key Vault reference in Container Apps)
        let var = "FHIRGATE_TEST_DEID_KEY_FROM_ENV";
        c.key_sets.insert(
            "vault".into(),
            KeySetConfig {
                env: Some(var.into()),
            },
        );
        let r = Registry::load(&c, dir.path()).unwrap();
        assert!(matches!(
            r.named_key("vault"),
            Err(KeyError::Unusable { .. })
        ));
        std::env::set_var(var, "ab".repeat(32));
        assert_eq!(r.named_key("vault").unwrap(), [0xab; 32]);
        std::env::set_var(var, "abcd");
        assert!(r.named_key("vault").is_err(), "too short");
        assert_eq!(r.job_key("j1").unwrap(), r.job_key("j1").unwrap());
        assert_ne!(r.job_key("j1").unwrap(), r.job_key("j2").unwrap());
        assert_eq!(r.search_key("c").unwrap(), r.search_key("c").unwrap());
        assert_ne!(r.search_key("j1").unwrap(), r.job_key("j1").unwrap());
        assert!(r.profile("safe-harbor").is_some());
    }

    #[test]
    fn demo_mode_declares_the_research_client_and_key_set() {
        let dir = tempfile::tempdir().unwrap();
        let env = [(
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        )];
        let mut c =
            crate::config::Config::from_parts("", Path::new("fhirgate.toml"), &env).unwrap();
        crate::demo::configure(&mut c).unwrap();
        let client = &c.deid.clients[DEMO_RESEARCH_CLIENT];
        assert_eq!(client.purposes, ["HRESCH", "HMARKT"]);
        assert_eq!(client.key_sets, [DEMO_KEY_SET]);
        assert!(c.deid.key_sets.contains_key(DEMO_KEY_SET));
        Registry::load(&c.deid, dir.path()).unwrap();
    }

    #[test]
    fn profile_files_load_beside_the_built_ins() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("limited.toml");
        std::fs::write(
            &good,
            "name = \"limited\"\ndescription = \"d\"\n[[rule]]\ntype = \"HumanName\"\nmethod = \"redact\"\n",
        )
        .unwrap();
        let mut c = DeidConfig {
            profile_files: vec![good.clone()],
            ..DeidConfig::default()
        };
        let r = Registry::load(&c, dir.path()).unwrap();
        assert!(r.profile("limited").is_some());
        assert_eq!(
            r.names().collect::<Vec<_>>(),
            ["limited", "safe-harbor", "safe-harbor-shifted"]
        );
        // a file may not take a built-in's name
        let clash = dir.path().join("clash.toml");
        std::fs::write(&clash, "name = \"safe-harbor\"\ndescription = \"d\"\n").unwrap();
        c.profile_files = vec![clash];
        let e = Registry::load(&c, dir.path()).unwrap_err().to_string();
        assert!(e.contains("clash.toml") && e.contains("taken"), "{e}");
        // a bad rule fails the start, naming the file
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "name = \"bad\"\ndescription = \"d\"\n[[rule]]\ntype = \"HumanName\"\nmethod = \"scramble\"\n",
        )
        .unwrap();
        c.profile_files = vec![bad];
        let e = Registry::load(&c, dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("scramble"), "{e}");
    }

    #[test]
    fn a_client_naming_an_undeclared_key_set_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = DeidConfig::default();
        c.clients.insert(
            "x".into(),
            DeidClient {
                purposes: vec!["HRESCH".into()],
                key_sets: vec!["missing".into()],
                profiles: vec![],
            },
        );
        let e = Registry::load(&c, dir.path()).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
