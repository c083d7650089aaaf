package health

import (
	"context"
	"fmt"
	"strings"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// systemd is what the gate asks the service manager.
type systemd interface {
	SystemState(ctx context.Context) (string, error)
	Unit(ctx context.Context, name string) (unitState, error)
	FailedUnits(ctx context.Context) ([]string, error)
	Jobs(ctx context.Context) ([]string, error) // "unit/type (state)"
	Close()
}

// unitState is what decides whether a unit is healthy.
type unitState struct {
	Load, Active, Sub string
	FileState         string // UnitFileState: enabled, static, disabled...
	Type, Result      string // services only: Type (oneshot...) and Result
	Ran               bool   // it left "inactive" at least once since boot
	ConditionFailed   bool   // its start was skipped by a Condition*=
}

// rule is how strictly a unit is judged.
type rule int

const (
	// critical: loaded and not failed; targets and enabled units up.
	critical rule = iota
	// listed (in a *.units file): up.
	listed
)

// up is true for a unit that is running, or a oneshot service that ran and
// succeeded (without RemainAfterExit= it goes back to inactive).
func (u unitState) up() bool {
	switch u.Active {
	case "active", "reloading":
		return true
	case "inactive":
		return u.Type == "oneshot" && u.Result == "success" && u.Ran
	}
	return false
}

func (u unitState) describe() string {
	s := u.Active
	if u.Sub != "" && u.Sub != u.Active {
		s += " (" + u.Sub + ")"
	}
	if u.Result != "" && u.Result != "success" {
		s += ", result " + u.Result
	}
	if u.ConditionFailed {
		s += ", skipped: condition not met"
	}
	if u.Active == "inactive" && u.Type == "oneshot" && u.Result == "success" && u.Ran {
		s += ", ran successfully"
	}
	return s
}

// judge applies a rule to a unit's state.
func judge(name string, u unitState, r rule) (bool, string) {
	if u.Active == "failed" {
		return false, u.describe()
	}
	if u.Load != "loaded" {
		return false, "not loaded: " + u.Load
	}
	mustBeUp := r == listed || strings.HasSuffix(name, ".target") ||
		u.FileState == "enabled" || u.FileState == "enabled-runtime"
	if mustBeUp && !u.up() {
		why := "not active: "
		if r == critical {
			why = "not active (" + orUnknown(u.FileState) + "): "
		}
		return false, why + u.describe()
	}
	return true, u.describe()
}

func unitCheck(ctx context.Context, sys systemd, checkName, unit string, r rule) Check {
	c := Check{Name: checkName}
	if sys == nil {
		c.Detail = "systemd unreachable"
		return c
	}
	u, err := sys.Unit(ctx, unit)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail = judge(unit, u, r)
	return c
}

// sdSystemd reads unit states from systemd over D-Bus.
type sdSystemd struct{ c *sdbus.Conn }

func (g *Gate) dialSystemd(ctx context.Context) (systemd, error) {
	dial := g.Dial
	if dial == nil {
		dial = sdbus.NewSystemConnectionContext
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	return sdSystemd{c}, nil
}

func (s sdSystemd) Close() { s.c.Close() }

func (s sdSystemd) SystemState(ctx context.Context) (string, error) {
	p, err := s.c.SystemStateContext(ctx)
	if err != nil {
		return "", err
	}
	state, _ := p.Value.Value().(string)
	return state, nil
}

func (s sdSystemd) Unit(ctx context.Context, name string) (unitState, error) {
	p, err := s.c.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return unitState{}, fmt.Errorf("unit %s: %w", name, err)
	}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }
	u := unitState{
		Load:      str(p, "LoadState"),
		Active:    str(p, "ActiveState"),
		Sub:       str(p, "SubState"),
		FileState: str(p, "UnitFileState"),
	}
	exited, _ := p["InactiveExitTimestampMonotonic"].(uint64)
	u.Ran = exited > 0
	checked, _ := p["ConditionTimestampMonotonic"].(uint64)
	condOK, _ := p["ConditionResult"].(bool)
	u.ConditionFailed = checked > 0 && !condOK
	if id := str(p, "Id"); strings.HasSuffix(id, ".service") && u.Load == "loaded" {
		sp, err := s.c.GetUnitTypePropertiesContext(ctx, id, "Service")
		if err != nil {
			return unitState{}, fmt.Errorf("service %s: %w", name, err)
		}
		u.Type, u.Result = str(sp, "Type"), str(sp, "Result")
	}
	return u, nil
}

func (s sdSystemd) FailedUnits(ctx context.Context) ([]string, error) {
	units, err := s.c.ListUnitsFilteredContext(ctx, []string{"failed"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range units {
		out = append(out, u.Name)
	}
	return out, nil
}

func (s sdSystemd) Jobs(ctx context.Context) ([]string, error) {
	jobs, err := s.c.ListJobsContext(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("%s/%s (%s)", j.Unit, j.JobType, j.Status))
	}
	return out, nil
}
