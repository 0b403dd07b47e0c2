//! The sources of a dataset combined by a manifest: each one's classes and share of every split.

use regimen_data::Lineage;

use crate::report::Check;

/// One line per source (where it is from, its class balance, how it split) and a WARN naming
/// every source that lands almost entirely in one split or whose features differ from the others'.
pub fn sources_check(lineage: &Lineage) -> Check {
    let lines: Vec<String> = lineage
        .sources
        .iter()
        .map(|s| {
            let classes: Vec<String> = s.classes.iter().map(|(class, n)| format!("{n} {class}")).collect();
            let classes = if classes.is_empty() { String::new() } else { format!(" ({})", classes.join(", ")) };
            let [train, val, test] = s.contributed;
            format!(
                "`{}` from {}: {} samples{classes}, train/val/test {train}/{val}/{test}",
                s.name, s.location, s.samples
            )
        })
        .collect();
    let summary = format!(
        "The dataset `{}` combines {} sources: {}.",
        lineage.manifest.name,
        lineage.sources.len(),
        lines.join("; ")
    );
    let check = if lineage.warnings.is_empty() {
        Check::pass("sources", summary)
    } else {
        Check::warn("sources", format!("{summary} {}", lineage.warnings.join(" ")))
            .with_advice("Fix the sources or the manifest's [split] so that every split sees every source.")
    };
    lineage.sources.iter().fold(check, |check, s| check.with(format!("{}.samples", s.name), s.samples))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use regimen_data::{Manifest, SourceRecord};

    use super::*;
    use crate::CheckStatus;

    fn record(name: &str, contributed: [usize; 3]) -> SourceRecord {
        SourceRecord {
            name: name.into(),
            location: format!("{name}.csv"),
            fingerprint: "f".into(),
            samples: contributed.iter().sum(),
            contributed,
            classes: BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]),
        }
    }

    #[test]
    fn every_source_is_listed_and_warnings_make_it_a_warn() {
        let manifest = Manifest { name: "two".into(), base_error: None, split: None, sources: Vec::new() };
        let mut lineage = Lineage {
            manifest,
            sources: vec![record("lab-a", [2, 1, 0]), record("lab-b", [3, 0, 0])],
            warnings: vec![],
        };
        let check = sources_check(&lineage);
        assert_eq!(check.status, CheckStatus::Pass);
        assert!(
            check.message.contains("`lab-a` from lab-a.csv: 3 samples (2 a, 1 b), train/val/test 2/1/0"),
            "{}",
            check.message
        );
        lineage.warnings.push("source `lab-b`: 3 of its 3 samples are in train".into());
        let check = sources_check(&lineage);
        assert_eq!(check.status, CheckStatus::Warn);
        assert!(check.message.contains("3 of its 3 samples are in train"));
    }
}
