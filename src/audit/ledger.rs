//! The append-only, hash-chained, Merkle-tree audit ledger on the state
//! store (SQLite or PostgreSQL; tables in `0003_ledger.sql`).
//!
//! Entry `seq` (0, 1, 2, … without gaps) is RFC 9162 leaf index `seq`. Its
//! leaf bytes are the RFC 8785 canonical JSON of
//! `{"created_at", "entry", "request_id", "seq"}`; the row stores
//! `leaf_hash = SHA-256(0x00 || leaf)` (RFC 9162 §2.1.1) and
//! `chain_hash = SHA-256(previous chain_hash || leaf)` (32 zero bytes before
//! seq 0). `entry` is the chained, PHI-free part (pseudonyms, types, ids).
//!
//! Appends are group commits: [`Ledger::append`] writes a whole batch in one
//! transaction, durable on return (SQLite WAL with `synchronous=FULL`, the
//! sqlx default for the state store; PostgreSQL commit). Appenders serialize
//! on the one-row `ledger_head`: `BEGIN IMMEDIATE` on SQLite, `SELECT … FOR
//! UPDATE` on PostgreSQL, so concurrent replicas can neither fork the chain
//! nor leave a gap.
//!
//! Checkpoints are signed tree heads: a JWS (RS256, the server's key, header
//! `typ: ledger-checkpoint+jwt`) over `{tree_size, root_hash, time}` (time in
//! ms). The key set's validator requires `exp`, so the claims carry
//! `iat`/`exp = iat + 1` and verification evaluates them at the checkpoint's
//! own time: a checkpoint never expires as evidence.
//!
//! Roots and proofs come from Merkle *tiles* ([`merkle::TiledView`]): the
//! hash of each complete, aligned run of 256 leaves is stored in
//! `ledger_tiles` (`0020_ledger_tiles.sql`), built lazily when a checkpoint
//! or proof first needs it (reading just those leaves, in bounded chunks)
//! and kept in memory by the [`Ledger`] (tiles never change once complete).
//! A root or proof of size `n` then reads the tiles not seen yet and at most
//! a few partial tiles of leaves: O(new entries + n/256) instead of all `n`
//! leaf hashes. Tiles are deterministic, so any replica may write them
//! (`ON CONFLICT DO NOTHING`). Verification, which recomputes everything and
//! checks the stored tiles too, is in [`super::verify`].

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use smart_launch::keys::{KeyError, KeySet};
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{
    jcs, merkle,
    merkle::{Hash, LeafRun, TiledView, TILE_WIDTH},
};
use crate::state::StateStore;

pub(crate) use crate::state::on_pool;

/// The JWS `typ` of a checkpoint.
pub const CHECKPOINT_TYP: &str = "ledger-checkpoint+jwt";
/// Rows per INSERT statement.
pub(super) const INSERT_CHUNK: usize = 256;
/// The chain hash "before" seq 0.
pub const GENESIS: Hash = [0u8; 32];

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed (the caller fails closed).
    #[error("ledger store: {0}")]
    Db(#[from] sqlx::Error),
    /// The store failed under the audit writer's own SQLite connection
    /// ([`super::appender`]; the caller fails closed).
    #[error("ledger store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Signing a checkpoint failed.
    #[error("ledger checkpoint signature: {0}")]
    Key(#[from] KeyError),
    /// A seq or tree size outside the ledger.
    #[error("{0}")]
    Range(String),
    /// Stored data that cannot even be read back (run `fhirgate ledger verify`).
    #[error("ledger data is corrupt: {0}")]
    Corrupt(String),
}

/// Tiles built per round trip (their leaves read in one query, 4,096 rows).
const TILE_CHUNK: u64 = 16;
/// Stored tiles read per query.
const TILE_PAGE: u64 = 4_096;

/// Binds per sidecar INSERT statement.
const SIDECAR_BINDS: usize = 2_000;

/// A bound value of a sidecar row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
}

/// Rows of another table written in the same transaction as an append:
/// `insert` is `INSERT INTO t (a, b, …) ` (the VALUES are added), each row
/// has one value per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// `INSERT INTO t (columns…) `.
    pub insert: &'static str,
    /// The rows.
    pub rows: Vec<Vec<SqlValue>>,
}

