package boot

import "testing"

func TestParseEntryName(t *testing.T) {
	tests := []struct {
		name string
		want entryName
		ok   bool
	}{
		{"speedia-5.conf", entryName{5, -1, 0}, true},
		{"speedia-5+3.conf", entryName{5, 3, 0}, true},
		{"speedia-5+2-1.conf", entryName{5, 2, 1}, true},
		{"speedia-5+0-3.conf", entryName{5, 0, 3}, true},
		{"speedia-12+0.conf", entryName{12, 0, 0}, true},
		{"speedia-5+03.conf", entryName{5, 3, 0}, true},
		{"SPEEDIA-7+1.CONF", entryName{7, 1, 0}, true}, // FAT may show it so
		{"speedia-5+.conf", entryName{}, false},
		{"speedia-5+3-.conf", entryName{}, false},
		{"speedia-5+a.conf", entryName{}, false},
		{"speedia-5+3-1-2.conf", entryName{}, false}, // counter must run to the suffix
		{"speedia-5+99999999999.conf", entryName{}, false},
		{"speedia-5-3.conf", entryName{}, false},
		{"speedia-05.conf", entryName{}, false},
		{"speedia-+5.conf", entryName{}, false},
		{"speedia-0.conf", entryName{}, false},
		{"speedia--1.conf", entryName{}, false},
		{"speedia-.conf", entryName{}, false},
		{"speedia-x.conf", entryName{}, false},
		{"speedia-5.efi", entryName{}, false},
		{"speedia-5.conf.tmp-123", entryName{}, false},
		{".speedia-5+3.conf.tmp-123", entryName{}, false},
		{"debian-6.1.0-13-amd64.conf", entryName{}, false},
		{"speedia.conf", entryName{}, false},
		{".conf", entryName{}, false},
		{"", entryName{}, false},
	}
	for _, tt := range tests {
		got, ok := parseEntryName(tt.name)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseEntryName(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEntryNameRoundTrip(t *testing.T) {
	tests := []struct {
		n     entryName
		file  string
		state State
	}{
		{entryName{5, -1, 0}, "speedia-5.conf", StateGood},
		{entryName{5, 3, 0}, "speedia-5+3.conf", StateIndeterminate},
		{entryName{5, 1, 2}, "speedia-5+1-2.conf", StateIndeterminate},
		{entryName{5, 0, 3}, "speedia-5+0-3.conf", StateBad},
		{entryName{10, 0, 0}, "speedia-10+0.conf", StateBad},
	}
	for _, tt := range tests {
		if got := tt.n.String(); got != tt.file {
			t.Errorf("%+v.String() = %q, want %q", tt.n, got, tt.file)
		}
		if got := tt.n.state(); got != tt.state {
			t.Errorf("%+v.state() = %q, want %q", tt.n, got, tt.state)
		}
		if back, ok := parseEntryName(tt.file); !ok || back != tt.n {
			t.Errorf("parseEntryName(%q) = %+v, %v", tt.file, back, ok)
		}
	}
}
