//! The files in contrib/ name only metrics the exporter really serves, and parse.

use std::collections::BTreeSet;
use std::path::Path;

/// Every `dane_…` metric name in `text` (a name ends at the first character outside [a-z_]).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("dane_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// The quoted metric names in the exporter's source (`"dane_…"`).
fn served_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/monitor")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/monitor is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for name in metric_names(&text) {
                    if text.contains(&format!("\"{name}\"")) {
                        names.insert(name);
                    }
                }
            }
        }
    }
    names
}

fn contrib(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn contrib_names_only_metrics_the_exporter_serves() {
    let served = served_names();
    assert!(served.contains("dane_endpoint_match"), "{served:?}");
    for file in [
        "prometheus/dane-roll.rules.yml",
        "prometheus/dane-roll.rules.test.yml",
        "grafana/dane-roll.json",
    ] {
        let used = metric_names(&contrib(file));
        assert!(!used.is_empty(), "{file} names no metric");
        // A counter is registered under its family name; OpenMetrics serves it with `_total`.
        let unknown: Vec<_> = used
            .iter()
            .filter(|name| {
                !served.contains(*name)
                    && !name
                        .strip_suffix("_total")
                        .is_some_and(|family| served.contains(family))
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the exporter does not serve: {unknown:?}"
        );
    }
}

#[test]
fn the_dashboard_is_json_with_panels() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&contrib("grafana/dane-roll.json")).expect("the dashboard parses");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{}", panels.len());
    for p in panels {
        let expr = p["targets"][0]["expr"].as_str().unwrap_or_default();
        assert!(
            expr.contains("dane_"),
            "panel {} queries no dane-roll metric",
            p["title"]
        );
    }
}

#[test]
fn metric_names_are_cut_at_their_end() {
    let names = metric_names("max(dane_status) and xdane_no, dane_tlsa_ttl_seconds{host}");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["dane_status", "dane_tlsa_ttl_seconds"]
    );
}
