# The sources of a module directory of kernel/kernels.toml, as a store path:
# its Kbuild file and its C and Rust sources, not an editor's
# rust-project.json (./module.nix, ./module-lint.nix).
{lib}: dir:
lib.fileset.toSource {
  root = dir;
  fileset = lib.fileset.unions [
    (dir + "/Kbuild")
    (lib.fileset.fileFilter (file: lib.any file.hasExt ["rs" "c" "h"]) dir)
  ];
}