/// One entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// The request id that also appears in the logs.
    pub request_id: Option<String>,
    /// The chained part: no PHI (pseudonyms, types, ids, decision, time).
    pub entry: Value,
}

/// One stored row, as read back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEntry {
    /// Leaf index.
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Request id.
    pub request_id: Option<String>,
    /// Canonical JSON of the chained part.
    pub entry: String,
    /// Hex `SHA-256(0x00 || leaf)`.
    pub leaf_hash: String,
    /// Hex `SHA-256(prev chain_hash || leaf)`.
    pub chain_hash: String,
}

/// A stored signed tree head.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Checkpoint {
    /// Number of leaves covered.
    pub tree_size: i64,
    /// Hex `MTH(D[tree_size])`.
    pub root_hash: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The JWS.
    pub signature: String,
}

/// The signed claims of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    /// Number of leaves covered.
    pub tree_size: u64,
    /// Hex root hash.
    pub root_hash: String,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// Seconds since the epoch.
    pub iat: i64,
    /// `iat + 1` (see the module docs).
    pub exp: i64,
}

/// The leaf bytes of an entry: RFC 8785 canonical JSON of the record.
pub fn leaf_bytes(seq: u64, created_at: i64, request_id: Option<&str>, entry: &Value) -> Vec<u8> {
    leaf_bytes_canonical(seq, created_at, request_id, &jcs::canonical_string(entry))
}

/// [`leaf_bytes`] from the entry's canonical JSON (what the row stores),
/// without canonicalizing the entry again: the record's members in RFC 8785
/// order (`created_at`, `entry`, `request_id`, `seq`) around it. The same
/// bytes as canonicalizing the whole record (a unit test holds them equal).
pub fn leaf_bytes_canonical(
    seq: u64,
    created_at: i64,
    request_id: Option<&str>,
    canonical_entry: &str,
) -> Vec<u8> {
    let mut out = String::with_capacity(canonical_entry.len() + 128);
    out.push_str("{\"created_at\":");
    jcs::push_number(&created_at.into(), &mut out);
    out.push_str(",\"entry\":");
    out.push_str(canonical_entry);
    out.push_str(",\"request_id\":");
    match request_id {
        Some(r) => jcs::push_string(r, &mut out),
        None => out.push_str("null"),
    }
    out.push_str(",\"seq\":");
    jcs::push_number(&seq.into(), &mut out);
    out.push('}');
    out.into_bytes()
}

/// `SHA-256(prev || leaf)`.
pub fn chain_hash(prev: &Hash, leaf: &[u8]) -> Hash {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev);
    h.update(leaf);
    h.finalize().into()
}

pub(crate) fn parse_hash(s: &str) -> Option<Hash> {
    hex::decode(s).ok()?.try_into().ok()
}

pub(super) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Appends `INSERT INTO ledger_entries … VALUES …` of `rows` to `q` (either
/// backend).
pub(super) fn push_entries<'a, DB>(q: &mut QueryBuilder<'a, DB>, rows: &'a [StoredEntry])
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
{
    q.push(
        "INSERT INTO ledger_entries (seq, created_at, request_id, entry, leaf_hash, chain_hash) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.seq)
            .push_bind(r.created_at)
            .push_bind(r.request_id.as_deref())
            .push_bind(r.entry.as_str())
            .push_bind(r.leaf_hash.as_str())
            .push_bind(r.chain_hash.as_str());
    });
}

/// A sidecar's rows in statements of at most [`SIDECAR_BINDS`] binds.
pub(super) fn sidecar_chunks(s: &Sidecar) -> std::slice::Chunks<'_, Vec<SqlValue>> {
    let per_row = s.rows.first().map_or(1, Vec::len).max(1);
    s.rows.chunks((SIDECAR_BINDS / per_row).max(1))
}

/// Appends `insert` with the VALUES of `rows` to `q` (either backend).
pub(super) fn push_sidecar<'a, DB>(
    q: &mut QueryBuilder<'a, DB>,
    insert: &str,
    rows: &'a [Vec<SqlValue>],
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    q.push(insert);
    q.push_values(rows, |mut b, row| {
        for v in row {
            match v {
                SqlValue::Int(i) => b.push_bind(*i),
                SqlValue::Text(t) => b.push_bind(t.as_str()),
            };
        }
    });
}

