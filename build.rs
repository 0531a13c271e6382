//! Compiles the XDP program (bpf/xdp_redirect.bpf.c) with clang and
//! libbpf-cargo into a skeleton that embeds the object in the binary.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;

const SRC: &str = "bpf/xdp_redirect.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("xdp_redirect.skel.rs");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    // The UAPI headers include <asm/types.h>, which Debian keeps under the
    // multiarch directory that clang -target bpf does not search.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Wall", "-Ibpf", multiarch.as_str()])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=bpf/xdp_redirect.h");
}
