//! The Helm chart ships the CRDs the render crate defines, byte for byte.
//! `ASYA_UPDATE_GOLDEN=1 cargo nextest run -p asya-controller --test chart` rewrites them.

use std::path::Path;

#[test]
fn chart_crds_are_the_render_crates_crds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/asya/crds/asya.sh.yaml");
    let expected = asya_render::to_yaml_stream(&asya_render::crd::crds());
    if std::env::var("ASYA_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write chart CRDs");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale; regenerate with ASYA_UPDATE_GOLDEN=1 cargo nextest run -p asya-controller --test chart",
        path.display()
    );
}
