# One compile-fail directory of kernel/kernels.toml as a check: `xtask
# compile-fail`, the host path's own step, against the lab kernel's build
# tree. It passes only if the directory fails to build with exactly the
# expected rustc error codes and builds with FIXED=1 (its correct code).
{
  lib,
  kernelTreeCheck,
  kernel,
  entry,
}:
kernelTreeCheck {
  name = "compile-fail-${entry.name}";
  inherit kernel;
  dirs = [entry.dir];
  command = lib.concatStringsSep " " ([
      "compile-fail"
      "--out $NIX_BUILD_TOP/compile-fail"
    ]
    ++ map (code: "--error ${code}") entry.errors);
}
