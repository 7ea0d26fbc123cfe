#![no_main]
//! `mcp_cockpit::fuzzing::prometheus_response`: see src/fuzzing.rs for what it parses and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_cockpit::fuzzing::prometheus_response(data));
