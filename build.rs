//! Release builds embed the dashboard from `frontend/dist`; refuse to build one without it rather than
//! ship a binary with no dashboard. Debug builds may lack it and say so at `/`.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=frontend/dist");
    println!("cargo:rerun-if-changed=build.rs");
    let built = Path::new("frontend/dist/index.html").exists();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if release && !built {
        panic!(
            "\n\nThe dashboard is not built: frontend/dist/index.html is missing.\n\
             Run `make frontend` (npm ci && npm run build in frontend/) before `cargo build --release`,\n\
             or use `make release`, which does both.\n"
        );
    }
}
