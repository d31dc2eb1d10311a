package multivalue

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
)

const pluginName = "multivalue"

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// setup parses the Corefile and wires the handler. Nothing starts here: a later
// plugin may still fail to parse, and then no OnStartup (and no OnShutdown) of
// this instance ever runs. Probing starts in OnStartup and stops in OnShutdown.
func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	if err := sameCluster(c, cfg.cluster); err != nil {
		return plugin.Error(pluginName, err)
	}
	mv := newMultivalue(cfg, defaultEngine)

	c.OnStartup(mv.start)
	c.OnShutdown(mv.stop)
	// A reload that fails after this instance's OnStartup (a later plugin's
	// OnStartup, a port in use) discards the new instance without shutting
	// it down: the running instance's hooks stop what the new one started.
	c.OnRestart(mv.restarting)
	c.OnRestartFailed(mv.restartFailed)
	checkComposition(c, mv) // warns, at startup, of plugins in the block that undo multivalue's answers

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		mv.Next = next
		return mv
	})
	return nil
}
