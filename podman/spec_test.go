package podman

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
)

// The fixtures are Podman 4.3's inspect output (podman/testdata), made with
//
//	podman import --change 'CMD ["httpd","-f","-p","8080","-h","/www"]' --change 'ENV SPEEDIA_IMAGE_VERSION=1' \
//	  --change 'ENV PATH=/bin' --change 'LABEL version=1' --change 'WORKDIR /www' - localhost/fix:1
//	podman create --name full -e USER_SET=1 -l app=site -l speedia.critical=true --restart on-failure:3 \
//	  -p 18080:8080 -v data:/data -v /tmp/pq/bind:/x:ro --tmpfs /run:size=10m --memory 64m --cpus 0.5 \
//	  --pids-limit 100 --stop-timeout 7 --init --cap-add NET_ADMIN --health-cmd 'wget -q -O- http://127.0.0.1:8080/VERSION' \
//	  --health-interval 5s --user 1000 --hostname web1 --dns 9.9.9.9 --add-host db:10.0.0.2 \
//	  --security-opt no-new-privileges localhost/fix:1
//	podman create --name plain localhost/fix:1
//	podman create --name cmd --entrypoint /bin/sh localhost/fix:1 -c 'exec httpd -f -p 8080'
func fixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func oldImage(t *testing.T) imageDefaults {
	var img types.ImageInspectReport
	fixture(t, "image.inspect.json", &img)
	return defaultsOf(&img)
}

func TestSpecKeepsWhatTheAdminSet(t *testing.T) {
	var old define.InspectContainerData
	fixture(t, "full.inspect.json", &old)
	s, notes, err := specFor(&old, oldImage(t), "localhost/fix:2")
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 0 {
		t.Errorf("notes = %q", notes)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("name", s.Name, "full")
	check("image", s.Image, "localhost/fix:2")
	// Only the admin's variable: the image's and Podman's own come new.
	check("env", s.Env, map[string]string{"USER_SET": "1"})
	check("labels", s.Labels, map[string]string{"app": "site", "speedia.critical": "true"})
	check("command", s.Command, []string(nil))
	check("workdir", s.WorkDir, "")
	check("user", s.User, "1000")
	check("hostname", s.Hostname, "web1")
	check("restart", s.RestartPolicy, "on-failure")
	check("retries", *s.RestartRetries, uint(3))
	check("stop timeout", *s.StopTimeout, uint(7))
	check("init", *s.Init, true)
	check("caps", s.CapAdd, []string{"CAP_NET_ADMIN"})
	check("no new privileges", *s.NoNewPrivileges, true)
	check("memory", *s.ResourceLimits.Memory.Limit, int64(64<<20))
	check("cpu quota", *s.ResourceLimits.CPU.Quota, int64(50000))
	check("pids", s.ResourceLimits.Pids.Limit, int64(100))
	check("health", s.HealthConfig.Test, []string{"CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/VERSION"})
	check("ports", len(s.PortMappings), 1)
	check("port", [3]any{s.PortMappings[0].HostPort, s.PortMappings[0].ContainerPort, s.PortMappings[0].Protocol}, [3]any{uint16(18080), uint16(8080), "tcp"})
	check("dns", s.DNSServers[0].String(), "9.9.9.9")
	check("hosts", s.HostAdd, []string{"db:10.0.0.2"})
	check("volumes", len(s.Volumes), 1)
	check("volume", [3]any{s.Volumes[0].Name, s.Volumes[0].Dest, s.Volumes[0].Options}, [3]any{"data", "/data", []string{"nosuid", "nodev"}})
	check("mounts", len(s.Mounts), 2)
	check("bind", [3]any{s.Mounts[0].Source, s.Mounts[0].Destination, s.Mounts[0].Options}, [3]any{"/tmp/pq/bind", "/x", []string{"ro", "rprivate", "rbind"}})
	check("tmpfs", [2]any{s.Mounts[1].Type, s.Mounts[1].Destination}, [2]any{"tmpfs", "/run"})
	check("ulimits", [3]any{s.Rlimits[0].Type, s.Rlimits[0].Soft, s.Rlimits[0].Hard}, [3]any{"nofile", uint64(20000), uint64(20000)})
	check("networks", len(s.Networks), 1)
	if _, ok := s.Networks["podman"]; !ok {
		t.Errorf("networks = %v, want podman", s.Networks)
	}
	if a := s.Networks["podman"].Aliases; len(a) != 0 {
		t.Errorf("the old container's ID alias is carried over: %v", a)
	}
}

func TestSpecImageDefaultsComeFromTheNewImage(t *testing.T) {
	var old define.InspectContainerData
	fixture(t, "plain.inspect.json", &old)
	s, _, err := specFor(&old, oldImage(t), "localhost/fix:2")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Env) != 0 || len(s.Labels) != 0 || s.Command != nil || s.Entrypoint != nil || s.WorkDir != "" || s.User != "" || s.HealthConfig != nil || s.Hostname != "" {
		t.Errorf("a container that only used its image's defaults carries %+v", s)
	}
	if s.RestartPolicy != "" {
		t.Errorf("restart = %q", s.RestartPolicy)
	}
}

func TestSpecKeepsACommandOfItsOwn(t *testing.T) {
	var old define.InspectContainerData
	fixture(t, "cmd.inspect.json", &old)
	s, _, err := specFor(&old, oldImage(t), "localhost/fix:2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Entrypoint, []string{"/bin/sh"}) || !reflect.DeepEqual(s.Command, []string{"-c", "exec httpd -f -p 8080"}) {
		t.Errorf("entrypoint %q command %q", s.Entrypoint, s.Command)
	}
}

func TestSpecRefusesWhatItCannotCarry(t *testing.T) {
	var old define.InspectContainerData
	fixture(t, "plain.inspect.json", &old)
	old.Mounts = append(old.Mounts, define.InspectMount{Type: "image", Destination: "/img"})
	if _, _, err := specFor(&old, oldImage(t), "x"); err == nil {
		t.Error("an image mount was accepted; it would be dropped silently")
	}
	old.Mounts = nil
	old.HostConfig.PortBindings = map[string][]define.InspectHostPort{"80/tcp": {{HostPort: "eighty"}}}
	if _, _, err := specFor(&old, oldImage(t), "x"); err == nil {
		t.Error("a bad host port was accepted")
	}
}
