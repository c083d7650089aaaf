package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/system"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	bolt "go.etcd.io/bbolt"
)

// KeptRestart is the restart policy a kept container had before it was
// set aside; Rollback gives it back.
type KeptRestart struct {
	Policy  string `json:"policy"`
	Retries uint   `json:"retries,omitempty"`
	// Via says how the policy was changed: "api" (Podman 5's update) or
	// "db" (Podman 4's state database, which has no API for it).
	Via string `json:"via,omitempty"`
}

func restartOf(id string, conn context.Context) (KeptRestart, error) {
	d, err := containers.Inspect(conn, id, nil)
	if err != nil {
		return KeptRestart{}, explain(err)
	}
	var k KeptRestart
	if p := d.HostConfig.RestartPolicy; p != nil {
		k.Policy, k.Retries = p.Name, p.MaximumRetryCount
	}
	return k, nil
}

// disableRestart sets a stopped container's restart policy to "no", so
// that neither Podman nor podman-restart.service starts it at boot next to
// its replacement, and returns the policy it had.
func disableRestart(conn context.Context, id string) (KeptRestart, error) {
	k, err := restartOf(id, conn)
	if err != nil {
		return k, err
	}
	if k.Policy == "" || k.Policy == "no" {
		return k, nil
	}
	k.Via, err = setRestart(conn, id, "no", 0)
	return k, err
}

// restoreRestart gives a container back the policy disableRestart took.
func restoreRestart(conn context.Context, id string, k KeptRestart) error {
	if k.Policy == "" || k.Policy == "no" {
		return nil
	}
	_, err := setRestart(conn, id, k.Policy, k.Retries)
	return err
}

// setRestart changes a container's restart policy through Podman's update
// API where the service has it (5.1 and later), otherwise in Podman 4's
// state database, the same way libpod itself rewrites a container's
// configuration on rename. Either way the result is read back.
func setRestart(conn context.Context, id, policy string, retries uint) (string, error) {
	via := "db"
	if v := bindings.ServiceVersion(conn); v.Major > 5 || (v.Major == 5 && v.Minor >= 1) {
		via = "api"
		opts := &types.ContainerUpdateOptions{NameOrID: id, RestartPolicy: &policy}
		if policy == "on-failure" {
			opts.RestartRetries = &retries
		}
		if _, err := containers.Update(conn, opts); err != nil {
			return via, fmt.Errorf("setting the restart policy of %s to %q: %w", id, policy, explain(err))
		}
	} else if err := setRestartDB(conn, id, policy, retries); err != nil {
		return via, fmt.Errorf("setting the restart policy of %s to %q: %w", id, policy, err)
	}
	got, err := restartOf(id, conn)
	if err != nil {
		return via, err
	}
	// Podman shows "no" as "no" or "".
	if got.Policy != policy && !(policy == "no" && got.Policy == "") {
		return via, fmt.Errorf("the restart policy of %s is still %q after setting it to %q", id, got.Policy, policy)
	}
	return via, nil
}

// errNoStateDB says that the service keeps its state where setRestartDB
// cannot change it.
var errNoStateDB = errors.New("this Podman keeps no BoltDB state here, and only Podman 5.1 and later change a restart policy through the API")

// setRestartDB rewrites restart_policy in the container's stored
// configuration (libpod's bolt_state.db, bucket ctr/ID, key config). libpod
// opens that database for each operation and takes its file lock, so this
// waits for the service's own transactions.
func setRestartDB(conn context.Context, id, policy string, retries uint) error {
	info, err := system.Info(conn, nil)
	if err != nil {
		return explain(err)
	}
	if info.Host != nil && info.Host.DatabaseBackend != "" && info.Host.DatabaseBackend != "boltdb" {
		return errNoStateDB
	}
	path := filepath.Join(info.Store.GraphRoot, "libpod", "bolt_state.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: %w", errNoStateDB, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		ctrs := tx.Bucket([]byte("ctr"))
		if ctrs == nil {
			return fmt.Errorf("%s has no containers bucket", path)
		}
		ctr := ctrs.Bucket([]byte(id))
		if ctr == nil {
			return fmt.Errorf("container %s is not in %s", id, path)
		}
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal(ctr.Get([]byte("config")), &cfg); err != nil {
			return fmt.Errorf("the stored configuration of %s: %w", id, err)
		}
		p, _ := json.Marshal(policy)
		cfg["restart_policy"] = p
		if policy == "on-failure" && retries > 0 {
			r, _ := json.Marshal(retries)
			cfg["restart_retries"] = r
		} else {
			delete(cfg, "restart_retries")
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		return ctr.Put([]byte("config"), b)
	})
}
