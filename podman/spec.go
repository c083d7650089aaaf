package podman

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"
	"go.podman.io/image/v5/manifest"
	"golang.org/x/sys/unix"
)

// imageDefaults is what an image sets for the containers made from it.
type imageDefaults struct {
	Env        []string
	Cmd        []string
	Entrypoint []string
	WorkDir    string
	User       string
	StopSignal string
	Labels     map[string]string
	Health     *manifest.Schema2HealthConfig
}

// Variables Podman sets itself in every container (and TERM=xterm); the
// new container gets its own.
var podmanEnv = map[string]bool{"HOSTNAME": true, "container": true}

// specFor is the spec of a container that replaces old and runs image:
// everything the admin set on old is kept, and where old only used its
// image's defaults (command, env, labels, health check, ...) the new
// image's defaults apply. notes name settings that are not carried over.
func specFor(old *define.InspectContainerData, oldImg imageDefaults, image string) (*specgen.SpecGenerator, []string, error) {
	cfg, hc := old.Config, old.HostConfig
	if cfg == nil || hc == nil {
		return nil, nil, fmt.Errorf("container %s: inspect data has no configuration", old.Name)
	}
	var notes []string
	s := specgen.NewSpecGenerator(image, false)
	s.Name = old.Name
	s.Pod = old.Pod

	// What the admin chose, told apart from the old image's defaults.
	s.Env = map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if podmanEnv[k] || kv == "TERM=xterm" || slices.Contains(oldImg.Env, kv) {
			continue
		}
		s.Env[k] = v
	}
	if !sameWords(cfg.Entrypoint, oldImg.Entrypoint) {
		s.Entrypoint = cfg.Entrypoint
		s.Command = cfg.Cmd // an entrypoint of one's own resets the image's command
	} else if !slices.Equal(cfg.Cmd, oldImg.Cmd) {
		s.Command = cfg.Cmd
	}
	if cfg.WorkingDir != oldImg.WorkDir && cfg.WorkingDir != "/" {
		s.WorkDir = cfg.WorkingDir
	}
	if cfg.User != oldImg.User {
		s.User = cfg.User
	}
	s.Labels = map[string]string{}
	for k, v := range cfg.Labels {
		if iv, ok := oldImg.Labels[k]; ok && iv == v {
			continue
		}
		s.Labels[k] = v
	}
	if cfg.Healthcheck != nil && !reflect.DeepEqual(cfg.Healthcheck, oldImg.Health) {
		s.HealthConfig = cfg.Healthcheck
		if a, err := define.ParseHealthCheckOnFailureAction(cfg.HealthcheckOnFailureAction); err == nil {
			s.HealthCheckOnFailureAction = a
		}
	}
	if sig, err := parseSignal(cfg.StopSignal); err == nil && sig != 0 && sig != syscall.SIGTERM {
		if is, _ := parseSignal(oldImg.StopSignal); is != sig {
			s.StopSignal = &sig
		}
	}
	if cfg.StopTimeout > 0 {
		t := cfg.StopTimeout
		s.StopTimeout = &t
	}
	s.Timeout = cfg.Timeout
	if cfg.Hostname != "" && !strings.HasPrefix(old.ID, cfg.Hostname) {
		s.Hostname = cfg.Hostname
	}
	s.Terminal = boolp(cfg.Tty)
	s.Stdin = boolp(cfg.OpenStdin)
	s.Timezone = cfg.Timezone
	if cfg.Umask != "" && cfg.Umask != "0022" {
		s.Umask = cfg.Umask
	}
	for _, sec := range cfg.Secrets {
		s.Secrets = append(s.Secrets, specgen.Secret{Source: sec.Name, UID: sec.UID, GID: sec.GID, Mode: sec.Mode})
	}

	if rp := hc.RestartPolicy; rp != nil && rp.Name != "" && rp.Name != "no" {
		s.RestartPolicy = rp.Name
		if rp.Name == "on-failure" && rp.MaximumRetryCount > 0 {
			n := rp.MaximumRetryCount
			s.RestartRetries = &n
		}
	}
	s.Init = boolp(hc.Init)
	s.Privileged = boolp(hc.Privileged)
	s.ReadOnlyFilesystem = boolp(hc.ReadonlyRootfs)
	s.CapAdd, s.CapDrop, s.Groups = hc.CapAdd, hc.CapDrop, hc.GroupAdd
	s.VolumesFrom = hc.VolumesFrom
	s.DependencyContainers = old.Dependencies
	s.CgroupParent = hc.CgroupParent
	if hc.OomScoreAdj != 0 {
		o := hc.OomScoreAdj
		s.OOMScoreAdj = &o
	}
	if hc.ShmSize > 0 {
		sz := hc.ShmSize
		s.ShmSize = &sz
	}
	for _, opt := range hc.SecurityOpt {
		switch {
		case opt == "no-new-privileges" || opt == "no-new-privileges:true":
			s.NoNewPrivileges = boolp(true)
		case strings.HasPrefix(opt, "seccomp="):
			s.SeccompProfilePath = strings.TrimPrefix(opt, "seccomp=")
		case strings.HasPrefix(opt, "apparmor="):
			s.ApparmorProfile = strings.TrimPrefix(opt, "apparmor=")
		case strings.HasPrefix(opt, "label="):
			s.SelinuxOpts = append(s.SelinuxOpts, strings.TrimPrefix(opt, "label="))
		default:
			notes = append(notes, "security option "+opt+" is not carried over")
		}
	}
	for _, d := range hc.Devices {
		path := d.PathOnHost + ":" + d.PathInContainer
		if d.CgroupPermissions != "" {
			path += ":" + d.CgroupPermissions
		}
		s.Devices = append(s.Devices, spec.LinuxDevice{Path: path})
	}
	for _, u := range hc.Ulimits {
		// Inspect says RLIMIT_NOFILE; Podman adds the prefix itself.
		name := strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))
		s.Rlimits = append(s.Rlimits, spec.POSIXRlimit{Type: name, Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	if lc := hc.LogConfig; lc != nil && lc.Type != "" {
		s.LogConfiguration = &specgen.LogConfig{Driver: lc.Type, Options: lc.Config}
		if lc.Tag != "" {
			if s.LogConfiguration.Options == nil {
				s.LogConfiguration.Options = map[string]string{}
			}
			s.LogConfiguration.Options["tag"] = lc.Tag
		}
	}
	s.ResourceLimits = resources(hc)
	for k, v := range hc.Annotations {
		if !strings.HasPrefix(k, "io.podman.annotations.") && !strings.HasPrefix(k, "io.container.manager") &&
			!strings.HasPrefix(k, "org.opencontainers.") && !strings.HasPrefix(k, "io.kubernetes.cri-o.") {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[k] = v
		}
	}

	mounts, vols, err := storage(old)
	if err != nil {
		return nil, nil, err
	}
	s.Mounts, s.Volumes = mounts, vols

	if err := namespaces(s, old); err != nil {
		return nil, nil, err
	}
	if old.Pod == "" {
		ports, err := portMappings(hc.PortBindings)
		if err != nil {
			return nil, nil, fmt.Errorf("container %s: %w", old.Name, err)
		}
		s.PortMappings = ports
		for _, d := range hc.Dns {
			if ip := net.ParseIP(d); ip != nil {
				s.DNSServers = append(s.DNSServers, ip)
			}
		}
		s.DNSSearch, s.DNSOptions, s.HostAdd = hc.DnsSearch, hc.DnsOptions, hc.ExtraHosts
	}
	// Podman validates the spec on create, after filling in its defaults.
	return s, notes, nil
}

func boolp(b bool) *bool { return &b }

// sameWords compares entrypoints as words: Podman 4 reports a container's
// entrypoint as one space-joined string.
func sameWords(a, b []string) bool {
	return strings.Join(strings.Fields(strings.Join(a, " ")), " ") == strings.Join(strings.Fields(strings.Join(b, " ")), " ")
}

func parseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func resources(hc *define.InspectContainerHostConfig) *spec.LinuxResources {
	var r spec.LinuxResources
	set := false
	if hc.Memory > 0 || hc.MemorySwap > 0 || hc.MemoryReservation > 0 {
		r.Memory = &spec.LinuxMemory{}
		if hc.Memory > 0 {
			r.Memory.Limit = &hc.Memory
		}
		if hc.MemorySwap > 0 {
			r.Memory.Swap = &hc.MemorySwap
		}
		if hc.MemoryReservation > 0 {
			r.Memory.Reservation = &hc.MemoryReservation
		}
		set = true
	}
	if hc.CpuShares > 0 || hc.CpuQuota > 0 || hc.CpuPeriod > 0 || hc.CpusetCpus != "" || hc.CpusetMems != "" || hc.NanoCpus > 0 {
		r.CPU = &spec.LinuxCPU{Cpus: hc.CpusetCpus, Mems: hc.CpusetMems}
		if hc.CpuShares > 0 {
			r.CPU.Shares = &hc.CpuShares
		}
		quota, period := hc.CpuQuota, hc.CpuPeriod
		if hc.NanoCpus > 0 && quota == 0 {
			period = 100000
			quota = hc.NanoCpus * int64(period) / 1e9
		}
		if quota > 0 {
			r.CPU.Quota = &quota
		}
		if period > 0 {
			r.CPU.Period = &period
		}
		set = true
	}
	if hc.PidsLimit > 0 {
		r.Pids = &spec.LinuxPids{Limit: hc.PidsLimit}
		set = true
	}
	if !set {
		return nil
	}
	return &r
}

// storage carries named volumes, bind mounts and tmpfs mounts.
func storage(old *define.InspectContainerData) ([]spec.Mount, []*specgen.NamedVolume, error) {
	var mounts []spec.Mount
	var vols []*specgen.NamedVolume
	for _, m := range old.Mounts {
		opts := slices.Clone(m.Options)
		opts = slices.DeleteFunc(opts, func(o string) bool { return o == "rw" || o == "ro" || o == "rbind" || o == "bind" })
		if !m.RW {
			opts = append(opts, "ro")
		}
		switch m.Type {
		case "volume":
			vols = append(vols, &specgen.NamedVolume{Name: m.Name, Dest: m.Destination, Options: opts})
		case "bind":
			if m.Propagation != "" && !slices.Contains(opts, m.Propagation) {
				opts = append(opts, m.Propagation)
			}
			mounts = append(mounts, spec.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: append(opts, "rbind")})
		default:
			return nil, nil, fmt.Errorf("container %s: mount of type %q at %s cannot be carried over", old.Name, m.Type, m.Destination)
		}
	}
	dests := make([]string, 0, len(old.HostConfig.Tmpfs))
	for d := range old.HostConfig.Tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		var opts []string
		if o := old.HostConfig.Tmpfs[d]; o != "" {
			opts = strings.Split(o, ",")
		}
		mounts = append(mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: d, Options: opts})
	}
	return mounts, vols, nil
}

