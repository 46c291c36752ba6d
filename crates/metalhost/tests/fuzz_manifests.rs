//! Hostile manifests (proptest): arbitrary text, arbitrary YAML shapes and oversized files never
//! panic the manifest reader; every problem is reported with its file.

use metalhost::standalone::manifests::{MAX_MANIFEST_BYTES, Manifests};
use proptest::prelude::*;

fn load(text: &str) -> Manifests {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, text).unwrap();
    Manifests::load(&[file])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        let m = load(&text);
        for p in &m.problems {
            prop_assert!(p.contains("m.yaml"), "{p}");
        }
    }

    #[test]
    fn host_shaped_yaml_never_panics(
        name in "[a-z0-9.@/-]{0,20}",
        online in "(true|false|yes|1|\"x\"|\\[\\]|\\{\\})",
        address in "[a-z+:/0-9.\\[\\]-]{0,30}",
        format in "(live-iso|qcow2|raw|floppy|1|null)",
        extra in "(  [a-zA-Z]{1,10}: (\\{\\}|\\[\\]|[0-9]{1,3}|\"[a-z]{0,5}\")\n){0,3}",
    ) {
        let text = format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata:\n  name: \"{name}\"\nspec:\n  online: {online}\n  \
             bmc: {{address: \"{address}\", credentialsName: c}}\n  image: {{url: \"http://h/a.iso\", format: {format}}}\n{extra}"
        );
        let m = load(&text);
        // every document is accounted for: a host, a bad host or a problem
        prop_assert_eq!(m.hosts.len() + m.bad_hosts.len() + usize::from(!m.problems.is_empty() && m.hosts.is_empty() && m.bad_hosts.is_empty()), 1, "{}", text);
    }
}

#[test]
fn oversized_manifest_is_refused_not_read() {
    let big = "# filler\n".repeat((MAX_MANIFEST_BYTES as usize / 9) + 10);
    let m = load(&big);
    assert_eq!(m.problems.len(), 1);
    assert!(m.problems[0].contains("over the 4194304-byte limit; not read"), "{}", m.problems[0]);
}
