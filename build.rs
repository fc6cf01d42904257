//! Compiles `proto/` into Rust with protox (a pure-Rust protobuf compiler, so no system `protoc`)
//! and tonic-prost-build, and writes the encoded descriptor set that server reflection serves.

use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/bookstore/auth/v1/auth.proto",
    "proto/bookstore/book/v1/book.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // Source info keeps the proto comments, so `grpcurl describe` shows them.
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("bookstore_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
