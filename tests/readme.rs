//! README's settings table must list every flag the binary accepts, with its env var.

use std::process::Command;

#[test]
fn readme_lists_every_flag_with_its_env_var() {
    let help = Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"))
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8(help.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut checked = 0;
    for line in help.lines().map(str::trim) {
        let Some(flag) = line
            .strip_prefix("--")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        if flag == "help" || flag == "version" {
            continue;
        }
        let env = format!("MLFLOW_PROXY_{}", flag.replace('-', "_").to_uppercase());
        let row = format!("| `--{flag}` | `{env}` |");
        assert!(
            readme.contains(&row),
            "README's settings table lacks the row for --{flag}: {row}"
        );
        // `[env: NAME]` without a value where the value is secret (hide_env_values).
        assert!(
            help.contains(&format!("[env: {env}=")) || help.contains(&format!("[env: {env}]")),
            "--{flag} has no env var {env}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "parsed only {checked} flags from --help");
}
