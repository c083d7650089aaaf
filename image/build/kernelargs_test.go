package build

import (
	"reflect"
	"testing"
)

func TestKernelArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"console=ttyS0,115200"}, []string{"console=ttyS0,115200", "panic=10"}},
		{nil, []string{"panic=10"}},
		{[]string{"quiet", "panic=60"}, []string{"quiet", "panic=60"}},
	}
	for _, tt := range tests {
		in := append([]string(nil), tt.in...)
		if got := KernelArgs(in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("KernelArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("KernelArgs changed its input: %q", in)
		}
	}
}
