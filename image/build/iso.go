package build

import (
	"context"
	"io"

	"github.com/speedia/host/image/iso"
	"github.com/speedia/host/image/spec"
)

// ISOLabel is the self-install ISO's volume ID; its installer finds the
// medium by it.
const ISOLabel = "SPEEDIA_INSTALL"

// writeISO makes the self-install ISO from the tree and the raw disk.
func writeISO(ctx context.Context, tree, raw, out string, s *spec.Spec, log io.Writer) error {
	return iso.Write(ctx, iso.Options{Tree: tree, Raw: raw, Out: out, Label: ISOLabel, Date: s.Date, KernelArgs: s.KernelArgs, Log: log})
}
