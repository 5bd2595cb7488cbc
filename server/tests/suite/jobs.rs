//! Job queue semantics against a real PostgreSQL: exclusive claims, leases, backoff,
//! dead letters, revival, shutdown, wake-up by notification, and a crash mid-run.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::jobs::worker::{JobFailure, JobFuture, JobHandler, Worker, WorkerConfig};
use domain::jobs::{self, Backoff, FailOutcome};
use support::TestDb;
use tokio::sync::oneshot;

const KIND: &str = "test.echo";

fn kinds() -> Vec<String> {
    vec![KIND.to_owned()]
}

async fn enqueue_many(db: &TestDb, n: usize, max_attempts: i32) -> Vec<i64> {
    let mut conn = db.conn().await;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let payload = serde_json::json!({ "n": i });
        ids.push(
            jobs::enqueue(&mut conn, KIND, &payload, max_attempts)
                .await
                .expect("enqueue"),
        );
    }
    // As a service does once its transaction has committed.
    jobs::wake(&mut conn, KIND).await;
    ids
}

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed(Duration),
    FailRetryable,
    FailPermanent,
    Panic,
    Hang,
}

/// A handler that counts, per job, the attempts it started and the ones it finished.
#[derive(Clone)]
struct Probe {
    behaviour: Behaviour,
    started: Arc<Mutex<HashMap<i64, u32>>>,
    finished: Arc<Mutex<HashMap<i64, u32>>>,
}

impl Probe {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            started: Arc::default(),
            finished: Arc::default(),
        }
    }
    fn finished_total(&self) -> u32 {
        self.finished.lock().unwrap().values().sum()
    }
    fn started_count(&self) -> usize {
        self.started.lock().unwrap().len()
    }
}

