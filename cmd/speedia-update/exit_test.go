package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/speedia/host/updater/client"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{context.Canceled, 1},
		{fmt.Errorf("%w: bad time", errUsage), 2},
		{client.ErrInvalidArgument, 2},
		{client.ErrNothingToDo, 3},
		{exitError{exitNothing}, 3},
		{client.ErrBusy, 4},
		{client.ErrNotFound, 5},
		{client.ErrRefused, 6},
		{client.ErrHeld, 6},
		{client.ErrBad, 6},
		{client.ErrAccessDenied, 7},
		{client.ErrNoDaemon, 8},
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
