//! The build steps. Each takes every input explicitly, so that the host
//! path (`cargo xtask build`, see [`crate::plan`]) and the flake (which runs
//! the single-step commands) run exactly the same code.

pub mod artifacts;
pub mod compile_fail;
pub mod doc;
pub mod initramfs;
pub mod kbuild;
pub mod kconfig;
pub mod kernel;
pub mod lint;
pub mod module;
pub mod patches;
pub mod ssdt;
pub mod strip_debug;
