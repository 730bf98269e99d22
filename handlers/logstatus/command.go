package logstatus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddy-applog/caddy-applog/module/intake"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "applog",
		Short: "Commands for the applog log hub",
		Long: `
Commands that work with the applog app of a running Caddy.

  caddy applog tail   follows the records the hub receives
`,
		CobraFunc: func(cmd *cobra.Command) {
			tail := &cobra.Command{
				Use:   "tail [--app <name>] [--facility <name>] [--level <level>] [--host <host>] [--grep <text>] [--json] [--address <interface>]",
				Short: "Follows the records the hub receives, as tail -f does a file",
				Long: `
Prints the records the applog app of a running Caddy accepts from now on,
one line each, whatever door they came in by: time, level, app:facility,
the sender's host, the message, and the logger and door when they add
something. Levels are coloured on a terminal (not when NO_COLOR is set).

The filters are applied by Caddy: --app, --facility (the facility or any
of its sub-modules: web takes web.requests), --level (the lowest level
shown), --host (the sender's host) and --grep (text in the message or the
logger name, any case). --json prints each record as one JSON object a line.

It reads the admin API's /applog/records stream, at --address, or at the
admin address of the given --config, or at Caddy's default (localhost:2019).
When the stream ends (a config reload, a restart), it says so on stderr and
reconnects; Ctrl-C ends it.
`,
				Args: cobra.NoArgs,
				RunE: func(cmd *cobra.Command, _ []string) error {
					err := runTail(cmd)
					if err != nil {
						fmt.Fprintln(os.Stderr, "caddy applog tail:", err)
						cmd.SilenceErrors, cmd.SilenceUsage = true, true
					}
					return err
				},
			}
			fl := tail.Flags()
			fl.String("app", "", "Only records of this app")
			fl.String("facility", "", "Only records of this facility or its sub-modules")
			fl.String("level", "", "Only records at this level or above (debug, info, warning, error, critical or a number)")
			fl.String("host", "", "Only records sent from this host")
			fl.String("grep", "", "Only records with this text in the message or logger name (any case)")
			fl.Bool("json", false, "Print each record as one JSON object a line")
			fl.String("address", "", "The address of Caddy's admin API, if not the default")
			fl.StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
			fl.StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
			cmd.AddCommand(tail)
		},
	})
}

// runTail follows the stream until Ctrl-C or SIGTERM.
func runTail(cmd *cobra.Command) error {
	fl := caddycmd.Flags{FlagSet: cmd.Flags()}
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return fmt.Errorf("finding the admin address: %w", err)
	}
	q := url.Values{}
	for _, name := range []string{"app", "facility", "level", "host"} {
		if v := fl.String(name); v != "" {
			q.Set(name, v)
		}
	}
	if v := fl.String("grep"); v != "" {
		q.Set("q", v)
	}
	if v := fl.String("level"); v != "" {
		if _, ok := intake.ParseLevel(v); !ok {
			return fmt.Errorf("--level: unknown level %q", v)
		}
	}
	t, err := newTailer(addr, q)
	if err != nil {
		return err
	}
	t.json = fl.Bool("json")
	t.color = !t.json && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(os.Stdout.Fd()))
	t.out, t.errOut = os.Stdout, os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := t.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
