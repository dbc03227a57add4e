//! PostgreSQL: what the hot lookups made of their rows (the decoded app, the token's status, the
//! key generation), kept by each instance until any instance commits a change to a table they
//! read.
//!
//! Every statement that writes such a table notifies the channel `onyx_change` (migration
//! 0019's triggers). PostgreSQL delivers a transaction's notifications when it commits, to every
//! session listening on the channel, and only then: a transaction that rolls back notifies no
//! one. Each instance keeps one listening session, and every notification that arrives moves its
//! change sequence. A lookup's value is kept under the sequence it was read under, and is used
//! only while the sequence has not moved since.
//!
//! **Checked on the request.** A notification travels from the committing session to the
//! listening one asynchronously, so on its own it could arrive after the next request. Before a
//! lookup uses a kept value, it therefore waits for a check ([`Changes::checked`]): a trivial
//! query on the listening session, sent after the lookup began. PostgreSQL answers a listening
//! session's query only after the notifications already pending for it, so when the answer is
//! in, every commit made anywhere before the lookup began has moved the sequence. Lookups
//! waiting at the same moment share one check. A commit made a millisecond earlier, at any
//! instance, by the CLI or the API, is therefore seen by the very next lookup. A lookup that
//! finds nothing kept reads the database at once, with no check, and keeps what it read under
//! the sequence from before its query went out: a change its query missed moves the sequence
//! when its notification arrives, and the next lookup's check sees that. What the cache saves is
//! the lookup's query and the decoding of its rows: the check is one round trip that PostgreSQL
//! answers without reading a table.
//!
//! A notification cannot be missed unseen: nothing is kept or used unless the session is
//! connected and listening and the check answers within [`CHECK_TIMEOUT`]. When the session ends
//! (the database restarted, the network dropped it), the sequence moves, so nothing kept before
//! is used again, and the lookups go to the database until a new session listens.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_postgres::{AsyncMessage, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::direct::Key;

/// The channel migration 0019's triggers notify.
const CHANNEL: &str = "onyx_change";

/// The listening session's `application_name`.
pub const APPLICATION_NAME: &str = "onyx-id change listener";

/// How many lookups are kept at most; a full cache is emptied.
const KEPT_LOOKUPS: usize = 4096;

/// How long a lookup waits for its check before it reads the database instead; a session whose
/// check takes longer is taken for dead (a connection can die without closing).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// With no lookups to check, the session is still checked this often.
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long to wait before connecting again after a session failed or ended.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

pub struct Changes {
    config: Config,
    tls: MakeRustlsConnect,
    /// Moves on every notification, and whenever the session starts or ends.
    sequence: AtomicU64,
    /// A session is connected and listening: only then is anything kept or used.
    listening: AtomicBool,
    /// The listening task was started (lazily, by the first lookup: CLI commands that make no
    /// hot lookup open no session).
    started: AtomicBool,
    /// Checks sent on the session (counted before each is sent).
    sent: AtomicU64,
    /// Checks answered: the number of the last one (answers come in order).
    answered: watch::Sender<u64>,
    /// A lookup waits for a check not yet sent.
    wanted: Notify,
    kept: Mutex<Kept>,
    /// Lookups answered from what was kept.
    hits: AtomicU64,
}

