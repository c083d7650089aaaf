package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/speedia/host/updater/containers"
	"github.com/speedia/host/updater/daemon"
)

// HelperName is the container helper, installed next to the daemon.
const HelperName = "speedia-containers"

func newContainers(view func() daemon.View, log *slog.Logger) *containers.Exec {
	helper := "/usr/bin/" + HelperName
	if self, err := os.Executable(); err == nil {
		helper = filepath.Join(filepath.Dir(self), HelperName)
	}
	return &containers.Exec{Helper: helper, Dir: StateDir + "/containers", View: view, Log: log}
}
