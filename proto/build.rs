//! Compiles `vigie/v1/*.proto` with protox (pure Rust), so no system `protoc` is needed, and
//! generates the collector's view of `Ingest` (`ReceivedBatch`: each report as its bytes).

use tonic_prost_build::manual::{Builder, Method, Service};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["vigie/v1/agent.proto", "vigie/v1/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::VigieCodec")
        .compile_fds(fds)?;

    // Same service name, route and wire format as `vigie.v1.Ingest`; only the request type
    // differs. Written to `vigie.v1.Ingest.rs`, included as `vigie_proto::received`.
    let ingest = Service::builder()
        .name("Ingest")
        .package("vigie.v1")
        .method(
            Method::builder()
                .name("report")
                .route_name("Report")
                .input_type("crate::v1::ReceivedBatch")
                .output_type("crate::v1::ReportAck")
                .codec_path("crate::codec::VigieCodec")
                .build(),
        )
        .build();
    Builder::new()
        .build_client(false)
        .build_transport(false)
        .compile(&[ingest]);
    Ok(())
}
