#![no_main]
//! `mcp_cockpit::fuzzing::sse_request`: see src/fuzzing.rs for what it parses and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_cockpit::fuzzing::sse_request(data));
