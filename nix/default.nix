# The lab's Nix expressions, one small file each, as a package scope over
# nixpkgs: every file here is called with callPackage and receives nixpkgs'
# packages and the lab's own ones (below) by name.
{
  pkgs,
  crane,
}:
pkgs.lib.makeScope pkgs.newScope (self: {
  craneLib = crane.mkLib pkgs;

  pins = self.callPackage ./pins.nix {};
  toolchain = self.callPackage ./toolchain.nix {};
  workspace = self.callPackage ./workspace.nix {};
  xtask = self.callPackage ./xtask.nix {};

  kernelSource = self.callPackage ./kernel-source.nix {};
  kernelList = self.callPackage ./kernels.nix {};
  # One set per kernel of kernel/kernels.toml: the kernel, the module
  # directories built against it and an initramfs holding those modules.
  kernelSets = pkgs.lib.listToAttrs (map (entry: {
      inherit (entry) name;
      value = rec {
        inherit (entry) name;
        kernel = self.callPackage ./kernel.nix {inherit (entry) name description fragments;};
        module = self.callPackage ./module.nix {
          inherit kernel;
          inherit (self.kernelList) moduleDirs;
        };
        initramfs = self.callPackage ./initramfs.nix {inherit module;};
      };
    })
    self.kernelList.kernels);
  ssdt = self.callPackage ./ssdt.nix {};
  artifacts = self.callPackage ./artifacts.nix {};

  vm = self.callPackage ./vm.nix {};
  kmake = self.callPackage ./kmake.nix {};
  rustAnalyzerProject = self.callPackage ./rust-analyzer.nix {kernel = self.kernelSets.lab.kernel;};
  devShell = self.callPackage ./dev-shell.nix {kernel = self.kernelSets.lab.kernel;};

  vmTests = self.callPackage ./vm-tests.nix {gdbTest = false;};
  vmTestsGdb = self.callPackage ./vm-tests.nix {gdbTest = true;};
  # A check running one xtask command against a kernel's build tree.
  kernelTreeCheck = self.callPackage ./kernel-tree-check.nix {};
  cargoFmt = self.callPackage ./cargo-fmt.nix {};
  cargoClippy = self.callPackage ./cargo-clippy.nix {};
  moduleLint = self.callPackage ./module-lint.nix {
    kernel = self.kernelSets.lab.kernel;
    inherit (self.kernelList) moduleDirs;
  };
  # One check per compile-fail directory, against the lab kernel, named
  # compile-fail-<name> (the flake's checks).
  compileFailChecks = pkgs.lib.listToAttrs (map (entry:
    pkgs.lib.nameValuePair "compile-fail-${entry.name}"
    (self.callPackage ./compile-fail.nix {
      kernel = self.kernelSets.lab.kernel;
      inherit entry;
    }))
  self.kernelList.compileFail);
  raCheck = self.callPackage ./ra-check.nix {
    kernel = self.kernelSets.lab.kernel;
    inherit (self.kernelList) moduleDirs;
  };
  cargoTest = self.callPackage ./cargo-test.nix {};
  formatter = self.callPackage ./formatter.nix {};
  nixFormat = self.callPackage ./nix-format.nix {};
})
