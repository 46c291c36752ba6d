//! Ironic faults: Ironic killed in the middle of provisioning and started again. metalhost reports
//! the outage in the hosts' statuses, backs off, keeps running, and converges once Ironic is back.

mod common;

use std::time::Duration;

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
    // the back-off grows while Ironic is away
    let before: Vec<u32> = rt.statuses().map(|(_, s)| s.error_count).collect();
    rt.run_until(Duration::from_secs(20), |_| {}, |rt| rt.statuses().all(|(_, s)| s.error_count >= 2)).await;
    assert!(rt.statuses().zip(&before).all(|((_, s), b)| s.error_count >= *b));

    lab.start_ironic();
    settle(&mut rt, Duration::from_secs(180)).await;
    let ironic = ironic(&lab).await;
    assert_eq!(ironic.list_nodes().await.unwrap().len(), 3, "no duplicate nodes after the outage");
    for i in 0..3 {
        let st = status(&rt, &format!("h{i}"));
        assert_eq!(st.provisioning.state, ProvisioningState::Provisioned);
        assert_eq!(st.error_type, None::<ErrorType>);
        assert_eq!(node(&ironic, &format!("h{i}")).await.provision_state, "active");
    }
}
