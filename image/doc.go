// Package image will build Speedia host images from a host spec (KIWI root
// tree, disk assembly with go-diskfs). Nothing here yet: see the README's
// roadmap.
package image