/// The rows a batch becomes after the head `(size, chain)`.
pub(super) fn build_rows(
    size: i64,
    head: &str,
    batch: &[NewEntry],
    now: i64,
) -> Result<Vec<StoredEntry>, LedgerError> {
    let mut prev =
        parse_hash(head).ok_or_else(|| LedgerError::Corrupt("ledger_head.chain_hash".into()))?;
    let mut rows = Vec::with_capacity(batch.len());
    for (i, e) in batch.iter().enumerate() {
        let seq = size + i as i64;
        let entry = jcs::canonical_string(&e.entry);
        let leaf = leaf_bytes_canonical(seq as u64, now, e.request_id.as_deref(), &entry);
        let chained = chain_hash(&prev, &leaf);
        rows.push(StoredEntry {
            seq,
            created_at: now,
            request_id: e.request_id.clone(),
            entry,
            leaf_hash: hex::encode(merkle::leaf_hash(&leaf)),
            chain_hash: hex::encode(chained),
        });
        prev = chained;
    }
    Ok(rows)
}

/// The tile hashes this process knows (shared by a [`Ledger`]'s clones):
/// tiles `0..hashes.len()`, each complete and so immutable.
#[derive(Default)]
struct TileCache {
    hashes: RwLock<Vec<Hash>>,
    /// Serializes building, so concurrent checkpoints in one process do not
    /// hash the same leaves twice.
    build: tokio::sync::Mutex<()>,
    /// Leaf rows read from the store (tests assert what a checkpoint costs).
    #[cfg(test)]
    leaf_rows_read: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.hashes.read().map(|h| h.len()).unwrap_or_default();
        f.debug_struct("TileCache").field("known", &known).finish()
    }
}

/// The ledger on a state store. Cheap to clone (clones share the tile cache).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub(crate) store: StateStore,
    tiles: Arc<TileCache>,
}

impl Ledger {
    /// The ledger in `store` (its tables come with the store's migrations).
    pub fn new(store: StateStore) -> Self {
        Self {
            store,
            tiles: Arc::default(),
        }
    }

    /// Appends a batch in one durable transaction; returns the seqs, in order.
    pub async fn append(&self, batch: &[NewEntry]) -> Result<Vec<u64>, LedgerError> {
        self.append_with(batch, |_| Ok(Vec::new())).await
    }

