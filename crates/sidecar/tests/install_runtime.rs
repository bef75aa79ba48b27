//! `asya-sidecar install-runtime --to DIR` (the init container of every actor pod).

use std::process::Command;

#[test]
fn install_runtime_writes_the_embedded_runtime_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("opt/asya");
    let out = Command::new(env!("CARGO_BIN_EXE_asya-sidecar"))
        .args(["install-runtime", "--to"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(target.join("asya_runtime.py")).unwrap();
    let source = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../runtime/asya_runtime.py"
    ))
    .unwrap();
    assert_eq!(written, source);
}

#[test]
fn missing_actor_name_exits_with_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_asya-sidecar"))
        .env_clear()
        .env("ASYA_NAMESPACE", "ns")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ASYA_ACTOR_NAME"));
}
