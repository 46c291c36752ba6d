//! Ironic faults: Ironic killed in the middle of provisioning and started again. metalhost reports
//! the outage in the hosts' statuses, backs off (the time between retries of each host grows, at
//! least by its back-off), keeps running, and converges once Ironic is back.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::{ErrorType, OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ironic_outage_is_reported_then_provisioning_converges() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let mut docs = vec![secret("c")];
    for i in 0..3 {
        let mac = format!("  bootMACAddress: \"52:54:00:00:02:{i:02x}\"\n");
        docs.push(host(
            &format!("h{i}"),
            &format!("fake-hardware://h{i}"),
            "c",
            &live_iso(&lab.info.iso_url),
            &mac,
        ));
    }
    write(dir.path(), "hosts.yaml", &docs);
    let mut rt = runtime(&lab, dir.path());
    // get the hosts registered, then pull Ironic away
    let registered = rt
        .run_until(
            Duration::from_secs(60),
            |_| {},
            |rt| rt.statuses().all(|(_, s)| !s.provisioning.id.is_empty()),
        )
        .await;
    assert!(registered);
    lab.stop_ironic();
    let reported = rt
        .run_until(
            Duration::from_secs(60),
            |c| eprintln!("{c:?}"),
            |rt| {
                rt.statuses().count() == 3
                    && rt.statuses().all(|(_, s)| {
                        s.operational_status == OperationalStatus::Error
                            && s.error_message.contains("Ironic unreachable")
                            && s.error_type.is_some()
                    })
            },
        )
        .await;
    assert!(reported, "outage not reported: {:#?}", rt.statuses().collect::<Vec<_>>());
    // the back-off grows while Ironic is away: note when each host's error count goes up (the
    // check runs after every pass, so a retry is seen as it happens)
    let mut seen: BTreeMap<String, Vec<(u32, Instant)>> = BTreeMap::new();
    rt.run_until(
        Duration::from_secs(120),
        |_| {},
        |rt| {
            for (key, s) in rt.statuses() {
                let v = seen.entry(key.to_string()).or_default();
                if v.last().is_none_or(|(count, _)| *count != s.error_count) {
                    v.push((s.error_count, Instant::now()));
                }
            }
            seen.len() == 3 && seen.values().all(|v| v.len() >= 4)
        },
    )
    .await;
    for (key, v) in &seen {
        assert!(v.len() >= 4, "{key}: too few retries seen: {v:?}");
        // the first entry is when watching began, not a retry: intervals between retries only
        let gaps: Vec<(u32, Duration)> = v[1..].windows(2).map(|w| (w[0].0, w[1].1 - w[0].1)).collect();
        eprintln!("{key}: (error count, time to the next retry): {gaps:?}");
        for (count, gap) in &gaps {
            let backoff = metalhost_core::policy::backoff(*count);
            // a few ms of slack: the retry is timed from the end of the failed pass
            assert!(
                *gap >= backoff.mul_f64(0.9),
                "{key}: retried {gap:?} after error {count}, before its back-off of {backoff:?}: {gaps:?}"
            );
        }
        assert!(gaps.windows(2).all(|w| w[1].1 > w[0].1), "{key}: retry intervals do not grow: {gaps:?}");
        assert!(v.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{key}: one error per retry: {v:?}");
    }

    lab.start_ironic();
    settle(&mut rt, Duration::from_secs(180)).await;
    let ironic = ironic(&lab).await;
    assert_eq!(ironic.list_nodes().await.unwrap().len(), 3, "no duplicate nodes after the outage");
    for i in 0..3 {
        let st = status(&rt, &format!("h{i}"));
        assert_eq!(st.provisioning.state, ProvisioningState::Provisioned);
        assert_eq!(st.error_type, None::<ErrorType>);
        assert_eq!(node(&ironic, &format!("h{i}")).await.provision_state.as_str(), "active");
    }
}
