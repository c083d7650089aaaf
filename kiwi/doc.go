// Package kiwi renders KIWI image descriptions from a host spec (templates
// for the Debian and MicroOS bases, embedded) and runs kiwi-ng: `system
// prepare` for the Debian root tree, `image info` to validate offline.
package kiwi