#[derive(Default)]
struct Kept {
    /// The sequence `values` were read under.
    sequence: u64,
    values: HashMap<Key, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Changes {
    pub fn new(mut config: Config, tls: MakeRustlsConnect) -> Self {
        // So that operators (and the tests) can tell the session apart in pg_stat_activity.
        config.application_name(APPLICATION_NAME);
        Self {
            config,
            tls,
            sequence: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            started: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            answered: watch::Sender::new(0),
            wanted: Notify::new(),
            kept: Mutex::new(Kept::default()),
            hits: AtomicU64::new(0),
        }
    }

    /// The sequence now, while a session listens (`None` otherwise: then nothing is kept or
    /// used). A value read by a query sent after this call may be kept under it: a change the
    /// query did not see moves the sequence when its notification arrives, and a kept value is
    /// used only once a check has shown the sequence unmoved ([`Changes::checked`]). Starts the
    /// listening session on first use.
    pub fn sequence_now(self: &Arc<Self>) -> Option<u64> {
        if !self.started.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move { this.listen().await });
        }
        self.listening
            .load(Ordering::Acquire)
            .then(|| self.sequence.load(Ordering::Acquire))
    }

    /// Whether a value is kept for `key` under `sequence` (using it needs a check first).
    pub(super) fn holds(&self, key: &Key, sequence: u64) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.sequence == sequence && kept.values.contains_key(key)
    }

    /// The sequence once every change committed before this call has been noted; `None` when
    /// that cannot be known (no session listens, or the check did not answer in time).
    pub async fn checked(self: &Arc<Self>) -> Option<u64> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        // A check counted after this load is sent after it, so after this lookup began.
        let wanted = self.sent.load(Ordering::Acquire) + 1;
        let mut answered = self.answered.subscribe();
        self.wanted.notify_one();
        let waited = tokio::time::timeout(CHECK_TIMEOUT, answered.wait_for(|n| *n >= wanted)).await;
        if !matches!(waited, Ok(Ok(_))) || !self.listening.load(Ordering::Acquire) {
            return None;
        }
        Some(self.sequence.load(Ordering::Acquire))
    }

    /// The value kept for `key`, if it was read under `sequence` and nothing changed since.
    pub(super) fn get<V: Clone + 'static>(&self, key: &Key, sequence: u64) -> Option<V> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        // Values read under another sequence are never used (the next `keep` empties them).
        if kept.sequence != sequence || !self.unchanged_since(sequence) {
            return None;
        }
        let value = kept.values.get(key)?.downcast_ref::<V>()?.clone();
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(value)
    }

    /// Keeps `value`, read by a query sent under `sequence`, unless a change was noted since.
    pub(super) fn keep<V: Send + Sync + 'static>(&self, key: Key, sequence: u64, value: V) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if !self.unchanged_since(sequence) {
            return;
        }
        if kept.sequence != sequence || kept.values.len() >= KEPT_LOOKUPS {
            kept.values.clear();
            kept.sequence = sequence;
        }
        kept.values.insert(key, Arc::new(value));
    }

    fn unchanged_since(&self, sequence: u64) -> bool {
        self.listening.load(Ordering::Acquire) && self.sequence.load(Ordering::Acquire) == sequence
    }

    /// How many lookups were answered from what was kept.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn note_change(&self) {
        self.sequence.fetch_add(1, Ordering::AcqRel);
    }

    /// Keeps a listening session, reconnecting whenever it ends.
    async fn listen(self: Arc<Self>) {
        let mut logged_failure = false;
        loop {
            let outcome = self.session().await;
            // Nothing kept is used again, and nothing is kept until a new session listens.
            self.listening.store(false, Ordering::Release);
            self.note_change();
            match outcome {
                Err(e) if !logged_failure => {
                    tracing::warn!(error = %e, "the PostgreSQL change listener is not connected: hot lookups go to the database, nothing is cached, until it reconnects");
                    logged_failure = true;
                }
                Err(_) => {}
                Ok(()) => logged_failure = false,
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    /// One listening session, until it fails. `Ok` when it had listened (and then ended).
    async fn session(&self) -> Result<(), String> {
        let (client, mut connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        // The connection is driven here: its notifications move the sequence as they arrive,
        // before the answers that follow them are handed to the checks.
        let driver = async {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => self.note_change(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return format!("the connection failed: {e}"),
                    None => return "the connection closed".to_string(),
                }
            }
        };
        let checks = async {
            if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                return format!("LISTEN failed: {e}");
            }
            // Whatever was read before now is not used (the sequence moves), and from here on
            // every commit's notification arrives.
            self.note_change();
            self.listening.store(true, Ordering::Release);
            loop {
                // Wait for a lookup (or the idle interval), then answer every lookup waiting so
                // far with one check.
                let _ = tokio::time::timeout(IDLE_CHECK_EVERY, self.wanted.notified()).await;
                let number = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
                match tokio::time::timeout(CHECK_TIMEOUT, client.simple_query("")).await {
                    Ok(Ok(_)) => {
                        self.answered.send_replace(number);
                    }
                    Ok(Err(e)) => return format!("a check failed: {e}"),
                    Err(_) => {
                        return format!("a check went unanswered for {}s", CHECK_TIMEOUT.as_secs());
                    }
                }
            }
        };
        let why = tokio::select! {
            why = driver => why,
            why = checks => why,
        };
        if self.listening.load(Ordering::Acquire) {
            tracing::warn!(reason = %why, "the PostgreSQL change listener's session ended; reconnecting");
            Ok(())
        } else {
            Err(why)
        }
    }
}
