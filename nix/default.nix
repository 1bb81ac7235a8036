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
  kernel = self.callPackage ./kernel.nix {
    pname = "rust-kbd-lab-kernel";
    fragments = [../kernel/lab.config];
  };
  module = self.callPackage ./module.nix {};
  ssdt = self.callPackage ./ssdt.nix {};
  initramfs = self.callPackage ./initramfs.nix {};
  kunitKernel = self.callPackage ./kernel.nix {
    pname = "rust-kbd-lab-kunit-kernel";
    fragments = [../kernel/lab.config ../kernel/kunit.config];
  };
  kunitModule = self.callPackage ./module.nix {kernel = self.kunitKernel;};
  kunitInitramfs = self.callPackage ./initramfs.nix {module = self.kunitModule;};
  artifacts = self.callPackage ./artifacts.nix {};

  vm = self.callPackage ./vm.nix {};
  rustAnalyzerProject = self.callPackage ./rust-analyzer.nix {};
  devShell = self.callPackage ./dev-shell.nix {};

  vmTests = self.callPackage ./vm-tests.nix {};
  workspaceChecks = self.callPackage ./workspace-checks.nix {};
  nixFormat = self.callPackage ./nix-format.nix {};
})
