package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/speedia/host/updater/errkind"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{context.Canceled, 1},
		{fmt.Errorf("%w: bad time", errkind.Usage), 2},
		{errkind.Invalid, 2},
		{errkind.NothingToDo, 3},
		{exitError{exitNothing}, 3},
		{errkind.Busy, 4},
		{errkind.NotFound, 5},
		{errkind.Refused, 6},
		{errkind.Held, 6},
		{errkind.Bad, 6},
		{errkind.AccessDenied, 7},
		{errkind.NoDaemon, 8},
	}
	for _, tt := range tests {
		if got := exitCode(fmt.Errorf("Apply: %w", tt.err)); tt.err != nil && got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if exitCode(nil) != 0 {
		t.Error("nil is not success")
	}
}
