// Command install-units installs Speedia host's binaries and unit files into
// a root tree: install-units -root DIR [BINARY...]. Used by `make install`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/speedia/host/units"
)

func main() {
	root := flag.String("root", "", "root directory to install into (required)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: install-units -root DIR [BINARY...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *root == "" {
		flag.Usage()
		os.Exit(2)
	}
	bins := map[string]string{}
	for _, b := range flag.Args() {
		bins[filepath.Base(b)] = b
	}
	if err := units.Install(*root, bins); err != nil {
		fmt.Fprintln(os.Stderr, "install-units:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "installed into %s; on a root that will boot, also run: journalctl --root=%s --update-catalog\n", *root, *root)
}
