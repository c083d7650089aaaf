// Package kiwi will hold the KIWI image descriptions and the kiwi-ng runner.
// Nothing here yet: see the README's roadmap.
package kiwi
