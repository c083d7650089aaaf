package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/speedia/host/kiwi"
)

// treeKey identifies the root tree a description prepares: every file of
// the description, except the image version, so a rebuild that changes only
// the version reuses the tree (the version is written at assembly).
func treeKey(desc, version string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "speedia-image tree v1\n")
	err := filepath.WalkDir(desc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(desc, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %o\n", rel, info.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %s\n", t)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if rel == "config.xml" {
				data = bytes.ReplaceAll(data, []byte("<version>"+version+"</version>"), []byte("<version/>"))
			}
			fmt.Fprintf(h, "%d\n", len(data))
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

const treeDone = ".speedia-tree-complete"

// keepTrees is how many prepared root trees the cache keeps.
const keepTrees = 2

// prepareTree returns a prepared root tree for the description, from the
// cache or made by KIWI. A tree is complete only once its marker exists.
func prepareTree(ctx context.Context, cache, desc, key string, date time.Time, log io.Writer, phase func(string)) (string, bool, error) {
	dir := filepath.Join(cache, "trees")
	tree := filepath.Join(dir, key)
	if _, err := os.Stat(filepath.Join(tree, treeDone)); err == nil {
		os.Chtimes(tree, time.Now(), time.Now()) // most recently used
		return tree, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	os.RemoveAll(tree) // an incomplete earlier attempt
	tmp := tree + ".tmp"
	os.RemoveAll(tmp)
	if err := kiwi.Prepare(ctx, desc, tmp, date, log, phase); err != nil {
		os.RemoveAll(tmp)
		return "", false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, treeDone), nil, 0o644); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, tree); err != nil {
		return "", false, err
	}
	pruneTrees(dir, key)
	return tree, false, nil
}

// pruneTrees removes all but the keepTrees most recently used trees.
func pruneTrees(dir, keep string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type tr struct {
		name string
		mod  time.Time
	}
	var trees []tr
	for _, d := range des {
		if fi, err := d.Info(); err == nil && d.IsDir() && filepath.Ext(d.Name()) == "" {
			trees = append(trees, tr{d.Name(), fi.ModTime()})
		}
	}
	sort.Slice(trees, func(i, j int) bool { return trees[i].mod.After(trees[j].mod) })
	for i, t := range trees {
		if i >= keepTrees && t.name != keep {
			os.RemoveAll(filepath.Join(dir, t.name))
		}
	}
}
