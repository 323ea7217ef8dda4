//! Compiles the C probes in `bpf/` with `clang -target bpf` into `OUT_DIR`. When clang is missing
//! or fails, the build still succeeds: the objects are left empty and the reason is compiled in
//! (`WIRELENS_PROBES_MISSING`), so the binary says at run time why there are no probes.

use std::path::PathBuf;
use std::process::Command;

const PROBES: [&str; 2] = ["tcp", "tls"];

fn main() {
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=WIRELENS_NO_PROBES");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // Installing clang (or libbpf's headers) after a build without probes must rebuild them. A
    // path that does not exist makes cargo rerun this script every time, which is cheap.
    let clang_path = if clang.contains('/') {
        clang.clone()
    } else {
        format!("/usr/bin/{clang}")
    };
    println!("cargo:rerun-if-changed={clang_path}");
    println!("cargo:rerun-if-changed=/usr/include/bpf/bpf_helpers.h");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut missing = String::new();
    if std::env::var_os("WIRELENS_NO_PROBES").is_some() {
        missing = "built with WIRELENS_NO_PROBES set".into();
    } else if arch != "x86_64" {
        missing = format!("the probes are written for x86_64 (pt_regs layout), not {arch}");
    }
    for name in PROBES {
        let obj = out.join(format!("{name}.bpf.o"));
        let _ = std::fs::remove_file(&obj);
        if missing.is_empty() {
            let result = Command::new(&clang)
                .args(["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Wall", "-Werror"])
                .arg("-I/usr/include/x86_64-linux-gnu")
                .arg("-c")
                .arg(format!("bpf/{name}.bpf.c"))
                .arg("-o")
                .arg(&obj)
                .output();
            match result {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    missing = format!(
                        "`{clang}` failed on bpf/{name}.bpf.c: {}",
                        String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("")
                    );
                    println!("cargo:warning=eBPF probes not built: {missing}");
                }
                Err(e) => {
                    missing = format!(
                        "`{clang}` was not found when wirelens was built ({e}); install clang and libbpf-dev and rebuild"
                    );
                    println!("cargo:warning=eBPF probes not built: {missing}");
                }
            }
        }
        if !missing.is_empty() {
            std::fs::write(&obj, []).expect("write an empty object");
        }
    }
    println!("cargo:rustc-env=WIRELENS_PROBES_MISSING={missing}");
}
