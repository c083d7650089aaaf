// Package version is the Speedia host release the binaries belong to. The
// Makefile may set it at link time (-X); images record it in manifest.json.
package version

// Version of the speedia binaries.
var Version = "0.5.0"
