package config

import "slices"

// RestartKeys are the keys a reload does not apply: they wire the daemon's
// parts at start (whether containers are cared for at all, where the
// metrics are served). Every other key takes effect on reload. This is the
// one list; docs/config.md names the same keys and a test holds them.
var RestartKeys = []string{"containers.enabled", "metrics.listen", "metrics.socket"}

// restartValue reads one of RestartKeys from c.
var restartValue = map[string]func(c Config) any{
	"containers.enabled": func(c Config) any { return c.Containers.Enabled },
	"metrics.listen":     func(c Config) any { return c.Metrics.Listen },
	"metrics.socket":     func(c Config) any { return c.Metrics.Socket },
}

// NeedRestart lists the RestartKeys whose value in next differs from
// running (the configuration the daemon started with), in RestartKeys order.
func NeedRestart(running, next Config) []string {
	var keys []string
	for _, k := range RestartKeys {
		if restartValue[k](running) != restartValue[k](next) {
			keys = append(keys, k)
		}
	}
	return slices.Clip(keys)
}