    /// [`Self::append`], plus rows of other tables (`sidecar`, built from
    /// the seqs once they are known, under the ledger lock) committed in the
    /// same transaction: one fsync for both (the audit payloads). An `Err`
    /// from `sidecar` aborts the append. (The audit writer appends on a
    /// SQLite file through [`super::appender`] instead.)
    pub async fn append_with<F>(
        &self,
        batch: &[NewEntry],
        sidecar: F,
    ) -> Result<Vec<u64>, LedgerError>
    where
        F: FnOnce(&[u64]) -> Result<Vec<Sidecar>, String>,
    {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (begin, lock) = match &self.store {
            StateStore::Sqlite(_) => (
                "BEGIN IMMEDIATE",
                "SELECT size, chain_hash FROM ledger_head WHERE id = 0",
            ),
            StateStore::Postgres(_) => (
                "BEGIN",
                "SELECT size, chain_hash FROM ledger_head WHERE id = 0 FOR UPDATE",
            ),
        };
        let update = "UPDATE ledger_head SET size = $1, chain_hash = $2 WHERE id = 0";
        // The transaction runs on a connection held here: if any step fails,
        // that connection is closed instead of going back to the pool. SQLite
        // rolls a transaction back by itself on some errors (SQLITE_FULL, a
        // full disk); the ROLLBACK sqlx then sends fails, its transaction
        // depth stays at 1, and every later `begin_with` on that pooled
        // connection would fail, so the ledger stayed down after space was
        // back.
        let rows = on_pool!(&self.store, |p| {
            let mut conn = p.acquire().await?;
            let result: Result<Vec<StoredEntry>, LedgerError> = async {
                let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
                let (size, head): (i64, String) = sqlx::query_as(lock).fetch_one(&mut *tx).await?;
                let rows = build_rows(size, &head, batch, now_ms())?;
                // Multi-row INSERTs (6 binds a row, well under both backends' limits).
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut q = sqlx::QueryBuilder::new("");
                    push_entries(&mut q, chunk);
                    q.build().execute(&mut *tx).await?;
                }
                let seqs: Vec<u64> = rows.iter().map(|r| r.seq as u64).collect();
                let extra = sidecar(&seqs).map_err(sqlx::Error::Protocol)?;
                for s in &extra {
                    for chunk in sidecar_chunks(s) {
                        let mut q = sqlx::QueryBuilder::new("");
                        push_sidecar(&mut q, s.insert, chunk);
                        q.build().execute(&mut *tx).await?;
                    }
                }
                let last = rows.last().map(|r| r.chain_hash.clone()).unwrap_or(head);
                sqlx::query(update)
                    .bind(size + rows.len() as i64)
                    .bind(&last)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(rows)
            }
            .await;
            if result.is_err() {
                conn.close_on_drop();
            }
            result?
        });
        Ok(rows.iter().map(|r| r.seq as u64).collect())
    }

    /// The number of entries (the head's size).
    pub async fn size(&self) -> Result<u64, LedgerError> {
        let sql = "SELECT size FROM ledger_head WHERE id = 0";
        let (n,): (i64,) = on_pool!(&self.store, |p| sqlx::query_as(sql).fetch_one(p).await)?;
        Ok(n as u64)
    }

    /// Up to `limit` rows from `from` on, in seq order.
    pub async fn entries(&self, from: u64, limit: u64) -> Result<Vec<StoredEntry>, LedgerError> {
        let sql = "SELECT seq, created_at, request_id, entry, leaf_hash, chain_hash FROM ledger_entries WHERE seq >= $1 ORDER BY seq LIMIT $2";
        Ok(on_pool!(&self.store, |p| sqlx::query_as(sql)
            .bind(from as i64)
            .bind(limit as i64)
            .fetch_all(p)
            .await)?)
    }

    /// The stored leaf hashes of seqs `0..tree_size` (all of them: O(n);
    /// roots and proofs use [`Self::tiled`] instead).
    pub async fn leaf_hashes(&self, tree_size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.leaf_range(0, tree_size).await
    }

    /// The stored leaf hashes of seqs `lo..hi`, checked: every seq present,
    /// in order, each hash 32 bytes of hex.
    async fn leaf_range(&self, lo: u64, hi: u64) -> Result<Vec<Hash>, LedgerError> {
        if hi <= lo {
            return Ok(Vec::new());
        }
        let sql =
            "SELECT seq, leaf_hash FROM ledger_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq";
        let rows: Vec<(i64, String)> = on_pool!(&self.store, |p| sqlx::query_as(sql)
            .bind(lo as i64)
            .bind(hi as i64)
            .fetch_all(p)
            .await)?;
        #[cfg(test)]
        self.tiles
            .leaf_rows_read
            .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if rows.len() as u64 != hi - lo {
            return Err(LedgerError::Corrupt(format!(
                "{} entries in seqs {lo}..{hi}",
                rows.len()
            )));
        }
        rows.iter()
            .zip(lo..)
            .map(|((seq, h), want)| match parse_hash(h) {
                Some(h) if *seq == want as i64 => Ok(h),
                _ => Err(LedgerError::Corrupt(format!("leaf hash of seq {seq}"))),
            })
            .collect()
    }

    /// Leaf rows this ledger (and its clones) has read so far.
    #[cfg(test)]
    pub(crate) fn leaf_rows_read(&self) -> u64 {
        self.tiles
            .leaf_rows_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The number of tile hashes in memory.
    fn known_tiles(&self) -> usize {
        match self.tiles.hashes.read() {
            Ok(h) => h.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Adds tiles `from..` to the cache (skipping any a concurrent caller
    /// added first: tiles are immutable, so they are the same).
    fn remember_tiles(&self, from: usize, tiles: &[Hash]) {
        let mut known = match self.tiles.hashes.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        if from <= known.len() && known.len() < from + tiles.len() {
            let skip = known.len() - from;
            known.extend_from_slice(&tiles[skip..]);
        }
    }

    /// Makes the first `count` tile hashes known: those stored (by this or
    /// another replica) are read, the rest built from their leaves and
    /// stored. Callers pass `count <= size / TILE_WIDTH` of a size the head
    /// has reached, so those leaves exist and never change.
    async fn ensure_tiles(&self, count: u64) -> Result<(), LedgerError> {
        if self.known_tiles() as u64 >= count {
            return Ok(());
        }
        let _building = self.tiles.build.lock().await;
        // Stored tiles, in pages, up to the first one missing.
        loop {
            let from = self.known_tiles() as u64;
            if from >= count {
                return Ok(());
            }
            let sql =
                "SELECT idx, hash FROM ledger_tiles WHERE idx >= $1 AND idx < $2 ORDER BY idx";
            let rows: Vec<(i64, String)> = on_pool!(&self.store, |p| sqlx::query_as(sql)
                .bind(from as i64)
                .bind(count.min(from + TILE_PAGE) as i64)
                .fetch_all(p)
                .await)?;
            let mut page = Vec::with_capacity(rows.len());
            for ((idx, hash), want) in rows.iter().zip(from..) {
                if *idx != want as i64 {
                    break; // a gap: built below
                }
                let hash = parse_hash(hash)
                    .ok_or_else(|| LedgerError::Corrupt(format!("ledger tile {idx}")))?;
                page.push(hash);
            }
            let full = page.len() as u64 == TILE_PAGE;
            self.remember_tiles(from as usize, &page);
            if !full {
                break;
            }
        }
        // The rest, from the leaves, a chunk of tiles at a time.
        loop {
            let from = self.known_tiles() as u64;
            if from >= count {
                return Ok(());
            }
            let to = count.min(from + TILE_CHUNK);
            let leaves = self.leaf_range(from * TILE_WIDTH, to * TILE_WIDTH).await?;
            let built: Vec<Hash> = leaves
                .chunks_exact(TILE_WIDTH as usize)
                .map(merkle::root)
                .collect();
            let rows: Vec<(i64, String)> = built
                .iter()
                .zip(from..)
                .map(|(h, idx)| (idx as i64, hex::encode(h)))
                .collect();
            on_pool!(&self.store, |p| {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO ledger_tiles (idx, hash) ");
                q.push_values(&rows, |mut b, (idx, hash)| {
                    b.push_bind(*idx).push_bind(hash);
                });
                q.push(" ON CONFLICT (idx) DO NOTHING");
                q.build().execute(p).await.map(|_| ())
            })?;
            self.remember_tiles(from as usize, &built);
        }
    }

    /// Runs `f` on a tiled view of the first `size` leaves (`size` at most
    /// the head's) holding what the root of `size` and proofs about the
    /// leaves or sizes in `at` need ([`merkle::view_tiles`]). A view that
    /// still lacks something (which would be a bug) is `Corrupt`.
    pub(crate) async fn tiled<R>(
        &self,
        size: u64,
        at: &[u64],
        f: impl FnOnce(TiledView<'_>) -> Option<R>,
    ) -> Result<R, LedgerError> {
        let complete = size / TILE_WIDTH;
        self.ensure_tiles(complete).await?;
        let mut runs = Vec::new();
        for t in merkle::view_tiles(size, at) {
            let start = t * TILE_WIDTH;
            let hashes = self
                .leaf_range(start, (start + TILE_WIDTH).min(size))
                .await?;
            runs.push(LeafRun { start, hashes });
        }
        let known = match self.tiles.hashes.read() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tiles = &known[..(complete as usize).min(known.len())];
        f(TiledView::new(tiles, &runs)).ok_or_else(|| {
            LedgerError::Corrupt(format!("Merkle tiles of a tree of {size} are incomplete"))
        })
    }

    /// `MTH(D[size])` from the tiles (`Range` beyond the head).
    pub async fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        let head = self.size().await?;
        if size > head {
            return Err(LedgerError::Range(format!(
                "no tree of {size} entries (the ledger has {head})"
            )));
        }
        self.tiled(size, &[], |v| v.root(size)).await
    }

    /// All checkpoints, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LedgerError> {
        let sql = "SELECT tree_size, root_hash, created_at, signature FROM ledger_checkpoints ORDER BY tree_size";
        Ok(on_pool!(&self.store, |p| sqlx::query_as(sql)
            .fetch_all(p)
            .await)?)
    }

    /// The newest checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        let sql = "SELECT tree_size, root_hash, created_at, signature FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1";
        Ok(on_pool!(&self.store, |p| sqlx::query_as(sql)
            .fetch_optional(p)
            .await)?)
    }

    /// The checkpoint policy ("every N entries or T seconds"): signs a new
    /// checkpoint when at least `every_entries` entries, or any entry older
    /// than `every_ms` milliseconds, are not yet covered by one. Returns the
    /// new checkpoint, if one was made.
    pub async fn maybe_checkpoint(
        &self,
        keys: &KeySet,
        every_entries: u64,
        every_ms: i64,
    ) -> Result<Option<Checkpoint>, LedgerError> {
        let size = self.size().await?;
        let covered = match self.latest_checkpoint().await? {
            Some(c) => c.tree_size.max(0) as u64,
            None => 0,
        };
        if size <= covered {
            return Ok(None);
        }
        let due = size - covered >= every_entries.max(1) || {
            let oldest = self.entries(covered, 1).await?;
            oldest
                .first()
                .is_some_and(|e| now_ms() - e.created_at >= every_ms)
        };
        if due {
            Ok(Some(self.checkpoint(keys).await?))
        } else {
            Ok(None)
        }
    }

    /// Signs and stores a checkpoint of the current tree (returns the
    /// existing one when nothing was appended since).
    pub async fn checkpoint(&self, keys: &KeySet) -> Result<Checkpoint, LedgerError> {
        let size = self.size().await?;
        if let Some(c) = self.latest_checkpoint().await? {
            if c.tree_size as u64 == size {
                return Ok(c);
            }
        }
        let root = hex::encode(self.tiled(size, &[], |v| v.root(size)).await?);
        let time = now_ms();
        let iat = time.div_euclid(1000);
        let claims = CheckpointClaims {
            tree_size: size,
            root_hash: root.clone(),
            time,
            iat,
            exp: iat + 1,
        };
        let signature = keys.sign(&claims, Some(CHECKPOINT_TYP))?;
        let sql = "INSERT INTO ledger_checkpoints (tree_size, root_hash, created_at, signature) VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING";
        on_pool!(&self.store, |p| sqlx::query(sql)
            .bind(size as i64)
            .bind(&root)
            .bind(time)
            .bind(&signature)
            .execute(p)
            .await
            .map(|_| ()))?;
        // A racing replica may have stored its own checkpoint of this size.
        let sql = "SELECT tree_size, root_hash, created_at, signature FROM ledger_checkpoints WHERE tree_size = $1";
        Ok(on_pool!(&self.store, |p| sqlx::query_as(sql)
            .bind(size as i64)
            .fetch_one(p)
            .await)?)
    }
}

#[cfg(test)]
mod leaf_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// The fast leaf bytes equal canonicalizing the whole record.
    #[test]
    fn leaf_bytes_equal_the_canonical_record() {
        let entries = [
            json!({"kind": "rest", "b": [1, 2.5, "x\u{1}\"\\é😀"], "a": {"z": null, "é": true}, "recorded": 1_700_000_000_000_i64}),
            json!({}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3}),
        ];
        for (i, entry) in entries.iter().enumerate() {
            for (seq, created, rid) in [
                (0_u64, 0_i64, None),
                (i as u64 + 7, 1_763_890_000_123, Some("req-\"1\"\n")),
                ((1 << 53) + 1, -5, Some("")),
            ] {
                let whole = jcs::canonicalize(&json!({
                    "seq": seq,
                    "created_at": created,
                    "request_id": rid,
                    "entry": entry,
                }));
                assert_eq!(leaf_bytes(seq, created, rid, entry), whole);
                assert_eq!(
                    leaf_bytes_canonical(seq, created, rid, &jcs::canonical_string(entry)),
                    whole
                );
            }
        }
    }
}
