package patch

import (
	"context"
	"os"
	"strings"
	"testing"
)

// scripted is an Exec for the apk, dnf and zypper tests: each command
// line must be exactly one the test expects (so the argv is tested too),
// and answers with the recorded output and exit code.
type scripted struct {
	t       *testing.T
	answers map[string]answer
	ran     []string
	envs    [][]string
}

type answer struct {
	stdout, stderr string
	exit           int
}

func (s *scripted) exec(_ context.Context, argv, env []string) ([]byte, []byte, int, error) {
	line := strings.Join(argv, " ")
	s.ran = append(s.ran, line)
	s.envs = append(s.envs, env)
	a, ok := s.answers[line]
	if !ok {
		s.t.Errorf("unexpected command %q", line)
		return nil, nil, 127, nil
	}
	return []byte(a.stdout), []byte(a.stderr), a.exit, nil
}

func recording(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeFiles is a container root holding exactly these paths.
func fakeFiles(paths ...string) Files {
	return func(p string) ([]byte, error) {
		for _, q := range paths {
			if p == q {
				return nil, nil
			}
		}
		return nil, os.ErrNotExist
	}
}
