{
  description = "Rust-for-Linux PS/2 keyboard driver lab: kernel, module, SSDT, initramfs, VM and VM tests";

  inputs = {
    # nixos-unstable of 2026-08-13 (crane needs nixpkgs >= 26.05).
    nixpkgs.url = "github:NixOS/nixpkgs/0e251e24a4f24e036a084b6b4b2d2491af4167f4";
    # crane of 2026-08-03; it has no inputs of its own.
    crane.url = "github:ipetkov/crane/2c71e194474d13de031d729b729c968ddbe3507f";
  };

  outputs = {
    nixpkgs,
    crane,
    ...
  }: let
    inherit (nixpkgs) lib;
    # The pinned crane dropped compatibility with older Nix (its CHANGELOG,
    # "dropped compatibility for Nix versions below 2.31.2"); it does not
    # check, so the flake does.
    minimumNixVersion = "2.31.2";
    # x86_64-linux only. aarch64 is not supported: the driver does x86 port
    # I/O (the i8042 at 0x60/0x64) and the lab boots qemu-system-x86_64.
    systems = ["x86_64-linux"];
    labs = lib.genAttrs systems (system:
      import ./nix {
        pkgs = nixpkgs.legacyPackages.${system};
        inherit crane;
      });
    forAllSystems = f: builtins.mapAttrs (_: f) labs;
    # Every kernel of kernel/kernels.toml but the lab's own, whose pieces are
    # the unsuffixed packages: kernel-kunit, module-kunit, initramfs-kunit...
    otherKernels = lab:
      lib.concatMapAttrs (name: set:
        lib.optionalAttrs (name != "lab") {
          "kernel-${name}" = set.kernel;
          "module-${name}" = set.module;
          "initramfs-${name}" = set.initramfs;
        })
      lab.kernelSets;
  in
    assert lib.assertMsg (lib.versionAtLeast builtins.nixVersion minimumNixVersion)
    "rust-kbd-lab's flake needs Nix ${minimumNixVersion} or newer (the pinned crane does); this is Nix ${builtins.nixVersion}"; {
      packages = forAllSystems (lab:
        {
          inherit (lab.kernelSets.lab) kernel module initramfs;
          inherit (lab) ssdt vm;
          rust-analyzer-project = lab.rustAnalyzerProject;
          # The artifact directory: LAB_ARTIFACTS=$(nix build --print-out-paths).
          default = lab.artifacts;
        }
        // otherKernels lab);

      apps = forAllSystems (lab: {
        vm = {
          type = "app";
          program = "${lab.vm}/bin/rust-kbd-lab-vm";
          meta.description = "Boot the lab's VM (KVM if the host has hardware KVM, TCG otherwise)";
        };
      });

      # Derivations only (`nix flake check` refuses anything else).
      checks = forAllSystems (lab:
        {
          fmt = lab.cargoFmt;
          clippy = lab.cargoClippy;
          module-lint = lab.moduleLint;
          ra-check = lab.raCheck;
          test = lab.cargoTest;
          vm-tests = lab.vmTests;
          vm-tests-gdb = lab.vmTestsGdb;
          nix-format = lab.nixFormat;
        }
        # compile-fail-<name>: the exercises' Rust compile-fail tests.
        // lab.compileFailChecks);

      devShells = forAllSystems (lab: {default = lab.devShell;});

      formatter = forAllSystems (lab: lab.formatter);
    };
}