impl JobHandler for Probe {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn run<'a>(&'a self, job: &'a jobs::Job) -> JobFuture<'a> {
        Box::pin(async move {
            *self.started.lock().unwrap().entry(job.id).or_default() += 1;
            let result = match self.behaviour {
                Behaviour::Succeed(d) => {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
                Behaviour::FailRetryable => Err(JobFailure::retryable("upstream said 503")),
                Behaviour::FailPermanent => Err(JobFailure::permanent("payload is invalid")),
                Behaviour::Panic => panic!("handler bug"),
                Behaviour::Hang => std::future::pending().await,
            };
            *self.finished.lock().unwrap().entry(job.id).or_default() += 1;
            result
        })
    }
}

fn config(id: &str) -> WorkerConfig {
    WorkerConfig {
        id: id.to_owned(),
        concurrency: 4,
        lease: Duration::from_secs(3),
        poll_interval: Duration::from_millis(100),
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn start(db: &TestDb, cfg: WorkerConfig, probe: Probe, listen: bool) -> Running {
    let (stop, stopped) = oneshot::channel();
    let url = listen.then(|| db.url.clone());
    let worker = Worker::new(db.pool(), url, cfg).handle(probe);
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task");
    }
}

/// Waits until no job is queued or running, or fails after `limit`.
async fn drain(db: &TestDb, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut conn = db.conn().await;
        let d = jobs::depth(&mut conn).await.expect("depth");
        if d.queued == 0 && d.running == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs still pending: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn statuses(db: &TestDb) -> HashMap<String, i64> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = db.conn().await;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT status, count(*) AS n FROM jobs GROUP BY status")
            .load(&mut conn)
            .await
            .expect("statuses");
    rows.into_iter().map(|r| (r.status, r.n)).collect()
}

#[tokio::test]
async fn concurrent_claims_never_overlap() {
    let db = TestDb::new().await;
    enqueue_many(&db, 300, 5).await;
    let pool = db.pool();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let mut conn = pool.get().await.expect("conn");
                let got = jobs::claim(
                    &mut conn,
                    &format!("w{w}"),
                    &kinds(),
                    Duration::from_secs(60),
                    7,
                )
                .await
                .expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "every job claimed");
    assert_eq!(unique.len(), 300, "no job claimed twice");
}

#[tokio::test]
async fn two_workers_run_each_job_exactly_once() {
    let db = TestDb::new().await;
    enqueue_many(&db, 200, 5).await;
    let probe = Probe::new(Behaviour::Succeed(Duration::from_millis(1)));
    let a = start(&db, config("a"), probe.clone(), false);
    let b = start(&db, config("b"), probe.clone(), false);
    drain(&db, Duration::from_secs(60)).await;
    a.shutdown().await;
    b.shutdown().await;
    let started = probe.started.lock().unwrap().clone();
    assert_eq!(started.len(), 200);
    assert!(started.values().all(|&n| n == 1), "a job ran twice");
    assert_eq!(statuses(&db).await.get("succeeded"), Some(&200));
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_take_the_job() {
    let db = TestDb::new().await;
    let id = enqueue_many(&db, 1, 5).await[0];
    let mut conn = db.conn().await;
    let lease = Duration::from_secs(2);

    let first = jobs::claim(&mut conn, "a", &kinds(), lease, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        jobs::claim(&mut conn, "b", &kinds(), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let taken = jobs::claim(&mut conn, "b", &kinds(), lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, id);
    assert_eq!(taken[0].attempts, 2, "the crashed attempt counts");

    assert!(
        !jobs::complete(&mut conn, id, "a").await.unwrap(),
        "the old owner cannot finish it"
    );
    assert!(!jobs::renew(&mut conn, id, "a", lease).await.unwrap());
    assert!(jobs::complete(&mut conn, id, "b").await.unwrap());
    assert_eq!(
        jobs::get(&mut conn, id).await.unwrap().unwrap().status,
        "succeeded"
    );
}

#[tokio::test]
async fn failures_back_off_then_dead_letter_and_retry_revives() {
    let db = TestDb::new().await;
    let id = enqueue_many(&db, 1, 3).await[0];
    let mut conn = db.conn().await;
    let backoff = Backoff {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(10),
    };
    let lease = Duration::from_secs(30);

    for attempt in 1..=3 {
        // Wait for the backoff to pass, then take the job again.
        let job = loop {
            let got = jobs::claim(&mut conn, "w", &kinds(), lease, 1)
                .await
                .unwrap();
            if let Some(j) = got.into_iter().next() {
                break j;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(job.attempts, attempt);
        let outcome = jobs::fail(
            &mut conn,
            id,
            "w",
            &format!("boom {attempt}"),
            true,
            backoff,
        )
        .await
        .unwrap();
        let after = jobs::get(&mut conn, id).await.unwrap().unwrap();
        if attempt < 3 {
            assert_eq!(outcome, FailOutcome::Retrying);
            assert_eq!(after.status, "queued");
            let delay = (after.run_at - after.updated_at).num_milliseconds() as f64;
            let full = 200.0 * 2f64.powi(attempt - 1);
            assert!(
                delay >= full * 0.5 - 1.0 && delay <= full + 1.0,
                "attempt {attempt}: delay {delay} ms outside [{}, {full}]",
                full * 0.5
            );
        } else {
            assert_eq!(outcome, FailOutcome::Dead);
            assert_eq!(after.status, "dead");
            assert_eq!(after.last_error.as_deref(), Some("boom 3"));
            assert!(after.finished_at.is_some());
        }
    }
    // Dead jobs are not claimed, and the operator can see them.
    assert!(
        jobs::claim(&mut conn, "w", &kinds(), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = jobs::list_dead(&mut conn, 10).await.unwrap();
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);

    assert!(jobs::retry_dead(&mut conn, id).await.unwrap());
    assert!(
        !jobs::retry_dead(&mut conn, id).await.unwrap(),
        "only dead jobs are revived"
    );
    let job = jobs::claim(&mut conn, "w", &kinds(), lease, 1)
        .await
        .unwrap();
    assert_eq!(job[0].attempts, 1, "a revived job gets fresh attempts");
    assert!(jobs::complete(&mut conn, id, "w").await.unwrap());
}

#[tokio::test]
async fn the_worker_retries_failures_and_dead_letters_permanent_ones_at_once() {
    let db = TestDb::new().await;
    let ids = enqueue_many(&db, 2, 3).await;
    let probe = Probe::new(Behaviour::FailRetryable);
    let w = start(&db, config("w"), probe.clone(), false);
    drain(&db, Duration::from_secs(30)).await;
    w.shutdown().await;
    for id in &ids {
        assert_eq!(
            probe.started.lock().unwrap()[id],
            3,
            "three attempts, then dead"
        );
    }
    assert_eq!(statuses(&db).await.get("dead"), Some(&2));

    let db = TestDb::new().await;
    let id = enqueue_many(&db, 1, 5).await[0];
    let probe = Probe::new(Behaviour::FailPermanent);
    let w = start(&db, config("w"), probe.clone(), false);
    drain(&db, Duration::from_secs(30)).await;
    w.shutdown().await;
    assert_eq!(
        probe.started.lock().unwrap()[&id],
        1,
        "no retry for a permanent error"
    );
    let mut conn = db.conn().await;
    let job = jobs::get(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(
        (job.status.as_str(), job.last_error.as_deref()),
        ("dead", Some("payload is invalid"))
    );
}

#[tokio::test]
async fn a_panicking_handler_fails_the_attempt_and_the_worker_goes_on() {
    let db = TestDb::new().await;
    let id = enqueue_many(&db, 1, 2).await[0];
    let w = start(&db, config("w"), Probe::new(Behaviour::Panic), false);
    drain(&db, Duration::from_secs(30)).await;
    w.shutdown().await;
    let mut conn = db.conn().await;
    let job = jobs::get(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(job.status, "dead");
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("the handler panicked"));
}

#[tokio::test]
async fn shutdown_hands_unfinished_jobs_back_uncounted() {
    let db = TestDb::new().await;
    let id = enqueue_many(&db, 1, 5).await[0];
    let probe = Probe::new(Behaviour::Hang);
    let mut cfg = config("w");
    cfg.shutdown_grace = Duration::from_millis(200);
    let w = start(&db, cfg, probe.clone(), false);
    while probe.started_count() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.shutdown().await;
    let mut conn = db.conn().await;
    let job = jobs::get(&mut conn, id).await.unwrap().unwrap();
    assert_eq!(job.status, "queued");
    assert_eq!(job.attempts, 0);
    assert_eq!(job.locked_by, None);
}

#[tokio::test]
async fn a_notification_wakes_an_idle_worker_before_its_next_poll() {
    let db = TestDb::new().await;
    let probe = Probe::new(Behaviour::Succeed(Duration::ZERO));
    let mut cfg = config("w");
    cfg.poll_interval = Duration::from_secs(120);
    let w = start(&db, cfg, probe.clone(), true);
    // Let it subscribe and go idle.
    tokio::time::sleep(Duration::from_millis(700)).await;
    enqueue_many(&db, 1, 5).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while probe.finished_total() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("woken by NOTIFY, not by the 120 s poll");
    w.shutdown().await;
}

#[tokio::test]
async fn a_worker_killed_mid_run_loses_nothing() {
    let db = TestDb::new().await;
    let ids = enqueue_many(&db, 500, 5).await;
    let probe = Probe::new(Behaviour::Succeed(Duration::from_millis(3)));

    let doomed = start(&db, config("doomed"), probe.clone(), false);
    // Let it get well into the run, then kill it without any chance to clean up.
    let kill_after = 50 + (std::process::id() % 150);
    while probe.finished_total() < kill_after {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.task.abort();
    let _ = doomed.task.await;
    let in_flight_at_kill = statuses(&db).await.get("running").copied().unwrap_or(0);
    assert!(
        in_flight_at_kill <= 4,
        "at most the concurrency limit was in hand"
    );

    let survivor = start(&db, config("survivor"), probe.clone(), false);
    drain(&db, Duration::from_secs(60)).await;
    survivor.shutdown().await;

    assert_eq!(
        statuses(&db).await,
        HashMap::from([("succeeded".to_owned(), 500)])
    );
    let started = probe.started.lock().unwrap().clone();
    for id in &ids {
        let runs = started.get(id).copied().unwrap_or(0);
        assert!(runs >= 1, "job {id} never ran");
    }
    // Only the jobs in hand at the crash may have run twice.
    let reruns: u32 = started.values().map(|&n| n - 1).sum();
    assert!(reruns as i64 <= in_flight_at_kill.max(4), "{reruns} reruns");
}
