//! metalhost beside upstream's baremetal-operator (BMO, built from its Go module by `scripts/bmo`):
//! the same N live-ISO BareMetalHosts on redfish-virtualmedia (sushy-tools), each run on a fresh
//! real Ironic behind the counting proxy and a fresh real control plane (audit log), the operator a
//! process with BMO's environment. The sides alternate which goes first (metalhost in the first
//! pair unless `--bmo-first`, so that one-pair runs can alternate across sessions); each run prints
//! its figures, then min and median per side and the ratios metalhost/BMO of the medians against the
//! targets. A side that does not finish within the time-out is reported with its reason and the
//! benchmark goes on.
//!
//!   cargo bench -p metalhost --bench vs_bmo -- [--hosts 20] [--repeats 3] [--idle-seconds 300]
//!       [--timeout-seconds S] [--bmo-first]

use std::time::Duration;

use metalhost_testlab::BmoBuild;

mod support;
use support::number;
use support::side_by_side::{Operator, Options, Run, run};

fn main() {
    let hosts = number("--hosts", 20).max(1) as usize;
    let repeats = number("--repeats", 3).max(1) as usize;
    let options = Options {
        hosts,
        idle: Duration::from_secs(number("--idle-seconds", 300)),
        timeout: Duration::from_secs(number("--timeout-seconds", 600 + 30 * hosts as u64)),
    };
    let bmo = BmoBuild::get();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_metalhost"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    eprintln!(
        "vs_bmo: {hosts} live-ISO hosts on redfish-virtualmedia, {repeats} runs each, metalhost {} vs baremetal-operator {}",
        env!("CARGO_PKG_VERSION"),
        bmo.version
    );
    let bmo_first = std::env::args().any(|a| a == "--bmo-first");
    let mut runs: Vec<Run> = Vec::new();
    let mut failures = Vec::new();
    for repeat in 0..repeats {
        let order = if repeat.is_multiple_of(2) != bmo_first {
            [Operator::Metalhost, Operator::Bmo]
        } else {
            [Operator::Bmo, Operator::Metalhost]
        };
        for operator in order {
            eprintln!("run {}/{repeats}: {}…", repeat + 1, operator.name());
            match run(operator, bin, &bmo, &rt, &options) {
                Ok(r) => {
                    print_run(&r);
                    runs.push(r);
                }
                Err(why) => {
                    println!("run {}/{repeats} {}: DID NOT FINISH: {why}", repeat + 1, operator.name());
                    failures.push(why);
                }
            }
        }
    }
    print_summary(&runs, &options);
    if !failures.is_empty() {
        println!("{} run(s) did not finish (above)", failures.len());
    }
}

fn print_run(r: &Run) {
    let n = r.n();
    println!(
        "{:<9} wall {:>7.1} s  p50 {:>6.1} s  p95 {:>6.1} s  Ironic/host {:>5.1}  idle Ironic/host/min {:>5.2}  \
         API/host {:>5.1} (writes {:>4.1})  status writes/state change {:>4.2}  CPU {:>5.1} s  RSS {:>5.1} MiB  \
         reprovision {:>5.1} s  delete {:>5.1} s",
        r.operator.name(),
        r.wall,
        r.percentile(50.0),
        r.percentile(95.0),
        r.ironic_to_provisioned() as f64 / n,
        r.ironic_idle,
        r.api_total() as f64 / n,
        r.api_writes() as f64 / n,
        r.status_writes as f64 / r.state_changes.max(1) as f64,
        r.cpu,
        r.peak_rss_mib,
        r.reprovision,
        r.delete
    );
    println!("          Ironic requests per host to provisioned, by kind:");
    for (kind, count) in &r.ironic {
        println!("            {kind:<44} {:>7.2}", *count as f64 / n);
    }
    println!("          API-server requests per host to provisioned, by kind:");
    for (kind, count) in &r.api {
        println!("            {kind:<44} {:>7.2}", *count as f64 / n);
    }
    println!("          Ironic calls for host-0: {}", r.calls.join(" → "));
}

/// A figure of a run, its name, and the target ratio metalhost/BMO of the medians (None: shown
/// only).
type Metric = (&'static str, fn(&Run) -> f64, Option<f64>);

fn metrics(hosts: usize) -> Vec<Metric> {
    let wall_target = if hosts >= 100 { 0.9 } else { 0.7 };
    vec![
        ("wall time to all provisioned (s)", |r| r.wall, Some(wall_target)),
        ("p50 host time to provisioned (s)", |r| r.percentile(50.0), None),
        ("p95 host time to provisioned (s)", |r| r.percentile(95.0), None),
        ("Ironic requests per host to provisioned", |r| r.ironic_to_provisioned() as f64 / r.n(), Some(0.7)),
        ("idle Ironic requests per host per minute", |r| r.ironic_idle, Some(0.1)),
        ("API requests per host to provisioned", |r| r.api_total() as f64 / r.n(), None),
        ("API writes per host to provisioned", |r| r.api_writes() as f64 / r.n(), Some(1.0)),
        ("status writes per state change", |r| r.status_writes as f64 / r.state_changes.max(1) as f64, None),
        ("idle API requests per host per minute", |r| r.api_idle, None),
        ("operator CPU seconds (whole run)", |r| r.cpu, Some(0.5)),
        ("operator peak RSS (MiB)", |r| r.peak_rss_mib, Some(0.5)),
        ("image URL edit to provisioned again (s)", |r| r.reprovision, None),
        ("deletion to Ironic node gone, p50 (s)", |r| r.delete, None),
    ]
}

fn min_median(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mid = values.len() / 2;
    let median =
        if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] };
    (values[0], median)
}

fn print_summary(runs: &[Run], o: &Options) {
    println!(
        "\n{} hosts, idle {} s, machine: {} cores; min / median of the finished runs",
        o.hosts,
        o.idle.as_secs(),
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!("{:<44} {:>19} {:>19} {:>8} {:>8}", "", "metalhost", "BMO", "ratio", "target");
    for (name, figure, target) in metrics(o.hosts) {
        let side = |op: Operator| {
            let mut v: Vec<f64> = runs.iter().filter(|r| r.operator == op).map(figure).collect();
            min_median(&mut v)
        };
        let (m, b) = (side(Operator::Metalhost), side(Operator::Bmo));
        let ratio = m.1 / b.1;
        let verdict = match target {
            Some(t) if ratio.is_nan() => format!("≤ {t} n/a (a side has no finished run)"),
            Some(t) if ratio <= t => format!("≤ {t} ok"),
            Some(t) => format!("≤ {t} MISSED"),
            None => String::new(),
        };
        println!(
            "{name:<44} {:>8.2} / {:>8.2} {:>8.2} / {:>8.2} {ratio:>8.2} {verdict:>8}",
            m.0, m.1, b.0, b.1
        );
    }
}
