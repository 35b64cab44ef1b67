//! The conformance tests catch mistakes in SOs and transforms: each seeded
//! mutant of the key-value example (`tests/build.rs`) must fail them, and
//! the unmutated copy must pass. Prints the mutation score.

include!(concat!(env!("OUT_DIR"), "/mutants.rs"));

#[test]
fn the_unmutated_copy_conforms() {
    let report = original::conformance().run();
    assert!(report.passed(), "{report}");
}

#[test]
fn every_seeded_mutant_is_caught() {
    let mut missed = Vec::new();
    for (name, what, conformance) in MUTANTS {
        let report = conformance().run();
        match report.failures.first() {
            Some(first) => eprintln!(
                "caught  {name} ({what}): v{} → v{} {}",
                first.from, first.to, first.property
            ),
            None => missed.push(format!("{name}: {what}\n{report}")),
        }
    }
    eprintln!(
        "mutation score: {} of {} mutants caught",
        MUTANTS.len() - missed.len(),
        MUTANTS.len()
    );
    assert!(
        MUTANTS.len() >= 6,
        "at least six seeded mutants, not {}",
        MUTANTS.len()
    );
    assert!(
        missed.is_empty(),
        "mutants not caught:\n{}",
        missed.join("\n")
    );
}
