//! The shared pacer state against a real Postgres, with two connection pools standing for two processes. Every
//! assertion is about what the database handed out, so none depends on how fast the machine is.

use std::time::Duration;

use ferry_core::{ConnectionId, TenantId};
use ferry_db::Db;
use ferry_db::pacer::PacerKey;
use ferry_db::testing::TestDatabase;
use ferry_pacer::{DrivePacer, Grant, PacerPolicy};

async fn connection_of(db: &Db, tenant: &str, google_user: &str) -> ConnectionId {
    let tenant = TenantId(db.ensure_tenant(tenant).await.expect("tenant").id);
    ferry_db::testing::drive_connection(db, tenant, google_user).await.expect("connection")
}

async fn lease(db: &Db, policy: &PacerPolicy, connection: ConnectionId) -> Grant {
    db.change_drive_pacer(PacerKey::Connection(connection), policy.max_rate, |row, now| policy.lease(row, now, 5))
        .await
        .expect("lease")
        .expect("the connection exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_and_two_tenants_of_one_google_user_share_one_timeline() {
    let test = TestDatabase::create().await.expect("database");
    // The same Google user connected by two tenants; each "process" has its own pool.
    let first = connection_of(&test.db, "one", "sub-shared").await;
    let second = connection_of(&test.db, "two", "sub-shared").await;
    let other_user = connection_of(&test.db, "one", "sub-other").await;
    let process_a = Db::connect(&test.url, 2).expect("pool a");
    let process_b = Db::connect(&test.url, 2).expect("pool b");
    let policy = PacerPolicy { max_rate: 50.0, min_rate: 1.0, lease_window: Duration::from_millis(100) };

    let mut tasks = Vec::new();
    for (db, connection) in [(process_a.clone(), first), (process_b.clone(), second)] {
        for _ in 0..3 {
            let (db, policy) = (db.clone(), policy.clone());
            tasks.push(tokio::spawn(async move {
                let mut grants = Vec::new();
                for _ in 0..20 {
                    grants.push(lease(&db, &policy, connection).await);
                }
                grants
            }));
        }
    }
    let mut slots = Vec::new();
    for task in tasks {
        for grant in task.await.expect("leasing task") {
            assert_eq!((grant.granted, grant.interval), (5, Duration::from_millis(20)), "50/s in 100 ms batches");
            for n in 0..grant.granted {
                slots.push(grant.start_at + chrono::TimeDelta::milliseconds(20 * i64::from(n)));
            }
        }
    }
    // 6 leasers × 20 leases × 5 slots, no two closer than one interval: the user never goes past 50/s.
    slots.sort();
    assert_eq!(slots.len(), 600);
    for pair in slots.windows(2) {
        assert!(pair[1] - pair[0] >= chrono::TimeDelta::milliseconds(20), "{} then {}", pair[0], pair[1]);
    }
    let row = test.db.drive_pacer("google_drive:sub-shared").await.expect("read").expect("one row for the user");
    assert_eq!(row.leased, 600);

    // Another Google user has a timeline of its own: its first slot is due now.
    let elsewhere = lease(&process_a, &policy, other_user).await;
    assert_eq!(elsewhere.start_in, Duration::ZERO);
}

#[tokio::test]
async fn a_refusal_reported_by_one_process_holds_back_and_slows_the_other() {
    let test = TestDatabase::create().await.expect("database");
    let connection = connection_of(&test.db, "one", "sub-refused").await;
    let policy = PacerPolicy { max_rate: 40.0, min_rate: 1.0, lease_window: Duration::from_millis(100) };
    let process_b = Db::connect(&test.url, 2).expect("pool b");
    let before = lease(&process_b, &policy, connection).await;
    assert_eq!(before.interval, Duration::from_millis(25));

    // Process A's Drive call was refused with Retry-After: 30.
    let process_a = DrivePacer::new(Db::connect(&test.url, 2).expect("pool a"), policy.clone(), 5);
    process_a.refused(connection, Some(Duration::from_secs(30))).await;

    let after = lease(&process_b, &policy, connection).await;
    assert!(after.start_in >= Duration::from_secs(29), "process B waits out Retry-After: {:?}", after.start_in);
    // The cut starts from what was really leased (4 slots in well under a second), halved: far below 40/s.
    assert!(after.interval >= Duration::from_millis(50), "and runs at half the rate or less: {:?}", after.interval);
    let row = test.db.drive_pacer("google_drive:sub-refused").await.expect("read").expect("row");
    assert_eq!(row.refusals, 1);
    assert!(row.ceiling.is_some_and(|ceiling| ceiling <= 40.0), "{row:?}");
}

#[tokio::test]
async fn a_process_paces_itself_when_the_database_cannot_answer() {
    // Nothing listens on port 9: every lease fails fast, and the process falls back to its own rate.
    let unreachable = Db::connect("postgres://postgres@127.0.0.1:9/none", 1).expect("pool");
    let pacer = DrivePacer::new(unreachable, PacerPolicy::default(), 1000);
    let connection = ConnectionId::new();
    let limit = Duration::from_secs(30);
    tokio::time::timeout(limit, async {
        for _ in 0..20 {
            pacer.acquire(connection).await;
        }
        pacer.refused(connection, None).await;
        pacer.acquire(connection).await;
    })
    .await
    .expect("Drive calls are never held up by the pacer's database for long");
}
