#!/usr/bin/env bash
# Installs what the tests need besides npm packages, from Debian's packages (run as root):
#   qemu-utils          qemu-img, to make and check qcow2 images
#   qemu-system-x86     the tiny real Linux guest the job tests stop and start
#   busybox-static cpio userland and initramfs of that guest (its kernel: apt-get download, at test time)
#   e2fsprogs           mkfs.ext4 / debugfs for the guest's disk
#   libvirt-clients     virsh, for the libvirt driver tests (test:/// URIs, no daemon)
#   restic borgbackup   the peers of the benchmark smoke test
#   time                GNU time, peak memory in the benchmark
#   tmux                the terminal dashboard test (send-keys, capture-pane)
#   chromium            the web UI tests (driven by playwright-core, headless)
#   libnbd-bin          nbdinfo and nbdcopy, real NBD clients of the export tests
#   ovmf                UEFI firmware: the boot test of an OVMF guest
#   ntfs-3g exfatprogs  NTFS and exFAT on the loop devices of the external-device tests (mkfs.ntfs, mkfs.exfat)
#   exfat-fuse          mounts exFAT where the kernel has no exfat driver
#   xfsprogs            xfs on the loop devices of the external-device and cold-snapshot tests (mkfs.xfs; the kernel mounts it)
#   btrfs-progs         btrfs on the loop devices of the cold-snapshot tests (mkfs.btrfs; reflink clones, as XFS reflink=1)
#   openssl             serve's own TLS certificate is made with it (also a runtime need; Debian ships it with ca-certificates)
#   iproute2            `ip netns` / veth / bridge: the cluster tests' nodes each in a network namespace (test/helpers/netns.ts;
#                       its commands enter it with nsenter, from util-linux, which Debian always has)
#   ceph-mon ceph-osd radosgw ceph-common
#                       the real S3 service of the object-storage tests: a one-node Ceph with radosgw on 127.0.0.1,
#                       started per test file by ../shared/tools/ceph-rgw-test-server.sh (test/helpers/radosgw.ts)
#   systemd             systemd-analyze: `calendar`, the reference expansion of the schedule tests, and
#                       `verify` of packaging/coldvault.service (test/packaging); no systemd as PID 1 needed
# Idempotent: packages already present are not fetched again.
set -euo pipefail
packages=(qemu-utils qemu-system-x86 busybox-static cpio e2fsprogs libvirt-clients restic borgbackup time tmux chromium ntfs-3g exfatprogs exfat-fuse xfsprogs btrfs-progs openssl iproute2 libnbd-bin ovmf ceph-mon ceph-osd radosgw ceph-common systemd)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-test-deps: run as root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "test dependencies present: ${packages[*]}"
