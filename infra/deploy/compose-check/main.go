// compose-check loads Compose files with compose-go, the loader Docker Compose v2 itself uses, and fails on
// anything `docker compose config` would refuse: the compose-spec JSON schema, interpolation, missing env files,
// references to undefined services, networks, volumes or secrets. It needs no Docker daemon and no network, so
// infra/deploy/validate.sh can run it on a CI machine that has neither.
//
//	compose-check [-profile NAME]... FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type profiles []string

func (p *profiles) String() string     { return strings.Join(*p, ",") }
func (p *profiles) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var active profiles
	flag.Var(&active, "profile", "profile to enable (repeatable); services of other profiles are still schema-checked")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-profile NAME]... FILE...")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(flag.Args(),
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithProfiles(active),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	names := project.ServiceNames()
	fmt.Printf("compose-check: %s: %d services valid (%s)\n", strings.Join(flag.Args(), " "), len(names), strings.Join(names, ", "))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: INVALID: %v\n", err)
	os.Exit(1)
}
