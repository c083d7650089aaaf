// Package vmhost runs Speedia host's whole promise on a booted virtual
// machine: the Debian host image built by speedia-image from an example
// spec, booted in QEMU (TCG, OVMF) with a config drive, with containers
// that serve HTTP from named volumes, and OS updates offered by a local apt
// repository that the guest reaches through QEMU's user network (the host's
// 127.0.0.1 is 10.0.2.2 there).
//
// The e2e tier (Cycle), `make demo VM=1` (Cycle) and the patch-downtime
// benchmark (Boot and the Host methods) use it. Everything needs root, QEMU
// and network access to Debian's archive (for the kernel update).
package vmhost