// namespaces carries the network and other namespace modes; a container
// in a pod takes the pod's.
func namespaces(s *specgen.SpecGenerator, old *define.InspectContainerData) error {
	if old.Pod != "" {
		return nil
	}
	hc := old.HostConfig
	netMode := hc.NetworkMode
	var nets []string
	if netMode == "bridge" && old.NetworkSettings != nil {
		for name := range old.NetworkSettings.Networks {
			nets = append(nets, name)
		}
		sort.Strings(nets)
	}
	if netMode != "" && netMode != "default" {
		arg := []string{netMode}
		if len(nets) > 0 {
			arg = nets
		}
		ns, networks, opts, err := specgen.ParseNetworkFlag(arg)
		if err != nil {
			return fmt.Errorf("container %s: network mode %q: %w", old.Name, netMode, err)
		}
		for name, o := range networks {
			if old.NetworkSettings != nil {
				if n, ok := old.NetworkSettings.Networks[name]; ok && n != nil {
					o.Aliases = slices.DeleteFunc(slices.Clone(n.Aliases), func(a string) bool { return strings.HasPrefix(old.ID, a) })
				}
			}
			networks[name] = o
		}
		s.NetNS, s.Networks, s.NetworkOptions = ns, networks, opts
	}
	for _, x := range []struct {
		mode  string
		dst   *specgen.Namespace
		parse func(string) (specgen.Namespace, error)
	}{
		{hc.PidMode, &s.PidNS, specgen.ParseNamespace},
		{hc.IpcMode, &s.IpcNS, specgen.ParseIPCNamespace},
		{hc.UTSMode, &s.UtsNS, specgen.ParseNamespace},
		{hc.UsernsMode, &s.UserNS, specgen.ParseUserNamespace},
	} {
		if x.mode == "" || x.mode == "private" || x.mode == "shareable" {
			continue
		}
		ns, err := x.parse(x.mode)
		if err != nil {
			return fmt.Errorf("container %s: namespace mode %q: %w", old.Name, x.mode, err)
		}
		*x.dst = ns
	}
	return nil
}

func portMappings(b map[string][]define.InspectHostPort) ([]nettypes.PortMapping, error) {
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []nettypes.PortMapping
	for _, k := range keys {
		port, proto, _ := strings.Cut(k, "/")
		cp, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", k, err)
		}
		if proto == "" {
			proto = "tcp"
		}
		for _, h := range b[k] {
			hp, err := strconv.ParseUint(h.HostPort, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("host port %q of %s: %w", h.HostPort, k, err)
			}
			out = append(out, nettypes.PortMapping{HostIP: h.HostIP, ContainerPort: uint16(cp), HostPort: uint16(hp), Protocol: proto, Range: 1})
		}
	}
	return out, nil
}
