//! The process-wide registry of connection pools. Stores with the same connection settings share
//! one pool; the pool lives as long as a store holds it (the registry keeps only weak handles).
//! The registry key adds a fingerprint of the password to the public key, so a store with a
//! different password never borrows connections authenticated by another one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use parking_lot::Mutex;
use tokio_postgres::NoTls;

use super::config::Resolved;
use super::errors::{connection_err, pg_err};
use crate::error::{Error, Result};

/// How long a caller waits for a free connection before the call fails.
const WAIT_TIMEOUT_SECS: u64 = 30;

pub struct SharedPool {
    pub(crate) pool: Pool,
    /// The public key: connection settings without the password.
    pub(crate) key: String,
    waits: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot for `pool_stats()`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    pub key: String,
    pub max_size: usize,
    pub size: usize,
    pub idle: usize,
    pub in_use: usize,
    pub waiting: usize,
    pub waits: u64,
    pub errors: u64,
    /// Stores holding this pool.
    pub stores: usize,
}

type Registry = Mutex<HashMap<(String, u64), Weak<SharedPool>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn password_fingerprint(password: Option<&[u8]>) -> u64 {
    // A per-process random key: the fingerprint tells passwords apart without being a stable
    // hash of them that could leak through a log or a core dump.
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    SEED.get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one(password)
}

impl SharedPool {
    /// The pool for these settings: the live one if a store already holds it, else a new one
    /// with `min` connections opened (so a wrong address fails here, at open).
    pub(crate) async fn acquire(r: &Resolved) -> Result<Arc<SharedPool>> {
        let map_key = (r.key.clone(), password_fingerprint(r.pg.get_password()));
        if let Some(live) = registry().lock().get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        let config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &r.tls {
            Some(tls) => Manager::from_config(
                r.pg.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone()),
                config(),
            ),
            None => Manager::from_config(r.pg.clone(), NoTls, config()),
        };
        let pool = Pool::builder(manager)
            .max_size(r.max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(WAIT_TIMEOUT_SECS)))
            .create_timeout(Some(r.connect_timeout))
            .recycle_timeout(Some(r.connect_timeout))
            .build()
            .map_err(|e| Error::Other(format!("cannot build the postgres pool: {e}")))?;
        let shared = Arc::new(SharedPool {
            pool,
            key: r.key.clone(),
            waits: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        // Open the minimum now; at least one, so that bad settings fail at open.
        let warm = r.min.max(1);
        let mut held = Vec::with_capacity(warm);
        for _ in 0..warm {
            held.push(shared.get().await?);
        }
        drop(held);
        let mut reg = registry().lock();
        // Another opener may have raced us; keep the first pool so both share it.
        if let Some(live) = reg.get(&map_key).and_then(Weak::upgrade) {
            return Ok(live);
        }
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(map_key, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// A connection from the pool, guarded (see [`Guarded`]).
    pub(crate) async fn get_guarded(&self) -> Result<Guarded> {
        let obj = self.get().await?;
        Ok(Guarded {
            token: obj.cancel_token(),
            obj: Some(obj),
            armed: true,
        })
    }

    /// A connection from the pool.
    pub(crate) async fn get(&self) -> Result<Object> {
        if self.pool.status().available == 0 {
            self.waits.fetch_add(1, Ordering::Relaxed);
        }
        self.pool.get().await.map_err(|e| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            match e {
                PoolError::Backend(e) => pg_err("connect", e),
                PoolError::Timeout(kind) => connection_err(format!(
                    "timed out waiting for a connection ({kind:?}) from the pool {}",
                    self.key
                )),
                PoolError::Closed => Error::Closed("postgres pool".into()),
                other => connection_err(other),
            }
        })
    }

    /// Closes every idle connection; the next caller gets a new one.
    pub(crate) fn drop_idle(&self) {
        self.pool.retain(|_, _| false);
    }

    pub(crate) fn note_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(self: &Arc<Self>) -> PoolStats {
        let st = self.pool.status();
        PoolStats {
            key: self.key.clone(),
            max_size: st.max_size,
            size: st.size,
            idle: st.available,
            in_use: st.size.saturating_sub(st.available),
            waiting: st.waiting,
            waits: self.waits.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            // The registry's handle is weak: every strong one is a store (or a stream).
            stores: Arc::strong_count(self),
        }
    }
}

/// Number of live pools in the process (for tests and diagnostics).
pub fn live_pools() -> usize {
    registry()
        .lock()
        .values()
        .filter(|w| w.strong_count() > 0)
        .count()
}

/// A pooled connection for one operation. The operation calls [`Guarded::done`] when it has
/// finished with it; if the guard is dropped before that (the caller's future was dropped: a
/// cancelled Python task, a timeout), the statement may still be running, so the server is told
/// to cancel it and the connection is closed rather than handed to the next caller, who could
/// otherwise receive the cancel meant for this one.
pub(crate) struct Guarded {
    obj: Option<Object>,
    token: tokio_postgres::CancelToken,
    armed: bool,
}

impl Guarded {
    /// The operation is over: the connection goes back to the pool on drop.
    pub(crate) fn done(mut self) {
        self.armed = false;
    }
}

impl std::ops::Deref for Guarded {
    type Target = Object;

    fn deref(&self) -> &Object {
        // Only Drop takes the object out, so it is always there before.
        self.obj
            .as_ref()
            .unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl std::ops::DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Object {
        self.obj
            .as_mut()
            .unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(obj) = self.obj.take() else {
            return;
        };
        // Detached from the pool: the client dies with the task below.
        let client = Object::take(obj);
        let token = self.token.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = token.cancel_query(NoTls).await;
                drop(client);
            });
        }
    }
}
